"""A sample whose targets are out of reach ends ``unreachable`` early, with the forecast in words."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from agent.futility import unreachable_reason
from policies.protocol import Proposal
from tests.agent.campaign_files import run_in_process, shipped

pytestmark = pytest.mark.timeout(300)


def _one_candidate(tmp_path: Path, scale: float) -> dict[str, Any]:
    """The shipped adaptive SANS campaign with one candidate (a sphere; fewer polydispersity points:
    fast fits) and the sample's volume fraction ``scale``."""
    data = shipped("adaptive_sans.yaml", tmp_path)
    sphere = copy.deepcopy(data["analysis"]["settings"]["candidates"][0])
    sphere["fixed"]["radius_pd_n"] = 11
    data["analysis"]["settings"]["candidates"] = [sphere]
    data["targets"] = [t for t in data["targets"] if t["kind"] == "relative_uncertainty"]
    sample = data["instruments"][0]["settings"]["sample"]
    sample["scale"], sample["parameters"]["radius_pd_n"] = scale, 11
    return data


def test_a_too_dilute_sample_ends_unreachable_early_with_the_forecast(tmp_path: Path) -> None:
    data = _one_candidate(tmp_path, 2e-7)  # 1000× more dilute than the shipped sample
    budget = data["budgets"]["max_instrument_seconds"]
    _, store, result = run_in_process("adaptive_sans.yaml", tmp_path, "dilute", **{k: data[k] for k in ("analysis", "targets", "instruments")})
    assert result.status == "unreachable", result.stop_reason
    assert result.instrument_seconds <= 0.25 * budget
    assert "σ(radius)/radius would need" in result.stop_reason and "s left" in result.stop_reason
    # The answer so far under the forecast: here no signal at all, so nothing valid, said so.
    assert result.answer is not None and result.answer.status == "target unreachable"
    assert "So far: no answer yet" in result.answer.summary
    assert store.campaign("dilute").status == "unreachable"


def test_stop_when_unreachable_false_spends_the_budget_as_before(tmp_path: Path) -> None:
    data = _one_candidate(tmp_path, 2e-7)
    budgets = {"max_instrument_seconds": 1000, "max_measurements": 40}
    _, _, result = run_in_process("adaptive_sans.yaml", tmp_path, "dilute-on", stop_when_unreachable=False, budgets=budgets,
                                  **{k: data[k] for k in ("analysis", "targets", "instruments")})
    assert result.status == "budget_exhausted", result.stop_reason
    # Budget-aware requests: the guard clipped the last exposure; nothing overshoots the budget.
    assert result.instrument_seconds <= 1000 + 1e-6


@pytest.mark.parametrize("seed", [3, 4, 5])
def test_a_solvable_sample_is_not_declared_unreachable(tmp_path: Path, seed: int) -> None:
    """20× more dilute than the shipped sample: it needs some thousand seconds, well inside the budget."""
    data = _one_candidate(tmp_path, 1e-5)
    data["instruments"][0]["settings"]["seed"] = seed
    _, _, result = run_in_process("adaptive_sans.yaml", tmp_path, "solvable", seed=seed,
                                  **{k: data[k] for k in ("analysis", "targets", "instruments")})
    assert result.status == "completed", result.stop_reason
    assert result.instrument_seconds > 300  # not a trivial sample: it took several measurements


def test_a_forecast_below_the_threshold_or_none_never_stops() -> None:
    def proposal(p: float | None) -> Proposal:
        reason = {} if p is None else {"futility": {
            "needs": [], "remaining_seconds": 100.0, "horizon_seconds": 3e5, "log_sigma": 0.5, "p_unreachable": p,
            "median_seconds": 1e5, "reason": "σ(R)/R would need ≈ 1.0 × 10⁵ s; 100 s left"}}
        return Proposal(params={}, policy="x", reason=reason)

    assert unreachable_reason([proposal(None)]) is None
    assert unreachable_reason([proposal(0.5)]) is None
    assert unreachable_reason([proposal(0.95)]) == "target unreachable: σ(R)/R would need ≈ 1.0 × 10⁵ s; 100 s left"




def test_an_xrd_sample_of_a_phase_outside_the_library_ends_unreachable_within_three_surveys() -> None:
    from agent.bench import xrd
    from agent.bench.common import run_campaign
    from physics.xrd import scan_points

    sample = xrd.draw_family(1, 0)[0]  # one phase
    candidates = ["tio2_anatase", "tio2_rutile", "nacl_halite", "al2o3_corundum", "caco3_calcite", "sio2_quartz"]
    assert not set(candidates) & set(sample.phases)

    def document(folder: Path) -> dict[str, Any]:
        data = xrd.campaign(sample, "adaptive", folder)
        data["analysis"]["settings"]["candidates"] = candidates
        return data

    result, final = run_campaign(document, "out of library")
    start, stop, step, dwell = xrd.SURVEY
    # The bench instrument: 15 s set-up per window, no dead time per step.
    survey_seconds = 15.0 + len(scan_points(start, stop, step)) * dwell
    assert result.status == "unreachable", result.stop_reason
    assert result.instrument_seconds <= 3 * survey_seconds
    assert "cannot be reached" in result.stop_reason
    assert result.answer is not None and "not identified" in result.answer.summary
