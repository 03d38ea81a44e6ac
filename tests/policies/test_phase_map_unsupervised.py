"""Unsupervised map labels: clusters of sample features with soft, uncertainty-aware memberships."""

from __future__ import annotations

import numpy as np
import pytest

from policies.phase_map_unsupervised import UnsupervisedPhaseMapOptions, UnsupervisedPhaseMapPolicy, cluster_memberships
from policies.protocol import PlanningContext, SampleOutcome
from tests.policies.map_toys import point, ternary

pytestmark = pytest.mark.timeout(120)


def _sample(i: int, a: float, b: float, peak: float, sigma: float = 0.01) -> SampleOutcome:
    """A 'peak position' feature (degrees 2θ) that jumps at a = 0.5, as a phase change would."""
    return SampleOutcome(sample_id=f"s{i}", recipe=point(a, b), estimates={"peak": (peak, sigma)}, seconds=60.0)


def _two_phases() -> list[SampleOutcome]:
    rng = np.random.default_rng(0)
    samples = []
    for i, (a, b) in enumerate([(0.1, 0.3), (0.2, 0.5), (0.3, 0.1), (0.15, 0.15), (0.7, 0.1), (0.8, 0.05), (0.9, 0.0), (0.65, 0.2)]):
        samples.append(_sample(i, a, b, (30.0 if a < 0.5 else 32.0) + 0.05 * rng.standard_normal()))
    return samples


def test_memberships_separate_clusters_and_soften_uncertain_samples() -> None:
    values = np.array([[30.0], [30.1], [29.9], [32.0], [32.1], [31.9], [31.0], [31.0]])
    sigmas = np.array([[0.01]] * 6 + [[0.01], [5.0]])
    p = cluster_memberships(values, sigmas, 2, seed=0)
    assert p.shape == (8, 2) and np.allclose(p.sum(axis=1), 1)
    assert (p[:3, 0] > 0.99).all() and (p[3:6, 1] > 0.99).all()  # ordered by the feature's mean
    assert 0.2 < p[7, 0] < 0.8  # an imprecise feature: near the mixture weights, not a confident membership
    assert p[6].max() > 0.9  # the same value measured precisely is assigned


def test_relabelled_samples_train_the_map_and_missing_features_carry_no_label() -> None:
    samples = _two_phases() + [SampleOutcome(sample_id="x", recipe=point(0.5, 0.25), status="not_identified")]
    options = UnsupervisedPhaseMapOptions(features=["peak"], n_clusters=2, n_candidates=32, n_grid=32)
    policy = UnsupervisedPhaseMapPolicy(ternary(), seed=0, options=options)
    relabelled = policy.relabel(samples)
    assert relabelled[0].label_probabilities["cluster-0"] > 0.99
    assert relabelled[4].label_probabilities["cluster-1"] > 0.99
    assert relabelled[-1].label_probabilities == {}
    phase_map = policy.fit(relabelled)
    p = phase_map.probabilities_at([point(0.1, 0.3), point(0.85, 0.05)])
    assert phase_map.labels == ["cluster-0", "cluster-1"]
    assert p[0, 0] > 0.8 and p[1, 1] > 0.8
    proposal = policy.plan(PlanningContext(samples=samples), 1)[0]
    assert proposal.reason["phase"] == "map-uncertainty"
    assert set(proposal.reason["label_probabilities"]) == {"cluster-0", "cluster-1"}
