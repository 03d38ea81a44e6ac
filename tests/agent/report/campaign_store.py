"""A report-test campaign in a store populated through the Store API as the campaign loop does,
and a parser that checks the written page's nesting and collects its rows and text."""

from __future__ import annotations

import math
from html.parser import HTMLParser
from pathlib import Path

import numpy as np

from agent.config import CampaignConfig
from agent.store import ProposedAttempt, Store, TargetEvaluation
from analysis.protocol import Estimate, Interpretation
from instruments.types import Measurement, Timing
from tests.agent.store.rows import log_target_evaluation

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
        log_target_evaluation(
            self.store, self.campaign_id,
            TargetEvaluation(n_measurements=self.n_measurements, instrument_seconds=self.instrument_seconds,
                             wall_seconds=float(self.n_measurements), results=results,
                             all_met=all(r["met"] for r in results.values())),
        )


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
        self.alts: list[str] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "img":
            self.images.append(dict(attrs).get("src") or "")
            self.alts.append(dict(attrs).get("alt") or "")
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
