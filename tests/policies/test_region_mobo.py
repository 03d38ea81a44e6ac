"""Two objectives inside a phase region: Pareto-front picks weighted by the map's region probability."""

from __future__ import annotations

import pytest

from policies.protocol import PlanningContext, SampleOutcome
from policies.region_mobo import RegionMultiObjective, RegionMultiObjectiveOptions
from tests.policies.map_toys import point, ternary, truth

pytestmark = pytest.mark.timeout(120)


def test_pareto_picks_inside_the_region() -> None:
    recipes = [point(a, b) for a, b in [(0.05, 0.8), (0.1, 0.5), (0.3, 0.6), (0.2, 0.1), (0.7, 0.2), (0.9, 0.05), (0.4, 0.2), (0.05, 0.05), (0.3, 0.4)]]
    samples = [
        SampleOutcome(
            sample_id=f"s{i}", recipe=r, label_probabilities={truth(r): 0.95}, seconds=100.0,
            # hardness grows with a, cost (to minimise) with b: a trade-off along region B
            estimates={"hardness": (10 * r["a"] + 2 * r["b"], 0.05), "cost": (5 * r["b"] - r["a"], 0.05)},
        )
        for i, r in enumerate(recipes)
    ]
    options = RegionMultiObjectiveOptions(
        estimates=["hardness", "cost"], directions=["maximize", "minimize"], region=["B"], n_candidates=128, mc_samples=32
    )
    proposals = RegionMultiObjective(ternary(), seed=0, options=options).plan(PlanningContext(samples=samples), 2)
    assert proposals[0].reason["phase"] == "region-pareto" and proposals[0].reason["n_in_region"] >= 3
    assert proposals[0].reason["region_probability"] > 0.5 and truth(proposals[0].params) == "B", proposals[0]
    assert proposals[1].reason["region_probability"] > 0.1 and proposals[0].params != proposals[1].params
    before = RegionMultiObjective(ternary(), seed=0, options=options).plan(PlanningContext(samples=samples[:3]), 1)[0]
    assert before.reason["phase"] == "space-filling"  # fewer than n_initial recipes asked for
