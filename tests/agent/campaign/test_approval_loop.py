"""The approval gate in the loop: proposals wait in the store for a person, approved ones run (as
edited), rejected ones never do, waiting holds no instrument and charges no instrument time, and a
campaign killed while waiting resumes waiting — through the real CLI, on real Ray actors."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from agent.approval import approve, reject
from agent.campaign import run_campaign
from agent.config import parse_campaign
from agent.store import AttemptState, Store
from tests.agent.campaign_files import quickstart

pytestmark = [pytest.mark.timeout(300)]


def _wait_for(condition: Any, what: str, timeout: float = 120) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


@pytest.mark.usefixtures("ray_local")
def test_manual_proposals_wait_and_run_only_as_a_person_decides(tmp_path: Path) -> None:
    data = quickstart(tmp_path, approval={"mode": "manual", "poll_seconds": 0.1},
                      budgets={"max_measurements": 3, "max_wall_seconds": 200})
    config = parse_campaign(data)
    store = Store(config.storage)
    cid = "manual-fixed"
    outcome: dict[str, Any] = {}
    runner = threading.Thread(target=lambda: outcome.update(result=run_campaign(config, store, campaign_id=cid)), daemon=True)
    runner.start()
    # Two reactors, two proposals, both waiting; neither instrument is busy, nothing measured.
    first = _wait_for(lambda: len(store.awaiting_approval(cid)) == 2 and store.awaiting_approval(cid), "two waiting proposals")
    time.sleep(1.0)  # a waiting campaign does nothing else: no third proposal, no dispatch
    assert [a.state for a in store.attempts(cid)] == [AttemptState.AWAITING_APPROVAL] * 2
    assert store.totals(cid) == (0, 0.0)
    edited = approve(store, first[0].id, edits={"time": 33.0}, user="ada")
    reject(store, first[1].id, reason="too close to the first", user="bob")
    decided = {first[0].id, first[1].id}
    while runner.is_alive():  # then approve whatever else comes, as proposed
        for a in store.awaiting_approval(cid):
            approve(store, a.id, user="cy")
            decided.add(a.id)
        time.sleep(0.1)
    result = outcome["result"]
    assert result.status == "budget_exhausted", result.stop_reason
    attempts = {a.id: a for a in store.attempts(cid)}
    # The edited proposal ran with the edited time; the rejected one never ran.
    assert store.measurement(first[0].id).params == edited.params == {**first[0].params, "time": 33.0}
    assert attempts[first[1].id].state == AttemptState.REFUSED and store.measurement(first[1].id) is None
    assert "rejected by bob: too close to the first" in (attempts[first[1].id].reason or "")
    # Every attempt that ran was approved by a person first; waiting charged no instrument time.
    measured = [a for a in attempts.values() if a.state == AttemptState.ANALYSED]
    assert len(measured) == 3 and all(a.id in decided for a in measured)
    assert all(("awaiting_approval", "validated") in [t[:2] for t in store.transitions(a.id)] for a in measured)
    assert result.instrument_seconds == pytest.approx(sum(m.timing.instrument_seconds for m in store.measurements(cid)))
    # The decisions are documents of the run, published with it (documents.jsonl).
    lines = [json.loads(line) for line in (tmp_path / "data" / cid / "documents.jsonl").read_text().splitlines()]
    verdicts = [doc["data"]["verdict"] for name, doc in lines if name == "event" and "verdict" in doc["data"]]
    assert verdicts[:2] == ["edited", "rejected"] and len(verdicts) == len(decided)
    stop = [doc for name, doc in lines if name == "stop"][-1]
    assert stop["num_events"]["approvals"] == len(decided)
    store.close()


@pytest.mark.usefixtures("ray_local")
def test_envelope_holds_only_proposals_outside_the_safe_region(tmp_path: Path) -> None:
    data = quickstart(tmp_path, approval={"mode": "envelope", "poll_seconds": 0.1, "envelope": {"temperature": {"high": 400}}},
                      budgets={"max_measurements": 4, "max_wall_seconds": 200}, policy={"name": "sobol"})
    config = parse_campaign(data)
    store = Store(config.storage)
    cid = "envelope-fixed"
    outcome: dict[str, Any] = {}
    runner = threading.Thread(target=lambda: outcome.update(result=run_campaign(config, store, campaign_id=cid)), daemon=True)
    runner.start()
    while runner.is_alive():  # a person who rejects everything outside the envelope
        for a in store.awaiting_approval(cid):
            reject(store, a.id, reason="hotter than 400 K needs the safety officer", user="ada")
        time.sleep(0.1)
    attempts = store.attempts(cid)
    held = [a for a in attempts if "awaiting_approval" in [t[1] for t in store.transitions(a.id)]]
    ran = [a for a in attempts if store.measurement(a.id) is not None]
    assert held and ran, "Sobol points fall on both sides of 400 K"
    assert all(a.params["temperature"] > 400 for a in held)
    assert all(a.params["temperature"] <= 400 for a in ran)
    assert outcome["result"].n_measurements == 4
    store.close()


# -- killed while waiting ------------------------------------------------------------------------------
def _cli(args: list[str], cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "agent.cli", *args], cwd=cwd, env={**os.environ, "USER": "tester"},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)


def _reap(proc: subprocess.Popen[str], timeout: float = 180) -> tuple[int, str, str]:
    try:
        out, err = proc.communicate(timeout=timeout)
    finally:
        try:  # the dead campaign's Ray workers go with it
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return proc.returncode, out, err


def _command(args: list[str], cwd: Path) -> tuple[int, str, str]:
    return _reap(_cli(args, cwd), timeout=60)


def test_a_campaign_killed_while_waiting_resumes_waiting(tmp_path: Path) -> None:
    data = quickstart(tmp_path, approval={"mode": "manual", "poll_seconds": 0.1},
                      budgets={"max_measurements": 2, "max_wall_seconds": 300})
    data["instruments"][0]["count"] = 1
    (tmp_path / "manual.yaml").write_text(yaml.safe_dump(data))
    db = data["storage"]
    store = Store(db)
    proc = _cli(["run", str(tmp_path / "manual.yaml"), "--db", db, "--no-report", "--json"], tmp_path)
    try:
        first = _wait_for(lambda: store.awaiting_approval(), "the first proposal to wait")[0]
        proc.send_signal(signal.SIGKILL)
    finally:
        _reap(proc)
    cid = first.campaign_id
    assert store.attempt(first.id).state == AttemptState.AWAITING_APPROVAL  # the wait is store state
    code, out, _ = _command(["pending", "--db", db, "--json"], tmp_path)
    assert code == 0 and [r["attempt_id"] for r in json.loads(out)] == [first.id]

    resumed = _cli(["resume", cid, "--db", db, "--no-report", "--json"], tmp_path)
    try:
        _wait_for(lambda: store.campaign(cid).runs == 2, "the resume to start")
        time.sleep(2.0)  # resumed, and still waiting: nothing ran without a person
        assert store.attempt(first.id).state == AttemptState.AWAITING_APPROVAL and store.totals(cid)[0] == 0
        code, out, err = _command(["approve", first.id, "--db", db, "--edit", "time=20", "--json"], tmp_path)
        assert code == 0, err
        assert json.loads(out)["verdict"] == "edited" and json.loads(out)["user"] == "tester"
        second = _wait_for(lambda: [a for a in store.awaiting_approval(cid) if a.id != first.id], "the next proposal")[0]
        code, _, err = _command(["approve", second.id, "--db", db], tmp_path)
        assert code == 0, err
        code, out, err = _reap(resumed)
    finally:
        _reap(resumed)
    assert code == 3, err  # the measurement budget ran out
    assert json.loads(out)["n_measurements"] == 2
    assert store.measurement(first.id).params["time"] == 20.0
    assert [a.user for a in store.approvals(cid)] == ["tester", "tester"]
    store.close()


def test_bad_cli_decisions_are_refused_with_a_clear_message(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path}/labpilot.db"
    Store(db).close()
    code, _, err = _command(["approve", "nope-00001", "--db", db], tmp_path)
    assert code == 2 and "refused" in err and "no attempt 'nope-00001'" in err
    code, _, err = _command(["reject", "nope-00001", "--db", db], tmp_path)
    assert code == 2 and "--reason" in err
    code, out, _ = _command(["pending", "--db", db, "--json"], tmp_path)
    assert code == 0 and json.loads(out) == []


@pytest.mark.usefixtures("ray_local")
def test_a_campaign_that_stops_while_proposals_wait_refuses_them(tmp_path: Path) -> None:
    data = quickstart(tmp_path, approval={"mode": "manual", "poll_seconds": 0.1}, policy={"name": "sobol"},
                      budgets={"max_measurements": 5, "max_wall_seconds": 25})  # start-up included
    config = parse_campaign(data)
    with Store(config.storage) as store:
        result = run_campaign(config, store, campaign_id="nobody-fixed")  # nobody decides
        assert result.status == "budget_exhausted" and "max_wall_seconds" in result.stop_reason
        assert result.n_measurements == 0 and result.instrument_seconds == 0
        attempts = store.attempts("nobody-fixed")
        assert len(attempts) == 2 and store.awaiting_approval("nobody-fixed") == []
        assert all(a.state == AttemptState.REFUSED and "not decided before the campaign stopped (budget: max_wall_seconds"
                   in (a.reason or "") for a in attempts)
