"""SAS measurement planning: the planner's choice of configuration, baselines, and errors that name
the option (the allocation optimiser: test_sas_allocation.py). No simulator here (the policy layer must not need one): the
instrument is described by its planning model, and fits by the interpretation a SAS analysis gives."""

from __future__ import annotations

import math

import numpy as np
import pytest

from analysis.protocol import Estimate, Interpretation
from instruments.sas import SASConfigurationModel, SASInstrumentModel
from instruments.types import Measurement, Timing
from policies.protocol import PlanningContext, PlanningGoals, Policy
from policies.registry import build_policy
from policies.space import DesignSpace

pytestmark = pytest.mark.timeout(120)

CONFIGS = {"15m": (0.0015, 0.02, 1e6), "5m": (0.006, 0.07, 3e6), "1.5m": (0.02, 0.35, 1e7)}
SPACE = DesignSpace.model_validate(
    {"parameters": [
        {"name": "configuration", "type": "categorical", "choices": list(CONFIGS)},
        {"name": "exposure_seconds", "type": "continuous", "low": 10, "high": 7200},
    ]}
)
SPHERE = {
    "name": "sphere", "model": "sphere",
    "parameters": {
        "radius": {"value": 80, "bounds": [10, 600]}, "radius_pd": {"value": 0.1, "bounds": [0, 0.3]},
        "scale": {"value": 1e-3, "bounds": [0, 0.05]}, "background": {"value": 0, "bounds": [-0.2, 0.3]},
    },
    "fixed": {"sld": 1.4, "sld_solvent": 6.37, "radius_pd_type": "schulz", "radius_pd_n": 35},
}
ANALYSIS = {"kind": "sas", "settings": {"candidates": [SPHERE]}}
GOALS = PlanningGoals(relative_precision={"radius": 0.02})


def instrument(min_exposure_seconds: dict[str, float] | None = None) -> SASInstrumentModel:
    """Three pinhole configurations; counts per second ∝ flux × the bins' solid angle (λ = 6 Å); each
    accepts exposures from ``min_exposure_seconds[name]`` (default 10 s)."""
    configurations = []
    for name, (q_min, q_max, flux) in CONFIGS.items():
        q = np.geomspace(q_min, q_max, 60)
        edges = np.sqrt(q[:-1] * q[1:])
        edges = np.concatenate([[q[0] ** 2 / edges[0]], edges, [q[-1] ** 2 / edges[-1]]])
        solid_angle = 36.0 * (edges[1:] ** 2 - edges[:-1] ** 2) / (4 * math.pi)
        configurations.append(
            SASConfigurationModel(
                name=name, q=q, dq=q * 0.08 / 2.3548, counts_per_second=flux * 0.9 * 0.1 * 0.85 * solid_angle,
                background=np.full(q.size, 0.03), min_exposure_seconds=(min_exposure_seconds or {}).get(name, 10),
            )
        )
    return SASInstrumentModel(configurations=configurations, change_seconds=180, overhead_seconds=20)


def fitted(radius: float, scale: float) -> Interpretation:
    values = {"radius": radius, "radius_pd": 0.1, "scale": scale, "background": 0.02}
    return Interpretation(
        attempt_id="a0", sample_id="s", analysis="sas", valid=True,
        estimates={"p(sphere)": Estimate(value=1.0), "radius": Estimate(value=radius, sigma=radius * 0.2)},
        details={f"fit:sphere:{k}": v for k, v in values.items()},
    )


def measured(configuration: str, seconds: float) -> Measurement:
    q = np.array([0.01, 0.02])
    return Measurement(
        attempt_id=f"m-{configuration}-{seconds}", instrument="sans",
        params={"configuration": configuration, "exposure_seconds": seconds},
        data={"q": q, "intensity": q, "dq": q}, sigma={"intensity": q}, timing=Timing(exposure_seconds=seconds),
    )


@pytest.mark.parametrize(
    ("radius", "scale", "used", "unused"), [(500.0, 1e-5, {"15m", "5m"}, {"1.5m"}), (15.0, 1e-3, {"1.5m"}, {"15m", "5m"})]
)
def test_the_planner_goes_where_the_information_is(radius: float, scale: float, used: set, unused: set) -> None:
    """Large particles: Guinier region and first minima at low Q. Small ones: the form factor's fall at high Q."""
    precise = PlanningGoals(relative_precision={"radius": 0.002})
    planner = build_policy("sas_adaptive", SPACE, direction="maximize", seed=0, options={}, analysis=ANALYSIS, goals=precise)
    assert isinstance(planner, Policy)
    context = PlanningContext(interpretations=[fitted(radius, scale)], instrument_models={"sans": instrument()})
    proposal = planner.plan(context, 1)[0]
    plan = proposal.reason["plan_seconds"]
    assert set(plan) == used and proposal.params["configuration"] in used, proposal.reason
    assert not set(plan) & unused
    assert proposal.reason["feasible"] and sum(plan.values()) > 100  # a real allocation, not minimum exposures
    # Gradual commitment: no more than first_exposure_seconds (60 s) before anything was measured.
    assert 10 <= proposal.params["exposure_seconds"] <= 60


