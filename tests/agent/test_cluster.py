"""A real two-node Ray cluster: a head (the campaign's PC) and a second node that holds the instrument.

Both nodes are started with Ray's own ``ray start`` (the way a lab starts them), on this machine, with
their own temp dir and ports. The campaign names the instrument node's custom resource in its file
(``ray_resources``), runs as ``labpilot run`` with ``RAY_ADDRESS`` pointing at the head, and its
instrument actor must run on the instrument's node — read back from Ray's state API, which keeps the
node of every actor, dead or alive. A resource no node offers refuses to start instead of hanging.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from benchmarks.local_cluster import TwoNodeCluster
from agent.store import Store
from simulators.journal import MeasurementJournal
from tests.agent.campaign_files import instrument_settings, quickstart

pytestmark = pytest.mark.timeout(420)

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def cluster() -> Iterator[TwoNodeCluster]:
    c = TwoNodeCluster()
    try:
        c.start()
        yield c
    finally:
        c.stop()
    assert not c.processes(), "a process of the test cluster survived"


def _campaign(tmp_path: Path, resources: dict[str, float]) -> Path:
    data = instrument_settings(quickstart(tmp_path, policy={"name": "sobol", "options": {}}, budgets={"max_measurements": 4}),
                               realtime_factor=0.0002)
    data["instruments"][0]["ray_resources"] = resources
    path = tmp_path / "campaign.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _run(cluster: TwoNodeCluster, campaign: Path, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {**cluster.env, "RAY_ADDRESS": cluster.address, "PYTHONPATH": str(ROOT)}
    env.pop("LABPILOT_DB", None)
    return subprocess.run([sys.executable, "-m", "agent.cli", "run", str(campaign), "--json"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300, check=False)


def _actor_nodes(cluster: TwoNodeCluster) -> dict[str, Any]:
    """class name → node ids of every actor the cluster has run (Ray's state API, asked in a fresh process)."""
    code = (
        "import json, ray\nfrom ray.util.state import list_actors, list_nodes\n"
        f"ray.init(address={cluster.address!r}, logging_level='ERROR')\n"
        "nodes = {n.node_id: n.resources_total for n in list_nodes()}\n"
        "out = {}\n"
        "for a in list_actors(limit=1000):\n"
        "    out.setdefault(a.class_name, []).append(sorted(nodes.get(a.node_id, {})))\n"
        "print(json.dumps(out))\n"
    )
    env = {**cluster.env, "PYTHONPATH": str(ROOT), "RAY_ADDRESS": cluster.address}
    done = subprocess.run([sys.executable, "-c", code], env=env,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_instrument_runs_on_the_node_that_holds_it(cluster: TwoNodeCluster, tmp_path: Path) -> None:
    done = _run(cluster, _campaign(tmp_path, {"reactor_pc": 1}), tmp_path)
    assert done.returncode == 3, done.stderr[-3000:]  # 3: the budget, not a target, ended it
    result = json.loads(done.stdout)
    assert result["n_measurements"] == 4 and result["status"] == "budget_exhausted", result
    nodes = _actor_nodes(cluster)
    # Every instrument actor ran on the node offering reactor_pc; the analysis could run anywhere.
    assert nodes.get("InstrumentService"), nodes
    assert all("reactor_pc" in resources for resources in nodes["InstrumentService"]), nodes


def test_an_instrument_whose_node_is_missing_is_refused_not_left_hanging(cluster: TwoNodeCluster, tmp_path: Path) -> None:
    done = _run(cluster, _campaign(tmp_path, {"xrd_pc": 1}), tmp_path)
    assert done.returncode != 0
    message = done.stdout + done.stderr
    assert "instrument 'reactor' needs Ray resources {'xrd_pc': 1.0}" in message, message[-3000:]
    assert "ray start" in message


# -- the instrument's node goes down mid-measurement -----------------------------------------------------
# The instrument PC loses power while it measures: every process of its Ray node is SIGKILLed (its raylet,
# the instrument actor, its agents). The driver's journal is on a disk that outlives the node (here the
# test's folder, shared by both nodes of this one machine; in a lab, the instrument PC's own disk, back
# with the PC).
HANG_SECONDS = 60  # attempt 2's first exposure lasts this long: long enough to be in flight when the node dies
#: The simulator's fault that keeps attempt 2 in flight → the marker file it leaves when it begins.
#: ``hang_on``: a long exposure (killed before any data: re-run); ``hang_after_on``: the data are in the
#: journal but the answer has not left the node yet (adopt).
IN_FLIGHT_MARKERS = {"hang_on": "hang", "hang_after_on": "hang-after"}


def _node_loss_campaign(tmp_path: Path, restart_wait_seconds: float, fault: str) -> Path:
    data = instrument_settings(quickstart(tmp_path, policy={"name": "sobol", "options": {}}, budgets={"max_measurements": 4}),
                               realtime_factor=0.0002, faults={fault: [2], "hang_seconds": HANG_SECONDS},
                               journal_dir=str(_disk(tmp_path)))
    data["instruments"][0].update(count=1, ray_resources={"reactor_pc": 1})
    data["targets"][0]["min_observations"] = 1000  # the budget ends it, not a target
    data["faults"] = {"timeout_margin_seconds": 120, "restart_wait_seconds": restart_wait_seconds}
    path = tmp_path / "campaign.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _disk(tmp_path: Path) -> Path:
    """The instrument PC's disk: its driver's journal (one file per finished attempt, the acquisition log)."""
    return tmp_path / "instrument-pc-disk"


def _start_campaign(cluster: TwoNodeCluster, campaign: Path, tmp_path: Path) -> subprocess.Popen[str]:
    env = {**cluster.env, "RAY_ADDRESS": cluster.address, "PYTHONPATH": str(ROOT)}
    env.pop("LABPILOT_DB", None)
    return subprocess.Popen([sys.executable, "-m", "agent.cli", "run", str(campaign), "--json", "--no-report"], cwd=tmp_path,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)


def _wait_for(what: str, ready: Callable[[], bool], proc: subprocess.Popen[str], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not ready():
        if proc.poll() is not None:
            raise AssertionError(f"the campaign ended before {what}: {proc.stdout.read() if proc.stdout else ''} "
                                 f"{proc.stderr.read()[-3000:] if proc.stderr else ''}")
        assert time.monotonic() < deadline, f"not within {seconds} s: {what}"
        time.sleep(0.2)


def _in_flight(tmp_path: Path, fault: str) -> bool:
    """Attempt 2 is in the simulator's hang on the instrument node (it leaves a marker as it begins)."""
    return bool(list((_disk(tmp_path) / "faults").glob(f"{IN_FLIGHT_MARKERS[fault]}-quickstart-*-00002")))


def _attempt_state(tmp_path: Path, number: int) -> str | None:
    """The state of attempt ``number`` in the store (read-only: the campaign process owns it)."""
    db = tmp_path / "labpilot.db"
    try:
        with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1)) as conn:
            row = conn.execute("SELECT state FROM attempts WHERE id LIKE ?", (f"%-{number:05d}",)).fetchone()
    except sqlite3.Error:
        return None
    return None if row is None else str(row[0])


def _finish(proc: subprocess.Popen[str], seconds: float) -> tuple[int, dict[str, Any], str]:
    """Exit code, the ``--json`` summary (Ray's own warnings about the lost node may share stdout), all output."""
    out, err = proc.communicate(timeout=seconds)
    summaries = [line for line in out.splitlines() if line.startswith("{")]
    return proc.returncode, json.loads(summaries[-1]) if summaries else {}, out + err


def _kill_mid_measurement(cluster: TwoNodeCluster, tmp_path: Path, restart_wait_seconds: float,
                          fault: str = "hang_on") -> subprocess.Popen[str]:
    """Start the campaign, wait until attempt 2 is measuring on the instrument node, kill that node,
    and wait until the store says the attempt's outcome is unknown."""
    proc = _start_campaign(cluster, _node_loss_campaign(tmp_path, restart_wait_seconds, fault), tmp_path)
    _wait_for("attempt 2 is in flight", lambda: _in_flight(tmp_path, fault), proc, 90)
    assert _attempt_state(tmp_path, 2) == "dispatched"
    assert cluster.kill_instrument_node()
    _wait_for("attempt 2 is unknown", lambda: _attempt_state(tmp_path, 2) == "unknown", proc, 60)
    return proc


def _node_loss_test(test: Callable[..., None]) -> Callable[..., None]:
    """Whatever the test did, the instrument node is up again afterwards (the module shares the cluster)
    and the campaign process it started is gone."""
    @functools.wraps(test)
    def wrapped(cluster: TwoNodeCluster, tmp_path: Path, **params: Any) -> None:
        try:
            test(cluster, tmp_path, **params)
        finally:
            if not cluster.instrument_node:
                cluster.start_instrument_node()
    return wrapped


@pytest.mark.timeout(180)
@pytest.mark.parametrize(("fault", "reconciled", "reruns"), [("hang_on", "rerun", 1), ("hang_after_on", "adopted", 0)])
@_node_loss_test
def test_a_node_killed_mid_measurement_leaves_the_attempt_unknown_reconciled_when_the_node_returns(
        cluster: TwoNodeCluster, tmp_path: Path, fault: str, reconciled: str, reruns: int) -> None:
    proc = _kill_mid_measurement(cluster, tmp_path, restart_wait_seconds=120, fault=fault)
    try:
        time.sleep(3.0)  # the node stays away a while: the campaign waits, it does not fail or move on
        assert proc.poll() is None and _attempt_state(tmp_path, 2) == "unknown" and _attempt_state(tmp_path, 3) is None
        cluster.start_instrument_node()  # the instrument PC is back, with the same resources
        code, result, err = _finish(proc, 120)
    finally:
        _end(proc)
    assert code == 3 and result["status"] == "budget_exhausted" and result["n_measurements"] == 4, (result, err[-3000:])
    cid = result["campaign_id"]
    with Store(f"sqlite:///{tmp_path}/labpilot.db") as store:
        lost = store.attempt(f"{cid}-00002")
        assert lost.state == "analysed" and lost.reconciled == reconciled and lost.reruns == reruns, lost
        notes = [(before, after, note) for before, after, note in store.transitions(lost.id)]
        assert any(after == "unknown" and "instrument died" in (note or "") for _, after, note in notes), notes
        assert {a.state for a in store.attempts(cid)} == {"analysed"}
        analysed = {a.id for a in store.attempts(cid)}
    # The instrument's own journal: each attempt acquired exactly once (a killed exposure left no data and
    # was re-run; data already in the journal were adopted, not measured again).
    acquisitions = MeasurementJournal(_disk(tmp_path)).acquisitions()
    assert sorted(acquisitions) == sorted(analysed) and len(acquisitions) == 4, acquisitions


@pytest.mark.timeout(180)
@_node_loss_test
def test_a_node_that_stays_away_past_the_restart_wait_fails_the_campaign_naming_the_instrument(
        cluster: TwoNodeCluster, tmp_path: Path) -> None:
    proc = _kill_mid_measurement(cluster, tmp_path, restart_wait_seconds=5)
    try:
        code, result, err = _finish(proc, 90)
    finally:
        _end(proc)
    assert code != 0 and result["status"] == "failed", (result, err[-3000:])
    cid = result["campaign_id"]
    assert result["stop_reason"].startswith(f"instrument reactor died during {cid}-00002 and did not come back within 5 s"), result
    assert "reactor_pc" in result["stop_reason"] and "resume" in result["stop_reason"], result
    with Store(f"sqlite:///{tmp_path}/labpilot.db") as store:
        assert store.attempt(f"{cid}-00002").state == "unknown"  # left for resume to reconcile, not guessed
    assert MeasurementJournal(_disk(tmp_path)).acquisitions() == [
        f"{cid}-00000", f"{cid}-00001"]


def _end(proc: subprocess.Popen[str]) -> None:
    """The campaign process and its session (a failing test must not leave it running)."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
