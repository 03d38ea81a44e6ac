"""The HTML report, built from a store populated through the Store API as the campaign loop does."""

from __future__ import annotations

import math
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from agent.config import CampaignConfig
from agent.report import write_report
from agent.store import ProposedAttempt, Store, TargetEvaluation, UnknownCampaign
from analysis.protocol import Estimate, Interpretation
from instruments.types import Measurement, Timing

CAMPAIGN = "report-test-0001"
REFUSAL = "instrument limits: time=90 min > 60 min & <max dwell>"
VERSIONS = {"python": "3.11", "labpilot": "0.1.0"}


def config_dict(**changes: object) -> dict:
    config = {
        "name": "report-test",
        "description": "Yield over temperature and time, for the report test.",
        "seed": 3,
        "design_space": {
            "parameters": [
                {"name": "temperature", "type": "continuous", "low": 300.0, "high": 500.0, "units": "K"},
                {"name": "time", "type": "continuous", "low": 1.0, "high": 60.0, "units": "min"},
            ]
        },
        "instruments": [{"name": "reactor", "kind": "synthetic"}],
        "analysis": {"kind": "scalar", "settings": {"key": "yield", "units": "fraction"}},
        "objective": {"estimate": "yield", "direction": "maximize"},
        "policy": {"name": "qlognei"},
        "targets": [
            {"name": "near_optimum", "kind": "incumbent_near_optimum", "epsilon": 0.05, "probability": 0.9},
            {"name": "precise", "kind": "relative_uncertainty", "estimate": "yield", "goal": 0.1},
        ],
        "budgets": {"max_measurements": 20},
    }
    config.update(changes)
    CampaignConfig.model_validate(config)  # the fixture itself must be a valid campaign
    return config


def true_yield(p: dict) -> float:
    return float(np.exp(-(((p["temperature"] - 440.0) / 60.0) ** 2) - ((p["time"] - 45.0) / 20.0) ** 2))


class Recorder:
    """Drives attempts through the lifecycle the way ``CampaignRunner`` does."""

    def __init__(self, store: Store, campaign_id: str) -> None:
        self.store, self.campaign_id = store, campaign_id
        self.instrument_seconds = 0.0
        self.n_measurements = 0

    def decide(self, seq: int, dseq: int, points: list[dict], reasons: list[dict], *, policy: str = "qlognei",
               fallback: bool = False, error: str | None = None) -> list[str]:
        ids = [f"{self.campaign_id}-{seq + i:05d}" for i in range(len(points))]
        self.store.record_decision(
            self.campaign_id, dseq, policy=policy, fallback=fallback, error=error, seed=dseq, n_history=seq,
            n_pending=0, reasons=reasons, decision_seconds=0.01, versions=VERSIONS,
            attempts=[ProposedAttempt(attempt_id=a, seq=seq + i, params=p) for i, (a, p) in enumerate(zip(ids, points))],
        )
        return ids

    def measure(self, attempt_id: str, params: dict, value: float, *, analyse: bool = True) -> None:
        self.store.transition(attempt_id, "validated")
        self.store.transition(attempt_id, "dispatched", instrument="reactor")
        timing = Timing(exposure_seconds=1800.0, motion_seconds=60.0, overhead_seconds=30.0)
        self.store.record_measurement(
            self.campaign_id,
            Measurement(attempt_id=attempt_id, instrument="reactor", params=params,
                        data={"yield": np.array([value])}, sigma={"yield": np.array([0.02])}, timing=timing),
        )
        self.n_measurements += 1
        self.instrument_seconds += timing.instrument_seconds
        if not analyse:
            return
        if math.isfinite(value):
            interp = Interpretation(attempt_id=attempt_id, sample_id=attempt_id, analysis="scalar",
                                    estimates={"yield": Estimate(value=value, sigma=0.02, units="fraction")}, valid=True)
        else:
            interp = Interpretation(attempt_id=attempt_id, sample_id=attempt_id, analysis="scalar",
                                    estimates={"yield": Estimate(value=None, units="fraction")},
                                    flags=["non-finite-data"], valid=False)
        self.store.record_interpretation(self.campaign_id, interp)

    def evaluate(self, near: float | None, precise: float | None) -> None:
        results = {
            "near_optimum": {"value": near, "goal": 0.9, "met": near is not None and near >= 0.9, "detail": ""},
            "precise": {"value": precise, "goal": 0.1, "met": precise is not None and precise <= 0.1, "detail": ""},
        }
        self.store.record_target_evaluation(
            self.campaign_id,
            TargetEvaluation(n_measurements=self.n_measurements, instrument_seconds=self.instrument_seconds,
                             wall_seconds=float(self.n_measurements), results=results,
                             all_met=all(r["met"] for r in results.values())),
        )


