"""Grid and random baselines of a map campaign: deterministic, skipping what is made or pending."""

from __future__ import annotations

import pytest

from policies.map_baselines import MapGridPolicy, MapRandomPolicy, design_grid
from policies.protocol import PlanningContext
from tests.policies.map_toys import outcome, ternary
from tests.policies.spaces import ternary_space

pytestmark = pytest.mark.timeout(60)


def test_simplex_lattice_size_and_feasibility() -> None:
    grid = design_grid(ternary(), 4)
    assert len(grid) == 15  # (4+1)(4+2)/2 compositions of a ternary at step 1/4
    assert all(abs(p["a"] + p["b"] + p["c"] - 1) < 1e-12 for p in grid)
    constrained = ternary_space()  # bounds on x_b, x_c and x_a + anneal/1000 <= 1.2
    assert all(not constrained.violations(p) for p in design_grid(constrained, 5))
    with pytest.raises(ValueError, match="divisions"):
        design_grid(ternary(), 0)


def test_grid_skips_made_and_pending_recipes_in_raster_order() -> None:
    policy = MapGridPolicy(ternary(), options=MapGridPolicy.Options(divisions=4))
    first = policy.plan(PlanningContext(), 3)
    assert [p.reason["index"] for p in first] == [0, 1, 2]
    context = PlanningContext(samples=[outcome(0, first[0].params)], pending_recipes=[first[1].params])
    nxt = policy.plan(context, 2)
    assert [p.reason["index"] for p in nxt] == [2, 3]
    done = PlanningContext(samples=[outcome(i, g) for i, g in enumerate(policy.grid)])
    assert policy.plan(done, 1) == []  # the grid is finished


def test_random_is_batch_invariant() -> None:
    policy = MapRandomPolicy(ternary(), seed=3)
    two = policy.plan(PlanningContext(), 2)
    one = policy.plan(PlanningContext(pending_recipes=[two[0].params]), 1)
    assert one[0].params == two[1].params
