"""The phase-map policy: space-filling start, lookahead picks that say why, pending recipes not
proposed again, cheap recipes preferred, and a better map than random for the same samples."""

from __future__ import annotations

import numpy as np
import pytest

from policies.map_baselines import MapRandomPolicy
from policies.map_targets import map_accuracy, predicted_labels
from policies.phase_map import PhaseMapOptions, PhaseMapPolicy
from policies.protocol import PlanningContext, SampleOutcome
from tests.policies.map_toys import labelled_samples, outcome, point, ternary, truth

pytestmark = pytest.mark.timeout(240)

SMALL = PhaseMapOptions(n_candidates=48, n_grid=64)


def test_space_filling_until_n_initial() -> None:
    policy = PhaseMapPolicy(ternary(), seed=1, options=SMALL)
    first = policy.plan(PlanningContext(), 2)
    assert [p.reason["phase"] for p in first] == ["space-filling"] * 2
    assert policy.plan(PlanningContext(pending_recipes=[first[0].params]), 1)[0].params == first[1].params


def test_pending_recipes_are_not_proposed_again_and_reasons_say_why() -> None:
    space = ternary()
    samples = labelled_samples([point(0.9, 0.05), point(0.1, 0.8), point(0.1, 0.1), point(0.0, 0.5), point(0.7, 0.1)])
    policy = PhaseMapPolicy(space, seed=0, options=SMALL)
    alone = policy.plan(PlanningContext(samples=samples), 1)[0]
    assert alone.reason["phase"] == "map-uncertainty" and alone.reason["entropy_reduction"] > 0
    assert set(alone.reason["label_probabilities"]) == {"A", "B", "C"}
    batch = policy.plan(PlanningContext(samples=samples, pending_recipes=[alone.params]), 2)
    encoded = space.encode([alone.params] + [p.params for p in batch])
    distances = np.linalg.norm(encoded[:, None] - encoded[None], axis=-1)[np.triu_indices(3, 1)]
    assert distances.min() > 0.05, distances  # neither the pending recipe nor each other again
    assert batch[1].reason["n_pending"] == 2


def test_cheap_recipes_are_preferred() -> None:
    space = ternary()
    # The B|C boundary (b = c) runs across the whole a range; samples with a > 0.4 cost 20x more.
    recipes = [point(a, b) for a in (0.05, 0.5) for b in (0.05, 0.4)] + [point(0.8, 0.05), point(0.2, 0.7)]
    samples = [outcome(i, r, {"B" if r["b"] > r["c"] else "C": 0.95}, seconds=2000.0 if r["a"] > 0.4 else 100.0) for i, r in enumerate(recipes)]
    aware = PhaseMapPolicy(space, seed=0, options=SMALL).plan(PlanningContext(samples=samples), 1)[0]
    assert aware.reason["cost_model"] == "gp"
    assert aware.params["a"] < 0.4 and aware.reason["expected_seconds"] < 500, aware


def _learning_curve(policy: object, seed: int, n_samples: int, checkpoints: tuple[int, ...]) -> list[float]:
    """Map accuracy on a test grid after each checkpoint's number of samples (truth labels p = 0.95)."""
    space = ternary()
    learner = PhaseMapPolicy(space, seed=seed, options=SMALL)
    grid = space.sample(300, 99, "sobol")
    truths = [truth(g) for g in grid]
    samples: list[SampleOutcome] = []
    curve = []
    for k in range(n_samples):
        recipe = policy.plan(PlanningContext(samples=samples), 1)[0].params  # type: ignore[attr-defined]
        samples.append(outcome(k, recipe))
        if k + 1 in checkpoints:
            phase_map = learner.fit(samples)
            curve.append(map_accuracy(predicted_labels(phase_map.probabilities_at(grid), phase_map.labels), truths))
    return curve


def test_active_learning_maps_better_than_random_for_the_same_samples() -> None:
    """Mean accuracy over 6, 8 and 10 samples (area under the learning curve), two seeds: the
    active learner must do better than random on average (measured: 0.868 vs 0.830 on seeds 0 and 1;
    over seeds 0–3, 0.863 vs 0.831 — a modest, seed-dependent advantage at 10 samples)."""
    checkpoints = (6, 8, 10)
    active, random = [], []
    for seed in (0, 1):
        active += _learning_curve(PhaseMapPolicy(ternary(), seed=seed, options=SMALL), seed, 10, checkpoints)
        random += _learning_curve(MapRandomPolicy(ternary(), seed=seed), seed, 10, checkpoints)
    assert np.mean(active) > np.mean(random) + 0.02, (active, random)


def test_a_failed_synthesis_does_not_draw_the_next_recipe() -> None:
    """Every made sample costs the same; one synthesis failed (half the time: no characterisation).
    A failure is chance, not a cheap recipe: the next recipe is the one chosen had the failure cost
    as much as a made sample, at the made samples' cost. Before (failures in the cost GP), the
    acquisition per second rose around the failure and the next recipe was one the model expected
    to take 4 300 s (measured)."""
    space = ternary()
    recipes = [point(0.9, 0.05), point(0.1, 0.8), point(0.1, 0.1), point(0.0, 0.5), point(0.7, 0.1), point(0.3, 0.3)]
    made = [outcome(i, r, seconds=7000.0) for i, r in enumerate(recipes)]
    proposals = []
    for seconds in (3500.0, 7000.0):
        failed = outcome(9, point(0.5, 0.4), {}, seconds=seconds, status="failed")
        proposals.append(PhaseMapPolicy(space, seed=0, options=SMALL).plan(PlanningContext(samples=[*made, failed]), 1)[0])
    assert proposals[0].reason["expected_seconds"] == pytest.approx(7000.0), proposals[0].reason
    assert proposals[0].params == proposals[1].params
