"""The HTML report, built from a store populated through the Store API as the campaign loop does."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.report import write_report
from agent.store import Store, UnknownCampaign
from tests.agent.report.campaign_store import (
    CAMPAIGN,
    REFUSAL,
    VERSIONS,
    Recorder,
    config_dict,
    parse,
    true_yield,
)


@pytest.mark.timeout(120)
def test_report_of_a_populated_campaign(populated: tuple[Store, list[str]], tmp_path: Path) -> None:
    store, ids = populated
    path = write_report(store, CAMPAIGN, tmp_path / "out" / "report.html")

    assert path == tmp_path / "out" / "report.html" and path.is_file()
    page = path.read_text(encoding="utf-8")
    assert CAMPAIGN in page
    assert page.count("data:image/png;base64") >= 3
    assert "http://" not in page and "https://" not in page  # self-contained
    parser = parse(path)
    assert len(parser.images) >= 3 and all(src.startswith("data:image/png;base64,") for src in parser.images)
    text = "".join(parser.text)
    # Header.
    assert "targets met: near_optimum, precise" in text
    assert "Yield over temperature and time" in text
    assert "analysed: 8" in text and "refused: 1" in text
    # The model section has its figure, not a "skipped" note.
    assert "skipped" not in text
    # Decision log: one row per attempt, in seq order, with what the policy and the guard said.
    log = {row[2]: row for row in parser.rows if len(row) > 2 and row[2].startswith(CAMPAIGN)}
    assert list(log) == ids
    assert log[ids[7]][3] == "refused" and log[ids[7]][9] == REFUSAL  # escaped on the page, intact when parsed
    assert "&lt;max dwell&gt;" in page and "<max dwell>" not in page
    assert "acquisition value: -1.25" in log[ids[6]][8] and "lengthscales: [0.21, 0.34]" in log[ids[6]][8]
    assert "phase: space-filling" in log[ids[0]][8]
    assert log[ids[8]][6] == "fallback-sobol" and log[ids[8]][7] == "yes" and "boom" in log[ids[8]][8]
    assert "temperature=440 K" in log[ids[6]][5] and "time=45 min" in log[ids[6]][5]
    assert log[ids[2]][12] == "non-finite-data" and log[ids[2]][11] == "—"
    assert log[ids[0]][11].endswith("± 0.02 fraction")


@pytest.mark.timeout(120)
def test_report_of_an_empty_campaign_goes_to_reports_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = Store(f"sqlite:///{tmp_path}/s.db")
    config = config_dict()
    store.create_campaign("empty-1", config["name"], config, 0, str(tmp_path), VERSIONS)
    monkeypatch.chdir(tmp_path)

    path = write_report(store, "empty-1")

    assert path == Path("reports") / "empty-1.html" and (tmp_path / "reports" / "empty-1.html").is_file()
    text = "".join(parse(path).text)
    assert "no attempts recorded yet" in text
    assert "skipped: 0 valid observation(s)" in text
    assert "no target evaluations recorded yet" in text
    store.close()


@pytest.mark.timeout(120)
def test_report_of_a_ternary_composition_campaign(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path}/s.db")
    space = {
        "parameters": [{"name": n, "type": "continuous", "low": 0.0, "high": 1.0, "units": "mol frac"} for n in "abc"],
        "compositions": [{"parameters": ["a", "b", "c"]}],
    }
    config = config_dict(design_space=space)
    store.create_campaign("ternary-1", "ternary", config, 0, str(tmp_path), VERSIONS)
    rec = Recorder(store, "ternary-1")
    points = [{"a": 0.6, "b": 0.2, "c": 0.2}, {"a": 0.2, "b": 0.6, "c": 0.2}, {"a": 0.2, "b": 0.2, "c": 0.6},
              {"a": 0.4, "b": 0.4, "c": 0.2}, {"a": 0.34, "b": 0.33, "c": 0.33}]
    ids = rec.decide(0, 0, points, [{} for _ in points], policy="sobol")
    for attempt_id, p in zip(ids, points):
        rec.measure(attempt_id, p, 0.5 + p["a"] - p["b"] ** 2)

    path = write_report(store, "ternary-1", tmp_path / "t.html")

    parser = parse(path)
    text = "".join(parser.text)
    assert len(parser.images) == 2  # design space and model; no target evaluations
    assert "skipped" not in text and "Sharing the rest of their composition in the incumbent's proportions: c." in text
    assert "a=0.6 mol frac, b=0.2 mol frac, c=0.2 mol frac" in text
    store.close()


@pytest.mark.timeout(120)
def test_unknown_campaign_raises(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path}/s.db")
    with pytest.raises(UnknownCampaign):
        write_report(store, "no-such-campaign", tmp_path / "r.html")
    assert not (tmp_path / "r.html").exists()
    store.close()


@pytest.mark.timeout(120)
def test_a_failed_fit_skips_the_model_section_and_says_why(
    populated: tuple[Store, list[str]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from policies.models import ModelCache

    def fail(*args: object, **kwargs: object) -> None:
        raise RuntimeError("cholesky failed\nsecond line")

    monkeypatch.setattr(ModelCache, "fit", fail)
    store, _ = populated

    parser = parse(write_report(store, CAMPAIGN, tmp_path / "r.html"))

    assert "skipped: the model could not be fitted or evaluated (RuntimeError: cholesky failed)" in "".join(parser.text)
    assert len(parser.images) == 2  # design space and targets are still drawn


@pytest.mark.timeout(120)
def test_an_objective_campaign_report_opens_with_its_answer_and_keeps_its_bo_story(
    populated: tuple[Store, list[str]], tmp_path: Path
) -> None:
    """Without a target naming the incumbent, the answer is the best observed value, and says so."""
    store, ids = populated
    path = write_report(store, CAMPAIGN, tmp_path / "r.html")
    page = path.read_text(encoding="utf-8")
    text = "".join(parse(path).text)
    assert page.index('<section id="answer"') < page.index('<table class="summary">') < page.index('id="design-space"')
    assert 'id="model"' in page and 'id="planner"' not in page  # the BO story stays
    # Attempt 2 measured NaN and attempt 7 was refused: the best valid yield is among the others.
    best = max((i for i in range(9) if i not in (2, 7)), key=lambda i: true_yield(_POINTS[i]))
    assert f"incumbent {ids[best]}" in text and "the best observed maximum" in text
    assert "no target states the model's confidence in it" in text


_POINTS = [
    {"temperature": 320.0, "time": 10.0}, {"temperature": 480.0, "time": 50.0}, {"temperature": 400.0, "time": 30.0},
    {"temperature": 450.0, "time": 20.0}, {"temperature": 350.0, "time": 55.0}, {"temperature": 430.0, "time": 40.0},
    {"temperature": 440.0, "time": 45.0}, {"temperature": 445.0, "time": 90.0}, {"temperature": 470.0, "time": 5.0},
]
