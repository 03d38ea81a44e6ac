"""A real-physics campaign through the engine: the SAS simulator (sasmodels), joint SAS fits, one
sample measured repeatedly, stopping on the radius' relative uncertainty."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.agent.campaign_files import run_shipped

pytestmark = [pytest.mark.timeout(300), pytest.mark.usefixtures("ray_local")]


def test_sans_baseline_campaign_measures_one_sample_until_the_radius_is_known(tmp_path: Path) -> None:
    config, store, result = run_shipped("sans_random_baseline.yaml", tmp_path, "sans-fixed")
    assert result.status == "completed", result.stop_reason
    interpretations = store.interpretations("sans-fixed")
    assert {i.sample_id for i in interpretations} == {"ps-sphere-1"}
    last = interpretations[-1]
    # Every measurement of the sample was fitted together: the last fit saw all of them.
    assert last.details["n_measurements"] == result.n_measurements
    radius = last.estimates["radius"]
    assert radius.value is not None and radius.sigma is not None
    assert radius.sigma / radius.value <= 0.02
    assert abs(radius.value - 120.0) <= 3 * radius.sigma, (radius.value, radius.sigma)  # the truth is 120 Å
    assert last.estimates["p(sphere)"].value > 0.95  # type: ignore[operator]
    assert last.estimates["p(best)"].value == last.estimates["p(sphere)"].value
    assert result.targets["model_known"].met and result.targets["radius_2pct"].met


def test_adaptive_sans_campaign_plans_configuration_and_exposure_until_the_answer_is_known(tmp_path: Path) -> None:
    config, store, result = run_shipped("adaptive_sans.yaml", tmp_path, "sans-adaptive")
    assert result.status == "completed", result.stop_reason
    last = store.interpretations("sans-adaptive")[-1]
    radius = last.estimates["radius"]
    assert last.details["best_model"] == "sphere" and last.estimates["p(sphere)"].value >= 0.95  # type: ignore[operator]
    assert abs(radius.value - 120.0) <= 3 * radius.sigma, (radius.value, radius.sigma)  # type: ignore[operator]
    # Every decision was the planner's own (no fallback), and says what it planned and why.
    decisions = store.decisions("sans-adaptive")
    assert decisions and not any(d.fallback for d in decisions)
    assert all("plan_seconds" in reason and "binding" in reason for d in decisions for reason in d.reasons)
    # Far below the budget: the planner stopped counting when the answer was known.
    assert result.instrument_seconds < 0.5 * config.budgets.max_instrument_seconds  # type: ignore[operator]
    from agent.report import write_report

    html = write_report(store, "sans-adaptive", tmp_path / "report.html").read_text()
    assert "Sample: data and answer" in html and "most probable model" in html and "could not be drawn" not in html


def test_sas_benchmark_runs_every_policy_at_a_tiny_size() -> None:
    from agent.bench.sas import POLICIES, run_benchmark

    summary, runs = run_benchmark(1, seed=1, budget_seconds=4000.0)
    assert summary["n_samples"] == 1 and set(summary["policies"]) == set(POLICIES)
    assert {r["policy"] for r in runs} == set(POLICIES) and all(r["n_measurements"] >= 1 for r in runs)
    for row in summary["policies"].values():
        assert 0.0 <= row["success_rate"] <= 1.0 and row["median_instrument_seconds"] > 0
        assert row["coverage_95"] is None or 0.0 <= row["coverage_95"] <= 1.0
    # The fixed protocol is one pass of its steps at most: here the budget left after its first step
    # (15 m, 3 600 s + overheads) cannot hold the second, so the guard refuses it (agent/budget.py).
    assert next(r for r in runs if r["policy"] == "fixed")["n_measurements"] == 1
    assert all(r["instrument_seconds"] <= 4000.0 + 1e-6 for r in runs)  # requests are clipped to the budget left
    for row in summary["policies"].values():  # the futility columns are there (agent.bench.common.futility_columns)
        assert "unreachable_recognised" in row and "median_instrument_seconds_solvable" in row


def test_a_design_space_of_a_single_configuration_runs(tmp_path: Path) -> None:
    """One SANS configuration (a categorical with one choice): the planner only chooses exposures."""
    from tests.agent.campaign_files import shipped

    data = shipped("adaptive_sans.yaml", tmp_path)
    data["design_space"]["parameters"][0]["choices"] = ["5m"]
    settings = data["instruments"][0]["settings"]
    settings["configurations"] = [c for c in settings["configurations"] if c["name"] == "5m"]
    config, store, result = run_shipped("adaptive_sans.yaml", tmp_path, "sans-one", design_space=data["design_space"],
                                        instruments=data["instruments"], budgets={"max_measurements": 2})
    assert result.n_measurements == 2, result.stop_reason
    assert {a.params["configuration"] for a in store.attempts("sans-one")} == {"5m"}
    assert all(not d.fallback for d in store.decisions("sans-one"))  # the planner's own decisions
