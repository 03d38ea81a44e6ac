"""Ctrl-C on `labpilot run`: the campaign is recorded as interrupted, the command says how to resume it
(on stderr, and in --json as an object), exits 130, and the printed command resumes it."""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.agent.campaign_files import instrument_settings, quickstart

pytestmark = [pytest.mark.timeout(300), pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-c", "from agent.cli import main; main()"]  # what the labpilot script runs


def _first_measurement(url: str, process: subprocess.Popen[str], deadline_s: float) -> str:
    """The id of the campaign once its first measurement is in the store."""
    from agent.store import Store, StoreUnavailable

    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        assert process.poll() is None, "the campaign ended before it was interrupted"
        try:
            with Store(url, existing=True) as store:
                for campaign in store.campaigns():
                    if store.totals(campaign.id)[0] >= 1:
                        return campaign.id
        except StoreUnavailable:
            pass  # not created yet
        time.sleep(0.3)
    raise AssertionError("no measurement within the deadline")


def test_ctrl_c_prints_the_resume_command_exits_130_and_the_campaign_resumes(tmp_path: Path) -> None:
    data = quickstart(tmp_path, policy={"name": "sobol", "options": {}}, budgets={"max_measurements": 6})
    instrument_settings(data, realtime_factor=0.0015)  # ~2.8 s of real time per measurement
    file = tmp_path / "c.yaml"
    file.write_text(yaml.safe_dump(data))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "LABPILOT_DB": ""}
    run = subprocess.Popen([*CLI, "run", str(file), "--json", "--no-report"], cwd=tmp_path, env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        campaign_id = _first_measurement(data["storage"], run, 200)
        run.send_signal(signal.SIGINT)
        stdout, stderr = run.communicate(timeout=60)
    finally:
        if run.poll() is None:
            run.kill()
    assert run.returncode == 130, stderr
    answer = json.loads(stdout.strip().splitlines()[-1])
    assert answer["status"] == "interrupted" and answer["campaign_id"] == campaign_id
    assert answer["resume"] == f"labpilot resume {campaign_id} --db {data['storage']}"  # not the default store
    assert f"interrupted — resume with: {answer['resume']}" in " ".join(stderr.split())
    assert "Traceback" not in stderr

    from agent.store import Store

    with Store(data["storage"], existing=True) as store:
        assert store.campaign(campaign_id).status.value == "interrupted"
    words = shlex.split(answer["resume"])
    assert words[:2] == ["labpilot", "resume"]
    again = subprocess.run([*CLI, *words[1:], "--json", "--no-report"], cwd=tmp_path, env=env, capture_output=True,
                           text=True, timeout=200)
    assert again.returncode == 3, again.stderr  # the budget of 6 measurements ends it
    summary = json.loads(again.stdout.strip().splitlines()[-1])
    assert summary["campaign_id"] == campaign_id and summary["n_measurements"] == 6


def _measurements(url: str, campaign_id: str) -> int:
    from agent.store import Store

    with Store(url, existing=True) as store:
        return store.totals(campaign_id)[0]


def _terminate_after(url: str, campaign_id: str, process: subprocess.Popen[str], n: int) -> None:
    """SIGTERM the process once the campaign holds ``n`` measurements (a service manager stopping it)."""
    end = time.monotonic() + 200
    while _measurements(url, campaign_id) < n and time.monotonic() < end:
        assert process.poll() is None, "the campaign ended before it was terminated"
        time.sleep(0.3)
    process.send_signal(signal.SIGTERM)
    process.communicate(timeout=60)


def test_sigterm_records_the_campaign_interrupted_on_run_and_on_resume(tmp_path: Path) -> None:
    """SIGTERM (systemd, `kill`) ends a run or a resume as `interrupted` — resumable, not `failed`."""
    from agent.store import Store

    data = quickstart(tmp_path, policy={"name": "sobol", "options": {}}, budgets={"max_measurements": 5})
    instrument_settings(data, realtime_factor=0.0015)
    file = tmp_path / "c.yaml"
    file.write_text(yaml.safe_dump(data))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "LABPILOT_DB": ""}
    quiet = {"cwd": tmp_path, "env": env, "stdout": subprocess.PIPE, "stderr": subprocess.PIPE, "text": True}
    run = subprocess.Popen([*CLI, "run", str(file), "--json", "--no-report"], **quiet)
    try:
        campaign_id = _first_measurement(data["storage"], run, 200)
        _terminate_after(data["storage"], campaign_id, run, 1)
        resume = subprocess.Popen([*CLI, "resume", campaign_id, "--db", data["storage"], "--json", "--no-report"], **quiet)
        _terminate_after(data["storage"], campaign_id, resume, _measurements(data["storage"], campaign_id) + 1)
    finally:
        for process in (run, locals().get("resume")):
            if process is not None and process.poll() is None:
                process.kill()
    with Store(data["storage"], existing=True) as store:
        campaign = store.campaign(campaign_id)
        assert campaign.status.value == "interrupted", campaign.stop_reason
        assert "SIGTERM" in (campaign.stop_reason or "")
