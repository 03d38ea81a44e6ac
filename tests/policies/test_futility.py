"""The futility forecast: P(time needed > budget left) from each hypothesis' need, and the SAS planner's use of it."""

from __future__ import annotations

import pytest

from analysis.protocol import Estimate, Interpretation
from policies.futility import HypothesisNeed, forecast, forecast_of, probability_cap, seconds_text
from policies.protocol import PlanningContext, PlanningGoals, Proposal
from policies.registry import build_policy
from tests.policies.test_sas import ANALYSIS, SPACE, SPHERE, fitted, instrument, measured

pytestmark = pytest.mark.timeout(120)

GOALS = PlanningGoals(relative_precision={"radius": 0.02})


def test_the_forecast_weighs_hypotheses_and_the_linearisation_error() -> None:
    needs = [HypothesisNeed(hypothesis="a", weight=0.7, seconds=3.1e5, binding="σ(R)/R"),
             HypothesisNeed(hypothesis="b", weight=0.3, seconds=1000.0, binding="σ(R)/R")]
    f = forecast(needs, 12000.0, horizon_seconds=3e5, log_sigma=0.5)
    # "a" exceeds 12,000 s almost surely (ln(3.1e5/1.2e4) = 6.5 σ), "b" almost never.
    assert f.p_unreachable == pytest.approx(0.7, abs=1e-3)
    assert "3.1 × 10⁵ s" in f.reason and "12,000 s left" in f.reason
    # Beyond the horizon is out of reach whatever the budget; without a budget only that counts.
    beyond = [HypothesisNeed(hypothesis="a", weight=1.0, seconds=None, binding="model probability")]
    assert forecast(beyond, 1e9, horizon_seconds=3e5).p_unreachable == 1.0
    assert forecast(needs, None, horizon_seconds=3e5).p_unreachable == 0.0
    # A need close to the budget is uncertain, not certain either way.
    close = [HypothesisNeed(hypothesis="a", weight=1.0, seconds=12000.0)]
    assert forecast(close, 12000.0, horizon_seconds=3e5, log_sigma=0.5).p_unreachable == pytest.approx(0.5)
    assert seconds_text(12000) == "12,000"


def test_probability_cap_reads_the_analysis_own_quantity_or_the_open_world_flag() -> None:
    assert probability_cap({"p_missing_phase": 0.6}, []) == pytest.approx(0.4)
    assert probability_cap({"probability_cap": 0.7}, ["open-world: p halved"]) == pytest.approx(0.7)
    assert probability_cap({}, ["open-world: p halved"]) == 0.5
    assert probability_cap({}, ["search-widened"]) == 1.0


@pytest.mark.parametrize(("scale", "unreachable"), [(1e-6, True), (1e-5, False), (1e-4, False), (1e-3, False)])
def test_the_sas_planner_forecasts_a_too_dilute_sample_out_of_reach(scale: float, unreachable: bool) -> None:
    """σ(R)/R ∝ 1/√(scale · t): a 100× more dilute sample needs 100× the time."""
    planner = build_policy("sas_adaptive", SPACE, direction="maximize", seed=0, options={}, analysis=ANALYSIS, goals=GOALS)
    context = PlanningContext(interpretations=[fitted(80.0, scale)], measurements=[measured("1.5m", 60)],
                              instrument_models={"sans": instrument()}, remaining_instrument_seconds=20000.0)
    proposal = planner.plan(context, 1)[0]
    f = forecast_of(proposal.reason)
    assert f is not None
    assert (f.p_unreachable >= 0.9) is unreachable, f.reason
    if unreachable:
        assert f.median_seconds is not None and f.median_seconds > 20000
        assert "σ(radius)/radius would need" in f.reason


def test_the_sas_planner_plans_within_the_time_left() -> None:
    planner = build_policy("sas_adaptive", SPACE, direction="maximize", seed=0, options={"growth": 10.0},
                           analysis=ANALYSIS, goals=PlanningGoals(relative_precision={"radius": 0.002}))
    context = PlanningContext(interpretations=[fitted(80.0, 1e-4)], measurements=[measured("1.5m", 3000)],
                              instrument_models={"sans": instrument()}, remaining_instrument_seconds=700.0)
    proposal = planner.plan(context, 1)[0]
    # 700 s left: the exposure leaves room for its overhead (20 s) and a configuration change (180 s).
    assert proposal.params["exposure_seconds"] <= 500.0


