"""Adaptive powder XRD through the engine: the shipped campaign, its planner's decisions, a campaign
file naming an unknown phase, and the benchmark at a tiny size."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.config import CampaignFileError, parse_campaign
from tests.agent.campaign_files import run_shipped, shipped

pytestmark = [pytest.mark.timeout(300), pytest.mark.usefixtures("ray_local")]


def test_adaptive_xrd_campaign_finds_the_polymorphs_in_a_fraction_of_a_full_scan(tmp_path: Path) -> None:
    config, store, result = run_shipped("adaptive_xrd.yaml", tmp_path, "xrd-adaptive")
    assert result.status == "completed", result.stop_reason
    last = store.interpretations("xrd-adaptive")[-1]
    assert last.details["best_set"] == "tio2_anatase+tio2_brookite+tio2_rutile"
    assert last.estimates["p(best)"].value >= 0.95  # type: ignore[operator]
    for phase, truth in {"tio2_anatase": 0.78, "tio2_rutile": 0.16, "tio2_brookite": 0.06}.items():
        w = last.estimates[f"w:{phase}"]
        assert w.sigma is not None and abs(w.value - truth) <= max(4 * w.sigma, 0.03), (phase, w)  # type: ignore[operator]
    decisions = store.decisions("xrd-adaptive")
    assert decisions and not any(d.fallback for d in decisions)
    assert decisions[0].reasons[0]["rule"] == "survey"
    # The full slow scan (10–90°, 0.02°, 1 s) costs 4 016 s; the planner needs a small part of it.
    assert result.instrument_seconds < 4016 / 3
    from agent.report import write_report

    html = write_report(store, "xrd-adaptive", tmp_path / "report.html").read_text()
    assert "Sample: data and answer" in html and "most probable phase set" in html


def test_a_campaign_naming_an_unknown_phase_is_refused_with_the_library_listed(tmp_path: Path) -> None:
    data = shipped("adaptive_xrd.yaml", tmp_path)
    data["instruments"][0]["settings"]["sample"]["phases"][2]["phase"] = "tio2_unobtainium"
    with pytest.raises(CampaignFileError, match="(?s)instruments\\[0\\].settings.*tio2_unobtainium.*tio2_brookite"):
        parse_campaign(data)
    assert not (tmp_path / "labpilot.db").exists() and not (tmp_path / "data").exists()


def test_xrd_benchmark_runs_every_policy_at_a_tiny_size() -> None:
    from agent.bench.xrd import POLICIES, run_benchmark

    # One sample: every campaign identifies over all 48 library phases (the full scan's 4 000 steps ~1 min alone),
    # and two samples took 270–320 s against the 300 s limit on a loaded machine.
    summary, runs = run_benchmark(1, seed=3)
    assert summary["n_samples"] == 1 and set(summary["policies"]) == set(POLICIES)
    assert {r["policy"] for r in runs} == set(POLICIES) and len(runs) == len(POLICIES)
    full = [r for r in runs if r["policy"] == "full_scan"]
    assert all(r["n_measurements"] == 1 and r["instrument_seconds"] == pytest.approx(4016.0) for r in full)
    for name, row in summary["policies"].items():
        assert 0.0 <= row["accuracy"] <= 1.0 and row["median_scan_seconds"] > 0
        assert row["ratio_to_full_scan"] > 0
    assert set(summary["goals"]) == {"accuracy_vs_full_scan", "time_vs_full_scan", "time_vs_heuristic",
                                     "time_vs_heuristic_past_survey", "calibration_at_0.95"}


@pytest.mark.timeout(150)
def test_xrd_benchmark_runs_the_mismatch_family_through_its_campaigns() -> None:
    """One clean mismatch sample, the adaptive policy, a budget of one survey (~40 s unloaded: one
    identification refining the instrument profile): a real campaign through Ray, judged and summarised."""
    from agent.bench.xrd import run_benchmark, survey_seconds

    budget = survey_seconds() + 10.0  # about one survey (the planner fits its survey to the budget): one identification
    summary, runs = run_benchmark(1, seed=11, policies=("adaptive",), budget_seconds=budget, family="mismatch")
    assert summary["family"] == "mismatch" and len(runs) == 1
    run = runs[0]
    assert run["true_set"] == "al2o3_corundum" and run["impurity"] is None and run["n_measurements"] == 1
    assert 0 < run["instrument_seconds"] <= budget and run["reported_set"]
    assert run["correct"] == (run["reported_set"] == "al2o3_corundum")
    row = summary["policies"]["adaptive"]
    assert row["in_library_set_accuracy"] == row["clean_accuracy"] == float(run["correct"])
    assert row["n_impurity"] == 0 and row["impurity_flagged"] is None and "out_of_library_unreachable" not in summary["goals"]


def test_a_window_beyond_the_goniometer_is_refused_before_dispatch_and_recorded(tmp_path: Path) -> None:
    from agent.campaign import run_campaign
    from agent.store import Store

    data = shipped("adaptive_xrd.yaml", tmp_path)
    data["instruments"][0]["settings"]["goniometer_max_deg"] = 100.0  # the design space still reaches 140°
    data["policy"] = {"name": "xrd_full_scan", "options": {"scan": [10.0, 130.0, 0.05, 0.1]}}
    data["budgets"] = {"max_measurements": 2}
    data["stop_on_targets"] = False
    config = parse_campaign(data)
    store = Store(config.storage)
    result = run_campaign(config, store, campaign_id="xrd-refused")
    refused = store.attempts("xrd-refused", states=["refused"])
    assert refused and refused[0].params["two_theta_stop"] == 130.0
    assert refused[0].reason.startswith("instrument limits:") and "two_theta_stop=130.0 is outside the goniometer range" in refused[0].reason  # type: ignore[union-attr]
    assert all(float(m.params["two_theta_stop"]) <= 100.0 for m in store.measurements("xrd-refused"))
    assert result.status in {"failed", "budget_exhausted", "completed"}


def test_a_materials_system_diffractometer_refuses_a_request_without_a_recipe_and_it_is_recorded(tmp_path: Path) -> None:
    from agent.campaign import run_campaign
    from agent.store import Store

    data = shipped("adaptive_xrd.yaml", tmp_path)
    settings = data["instruments"][0]["settings"]
    settings.pop("sample")
    settings["materials_system"] = {"kind": "oxide", "seed": 1}  # a single-sample campaign sends no recipe
    data["policy"] = {"name": "xrd_full_scan", "options": {"scan": [10.0, 60.0, 0.05, 0.1]}}
    data["budgets"] = {"max_measurements": 2}
    config = parse_campaign(data)
    store = Store(config.storage)
    run_campaign(config, store, campaign_id="xrd-no-recipe")
    refused = store.attempts("xrd-no-recipe", states=["refused"])
    reasons = [a.reason or "" for a in refused]
    assert any(r.startswith("instrument limits:") and "recipe" in r for r in reasons), reasons
    assert store.measurements("xrd-no-recipe") == []
