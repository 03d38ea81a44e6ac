"""The reaper (``agent/reaper.py``) ends every process of a campaign's Ray node, found by the files they
hold in the node's own temp folder — also when the reaper was descheduled all the while Ray started
(the chaos benchmark's one leak in 200 kills: a starved reaper that had noted nothing)."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import yaml

from agent.reaper import owned, sweep

pytestmark = pytest.mark.timeout(120)

ROOT = Path(__file__).resolve().parents[2]


def _holding(path: Path) -> subprocess.Popen[bytes]:
    """A process that keeps ``path`` open, as a Ray agent keeps the raylet's log file."""
    return subprocess.Popen([sys.executable, "-c", f"f = open({str(path)!r}, 'a'); import time; time.sleep(60)"])


def _until(condition, seconds: float = 10) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.05)


def test_only_the_processes_holding_files_in_the_node_folder_are_swept(tmp_path: Path) -> None:
    ours, theirs = tmp_path / "lp-1", tmp_path / "lp-10"  # a folder whose name extends ours is not ours
    ours.mkdir()
    theirs.mkdir()
    agent, driver, other = _holding(ours / "raylet.out"), _holding(ours / "driver.log"), _holding(theirs / "raylet.out")
    named = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", f"--session-dir={ours}/session_1"])
    try:
        _until(lambda: {agent.pid, named.pid} <= {p.pid for p in owned(str(ours), driver.pid)})
        assert {p.pid for p in owned(str(ours), driver.pid)} == {agent.pid, named.pid}  # the driver is spared
        assert sweep(str(ours), driver.pid) == 2
        _until(lambda: agent.poll() is not None and named.poll() is not None)
        assert agent.poll() == named.poll() == -signal.SIGKILL
        assert driver.poll() is None and other.poll() is None
    finally:
        for p in (agent, driver, other, named):
            p.kill()
            p.wait()


def _campaign_file(tmp_path: Path) -> Path:
    data = yaml.safe_load((ROOT / "experiments" / "quickstart.yaml").read_text())
    data["instruments"][0]["settings"]["realtime_factor"] = 0.001
    data["budgets"] = {"max_measurements": 200}
    data["data_dir"] = str(tmp_path / "data")
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _reaper_of(campaign: psutil.Process) -> psutil.Process | None:
    with contextlib.suppress(psutil.Error):
        return next((c for c in campaign.children() if "reaper.py" in " ".join(c.cmdline())), None)
    return None


def test_a_reaper_starved_while_ray_started_still_leaves_nothing_behind(tmp_path: Path) -> None:
    """The reaper is stopped (SIGSTOP) from its first instant until after the campaign is SIGKILLed,
    as a loaded machine may deschedule it: every process the campaign's Ray started still ends."""
    proc = subprocess.Popen([sys.executable, "-m", "agent.cli", "run", str(_campaign_file(tmp_path)), "--json"],
                            cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(ROOT)}, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    campaign = psutil.Process(proc.pid)
    reaper = None
    try:
        deadline = time.monotonic() + 90
        while reaper is None and time.monotonic() < deadline:
            reaper = _reaper_of(campaign)
        assert reaper is not None, "no reaper started"
        reaper.suspend()
        names = lambda: {p.name() for p in campaign.children(recursive=True)}  # noqa: E731
        _until(lambda: {"ray::DashboardAgent", "ray::RuntimeEnvAgent"} <= names(), 90)
        descendants = [p for p in campaign.children(recursive=True) if p.pid != reaper.pid]
        assert {"raylet", "ray::DashboardAgent", "ray::RuntimeEnvAgent"} <= {p.name() for p in descendants}
        folder = Path(reaper.cmdline()[-1])
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        reaper.resume()
        _, alive = psutil.wait_procs(descendants, timeout=15)
        assert not alive, [(p.pid, p.name()) for p in alive]
        reaper.wait(timeout=30)
        assert (folder / "session_latest").exists()  # a crashed node's logs are kept for whoever looks into it
        shutil.rmtree(folder)
    finally:
        if reaper is not None:
            with contextlib.suppress(psutil.Error):
                reaper.resume()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # whatever a failing run left: not into the next test


def test_a_node_that_ended_well_leaves_no_temp_folder_behind() -> None:
    script = ("import ray\nfrom agent.runtime import ray_runtime\nwith ray_runtime():\n"
              "    print(ray._private.worker._global_node.get_temp_dir_path())\n")
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                         capture_output=True, text=True, timeout=100, check=True).stdout
    folder = Path(out.strip().splitlines()[-1])
    assert folder.name.startswith("lp-")
    assert not folder.exists()
