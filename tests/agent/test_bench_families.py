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

