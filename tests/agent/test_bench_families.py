"""The benchmark families' samples outside the analysis' candidates, and how the summaries judge
them (pure: no campaigns, no Ray — the campaigns themselves run in tests/agent/campaign)."""

from __future__ import annotations

from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(60)


def test_sas_benchmark_family_has_samples_outside_the_candidates() -> None:
    """Every sixth sample is aggregated spheres (no candidate); the others are as they were."""
    from agent.bench import sas

    family = sas.draw_family(12, seed=0)
    outside = [s for s in family if s.model not in {c["name"] for c in s.analysis["candidates"]}]
    assert [s.index for s in outside] == [5, 11] and all(s.model == sas.AGGREGATE_MODEL for s in outside)
    assert family[4].model == "core_shell_sphere" and family[4].truth["radius"] == pytest.approx(90.42625368010894)
    sample = outside[0].instrument["sample"]
    assert sample["parameters"]["A_radius"] == pytest.approx(outside[0].truth["radius"]) and sample["parameters"]["B_scale"] > 0


def test_the_sas_oracle_declares_a_sample_outside_the_candidates_unreachable_without_measuring() -> None:
    """The oracle plans with the true model; an aggregate is none of the candidates, so it cannot be
    planned for (its policy refuses such a truth) — the row says so instead of failing the benchmark."""
    from agent.bench import sas

    aggregate = sas.draw_family(6, seed=0)[5]
    row = sas.run_one(aggregate, "oracle")
    assert row["status"] == "unreachable" and row["instrument_seconds"] == 0.0 and not row["success"]
    summary = sas.summarise([row, {**row, "policy": "adaptive", "instrument_seconds": 500.0}], 1)
    assert summary["policies"]["oracle"]["unreachable_recognised"] == 1.0


def test_xrd_benchmark_family_has_out_of_library_samples_and_judges_them() -> None:
    """Every fourth sample's analysis lacks its major phase; the summary says how each policy ended
    those and compares the adaptive planner with the heuristic where either went past the survey."""
    from agent.bench import xrd

    family = xrd.draw_family(8, seed=0)
    assert [s.index for s in family if s.out_of_library] == [3, 7]
    outside = family[3]
    settings = xrd.campaign(outside, "adaptive", Path("/tmp"))["analysis"]["settings"]
    major = max(outside.phases, key=outside.phases.get)
    assert major not in settings["candidates"] and len(settings["candidates"]) > 40
    assert "candidates" not in xrd.campaign(family[0], "adaptive", Path("/tmp"))["analysis"]["settings"]
    survey = xrd.survey_seconds()
    assert survey == pytest.approx(140.1)

    def row(sample: int, policy: str, seconds: float, status: str = "completed", correct: bool = True) -> dict:
        return {"sample": sample, "policy": policy, "true_set": "x", "reported_set": "x" if correct else "y",
                "p_best": 0.99, "correct": correct, "status": status, "targets_met": correct, "solved": correct,
                "instrument_seconds": seconds, "n_measurements": 1, "out_of_library": sample == 3,
                "minor_phases": [], "minor_found": [], "flags": []}

    runs = [row(0, "adaptive", survey), row(0, "heuristic", survey), row(0, "full_scan", 4016.0),
            row(1, "adaptive", 300.0), row(1, "heuristic", 900.0), row(1, "full_scan", 4016.0),
            row(3, "adaptive", 2 * survey, "unreachable", False), row(3, "heuristic", 8000.0, "budget_exhausted", False),
            row(3, "full_scan", 4016.0, "completed", False)]
    summary = xrd.summarise(runs, 3)
    assert summary["policies"]["adaptive"]["out_of_library_unreachable"] == 1.0
    assert summary["policies"]["heuristic"]["out_of_library_unreachable"] == 0.0
    assert summary["goals"]["out_of_library_unreachable"]["met"] is True  # 280 s ≤ 3 × 140 s
    past = summary["goals"]["time_vs_heuristic_past_survey"]
    assert past["n_samples"] == 2 and past["adaptive_s"] == pytest.approx(290.1) and past["met"] is True
    late = [r | {"instrument_seconds": 4 * survey} if r["sample"] == 3 and r["policy"] == "adaptive" else r for r in runs]
    assert xrd.summarise(late, 3)["goals"]["out_of_library_unreachable"]["met"] is False



