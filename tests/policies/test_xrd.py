"""XRD scan steering: the survey first, then windows where the phase-set hypotheses differ, per second;
the AdaptiveXRD-style heuristic and the full scan through the same plan() path; bad options named."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from analysis.xrd import XRDPhaseIdentification, XRDPhaseIDSettings
from instruments.types import MeasurementRequest
from physics.phases import PhaseLibrary
from physics.xrd import peak_positions
from policies.protocol import PlanningContext, PlanningGoals
from policies.registry import build_policy
from policies.space import DesignSpace
from simulators.xrd import XRDDriver, XRDSettings

pytestmark = pytest.mark.timeout(300)
SPACE = DesignSpace.model_validate({"parameters": [
    {"name": "two_theta_start", "type": "continuous", "low": 5.0, "high": 140.0},
    {"name": "two_theta_stop", "type": "continuous", "low": 5.0, "high": 140.0},
    {"name": "two_theta_step", "type": "continuous", "low": 0.005, "high": 0.2},
    {"name": "dwell_seconds", "type": "continuous", "low": 0.02, "high": 20.0},
]})
ANALYSIS = {"kind": "xrd", "settings": {"refine_instrument": False}}
"""The simulated diffractometer's U, V, W are the analysis' defaults (a LaB6 calibration): held, not refined."""
GOALS = PlanningGoals(best_probability=0.95)
KEYS = ("two_theta_start", "two_theta_stop", "two_theta_step", "dwell_seconds")
QUICK = (10.0, 60.0, 0.04, 0.05)
"""A quick survey: 78 s of instrument time."""


def _policy(name: str, **options: Any) -> Any:
    return build_policy(name, SPACE, direction="maximize", seed=0, options=options, analysis=ANALYSIS, goals=GOALS)


def _context(driver: XRDDriver, windows: list[tuple[float, ...]], analyse: bool = True) -> PlanningContext:
    measurements = [driver.measure(MeasurementRequest(attempt_id=f"w{i}", params=dict(zip(KEYS, w)), sample_id="s"))
                    for i, w in enumerate(windows)]
    analysis = XRDPhaseIdentification(XRDPhaseIDSettings.model_validate(ANALYSIS["settings"]))
    interpretations = [analysis.interpret(measurements)] if analyse and measurements else []
    return PlanningContext(measurements=measurements, interpretations=interpretations,
                           instrument_models={"xrd": driver.planning_model()})


@pytest.fixture(scope="module")
def titania() -> XRDDriver:
    # Anatase with 5 % brookite, seen by a quick survey only: "is there brookite?" is open.
    return XRDDriver("xrd", XRDSettings.model_validate({"seed": 5, "sample": {"phases": [
        {"phase": "tio2_anatase", "weight_fraction": 0.95, "crystallite_size_nm": 80},
        {"phase": "tio2_brookite", "weight_fraction": 0.05, "crystallite_size_nm": 80}]}}))


def test_every_xrd_policy_starts_with_its_survey_or_scan(titania: XRDDriver) -> None:
    empty = PlanningContext(instrument_models={"xrd": titania.planning_model()})
    assert _policy("xrd_adaptive").plan(empty, 1)[0].params == dict(zip(KEYS, (10.0, 60.0, 0.04, 0.1)))
    assert _policy("xrd_heuristic", survey=[10, 50, 0.05, 0.2]).plan(empty, 1)[0].params == dict(zip(KEYS, (10.0, 50.0, 0.05, 0.2)))
    full = _policy("xrd_full_scan").plan(empty, 2)
    assert [p.params for p in full] == [dict(zip(KEYS, (10.0, 90.0, 0.02, 1.0)))] * 2


def test_the_planner_does_not_repeat_the_survey_while_its_analysis_is_pending(titania: XRDDriver) -> None:
    survey = dict(zip(KEYS, (10.0, 60.0, 0.04, 0.1)))
    in_flight = PlanningContext(unmeasured=[survey], instrument_models={"xrd": titania.planning_model()})
    measured = _context(titania, [tuple(survey.values())], analyse=False)
    for context in (in_flight, measured):
        proposal = _policy("xrd_adaptive").plan(context, 1)[0]
        assert proposal.params != survey
        assert proposal.params["two_theta_start"] >= 60.0 and proposal.reason["rule"] == "analysis pending: extend the range"


def test_the_planner_counts_where_the_rival_phase_sets_differ(titania: XRDDriver) -> None:
    context = _context(titania, [QUICK])
    latest = context.latest_valid()
    assert latest is not None and latest.estimates["p(best)"].value < 0.95  # type: ignore[operator]
    proposal = _policy("xrd_adaptive").plan(context, 1)[0]
    reason = proposal.reason
    assert reason["rule"] == "discrimination per second" and reason["rivals"]
    # The window serves the rivals by their probability: the leading one (anatase + brookite) gains there; a
    # trace rival at p ~ 0.002 (graphite beside anatase) may have no line in it.
    leading = max(reason["rivals"], key=reason["rivals"].get)
    assert leading == "tio2_anatase+tio2_brookite" and reason["expected_gain_nats"][leading] > 0
    # The window holds a brookite line that no anatase line overlaps: where the hypotheses differ.
    start, stop = proposal.params["two_theta_start"], proposal.params["two_theta_stop"]
    library = PhaseLibrary()
    lines = {n: peak_positions(library.phase(n).reflections(0.8).d, 1.5406, 0.0, 0.0, 0.0, 240.0) for n in ("tio2_anatase", "tio2_brookite")}
    strong = library.phase("tio2_brookite").reflections(0.8).f2m > 0.05 * library.phase("tio2_brookite").reflections(0.8).f2m.max()
    own = [x for x in lines["tio2_brookite"][strong] if np.min(np.abs(lines["tio2_anatase"] - x)) > 0.3]
    assert any(start <= x <= stop for x in own), (start, stop, own)
    # And it costs less than the slow full scan would.
    assert reason["seconds"] < 4000


def test_counting_there_settles_the_question(titania: XRDDriver) -> None:
    policy = _policy("xrd_adaptive")
    windows: list[tuple[float, ...]] = [QUICK]
    for _ in range(6):
        context = _context(titania, windows)
        latest = context.latest_valid()
        assert latest is not None
        if latest.estimates["p(best)"].value >= 0.95:  # type: ignore[operator]
            break
        windows.append(tuple(policy.plan(context, 1)[0].params[k] for k in KEYS))  # type: ignore[misc]
    assert latest.details["best_set"] == "tio2_anatase+tio2_brookite" and latest.estimates["p(best)"].value >= 0.95  # type: ignore[operator]
    spent = sum(titania.planning_model().window_seconds(*w, position=None) for w in windows)
    assert spent < 4016 / 3, windows  # a third of the full slow scan


def test_the_heuristic_rescans_where_the_top_two_differ_then_extends(titania: XRDDriver) -> None:
    policy = _policy("xrd_heuristic")
    context = _context(titania, [QUICK])
    rescan = policy.plan(context, 1)[0]
    assert rescan.reason["rule"] == "rescan where the top two differ"
    assert rescan.params["two_theta_stop"] - rescan.params["two_theta_start"] >= 5.0 and rescan.params["dwell_seconds"] == 1.0
    # With one hypothesis left (a single-phase sample), it extends the range in 10° steps.
    single = XRDDriver("xrd", XRDSettings.model_validate({"sample": {"phases": [{"phase": "si", "weight_fraction": 1.0}]}}))
    extension = policy.plan(_context(single, [QUICK], analyse=True), 1)[0]
    if extension.reason["rule"] == "extend the range":
        assert extension.params["two_theta_start"] == 60.0 and extension.params["two_theta_stop"] == 70.0


@pytest.mark.parametrize(("name", "options", "analysis", "goals", "message"), [
    ("xrd_adaptive", {"survey": [10, 60, 0.04]}, ANALYSIS, GOALS, "survey is \\[start, stop, step, dwell_seconds\\]"),
    ("xrd_adaptive", {"survey": [10, 160, 0.04, 0.1]}, ANALYSIS, GOALS, "two_theta_stop=160.0 is outside the design space"),
    ("xrd_adaptive", {}, {"kind": "sas", "settings": {}}, GOALS, "analysis.kind must be 'xrd'"),
    ("xrd_adaptive", {}, ANALYSIS, PlanningGoals(relative_precision={"w:si": 0.1}), "p\\(best\\) estimate_threshold"),
    ("xrd_adaptive", {"growth": -1}, ANALYSIS, GOALS, "must be positive"),
    ("xrd_full_scan", {"scan": [90, 10, 0.02, 1]}, ANALYSIS, GOALS, "need start < stop"),
])
def test_bad_options_are_refused_naming_them(name: str, options: dict[str, Any], analysis: dict[str, Any],
                                              goals: PlanningGoals, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build_policy(name, SPACE, direction="maximize", seed=0, options=options, analysis=analysis, goals=goals)


def test_a_design_space_without_the_window_parameters_is_refused() -> None:
    space = DesignSpace.model_validate({"parameters": [{"name": "x", "type": "continuous", "low": 0, "high": 1}]})
    with pytest.raises(ValueError, match="needs continuous parameters.*missing or not continuous"):
        build_policy("xrd_full_scan", space, direction="maximize", seed=0)
