"""A campaign against an instrument served by `labpilot serve-instrument` in another process
(`kind: remote`), end to end, and through a server killed in the middle of a measurement."""

from __future__ import annotations

import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from agent.campaign import run_campaign
from agent.config import parse_campaign
from agent.store import Store
from instruments.remote import RemoteDriver, RemoteSettings
from simulators.journal import MeasurementJournal
from tests.agent.campaign_files import quickstart
from tests.instruments.test_remote import serve  # noqa: F401 — the fixture of served drivers

pytestmark = [pytest.mark.timeout(240), pytest.mark.slow, pytest.mark.usefixtures("ray_local")]


def _served_config(journal: Path, **settings: Any) -> dict[str, Any]:
    """The quick-start reactor's settings, for the served driver (its limits are the design space's)."""
    return {"inputs": {"temperature": [300.0, 500.0], "time": [1.0, 60.0]}, "function": "peaks", "output": "yield",
            "units": "fraction", "noise_sd": 0.02, "journal_dir": str(journal), **settings}


def _campaign(tmp_path: Path, address: str, n: int, **remote: Any) -> dict[str, Any]:
    data = quickstart(tmp_path)
    data["instruments"] = [{"name": "reactor", "kind": "remote", "settings": {"address": address, **remote}}]
    data["policy"] = {"name": "sobol", "options": {}}
    data["budgets"] = {"max_measurements": n, "max_wall_seconds": 200}
    return data


def _run(data: dict[str, Any]) -> tuple[Store, Any]:
    config = parse_campaign(data)
    store = Store(config.storage)
    return store, run_campaign(config, store, campaign_id=f"{config.name}-remote")


def test_a_campaign_runs_against_a_served_instrument(serve: Any, tmp_path: Path) -> None:
    journal = tmp_path / "instrument-pc"
    served = serve(_served_config(journal), "--serializer", "msgpack")
    store, result = _run(_campaign(tmp_path, served.address, 5, serializer="msgpack"))
    assert result.status == "budget_exhausted" and result.n_measurements == 5
    analysed = store.attempts(result.campaign_id, states=["analysed"])
    assert len(analysed) == 5
    # The instrument's own log: every campaign attempt measured exactly once, and nothing else.
    assert sorted(MeasurementJournal(journal).acquisitions()) == sorted(a.id for a in analysed)
    for a in analysed:
        stored = store.measurement(a.id)
        assert stored is not None and stored.scalar("yield") == MeasurementJournal(journal).read(a.id).scalar("yield")  # type: ignore[union-attr]


def test_a_campaign_survives_its_instrument_server_being_killed_mid_measurement(serve: Any, tmp_path: Path) -> None:
    journal = tmp_path / "instrument-pc"
    # 1.5 s of real time per measurement, so the kill lands inside one.
    config = _served_config(journal, synthesis_seconds=1.0, motion_seconds=0.0, overhead_seconds=0.0, realtime_factor=1.5)
    servers = [serve(config)]
    address = servers[0].address

    def crash_and_restart() -> None:
        with RemoteDriver("watch", RemoteSettings(address=address, request_timeout_seconds=5)) as watch:
            deadline = time.monotonic() + 120
            # Let one measurement finish, then kill the server during the next one.
            while not (MeasurementJournal(journal).acquisitions() and watch.health()["busy"]):
                assert time.monotonic() < deadline
                time.sleep(0.05)
        servers[0].kill()
        time.sleep(1.0)  # the campaign's client gives up (heartbeat timeout) while the instrument is down
        servers.append(serve(config, bind=address))

    crasher = threading.Thread(target=crash_and_restart)
    crasher.start()
    store, result = _run(_campaign(tmp_path, address, 4, request_timeout_seconds=3, heartbeat_timeout_seconds=1.5))
    crasher.join(30)
    assert not crasher.is_alive() and len(servers) == 2, "the server was not killed and restarted"
    assert result.status == "budget_exhausted" and result.n_measurements == 4
    attempts = store.attempts(result.campaign_id)
    reconciled = {a.id: a.reconciled for a in attempts if a.reconciled}
    # The killed attempt was marked unknown, then reconciled: re-run (the driver had not journaled it)
    # or adopted (it had, just before the kill).
    assert len(reconciled) == 1 and set(reconciled.values()) <= {"rerun", "adopted"}, reconciled
    analysed = store.attempts(result.campaign_id, states=["analysed"])
    assert len(analysed) == 4
    times = Counter(MeasurementJournal(journal).acquisitions())
    assert set(times) == {a.id for a in analysed} and set(times.values()) == {1}, times  # nothing measured twice