def test_the_mismatch_family_draws_the_samples_it_drew_before_it_moved_to_the_bench() -> None:
    """``draw_sample`` moved from benchmarks.xrd_mismatch to agent.bench: the same seed still draws
    the same samples (digest and values recorded from the function before the move, seed 11), and the
    bench's sample i is the script's case i."""
    import hashlib
    import json

    import numpy as np

    from agent.bench import xrd
    from agent.bench.xrd_mismatch_family import draw_sample

    rng = np.random.default_rng(11)
    cases = [draw_sample(rng, i) for i in range(8)]
    assert hashlib.sha256(json.dumps(cases, sort_keys=True).encode()).hexdigest() == (
        "9f6f1d78f5bcc4437e57e1d1fcc924d0799ee2f9b4eae0673481f2052a378a00")
    assert [c["impurity"] for c in cases] == [None, None, "srtio3", "w", None, None, "y2o3_bixbyite", "w"]
    assert cases[1]["truth"] == "sio2_quartz+tio2_rutile" and cases[0]["settings"]["seed"] == 138051204
    assert cases[3]["settings"]["caglioti_u"] == pytest.approx(0.007151, abs=1e-6)

    family = xrd.draw_family(8, seed=11, family="mismatch")
    for sample, case in zip(family, cases):
        assert sample.true_set == case["truth"] and sample.impurity == case["impurity"]
        assert sample.out_of_library == (case["impurity"] is not None)
        assert {k: v for k, v in sample.instrument.items() if k not in ("setup_seconds", "motion_deg_per_second")} == case["settings"]
        if sample.impurity:  # the impurity is in the simulated sample, not in the in-library truth
            assert sample.impurity not in sample.phases and sum(sample.phases.values()) < 1.0
    assert xrd.draw_family(2, seed=11, family="mismatch") == family[:2]  # the script's cases start alike
    with pytest.raises(ValueError, match="mismatch"):
        xrd.draw_family(1, family="mismatched")


def test_a_mismatch_campaign_is_set_as_a_user_would_and_judged_honestly(tmp_path: Path) -> None:
    """Its analysis: the 12-phase library, U, V, W refined from the family's start, diffuse humps. An
    impurity sample is right only when flagged; a clean one only with its in-library set."""
    from agent.bench import xrd
    from agent.bench.xrd_mismatch_family import LIBRARY, START
    from agent.config import parse_campaign

    clean, _, dirty = xrd.draw_family(3, seed=11, family="mismatch")
    document = xrd.campaign(dirty, "adaptive", tmp_path)
    settings = document["analysis"]["settings"]
    assert settings["candidates"] == list(LIBRARY) and settings["refine_instrument"] is True
    assert settings["diffuse_fwhm_deg"] == 8.0 and all(settings[k] == v for k, v in START.items())
    assert dirty.impurity == "srtio3" and "srtio3" in {p["phase"] for p in document["instruments"][0]["settings"]["sample"]["phases"]}
    parse_campaign(document)  # the simulator and the analysis accept both settings

    assert clean.judge(clean.true_set, "completed", None, "answered")["correct"] is True
    assert clean.judge(clean.true_set, "completed", None, "not identified") == {
        "correct": True, "in_library_set_right": True, "flagged": True, "impurity": None, "p_missing": None}
    assert dirty.judge(dirty.true_set, "completed", None, "answered")["correct"] is False  # confident, impurity unseen
    assert dirty.judge("si", "unreachable", None, "target unreachable")["correct"] is True

    def row(sample: int, policy: str, right: bool, flagged: bool, impurity: str | None) -> dict:
        return {"sample": sample, "policy": policy, "true_set": "x", "reported_set": "x" if right else "y", "p_best": 0.99,
                "correct": flagged if impurity else right, "in_library_set_right": right, "flagged": flagged,
                "impurity": impurity, "status": "completed", "targets_met": True, "solved": right,
                "instrument_seconds": 1000.0, "n_measurements": 1, "out_of_library": impurity is not None,
                "minor_phases": [], "minor_found": [], "flags": []}

    runs = [row(0, "adaptive", True, False, None), row(1, "adaptive", False, True, None),
            row(2, "adaptive", True, False, "w"), row(3, "adaptive", False, True, "w")]
    columns = xrd.summarise(runs, 4, family="mismatch")["policies"]["adaptive"]
    assert columns["accuracy"] == 0.5 and columns["in_library_set_accuracy"] == 0.5
    assert (columns["clean_accuracy"], columns["impurity_flagged"], columns["false_alarm"]) == (0.5, 0.5, 0.5)
    assert "in_library_set_accuracy" not in xrd.summarise([{k: v for k, v in r.items() if k not in (
        "in_library_set_right", "flagged", "impurity")} for r in runs], 4)["policies"]["adaptive"]


def test_bench_xrd_refuses_an_unknown_family_or_policy_before_starting_ray(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from agent.cli import app

    runner = CliRunner()
    result = runner.invoke(app, ["bench", "xrd", "--family", "mismatched", "--out", str(tmp_path)])
    assert result.exit_code == 2 and "mismatch" in result.output and "--family" in result.output
    result = runner.invoke(app, ["bench", "xrd", "--policies", "adaptive,bogus", "--out", str(tmp_path)])
    assert result.exit_code == 2 and "bogus" in result.output
    assert not (tmp_path / "xrd_runs.jsonl").exists()
