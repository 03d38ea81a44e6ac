"""Across-sample map policies on the simulated oxide system's hidden truth (policy level, seconds).

``labpilot bench map`` runs real nested campaigns (synthesis, adaptive XRD, the XRD analysis) and
takes about an hour per campaign on a loaded machine; this isolates the across-sample policy and the
map learner on the *same* truth, without Ray, instruments or XRD:

- the design space and truth are those of ``labpilot bench map``'s oxide campaigns
  (``experiments/sdl_oxide_map.yaml``: MgO–ZnO–CuO + anneal 773–1373 K; the truth is
  ``simulators.materials.OxideSystem`` with the truth's seed);
- each recipe is "made" by the system (``truth(recipe, key)``: the synthesis scatter of composition
  and temperature, so a recipe near a boundary may land on the other side of it), and 5 % of
  syntheses fail (no label);
- its soft label imitates what the XRD analysis hands over (``agent/sample_outcome.py``): a phase
  whose weight fraction is below a detection limit drawn per sample (1–5 %) is missed, so a sample
  near a boundary is labelled with the subset; the best set gets p ~ U(0.90, 0.995) (answered at
  p(best) ≥ 0.95 most of the time, 15 % of samples end on their budget at p ~ U(0.55, 0.95)), the
  rival (the set with the missed phase, or without the sample's most minor phase) most of the
  rest; 3 % of samples end "not identified" (no label mass);
- every map is the shared learner's (``PhaseMapPolicy.fit``) scored like ``agent/bench/map_score.py``:
  accuracy on the system's dense grid (``dense_grid(10)``: 726 recipes) against its noiseless
  labels, calibration = of test points labelled with p ≥ 0.95, the fraction right.

    python -m benchmarks.map_oxide [--truths 4] [--first-truth 0] [--samples 8,12,16,24,32] [--policies phase_map,map_random,map_grid] [--json]
"""

from __future__ import annotations

import argparse
from functools import cache
from typing import Any

import numpy as np

from benchmarks.map_common import compare, learning_curve, score_map
from policies.map_baselines import MapGridPolicy, MapRandomPolicy
from policies.phase_map import PhaseMapPolicy
from policies.protocol import SampleOutcome
from policies.space import DesignSpace
from simulators.materials.oxide import OxideSystem, OxideSystemSettings

SPACE = DesignSpace.model_validate({
    "parameters": [
        *({"name": n, "type": "continuous", "low": 0.0, "high": 1.0, "units": "mol frac"} for n in ("MgO", "ZnO", "CuO")),
        {"name": "anneal_temperature_k", "type": "continuous", "low": 773.0, "high": 1373.0, "units": "K"}],
    "compositions": [{"name": "oxides", "parameters": ["MgO", "ZnO", "CuO"], "total": 1.0}],
})
FAILURE_PROBABILITY = 0.05
NOT_IDENTIFIED_PROBABILITY = 0.03
BUDGET_PROBABILITY = 0.15
SECONDS_PER_SAMPLE = 7000.0  # furnace ≈ 6000–7800 s + adaptive XRD; the time axis is not studied here


@cache
def _system(truth: int) -> OxideSystem:
    return OxideSystem(OxideSystemSettings(seed=truth))


@cache
def test_grid(truth: int) -> tuple[list[dict[str, float]], list[str]]:
    """The dense test grid of ``labpilot bench map`` (726 recipes) and its true labels."""
    system = _system(truth)
    grid = system.dense_grid(10)
    return grid, [system.label(g) for g in grid]


def soft_label(truth: Any, rng: np.random.Generator) -> tuple[dict[str, float], str]:
    """An XRD-like soft label of a made sample (``PhaseMixtureTruth``) and its status."""
    if rng.random() < NOT_IDENTIFIED_PROBABILITY:
        return {}, "not_identified"
    limit = rng.uniform(0.01, 0.05)
    ranked = sorted(truth.phases, key=lambda p: -p.weight_fraction)
    seen = [p.phase for p in ranked if p.weight_fraction >= limit] or [ranked[0].phase]
    everything = [p.phase for p in ranked]
    if len(seen) < len(everything):
        rival = everything
    elif len(seen) > 1:
        rival = seen[:-1]
    else:
        rival = []
    budget = rng.random() < BUDGET_PROBABILITY
    p_best = rng.uniform(0.55, 0.95) if budget else rng.uniform(0.90, 0.995)
    labels = {"+".join(sorted(seen)): p_best}
    if rival:
        labels["+".join(sorted(rival))] = (1.0 - p_best) * rng.uniform(0.5, 0.95)
    return labels, "budget" if budget else "answered"


def outcome(truth: int, seed: int, k: int, recipe: dict[str, Any]) -> SampleOutcome:
    """Sample ``k`` of run (truth, seed) made from ``recipe``: failed, or its soft label."""
    rng = np.random.default_rng([truth, seed, k, 0x5A])
    if rng.random() < FAILURE_PROBABILITY:
        return SampleOutcome(sample_id=f"s{k}", recipe=recipe, status="failed", seconds=SECONDS_PER_SAMPLE / 2)
    made = _system(truth).truth(recipe, f"{seed}-{k}")
    labels, status = soft_label(made, rng)
    return SampleOutcome(sample_id=f"s{k}", recipe=recipe, label_probabilities=labels, status=status,  # type: ignore[arg-type]
                         seconds=SECONDS_PER_SAMPLE)


def make_policy(name: str, seed: int) -> Any:
    if name == "phase_map":
        return PhaseMapPolicy(SPACE, seed=seed)
    if name == "map_grid":
        return MapGridPolicy(SPACE, seed=seed, options=MapGridPolicy.Options(divisions=4))  # as bench map
    if name == "map_random":
        return MapRandomPolicy(SPACE, seed=seed)
    raise ValueError(f"policy: phase_map, map_random or map_grid, not {name!r}")


def score(truth: int, samples: list[SampleOutcome]) -> dict[str, Any]:
    """The shared learner's map of ``samples`` on the test grid: accuracy, calibration, confidence."""
    grid, truths = test_grid(truth)
    return score_map(PhaseMapPolicy(SPACE).fit(samples), grid, truths)


def run(name: str, truth: int, seed: int, checkpoints: list[int]) -> list[dict[str, Any]]:
    """One run: ``max(checkpoints)`` samples chosen by ``name``, scored at each checkpoint."""
    return learning_curve(make_policy(name, seed), lambda k, recipe: outcome(truth, seed, k, recipe), checkpoints,
                          lambda samples: score(truth, samples))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--truths", type=int, default=4, help="hidden truths 0 … N−1 (the system's seeds)")
    parser.add_argument("--first-truth", type=int, default=0, help="first truth (seed) of the range")
    parser.add_argument("--seeds", type=int, default=1, help="policy seeds per truth")
    parser.add_argument("--samples", default="8,12,16,24,32", help="checkpoints (sample counts)")
    parser.add_argument("--policies", default="phase_map,map_random,map_grid")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    checkpoints = sorted(int(v) for v in args.samples.split(","))
    truths = range(args.first_truth, args.first_truth + args.truths)
    compare(args.policies.split(","), lambda name: [run(name, truth, seed, checkpoints) for truth in truths for seed in range(args.seeds)],
            checkpoints, args.json)


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
