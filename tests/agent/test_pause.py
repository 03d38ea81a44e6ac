"""The pause gate: a measure that says "not now" is asked again until it answers; the campaign is
``paused`` meanwhile (in the store, with a document), then ``running`` again; a stop gives up waiting."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import numpy as np
import pytest

from agent.config import parse_campaign
from agent.pause import PAUSES_STREAM, CampaignStopping, PauseGate, paused_seconds
from agent.recorder import Recorder
from agent.store import Store
from instruments.protocol import InstrumentNotReady
from instruments.types import DataKey, Measurement, Timing
from tests.agent.campaign_files import quickstart

pytestmark = pytest.mark.timeout(60)


def _gate(tmp_path: Path) -> tuple[Store, PauseGate]:
    config = parse_campaign(quickstart(tmp_path))
    store = Store(config.storage)
    store.create_campaign("c", config.name, config.model_dump(mode="json"), config.seed, str(tmp_path), {})
    recorder = Recorder(store, "c")
    recorder.open_run(config, {"reactor-1": {"yield": DataKey(dtype="number", units="fraction")}}, {"yield": "fraction"})
    return store, PauseGate(recorder, poll_seconds=0.05)


def _measurement() -> Measurement:
    return Measurement(attempt_id="c-00000", instrument="reactor-1", params={"temperature": 400.0, "time": 10.0},
                       data={"yield": np.array(0.5)}, timing=Timing(exposure_seconds=1.0))


def test_a_not_ready_measure_pauses_the_campaign_until_it_answers(tmp_path: Path) -> None:
    store, gate = _gate(tmp_path)
    calls, statuses = [], []

    async def measure() -> Measurement:
        calls.append(1)
        statuses.append(store.campaign("c").status.value)
        if len(calls) <= 3:
            raise InstrumentNotReady("reactor-1: beam down")
        return _measurement()

    result = asyncio.run(gate.measure_when_ready("reactor-1", measure))
    assert result.attempt_id == "c-00000" and len(calls) == 4
    assert statuses == ["running", "paused", "paused", "paused"]
    campaign = store.campaign("c")
    assert campaign.status.value == "running" and campaign.stop_reason is None and not gate.active
    events = [d.doc["data"] for _, d in store.documents("c") if d.name == "event" and d.stream == PAUSES_STREAM]
    assert [(e["state"], e["reason"]) for e in events] == [("paused", "reactor-1: beam down"), ("resumed", "")]
    assert gate.paused_seconds == pytest.approx(paused_seconds(store, "c")) and gate.paused_seconds >= 0.1
    published = [json.loads(line) for line in (tmp_path / "c" / "documents.jsonl").read_text().splitlines()]
    assert [doc.get("name") for name, doc in published if name == "descriptor"][-1] == PAUSES_STREAM


def test_a_stopping_campaign_gives_up_waiting(tmp_path: Path) -> None:
    store, gate = _gate(tmp_path)
    gate.stopping = True

    async def measure() -> Measurement:
        raise InstrumentNotReady("reactor-1: interlock open")

    with pytest.raises(CampaignStopping, match="interlock open"):
        asyncio.run(gate.measure_when_ready("reactor-1", measure))
    assert store.campaign("c").status.value == "paused"  # the loop's end records the final status
