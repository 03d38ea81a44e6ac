"""Failures that must stop a campaign, with their reason: an instrument failing every request
(served over ZMQ, so its error also crosses Ray), a dead analysis; and failed analyses re-run on resume."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update

from agent.campaign import FAILURES_BEFORE_STOP, resume_campaign, run_campaign
from agent.config import parse_campaign
from agent.store import Store
from agent.store.schema import InterpretationRow
from tests.agent.campaign.test_remote import _campaign, _served_config
from tests.agent.campaign_files import quickstart
from tests.instruments.test_remote import serve  # noqa: F401 — the fixture of served drivers

pytestmark = [pytest.mark.timeout(240), pytest.mark.usefixtures("ray_local")]


def test_an_instrument_that_always_fails_stops_the_campaign_naming_its_error(serve: Any, tmp_path: Path) -> None:
    served = serve(_served_config(tmp_path / "instrument-pc", failure_probability=1.0))
    data = _campaign(tmp_path, served.address, 50)
    config = parse_campaign(data)
    store = Store(config.storage)
    result = run_campaign(config, store)
    assert result.status == "failed"
    assert result.stop_reason.startswith(f"instrument reactor failed {FAILURES_BEFORE_STOP} measurements in a row")
    # The served driver's own words, through the ZMQ client and Ray (not "Failed to deserialize exception").
    assert "simulated instrument fault during attempt" in result.stop_reason
    failed = store.attempts(result.campaign_id, states=["failed"])
    assert len(failed) == FAILURES_BEFORE_STOP and all("simulated instrument fault" in (a.reason or "") for a in failed)


def test_resume_re_analyses_measurements_whose_analysis_failed(tmp_path: Path) -> None:
    data = quickstart(tmp_path, policy={"name": "sobol", "options": {}}, budgets={"max_measurements": 4})
    config = parse_campaign(data)
    store = Store(config.storage)
    first = run_campaign(config, store)
    assert first.n_measurements == 4
    # As an analysis that crashed would have left it: the measurement kept, its interpretation flagged.
    victim = store.interpretations(first.campaign_id)[1].attempt_id
    with store.engine.begin() as conn:
        conn.execute(update(InterpretationRow).where(InterpretationRow.attempt_id == victim).values(
            flags=["analysis-error: worker crashed"], valid=False, estimates={"yield": {"value": None, "sigma": None, "units": ""}}))
    resumed = resume_campaign(store, first.campaign_id)
    assert resumed.n_measurements == 4  # nothing measured again
    again = {i.attempt_id: i for i in store.interpretations(first.campaign_id)}[victim]
    assert again.valid and again.flags == [] and again.estimates["yield"].value == pytest.approx(
        store.measurement(victim).scalar("yield"))  # type: ignore[union-attr]
    notes = [note for before, after, note in store.transitions(victim) if before == after == "analysed"]
    assert notes and notes[0].startswith("re-analysed")
