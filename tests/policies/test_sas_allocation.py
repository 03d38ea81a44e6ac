"""The SAS allocation optimiser: the least instrument time over configurations that meets the targets
under every hypothesis (Cramér–Rao time, configuration changes paid for)."""

from __future__ import annotations

import numpy as np
import pytest

from policies.sas_allocation import AllocationHypothesis, AllocationProblem, plan_allocation

pytestmark = pytest.mark.timeout(120)


def test_one_configuration_gets_exactly_the_cramer_rao_time() -> None:
    # One parameter, information a per second, prior precision p0: variance 1/(p0 + a t) ≤ L ⇔ t ≥ (1/L − p0)/a.
    a, p0, limit = 4.0, 1.0, 1e-3
    problem = AllocationProblem(
        configurations=["only"], min_exposure_seconds=np.array([1.0]), current=None, change_seconds=100.0,
        overhead_seconds=5.0,
        hypotheses=[AllocationHypothesis(model="m", info0=np.array([[p0]]), f=np.array([[[a]]]), variance_limits=[(0, limit, "x")])],
    )
    allocation = plan_allocation(problem)
    expected = (1 / limit - p0) / a
    assert allocation.feasible and allocation.binding == "x | m"
    assert allocation.seconds["only"] == pytest.approx(expected, rel=1e-4)
    assert allocation.cost_seconds == pytest.approx(expected + 5.0 + 100.0, rel=1e-4)


def test_a_configuration_change_is_paid_for_and_avoided_when_it_does_not_pay() -> None:
    # Two configurations carry the same information; the current one saves the change time.
    f = np.array([[[1.0]], [[1.0]]])
    hypothesis = AllocationHypothesis(model="m", info0=np.array([[1.0]]), f=f, variance_limits=[(0, 1e-2, "x")])
    base = dict(configurations=["a", "b"], min_exposure_seconds=np.array([1.0, 1.0]), change_seconds=300.0,
                overhead_seconds=10.0, hypotheses=[hypothesis])
    assert set(plan_allocation(AllocationProblem(current="b", **base)).seconds) == {"b"}
    assert set(plan_allocation(AllocationProblem(current="a", **base)).seconds) == {"a"}
    # Information that is already there needs no measurement at all.
    done = AllocationHypothesis(model="m", info0=np.array([[1e3]]), f=f, variance_limits=[(0, 1e-2, "x")])
    assert plan_allocation(AllocationProblem(current=None, **{**base, "hypotheses": [done]})).binding == "met"
