"""Optimising a property inside a phase region: the better value outside the region is not chased."""

from __future__ import annotations

import pytest

from policies.protocol import PlanningContext, SampleOutcome
from policies.region_bo import RegionBayesianOptimisation, RegionOptions
from tests.policies.map_toys import point, ternary, truth

pytestmark = pytest.mark.timeout(120)


def _hardness(r: dict[str, float]) -> float:
    """A property that grows with a: its unconstrained optimum is deep in region A (a > 0.5)."""
    return 10.0 * r["a"] + 2.0 * r["b"]


def test_proposals_stay_in_the_region_and_say_why() -> None:
    recipes = [point(a, b) for a, b in [(0.05, 0.8), (0.1, 0.5), (0.3, 0.6), (0.2, 0.1), (0.7, 0.2), (0.9, 0.05), (0.4, 0.2), (0.05, 0.05)]]
    samples = [
        SampleOutcome(sample_id=f"s{i}", recipe=r, label_probabilities={truth(r): 0.95}, estimates={"hardness": (_hardness(r), 0.05)}, seconds=100.0)
        for i, r in enumerate(recipes)
    ]
    options = RegionOptions(estimate="hardness", region=["B"], n_candidates=256)
    policy = RegionBayesianOptimisation(ternary(), seed=0, options=options)
    proposals = policy.plan(PlanningContext(samples=samples), 2)
    # The in-region optimum is on the A|B boundary (a = b = 0.5): the first pick goes toward it inside B.
    first = proposals[0]
    assert first.reason["phase"] == "region-constrained" and first.reason["n_in_region"] == 3
    assert truth(first.params) == "B" and first.reason["region_probability"] > 0.5 and first.params["a"] > 0.3, first
    # The second (with the first pending) may straddle the uncertain boundary — E[improvement · 1(region)]
    # trades the two — but never where the map is sure the region is not.
    assert proposals[1].reason["region_probability"] > 0.1 and proposals[0].params != proposals[1].params
    unconstrained = RegionBayesianOptimisation(ternary(), seed=0, options=RegionOptions(estimate="hardness", region=["A", "B", "C"], n_candidates=256))
    assert unconstrained.plan(PlanningContext(samples=samples), 1)[0].params["a"] > 0.5  # where hardness is highest