def test_the_sas_planner_looks_where_rival_models_differ_before_precision() -> None:
    """Two candidates that differ at low Q only (a sphere and a sphere with a large aggregate radius):
    after a measurement at high Q, the planner looks at every configuration where they differ."""
    big = {**SPHERE, "name": "big_sphere", "parameters": {**SPHERE["parameters"], "radius": {"value": 400, "bounds": [250, 600]}}}
    analysis = {"kind": "sas", "settings": {"candidates": [SPHERE, big]}}
    goals = PlanningGoals(relative_precision={"radius": 0.02}, best_probability=0.95)
    planner = build_policy("sas_adaptive", SPACE, direction="maximize", seed=0, options={}, analysis=analysis, goals=goals)
    interpretation = fitted(80.0, 1e-3)
    interpretation = interpretation.model_copy(update={
        "estimates": {**interpretation.estimates, "p(sphere)": interpretation.estimates["p(sphere)"].model_copy(update={"value": 0.9}),
                      "p(big_sphere)": interpretation.estimates["p(sphere)"].model_copy(update={"value": 0.1})},
        "details": {**interpretation.details, "fit:big_sphere:radius": 400.0, "fit:big_sphere:radius_pd": 0.1,
                    "fit:big_sphere:scale": 1e-3, "fit:big_sphere:background": 0.02},
    })
    looked = {"1.5m"}
    for _ in range(3):
        context = PlanningContext(interpretations=[interpretation], measurements=[measured(c, 60) for c in sorted(looked)],
                                  instrument_models={"sans": instrument()})
        proposal: Proposal = planner.plan(context, 1)[0]
        if proposal.reason.get("rule") != "model check":
            break
        looked.add(str(proposal.params["configuration"]))
    assert "15m" in looked, "the low-Q configuration, where the rivals differ most, was never looked at"


def _twin_interpretation(sigma_scale: dict[str, float], flags: list[str] | None = None) -> Interpretation:
    """Two candidates that are the same sphere under two names, fitted to the same values (the data
    cannot tell them apart, ever), p 0.6 / 0.4, each with its own σ(scale)."""
    values = {"radius": 80.0, "radius_pd": 0.1, "scale": 3e-4, "background": 0.03}
    details: dict[str, float] = {}
    for m in ("sphere", "twin"):
        details |= {f"fit:{m}:{k}": v for k, v in values.items()}
        details |= {f"sigma:{m}:{k}": 0.01 * v for k, v in values.items()} | {f"sigma:{m}:scale": sigma_scale[m]}
    return Interpretation(attempt_id="a1", sample_id="s", analysis="sas", valid=True, flags=flags or [],
                          estimates={"p(sphere)": Estimate(value=0.6), "p(twin)": Estimate(value=0.4),
                                     "radius": Estimate(value=80.0, sigma=0.5)}, details=details)


TWINS = {"kind": "sas", "settings": {"candidates": [SPHERE, {**SPHERE, "name": "twin"}]}}
MODEL_GOAL = PlanningGoals(relative_precision={"radius": 0.02}, best_probability=0.95)


def test_indistinguishable_candidates_are_forecast_out_of_reach_whatever_their_scale_errors() -> None:
    """Regression (bench sas --quick, sample 4: core-shell vs fuzzy sphere stuck at p = 0.6 for
    19,820 s and never declared unreachable): the forecast raised each candidate's scale by its own
    2σ, so two candidates the data cannot separate were predicted to differ by that intensity offset
    and forecast to part in ~50 s. One common factor keeps them as alike as the data say they are."""
    planner = build_policy("sas_adaptive", SPACE, direction="maximize", seed=0, options={}, analysis=TWINS, goals=MODEL_GOAL)
    context = PlanningContext(interpretations=[_twin_interpretation({"sphere": 2e-5, "twin": 2e-6})],
                              measurements=[measured("1.5m", 3000), measured("5m", 3000)],
                              instrument_models={"sans": instrument()}, remaining_instrument_seconds=14000.0)
    f = forecast_of(planner.plan(context, 1)[0].reason)
    assert f is not None
    assert f.p_unreachable >= 0.9, f.reason
    assert "model probability" in f.reason


def test_a_configuration_no_candidate_explains_puts_the_model_goal_out_of_reach() -> None:
    planner = build_policy("sas_adaptive", SPACE, direction="maximize", seed=0, options={}, analysis=ANALYSIS, goals=MODEL_GOAL)
    plain = fitted(80.0, 1e-3)
    for flags, out_of_reach in (([], False), (["poor-fit", "unexplained:15m"], True)):
        context = PlanningContext(interpretations=[plain.model_copy(update={"flags": flags})],
                                  measurements=[measured("1.5m", 60), measured("15m", 60)],
                                  instrument_models={"sans": instrument()}, remaining_instrument_seconds=20000.0)
        f = forecast_of(planner.plan(context, 1)[0].reason)
        assert f is not None
        assert (f.p_unreachable >= 0.9) is out_of_reach, f.reason
    assert "no candidate explains 15m" in f.reason