@pytest.fixture
def populated(tmp_path: Path) -> Iterator[tuple[Store, list[str]]]:
    """A finished campaign: 6 space-filling points (one NaN), 2 BO points, one refused, one fallback."""
    store = Store(f"sqlite:///{tmp_path}/s.db")
    config = config_dict()
    store.create_campaign(CAMPAIGN, config["name"], config, config["seed"], str(tmp_path / "data"), VERSIONS)
    rec = Recorder(store, CAMPAIGN)
    initial = [
        {"temperature": 320.0, "time": 10.0}, {"temperature": 480.0, "time": 50.0}, {"temperature": 400.0, "time": 30.0},
        {"temperature": 450.0, "time": 20.0}, {"temperature": 350.0, "time": 55.0}, {"temperature": 430.0, "time": 40.0},
    ]
    ids = rec.decide(0, 0, initial, [{"phase": "space-filling", "index": i, "seed": 3} for i in range(6)], policy="sobol")
    for i, (attempt_id, p) in enumerate(zip(ids, initial)):
        rec.measure(attempt_id, p, math.nan if i == 2 else true_yield(p))
        rec.evaluate(None, 0.05)
    bo = [{"temperature": 440.0, "time": 45.0}, {"temperature": 445.0, "time": 90.0}]
    hyper = {"lengthscales": [0.21, 0.34], "outputscale": 0.12, "noise": None, "noise_model": "fixed"}
    ids += rec.decide(6, 1, bo, [
        {"acquisition": "qLogNEI", "acquisition_value": -1.25, "phase": "bayesian", "hyperparameters": hyper},
        {"acquisition": "qLogNEI", "acquisition_value": -2.5, "phase": "bayesian", "hyperparameters": hyper},
    ])
    rec.measure(ids[6], bo[0], true_yield(bo[0]))
    rec.evaluate(0.95, 0.021)
    store.transition(ids[7], "validated")
    store.transition(ids[7], "refused", reason=REFUSAL)
    fallback = [{"temperature": 470.0, "time": 5.0}]
    ids += rec.decide(8, 2, fallback, [{"fallback": True, "error": "ModelFittingError: boom", "phase": "space-filling"}],
                      policy="fallback-sobol", fallback=True, error="ModelFittingError: boom")
    rec.measure(ids[8], fallback[0], true_yield(fallback[0]))
    rec.evaluate(0.97, 0.02)
    store.finish_campaign(CAMPAIGN, "completed", "targets met: near_optimum, precise", 12.5)
    yield store, ids
    store.close()


class PageParser(HTMLParser):
    """Checks nesting (every non-void element closed, in order) and collects table rows and text."""

    VOID = {"meta", "img", "br", "hr", "link", "input", "col", "source", "wbr"}

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.rows: list[list[str]] = []
        self.text: list[str] = []
        self.images: list[str] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "img":
            self.images.append(dict(attrs).get("src") or "")
        if tag in self.VOID:
            return
        self.stack.append(tag)
        if tag == "tr":
            self.rows.append([])
        if tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in self.VOID:
            return
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1] if self.stack else 'nothing'}")
            return
        self.stack.pop()
        if tag in ("td", "th") and self._cell is not None:
            self.rows[-1].append("".join(self._cell))
            self._cell = None

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self._cell is not None:
            self._cell.append(data)


def parse(path: Path) -> PageParser:
    parser = PageParser()
    parser.feed(path.read_text(encoding="utf-8"))
    parser.close()
    assert parser.errors == []
    assert parser.stack == []
    return parser


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
