"""Confidence targets as plain objects: value, goal, met."""

from __future__ import annotations

import pytest

from agent.config import (
    EstimateThresholdTarget,
    IncumbentNearOptimumTarget,
    MaxPosteriorStdTarget,
    RelativeUncertaintyTarget,
)
from agent.targets import CampaignState, EstimateThreshold, MaxPosteriorStd, RelativeUncertainty, planning_goals
from analysis.protocol import Estimate, Interpretation
from policies.models import ModelCache
from policies.protocol import Observation, PlanningGoals
from policies.space import DesignSpace

pytestmark = pytest.mark.timeout(60)
SPACE = DesignSpace.model_validate({"parameters": [{"name": "x", "type": "continuous", "low": 0.0, "high": 1.0}]})


def _interp(i: int, valid: bool = True, **estimates: tuple[float | None, float | None]) -> Interpretation:
    return Interpretation(
        attempt_id=f"a{i}", sample_id="s", analysis="t", valid=valid,
        estimates={k: Estimate(value=v, sigma=s) for k, (v, s) in estimates.items()},
    )


def _state(interpretations: list[Interpretation], history: list[Observation] | None = None) -> CampaignState:
    return CampaignState(SPACE, "maximize", history or [], interpretations, ModelCache(), seed=0)


def test_relative_uncertainty_uses_the_newest_valid_estimate() -> None:
    target = RelativeUncertainty(RelativeUncertaintyTarget(name="r", kind="relative_uncertainty", estimate="radius", goal=0.02))
    assert not target.evaluate(_state([])).met
    state = _state([_interp(0, radius=(100.0, 1.0)), _interp(1, radius=(100.0, 5.0)), _interp(2, valid=False, radius=(100.0, 0.1))])
    result = target.evaluate(state)
    assert (result.value, result.met) == (0.05, False)  # the invalid, better-looking one is ignored


def test_estimate_threshold_bounds() -> None:
    at_least = EstimateThreshold(EstimateThresholdTarget(name="p", kind="estimate_threshold", estimate="p(best)", at_least=0.95))
    assert at_least.evaluate(_state([_interp(0, **{"p(best)": (0.97, None)})])).met
    assert not at_least.evaluate(_state([_interp(0, **{"p(best)": (0.97, None)}), _interp(1, **{"p(best)": (0.6, None)})])).met
    at_most = EstimateThreshold(EstimateThresholdTarget(name="c", kind="estimate_threshold", estimate="chi2", at_most=1.5))
    assert at_most.evaluate(_state([_interp(0, chi2=(1.2, None))])).met
    with pytest.raises(ValueError, match="at_least, at_most"):
        EstimateThresholdTarget(name="x", kind="estimate_threshold", estimate="e")


def test_model_targets_wait_for_enough_data_then_shrink_with_it() -> None:
    target = MaxPosteriorStd(MaxPosteriorStdTarget(name="m", kind="max_posterior_std", goal=0.05, min_observations=4))
    few = [Observation(params={"x": x}, value=x**2, sigma=0.01) for x in (0.1, 0.5)]
    assert target.evaluate(_state([], few)).value is None
    some = [Observation(params={"x": x / 5}, value=(x / 5) ** 2, sigma=0.01) for x in range(6)]
    many = [Observation(params={"x": x / 30}, value=(x / 30) ** 2, sigma=0.01) for x in range(31)]
    coarse, fine = target.evaluate(_state([], some)), target.evaluate(_state([], many))
    assert fine.value < coarse.value  # type: ignore[operator]
    assert fine.met


def test_planning_goals_take_relative_precision_by_estimate_and_the_strictest_p_best() -> None:
    targets = [
        RelativeUncertaintyTarget(name="r", kind="relative_uncertainty", estimate="radius", goal=0.02),
        RelativeUncertaintyTarget(name="t", kind="relative_uncertainty", estimate="thickness", goal=0.05, sample="best"),
        EstimateThresholdTarget(name="p1", kind="estimate_threshold", estimate="p(best)", at_least=0.9),
        EstimateThresholdTarget(name="p2", kind="estimate_threshold", estimate="p(best)", at_least=0.99),
        EstimateThresholdTarget(name="p3", kind="estimate_threshold", estimate="p(best)", at_least=0.95),
        # Not p(best) goals: an upper bound only, and a threshold on another estimate.
        EstimateThresholdTarget(name="cap", kind="estimate_threshold", estimate="p(best)", at_most=0.999),
        EstimateThresholdTarget(name="w", kind="estimate_threshold", estimate="radius", at_least=50.0),
    ]
    goals = planning_goals(targets)
    assert goals == PlanningGoals(relative_precision={"radius": 0.02, "thickness": 0.05}, best_probability=0.99)


def test_a_campaign_without_planning_targets_has_empty_planning_goals() -> None:
    targets = [
        MaxPosteriorStdTarget(name="m", kind="max_posterior_std", goal=0.1),
        IncumbentNearOptimumTarget(name="i", kind="incumbent_near_optimum", epsilon=0.05, probability=0.9),
    ]
    goals = planning_goals(targets)
    assert goals == PlanningGoals() and goals.is_empty()
    assert planning_goals([]).is_empty()


@pytest.mark.parametrize("flag", ["poor-fit", "second-minimum:radius", "not-identified", "unconstrained:radius"])
def test_a_target_is_never_met_on_a_flagged_fit(flag: str) -> None:
    radius = RelativeUncertainty(RelativeUncertaintyTarget(name="r", kind="relative_uncertainty", estimate="radius", goal=0.02))
    best = EstimateThreshold(EstimateThresholdTarget(name="p", kind="estimate_threshold", estimate="p(best)", at_least=0.95))
    clean = _interp(0, radius=(100.0, 1.0), **{"p(best)": (0.99, None)})
    flagged = clean.model_copy(update={"flags": [flag, "at-bound:background"]})
    assert radius.evaluate(_state([clean])).met and best.evaluate(_state([clean])).met
    result = radius.evaluate(_state([flagged]))
    assert (result.value, result.met) == (0.01, False) and flag in result.detail  # shown, not counted
    if not flag.endswith(":radius"):  # a flag on another estimate does not block p(best)
        assert not best.evaluate(_state([flagged])).met
    assert best.evaluate(_state([clean.model_copy(update={"flags": ["at-bound:background"]})])).met
