"""The report of measurement campaigns, on real campaigns run in the test (adaptive SANS and XRD, with
their drivers and analysis in this process): the answer box first, the planner's decisions with
reasons in words, the data with fit and residuals, the probabilities, flags in words; and the time
the report takes for the shipped adaptive SANS campaign (issue 13: ≤ 3 s)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.answer import campaign_answer, value_pm
from agent.report import write_report
from agent.store import Store
from tests.agent.campaign_files import run_in_process
from tests.agent.report.campaign_store import parse

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def sans(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Store, str]]:
    _, store, result = run_in_process("adaptive_sans.yaml", tmp_path_factory.mktemp("sans"), "sans-report")
    assert result.status == "completed", result.stop_reason
    yield store, "sans-report"
    store.close()


@pytest.fixture(scope="module")
def xrd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Store, str]]:
    _, store, result = run_in_process("adaptive_xrd.yaml", tmp_path_factory.mktemp("xrd"), "xrd-report")
    assert result.status == "completed", result.stop_reason
    yield store, "xrd-report"
    store.close()


def _sections(page: str) -> list[str]:
    """The section anchors of a page, in order."""
    import re

    return re.findall(r'<section id="([^"]+)"', page)


def test_the_sans_report_opens_with_the_answer_and_tells_the_planners_story(sans: tuple[Store, str], tmp_path: Path) -> None:
    store, campaign = sans
    started = time.perf_counter()
    path = write_report(store, campaign, tmp_path / "sans.html")
    seconds = time.perf_counter() - started
    page = path.read_text()
    parser = parse(path)
    assert not parser.errors
    text = "".join(parser.text)
    # The answer first: what the final interpretation says, in words, before any bookkeeping.
    assert _sections(page) == ["answer", "planner", "sample", "targets", "decisions"]
    last = store.interpretations(campaign)[-1]
    radius = last.estimates["radius"]
    answer = campaign_answer(store, campaign)
    assert answer.summary in text and "Answer: answered" in text
    assert ["radius", value_pm(radius.value, radius.sigma), "Å"] in parser.rows  # type: ignore[arg-type]
    assert text.index("Answer: answered") < text.index("campaign id")
    # No BO story: no objective, no GP, no incumbent star, no design-space projection.
    assert "objective" not in text and "Model mean" not in text and "ncumbent" not in text
    # The planner's decisions: one row per measurement, the configuration and exposure, the reason in words.
    planner = [row for row in parser.rows if len(row) == 5 and row[0].isdigit()]
    assert len(planner) == len(store.measurements(campaign))
    for row, attempt in zip(planner, [a for a in store.attempts(campaign)]):
        assert row[1] == f"configuration={attempt.params['configuration']}, exposure_seconds={attempt.params['exposure_seconds']:g} s"
        assert row[4].startswith(("No fit yet", "Planned from the current fits")) and "{" not in row[4]
    assert "The goal that needs the most counting" in text and "Planner sas_adaptive" in text
    # Figures: decisions, data with residuals, probabilities, targets.
    assert parser.alts == ["the planner's choices over instrument time",
                    "SAS exposures with the most probable model's fit and the normalised residuals",
                    "probability of each candidate model after each analysis", "target values against instrument time"]
    print(f"report of the adaptive SANS campaign written in {seconds:.2f} s")


def test_the_xrd_report_answers_with_weight_fractions_and_explains_flags_in_words(xrd: tuple[Store, str], tmp_path: Path) -> None:
    store, campaign = xrd
    parser = parse(write_report(store, campaign, tmp_path / "xrd.html"))
    text = "".join(parser.text)
    last = store.interpretations(campaign)[-1]
    best = str(last.details["best_set"])
    assert f"most probable phase set: {best.replace('+', ' + ')}" in text
    for phase in best.split("+"):
        w = last.estimates[f"w:{phase}"]
        assert [f"w:{phase}", value_pm(w.value, w.sigma), "weight fraction"] in parser.rows  # type: ignore[arg-type]
    assert "Survey: a first scan over the standard range" in text
    # Rival fits that did not converge are notes, not warnings beside the answer; no raw flag in a cell.
    rivals = [f for f in last.flags if f.startswith("fit-not-converged:")]
    cells = [cell for row in parser.rows for cell in row]
    assert not any(cell.startswith("fit-not-converged") for cell in cells)
    if rivals:
        assert f"{len(rivals)} note(s)" in text and "about a rival, not the answer" in text
        assert f"({len(rivals)} note(s) about rival candidates)" in cells
    assert parser.alts == ["the planner's choices over instrument time",
                           "XRD windows with the most probable phase set's pattern and the normalised residuals",
                           "probability of each phase set after each analysis", "target values against instrument time"]
