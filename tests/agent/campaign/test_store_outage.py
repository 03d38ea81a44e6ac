"""A store that cannot be written stops dispatching at once, loses nothing, and resume completes."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from agent.campaign import CampaignRunner
from agent.config import parse_campaign
from agent.store import Store
from tests.agent.campaign_files import instrument_settings, quickstart

pytestmark = [pytest.mark.timeout(300), pytest.mark.usefixtures("ray_local")]


def _lock_after(path: str, cid: str, n_analysed: int, hold_seconds: float, done: threading.Event) -> None:
    """Once ``n_analysed`` attempts are analysed, hold SQLite's write lock for ``hold_seconds``."""
    conn = sqlite3.connect(path, isolation_level=None, timeout=30)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        (count,) = conn.execute("SELECT count(*) FROM attempts WHERE campaign_id=? AND state='analysed'", (cid,)).fetchone()
        if count >= n_analysed:
            break
        time.sleep(0.02)
    conn.execute("BEGIN EXCLUSIVE")
    time.sleep(hold_seconds)
    conn.execute("COMMIT")
    conn.close()
    done.set()


def test_locked_store_stops_the_campaign_and_resume_recovers_everything(tmp_path: Path) -> None:
    data = instrument_settings(quickstart(tmp_path), realtime_factor=0.0003)
    data["policy"] = {"name": "sobol", "options": {}}
    data["targets"][0]["probability"] = 0.999999
    data["targets"][0]["min_observations"] = 1000  # never evaluated: run to the budget, whatever p does
    data["budgets"] = {"max_measurements": 10}
    config = parse_campaign(data)
    path = str(tmp_path / "labpilot.db")
    cid = "outage-fixed"

    released = threading.Event()
    locker = threading.Thread(target=_lock_after, args=(path, cid, 3, 8.0, released))
    store = Store(config.storage, retry_attempts=2)  # ~4 s of patience, then give up
    locker.start()
    result = asyncio.run(CampaignRunner(config, store, cid).run())
    locker.join()
    assert released.is_set()
    assert result.status == "failed"
    assert "store unavailable" in result.stop_reason and "database is locked" in result.stop_reason
    n_before = result.n_measurements
    assert 3 <= n_before < 10  # it stopped dispatching instead of running on without a record

    resumed = asyncio.run(CampaignRunner(config, Store(config.storage), cid).run(resume=True))
    assert resumed.status == "budget_exhausted", resumed.stop_reason
    with Store(config.storage) as check:
        attempts = check.attempts(cid)
        assert sum(a.state == "analysed" for a in attempts) == 10
        assert {a.state for a in attempts} <= {"analysed", "refused", "failed"}
