"""Confidence targets as plain objects: value, goal, met."""

from __future__ import annotations

import pytest

from agent.config import (
    EstimateThresholdTarget,
    IncumbentNearOptimumTarget,
    MaxPosteriorStdTarget,
    RelativeUncertaintyTarget,
)
from agent.targets import (
    CampaignState,
    EstimateThreshold,
    IncumbentNearOptimum,
    MaxPosteriorStd,
    RelativeUncertainty,
    planning_goals,
)
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



@pytest.mark.parametrize("sample", ["latest", "best"])
def test_relative_uncertainty_evaluated_as_the_list_grows_equals_a_fresh_evaluation(sample: str) -> None:
    """The target keeps its choice between evaluations (the loop evaluates after every analysis):
    the answer is the one a fresh target gives, as the list grows and when it is rebuilt."""
    config = RelativeUncertaintyTarget(name="r", kind="relative_uncertainty", estimate="radius", goal=0.02, sample=sample)
    kept = RelativeUncertainty(config)
    values = [(100.0, 3.0), (120.0, 1.0), (120.0, 9.0), (90.0, 0.5), (130.0, 6.5), (110.0, 0.1)]
    growing: list[Interpretation] = []
    for i, v in enumerate(values):
        growing.append(_interp(i, valid=i != 3, radius=v))
        state = _state(growing)
        assert kept.evaluate(state) == RelativeUncertainty(config).evaluate(state), i
    rebuilt = _state([_interp(0, radius=(50.0, 5.0))])  # a new list (a rebuilt ledger): chosen afresh
    assert kept.evaluate(rebuilt) == RelativeUncertainty(config).evaluate(rebuilt)
    assert kept.evaluate(rebuilt).value == pytest.approx(0.1)

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


def _composition_history(n: int, peak_height: float, noise_seed: int = 3, flat_only: bool = False) -> tuple[DesignSpace, list[Observation], float, float]:
    """``n`` Sobol points of a 3-component composition + temperature space, observed (σ = 0.02) on the
    synthetic simulator's peaks function scaled by ``peak_height``; also the best feasible true value
    (from 20,000 random feasible points) and the best true value among the observed points."""
    import numpy as np

    from policies.baselines import space_filling_points
    from simulators.synthetic import SyntheticPropertyDriver, SyntheticSettings

    space = DesignSpace.model_validate({
        "parameters": [{"name": c, "type": "continuous", "low": 0.0, "high": 1.0} for c in "abc"]
        + [{"name": "temperature", "type": "continuous", "low": 300.0, "high": 500.0}],
        "compositions": [{"name": "abc", "parameters": ["a", "b", "c"]}],
    })
    truth = SyntheticPropertyDriver("truth", SyntheticSettings(inputs={"a": (0, 1), "b": (0, 1), "c": (0, 1), "temperature": (300, 500)}))
    rng = np.random.default_rng(noise_seed)
    points = space_filling_points(space, 0, n, 7)
    if flat_only:  # the scenario of the bug: every point measured so far landed where the yield is ~0
        points = [p for p in space_filling_points(space, 0, 4 * n, 7) if truth.true_value(p) < 0.01][:n]
    history = [Observation(params=p, value=peak_height * truth.true_value(p) + float(rng.normal(0, 0.02)), sigma=0.02) for p in points]
    best = max(peak_height * truth.true_value(p) for p in space_filling_points(space, 0, 20000, 11))
    return space, history, best, max(peak_height * truth.true_value(p) for p in points)


@pytest.mark.parametrize("noise_seed", range(5))
def test_no_confidence_while_the_observations_show_no_structure(noise_seed: int) -> None:
    """10 yields in a 4-D composition space, every one at noise level (the true values there are ~0),
    whose feasible best is far above them: the GP is flat and its p(incumbent near optimum) read 1.000
    (a confident wrong answer). Not met, with why — for every noise draw."""
    target = IncumbentNearOptimum(IncumbentNearOptimumTarget(name="i", kind="incumbent_near_optimum", epsilon=0.05, probability=0.9))
    mapping = MaxPosteriorStd(MaxPosteriorStdTarget(name="m", kind="max_posterior_std", goal=0.05))
    space, history, best, best_observed = _composition_history(10, peak_height=1.0, noise_seed=noise_seed, flat_only=True)
    assert best_observed < 0.01 and best > 0.15  # the scenario: nothing but noise seen, the optimum elsewhere
    state = CampaignState(space, "maximize", history, [], ModelCache(), seed=0)
    for result in (target.evaluate(state), mapping.evaluate(state)):
        assert not result.met and result.value is None
        assert "no structure seen yet" in result.detail and "10 observations" in result.detail


def test_confidence_is_evaluated_once_structure_is_seen() -> None:
    """The same space with a tall peak (heights ×30, so the observations vary well above their noise):
    the gate lets the model's probability through."""
    target = IncumbentNearOptimum(IncumbentNearOptimumTarget(name="i", kind="incumbent_near_optimum", epsilon=0.05, probability=0.9))
    space, history, _, _ = _composition_history(14, peak_height=30.0)
    result = target.evaluate(CampaignState(space, "maximize", history, [], ModelCache(), seed=0))
    assert result.value is not None and "no structure" not in result.detail
