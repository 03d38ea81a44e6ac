"""The fault table (README, "Faults"): one test per row, each invariant read back from the store and
from the instrument's own journal. Campaigns are the quick-start's, made small: one simulated reactor
with injected faults (``simulators/faults.py``), Sobol points, a measurement budget, and short
timeouts (``faults`` in the campaign file). Instruments are real Ray actors, served ones real ZMQ
sockets. Rows 8–10 are covered by the tests named in their docstrings, plus what is added here.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import ray

from agent.campaign import CampaignRunner, CampaignResult
from agent.config import CampaignFileError, parse_campaign
from agent.pause import PAUSES_STREAM, paused_seconds
from agent.store import Store
from instruments.actor import InstrumentActor
from instruments.protocol import InstrumentLimitError
from instruments.remote import RemoteDriver, RemoteSettings
from instruments.types import Measurement, MeasurementRequest
from simulators.journal import MeasurementJournal
from simulators.synthetic import SyntheticPropertyDriver, SyntheticSettings
from tests.agent.campaign_files import quickstart
from tests.instruments.test_remote import serving

pytestmark = [pytest.mark.timeout(120), pytest.mark.usefixtures("ray_local")]

CID = "faults"
INSTRUMENT_SECONDS = 1800 + 60 + 30  # the quick-start reactor's synthesis + motion + overhead, virtual s


def _campaign(tmp_path: Path, n: int, sim_faults: dict[str, Any] | None = None, **faults: Any) -> dict[str, Any]:
    """The quick-start with one reactor, Sobol points, targets that never hold, ``n`` measurements."""
    data = quickstart(tmp_path, policy={"name": "sobol", "options": {}}, budgets={"max_measurements": n})
    data["instruments"][0]["count"] = 1
    data["instruments"][0]["settings"]["faults"] = sim_faults or {}
    data["targets"][0]["min_observations"] = 1000
    data["faults"] = {"timeout_margin_seconds": 2.0, "pause_poll_seconds": 0.2, **faults}
    return data


def _run(data: dict[str, Any]) -> tuple[Store, CampaignResult]:
    config = parse_campaign(data)
    store = Store(config.storage)
    return store, asyncio.run(CampaignRunner(config, store, CID).run())


def _journal(tmp_path: Path) -> MeasurementJournal:
    return MeasurementJournal(tmp_path / "data" / CID / "instruments" / "reactor")


def _attempt(n: int) -> str:
    return f"{CID}-{n:05d}"


def _assert_each_measured_once(store: Store, tmp_path: Path) -> None:
    """Every analysed attempt's data came from exactly one physical acquisition (the journal's log)."""
    acquisitions = _journal(tmp_path).acquisitions()
    assert len(acquisitions) == len(set(acquisitions)), acquisitions
    analysed = {a.id for a in store.attempts(CID, states=["analysed"])}
    assert analysed == set(acquisitions)


# -- row 1: a measurement hangs ------------------------------------------------------------------------
def test_row1_a_hung_measurement_times_out_is_unknown_then_reconciled_and_the_campaign_goes_on(tmp_path: Path) -> None:
    started = time.monotonic()
    store, result = _run(_campaign(tmp_path, 4, {"hang_on": [2], "hang_seconds": 600}))
    assert result.status == "budget_exhausted" and result.n_measurements == 4, result.stop_reason
    assert time.monotonic() - started < 60  # the 600 s hang did not hold the campaign
    hung = store.attempt(_attempt(2))
    assert hung.state == "analysed" and hung.reruns == 1
    path = store.transitions(hung.id)
    assert any(after == "unknown" and "instrument hung: no answer within 2 s" in (note or "") for _, after, note in path)
    assert ("unknown", "dispatched") in [(before, after) for before, after, _ in path]
    _assert_each_measured_once(store, tmp_path)


def test_row1_max_wall_seconds_ends_a_hung_campaign(tmp_path: Path) -> None:
    data = _campaign(tmp_path, 50, {"hang_on": [2], "hang_seconds": 600}, timeout_margin_seconds=3600)
    data["budgets"]["max_wall_seconds"] = 8
    started = time.monotonic()
    store, result = _run(data)
    assert time.monotonic() - started < 40
    assert result.status == "budget_exhausted" and "max_wall_seconds" in result.stop_reason, result.stop_reason
    assert store.attempt(_attempt(2)).state == "unknown"  # not repeated after the budget; resume reconciles it


# -- row 2: the instrument raises ---------------------------------------------------------------------
def test_row2_failed_measurements_are_recorded_and_a_failure_budget_stops_the_campaign(tmp_path: Path) -> None:
    data = _campaign(tmp_path, 40, {}, max_failed_attempts=3)  # the fault: the simulator's failure_probability
    data["instruments"][0]["settings"]["failure_probability"] = 0.4
    store, result = _run(data)
    assert result.status == "failed", result.stop_reason
    assert result.stop_reason.startswith("failure budget: faults.max_failed_attempts (3) reached")
    failed = store.attempts(CID, states=["failed"])
    assert len(failed) == 3
    assert all((a.reason or "").startswith("instrument error:") and "simulated instrument fault" in (a.reason or "")
               for a in failed)
    assert result.n_measurements >= 1  # the loop went on between failures


# -- row 3: the instrument actor's process dies ---------------------------------------------------------
def test_row3_a_dead_actor_is_restarted_and_its_attempt_re_run_once(tmp_path: Path) -> None:
    store, result = _run(_campaign(tmp_path, 4, {"crash_on": [2]}))
    assert result.status == "budget_exhausted" and result.n_measurements == 4, result.stop_reason
    died = store.attempt(_attempt(2))
    assert died.state == "analysed" and died.reruns == 1 and died.reconciled == "rerun"
    assert any(after == "unknown" and "instrument died" in (note or "") for _, after, note in store.transitions(died.id))
    _assert_each_measured_once(store, tmp_path)


def test_row3_a_measurement_finished_before_the_actor_died_is_adopted_not_repeated(tmp_path: Path) -> None:
    store, result = _run(_campaign(tmp_path, 4, {"crash_after_on": [2]}))
    assert result.status == "budget_exhausted" and result.n_measurements == 4, result.stop_reason
    died = store.attempt(_attempt(2))
    assert died.state == "analysed" and died.reruns == 0 and died.reconciled == "adopted"
    _assert_each_measured_once(store, tmp_path)


def test_row3_past_the_restart_budget_the_campaign_fails_naming_the_instrument(tmp_path: Path) -> None:
    store, result = _run(_campaign(tmp_path, 4, {"crash_always": True}, max_restarts=1))
    assert result.status == "failed", result.stop_reason
    assert result.stop_reason.startswith("instrument reactor died during faults-00000 after 1 restarts (faults.max_restarts)")
    assert result.n_measurements == 0 and store.attempt(_attempt(0)).state == "unknown"
    assert _journal(tmp_path).acquisitions() == []


# -- row 4: interlock / beam down -----------------------------------------------------------------------
def test_row4_a_not_ready_instrument_pauses_the_campaign_which_resumes_by_itself(tmp_path: Path) -> None:
    interlock = tmp_path / "interlock-open"
    interlock.touch()
    data = _campaign(tmp_path, 3, {"interlock_file": str(interlock)})
    seen: list[str] = []

    def clear_later() -> None:
        """Watch the store until the campaign is paused, keep it so 2 s, then close the interlock."""
        with Store(data["storage"]) as watcher:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and not seen:
                try:
                    campaign = watcher.campaign(CID)
                    if campaign.status == "paused":
                        seen.append(campaign.stop_reason or "")
                except Exception:  # noqa: BLE001,S110 — not created yet
                    pass
                time.sleep(0.05)
        time.sleep(2.0)
        interlock.unlink()

    data["budgets"]["max_wall_seconds"] = 150  # should the pause never be seen, the campaign still ends
    # The store exists before the watcher opens it: two first openings of one new SQLite file at once
    # are not what this row tests (and CI once saw the watcher fail there, leaving the campaign paused).
    Store(data["storage"]).close()
    clearer = threading.Thread(target=clear_later)
    clearer.start()
    store, result = _run(data)
    clearer.join()
    assert seen and "interlock open" in seen[0]
    assert result.status == "budget_exhausted" and result.n_measurements == 3, result.stop_reason
    assert {a.state for a in store.attempts(CID)} == {"analysed"}  # nothing refused or failed meanwhile
    events = [d.doc["data"] for _, d in store.documents(CID) if d.name == "event" and d.stream == PAUSES_STREAM]
    assert [e["state"] for e in events] == ["paused", "resumed"]
    assert paused_seconds(store, CID) >= 2.0
    assert result.instrument_seconds == pytest.approx(3 * INSTRUMENT_SECONDS)  # the pause is not instrument time


# -- row 5: duplicate delivery --------------------------------------------------------------------------
def _settings(tmp_path: Path) -> SyntheticSettings:
    return SyntheticSettings(inputs={"x": (0.0, 1.0)}, journal_dir=str(tmp_path / "journal"))


def test_row5_a_replayed_request_after_an_actor_restart_is_answered_from_the_journal(tmp_path: Path) -> None:
    factory = partial(SyntheticPropertyDriver, "probe", _settings(tmp_path))
    request = MeasurementRequest(attempt_id="a-00001", params={"x": 0.3})
    actor = InstrumentActor.options(num_cpus=0).remote(factory)
    first: Measurement = ray.get(actor.measure.remote(request))
    assert ray.get(actor.measure.remote(request)).data == first.data  # replay to the same process
    assert ray.get(actor.health.remote())["duplicates"] == 1
    ray.kill(actor, no_restart=True)
    again = InstrumentActor.options(num_cpus=0).remote(factory)  # a new process: nothing in memory
    replayed: Measurement = ray.get(again.measure.remote(request))
    health = ray.get(again.health.remote())
    ray.kill(again)
    assert replayed.recovered and float(replayed.scalar("yield")) == pytest.approx(float(first.scalar("yield")))
    assert health["duplicates"] == 1 and health["measured"] == 0
    assert MeasurementJournal(tmp_path / "journal").acquisitions() == ["a-00001"]


def test_row5_a_replayed_request_after_a_server_restart_is_answered_from_the_journal(tmp_path: Path) -> None:
    request = MeasurementRequest(attempt_id="a-00001", params={"x": 0.3})
    results, healths = [], []
    for _ in range(2):  # the same instrument PC, its server started twice
        with serving(SyntheticPropertyDriver("probe", _settings(tmp_path))) as server:
            client = RemoteDriver("probe", RemoteSettings(address=server.address))
            try:
                results.append(client.measure(request))
                results.append(client.measure(request))
                healths.append(client.health())
            finally:
                client.close()
    assert [h["duplicates"] for h in healths] == [1, 2] and [h["measured"] for h in healths] == [1, 0]
    assert len({float(m.scalar("yield")) for m in results}) == 1
    assert MeasurementJournal(tmp_path / "journal").acquisitions() == ["a-00001"]


# -- row 6: a request outside the limits sent straight to measure -------------------------------------
class TrustingDriver(SyntheticPropertyDriver):
    """A driver whose ``measure`` trusts its caller (leaves a mark when called): the actor and the
    server must enforce the limits themselves."""

    def measure(self, request: MeasurementRequest) -> Measurement:
        (Path(self.settings.journal_dir or ".") / "measure-called").write_text(request.attempt_id)
        return super().measure(request)


def test_row6_out_of_limits_requests_sent_straight_to_measure_never_reach_the_driver(tmp_path: Path) -> None:
    bad = MeasurementRequest(attempt_id="a-00001", params={"x": 5.0})
    actor = InstrumentActor.options(num_cpus=0).remote(partial(TrustingDriver, "probe", _settings(tmp_path / "actor")))
    with pytest.raises(InstrumentLimitError, match=r"x=5.0 is outside the limits \[0.0, 1.0\]"):
        ray.get(actor.measure.remote(bad))
    assert ray.get(actor.health.remote())["refused"] == 1
    ray.kill(actor)
    assert not (tmp_path / "actor" / "journal" / "measure-called").exists()

    with serving(TrustingDriver("probe", _settings(tmp_path / "server"))) as server:
        client = RemoteDriver("probe", RemoteSettings(address=server.address))
        try:
            with pytest.raises(InstrumentLimitError, match="outside the limits"):
                client.measure(bad)  # no check first: what a careless client does
            assert client.health()["refused"] == 1
        finally:
            client.close()
    assert not (tmp_path / "server" / "journal" / "measure-called").exists()


# -- row 7: check raises an unexpected exception --------------------------------------------------------
def test_row7_a_check_that_raises_refuses_that_attempt_and_the_campaign_goes_on(tmp_path: Path) -> None:
    store, result = _run(_campaign(tmp_path, 4, {"check_error_on": [2]}))
    assert result.status == "budget_exhausted" and result.n_measurements == 4, result.stop_reason
    refused = store.attempt(_attempt(2))
    assert refused.state == "refused"
    assert refused.reason == "instrument check failed on reactor: reactor: check crashed on attempt faults-00002 (simulated driver bug)"


# -- row 10: malformed configuration (the new ``faults`` section) ---------------------------------------
def test_row10_a_malformed_faults_section_is_refused_naming_the_field(tmp_path: Path) -> None:
    data = _campaign(tmp_path, 4, max_restarts=-1, timeout_factor=0.5)
    with pytest.raises(CampaignFileError) as caught:
        parse_campaign(data)
    paths = {path for path, _ in caught.value.errors}
    assert {"faults.max_restarts", "faults.timeout_factor"} <= paths
    assert not (tmp_path / "labpilot.db").exists()


# -- row 8: the campaign process is SIGKILLed ------------------------------------------------------------
def test_row8_a_killed_campaign_leaves_no_process_behind(tmp_path: Path) -> None:
    """Resume after SIGKILL at every write-ahead point loses and repeats nothing:
    ``tests/agent/campaign/test_resume.py``. Here: nothing the campaign started outlives it — Ray's
    GCS, raylet, workers and its agents (``DashboardAgent``, ``RuntimeEnvAgent``) included."""
    import os
    import signal
    import subprocess
    import sys

    import psutil
    import yaml

    data = _campaign(tmp_path, 200)
    data["instruments"][0]["settings"]["realtime_factor"] = 0.001  # ~2 s per measurement: killed mid-run
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(data))
    root = Path(__file__).resolve().parents[2]
    proc = subprocess.Popen([sys.executable, "-m", "agent.cli", "run", str(tmp_path / "c.yaml"), "--json"],
                            cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(root)}, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    campaign = psutil.Process(proc.pid)
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and not _measured(tmp_path / "labpilot.db"):  # mid-run: Ray up, data made
            time.sleep(0.2)
        descendants = campaign.children(recursive=True)
        names = {_name(p) for p in descendants}
        assert "raylet" in names and {"ray::DashboardAgent", "ray::RuntimeEnvAgent"} <= names, names
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        _, alive = psutil.wait_procs(descendants, timeout=10)
        assert not alive, [(p.pid, _name(p)) for p in alive]
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # whatever a failing run left: not into the next test


def _measured(db: Path) -> bool:
    """Whether the campaign recorded a measurement (read-only: the campaign process owns the store)."""
    import sqlite3

    if not db.exists():
        return False
    try:
        with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1)) as conn:
            return bool(conn.execute("SELECT count(*) FROM measurements").fetchone()[0])
    except sqlite3.Error:  # the tables are not there yet
        return False


def _name(p: Any) -> str:
    try:
        return str(p.name())
    except Exception:  # noqa: BLE001 — ended meanwhile
        return ""
