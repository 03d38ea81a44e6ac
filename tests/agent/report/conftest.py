"""The report tests' fixture: a finished campaign in a store (see ``campaign_store``)."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.store import Store
from tests.agent.report.campaign_store import (
    CAMPAIGN,
    REFUSAL,
    VERSIONS,
    Recorder,
    config_dict,
    true_yield,
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
