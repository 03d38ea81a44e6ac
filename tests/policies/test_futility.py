"""The futility forecast: P(time needed > budget left) from each hypothesis' need, and the SAS planner's use of it."""

from __future__ import annotations

import pytest

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
