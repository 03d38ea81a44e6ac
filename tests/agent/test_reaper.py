"""The reaper's sweep for orphans of a raylet it never noted (one started just before a crash): real
processes that carry Ray's ``RAY_RAYLET_PID`` and a Ray-folder command line, as Ray's agents do."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid

import psutil
import pytest

from agent.reaper import _orphans_of_dead_raylets

pytestmark = pytest.mark.timeout(60)


def _sleeper(marker: str, raylet_pid: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "RAY_RAYLET_PID": str(raylet_pid)}
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", f"{marker}/agent.py"], env=env)


def _dead_pid() -> int:
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    return gone.pid


def test_only_orphans_of_a_dead_raylet_started_after_the_reaper_are_swept() -> None:
    marker = f"/tmp/fake-ray-{uuid.uuid4().hex}"
    old_orphan = _sleeper(marker, _dead_pid())  # started before this reaper: not its campaign's
    time.sleep(0.1)
    reaper = subprocess.Popen([sys.executable, "-c", "pass"])  # stands for the reaper: its start time, on psutil's clock
    since = psutil.Process(reaper.pid).create_time()
    reaper.wait()
    time.sleep(0.1)
    orphan = _sleeper(marker, _dead_pid())
    live = _sleeper(marker, os.getpid())  # its raylet runs: another campaign's, never touched
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # until the children's environments are readable
            found = {p.pid for p in _orphans_of_dead_raylets(since, marker)}
            if orphan.pid in found:
                break
            time.sleep(0.1)
        assert found == {orphan.pid}
        assert psutil.Process(live.pid).is_running()
    finally:
        for p in (old_orphan, orphan, live):
            p.kill()
            p.wait()