def test_no_exposure_below_what_the_configuration_accepts() -> None:
    """The growth cap (60 s before anything was measured) is shorter than the slow 15 m configuration's
    minimum: the request is for the minimum, not one the instrument refuses."""
    precise = PlanningGoals(relative_precision={"radius": 0.002})
    planner = build_policy("sas_adaptive", SPACE, direction="maximize", seed=0, options={}, analysis=ANALYSIS, goals=precise)
    slow = instrument({"15m": 120.0, "5m": 90.0})
    proposals = planner.plan(PlanningContext(interpretations=[fitted(500.0, 1e-5)], instrument_models={"sans": slow}), 2)
    for proposal in proposals:
        shortest = slow.configuration(proposal.params["configuration"]).min_exposure_seconds
        assert proposal.params["exposure_seconds"] >= shortest, proposal.reason


def test_planner_before_any_fit_starts_from_the_settings_initial_values() -> None:
    planner = build_policy("sas_adaptive", SPACE, direction="maximize", seed=0, options={"first_exposure_seconds": 45},
                           analysis=ANALYSIS, goals=GOALS)
    proposal = planner.plan(PlanningContext(instrument_models={"sans": instrument()}), 1)[0]
    assert proposal.params["configuration"] in CONFIGS and proposal.params["exposure_seconds"] <= 45
    assert proposal.reason["fitted"] is False


def test_oracle_plans_from_the_truth_alone() -> None:
    truth = {"model": "sphere", "parameters": {"radius": 15.0, "radius_pd": 0.1, "scale": 1e-3, "background": 0.02}}
    precise = PlanningGoals(relative_precision={"radius": 0.002})
    oracle = build_policy("sas_oracle", SPACE, direction="maximize", seed=0, options={"truth": truth},
                          analysis=ANALYSIS, goals=precise)
    # No data, no interpretation: it still knows where to look.
    proposal = oracle.plan(PlanningContext(instrument_models={"sans": instrument()}), 1)[0]
    assert proposal.params["configuration"] == "1.5m" and set(proposal.reason["plan_seconds"]) == {"1.5m"}


def test_baselines_follow_their_protocols_and_replay_on_resume() -> None:
    protocol = [{"configuration": "15m", "exposure_seconds": 600}, {"configuration": "1.5m", "exposure_seconds": 300}]
    fixed = build_policy("sas_fixed", SPACE, direction="maximize", seed=0, options={"protocol": protocol})
    steps = [m.params for m in fixed.plan(PlanningContext(measurements=[measured("15m", 600)]), 3)]
    assert steps == [{"configuration": "1.5m", "exposure_seconds": 300}, {"configuration": "15m", "exposure_seconds": 600},
                     {"configuration": "1.5m", "exposure_seconds": 300}]
    robin = build_policy("sas_round_robin", SPACE, direction="maximize", seed=0, options={"exposure_seconds": 120})
    assert [p.params["configuration"] for p in robin.plan(PlanningContext(), 4)] == ["15m", "5m", "1.5m", "15m"]
    random = build_policy("sas_random", SPACE, direction="maximize", seed=4, options={"exposure_seconds": 120})
    first = [p.params for p in random.plan(PlanningContext(), 30)]
    assert {p["configuration"] for p in first} == set(CONFIGS) and {p["exposure_seconds"] for p in first} == {120}
    # A function of the step: the same after a "resume" that rebuilt the context from the store.
    again = random.plan(PlanningContext(measurements=[measured("5m", 120)]), 1)[0].params
    assert again == first[1]


@pytest.mark.parametrize(
    ("name", "options", "analysis", "message"),
    [
        ("sas_fixed", {"protocol": [{"configuration": "20m", "exposure_seconds": 60}]}, None, r"protocol\[0\]\.configuration '20m'"),
        ("sas_fixed", {"protocol": [{"configuration": "5m", "exposure_seconds": 1e6}]}, None, r"protocol\[0\]\.exposure_seconds"),
        ("sas_round_robin", {"exposure_seconds": 60, "order": ["5m", "2m"]}, None, "order"),
        ("sas_adaptive", {}, {"kind": "scalar", "settings": {}}, "analysis.kind must be 'sas'"),
        ("sas_oracle", {"truth": {"model": "sphere", "parameters": {"radius": 50}}}, ANALYSIS, r"truth.parameters lacks \['radius_pd'"),
        ("sas_oracle", {"truth": {"model": "cube", "parameters": {}}}, ANALYSIS, "truth.model 'cube' is not a candidate"),
        ("sas_adaptive", {"safety": 2.0}, ANALYSIS, "safety"),
    ],
)
def test_bad_options_are_named(name: str, options: dict, analysis: dict | None, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build_policy(name, SPACE, direction="maximize", seed=0, options=options, analysis=analysis, goals=GOALS)


def test_a_design_space_without_the_request_parameters_is_refused() -> None:
    space = DesignSpace.model_validate({"parameters": [{"name": "x", "type": "continuous", "low": 0, "high": 1}]})
    with pytest.raises(ValueError, match="categorical parameter 'configuration'"):
        build_policy("sas_round_robin", space, direction="maximize", seed=0, options={"exposure_seconds": 60})


def test_planner_without_a_planning_target_is_refused() -> None:
    with pytest.raises(ValueError, match="neither"):
        build_policy("sas_adaptive", SPACE, direction="maximize", seed=0, options={}, analysis=ANALYSIS,
                     goals=PlanningGoals())
