"""``labpilot bench map``: its campaigns are valid campaigns over samples, its machinery runs real
campaigns (Ray tasks, the shipped oxide system) and scores them sanely, and bad input is refused."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from agent.bench.map_campaigns import POLICIES, SYSTEMS, campaign


@pytest.mark.timeout(120)  # the first one imports the analyses (slow on a loaded machine)
@pytest.mark.parametrize("system", SYSTEMS)
@pytest.mark.parametrize("policy", POLICIES)
def test_every_benchmark_campaign_is_a_valid_campaign_over_samples(system: str, policy: str, tmp_path: Path) -> None:
    from agent.config import parse_campaign

    config = parse_campaign(campaign(system, 3, policy, 5, tmp_path), "bench")
    assert config.budgets.max_samples == 5 and not config.targets
    assert config.sample_step.instruments[0].settings["materials_system"] == {"kind": system, "seed": 3}
    step = config.sample_step
    # CAMEO-style: the same map policy, every sample one fixed full scan run to its end.
    assert step.policy.name == {"cameo": {"oxide": "xrd_full_scan", "formulation": "sas_fixed"}[system]}.get(
        policy, {"oxide": "xrd_adaptive", "formulation": "sas_adaptive"}[system])
    assert step.stop_on_targets == (policy != "cameo")
    assert config.policy.name == {"phase_map": "phase_map", "cameo": "phase_map", "grid": "map_grid", "random": "map_random"}[policy]


@pytest.mark.timeout(120)
def test_unknown_system_policy_or_truth_count_is_refused(tmp_path: Path) -> None:
    from agent.bench.map import run_benchmark
    from agent.cli import app

    with pytest.raises(ValueError, match="system"):
        campaign("alloy", 0, "grid", 5, tmp_path)
    with pytest.raises(ValueError, match="policy"):
        campaign("oxide", 0, "cameo_style", 5, tmp_path)
    with pytest.raises(ValueError, match="n_truths"):
        run_benchmark(0)
    runner = CliRunner()
    result = runner.invoke(app, ["bench", "map", "--policies", "phase_map,bogus", "--out", str(tmp_path)])
    assert result.exit_code == 2 and "bogus" in result.output
    result = runner.invoke(app, ["bench", "map", "--systems", "", "--out", str(tmp_path)])
    assert result.exit_code == 2 and "--systems" in result.output
    result = runner.invoke(app, ["bench", "map", "--samples", "0", "--out", str(tmp_path)])
    assert result.exit_code == 2 and "Invalid value for '--samples'" in result.output  # not "no such option"


@pytest.mark.timeout(240)
def test_bench_map_runs_one_truth_with_two_policies_and_scores_it_sanely(tmp_path: Path) -> None:
    # The Ray task's body in this process (``run_benchmark`` hands it to ``agent.bench.common.run_tasks``,
    # the same path as bench sas / xrd): a Ray start would cost more than the two campaigns here.
    from agent.bench.map import run_one, summarise, write

    runs = [run_one("oxide", 2, policy, 2) for policy in ("grid", "random")]
    summary = summarise(runs)
    for run in runs:
        rows = run["rows"]
        assert [r["samples"] for r in rows] == [1, 2]
        seconds = [r["seconds"] for r in rows]
        # Every sample costs synthesis (≥ the furnace's 3600 s base) plus characterisation, on the virtual clock.
        assert all(b - a >= 3600.0 for a, b in zip([0.0, *seconds], seconds))
        assert all(0.0 <= r["accuracy"] <= 1.0 and 0 <= r["confident_right"] <= r["confident"] for r in rows)
        assert not any(r["target_met"] or r["accuracy_target_met"] for r in rows)  # min_samples 5: two samples never do
        assert all(r["expected_accuracy"] is None for r in rows)  # not evaluated before min_samples
        assert run["samples"] == 2 and run["total_seconds"] == seconds[-1]
    row = summary["systems"]["oxide"]["policies"]["grid"]
    assert row["n_truths"] == 1 and 0.0 <= row["final_accuracy"] <= 1.0
    paths = write(summary, runs, tmp_path)
    assert all(p.stat().st_size > 0 for p in paths.values())


def _run(policy: str, truth: int, accuracy: list[float], met: list[bool], accurate: list[bool] | None = None) -> dict[str, object]:
    from agent.bench.map_score import run_figures

    rows = [{"samples": k + 1, "seconds": 1000.0 * (k + 1), "accuracy": a, "confident": 10, "confident_right": 9 + (a > 0.5),
             "target_met": m, "accuracy_target_met": e}
            for k, (a, m, e) in enumerate(zip(accuracy, met, accurate or [False] * len(accuracy)))]
    return {"system": "oxide", "truth": truth, "policy": policy, "rows": rows, **run_figures(rows)}


@pytest.mark.timeout(20)
def test_summary_pairs_times_to_accuracy_and_judges_the_map_target_by_when_it_held() -> None:
    from agent.bench.map import summarise

    runs = [
        # 0.9 at 2000 s, target at 3000 s: late (1.5×); the accuracy target on time
        _run("phase_map", 0, [0.5, 0.92, 0.95], [False, False, True], [False, True, True]),
        # target before the map was right: early; the accuracy target never held
        _run("cameo", 0, [0.5, 0.6, 0.7, 0.91], [False, True, True, True]),
        _run("phase_map", 1, [0.95], [True], [True]),  # on time (1.0×), both
        _run("cameo", 1, [0.5, 0.5], [False, False]),  # never accurate: only phase_map got there
    ]
    oxide = summarise(runs)["systems"]["oxide"]
    assert oxide["paired_ratio_to"]["cameo"] == {"median": 0.5, "min": 0.5, "max": 0.5, "n_both": 1,
                                                 "only_phase_map": 1, "only_baseline": 0}
    assert oxide["policies"]["phase_map"]["median_seconds_to_0.9"] == 1500.0
    assert oxide["policies"]["cameo"]["median_seconds_to_0.9"] is None  # one of two never: the median is ∞
    assert oxide["map_target"] | {"median_ratio": None} == {"n_runs": 4, "n_judged": 3, "within_20pct": 1, "early": 1, "late": 1,
                                                           "never_met_though_accurate": 0, "median_ratio": None}
    assert oxide["accuracy_target"] == {"n_runs": 4, "n_judged": 3, "within_20pct": 2, "early": 0, "late": 0,
                                        "never_met_though_accurate": 1, "median_ratio": 1.0}
    assert oxide["policies"]["cameo"]["calibration_095"] == pytest.approx(57 / 60)


@pytest.mark.timeout(600)
def test_the_formulation_candidates_describe_what_the_system_makes() -> None:
    # The system gives every structure a Schulz size spread; candidates without one fitted these
    # concentrated samples with χ²_red 300–2400, so every sample was "poor-fit" and carried no label.
    from agent.bench.map_campaigns import campaign
    from agent.sample_outcome import label_probabilities
    from analysis.sas import SASFitAnalysis
    from analysis.sas.settings import SASFitSettings
    from instruments.types import MeasurementRequest
    from simulators.sas import SASDriver, SASSettings

    step = campaign("formulation", 0, "phase_map", 1, Path("unused"))["sample_step"]  # experiments/sdl_formulation_map.yaml, truth 0
    driver = SASDriver("sans", SASSettings.model_validate(step["instruments"][0]["settings"]))
    analysis = SASFitAnalysis(SASFitSettings.model_validate(step["analysis"]["settings"]))
    # A cylinder sample (truth 0), measured as the adaptive planner starts: 1.5 m, 30 s.
    recipe = {"amphiphile": 0.0955, "cosurfactant": 0.0452, "water": 0.8593}
    request = MeasurementRequest(attempt_id="s-0", params={"configuration": "1.5m", "exposure_seconds": 30.0},
                                 recipe=recipe, sample_id="s")
    truth = driver.sample_truth(request)
    assert truth.label == "cylinder"
    interpretation = analysis.interpret([driver.measure(request)])
    assert "poor-fit" not in interpretation.flags, interpretation.flags
    labels = label_probabilities([interpretation])
    assert labels and max(labels, key=labels.__getitem__) == "cylinder" and labels["cylinder"] > 0.95, labels
