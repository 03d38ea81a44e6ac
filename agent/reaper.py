"""The reaper of a local Ray: ends every process a campaign's Ray started when the campaign process
ends, however it ends (SIGKILL included), so a crashed campaign leaves nothing running on the lab PC.

Why: Ray ties its GCS and raylet to the process that called ``ray.init`` (they die with it), but the
raylet's own children — ``DashboardAgent``, ``RuntimeEnvAgent`` — outlive a killed campaign. The
reaper is a small process started beside Ray (``agent/runtime.py``), run as a script (no labpilot or
Ray import), before ``ray.init``.

How it knows the campaign's Ray processes: the campaign starts its Ray node in a temp folder of its
own (``ray.init(_temp_dir=…)``, ``agent/runtime.py``). Every process of that node holds files in it
from birth to death — the GCS and raylet their logs, the raylet's agents and workers the raylet's log
files they inherit, then their own; the command lines name it until Ray retitles the process. When the
reaper's stdin closes — the campaign closed it at shutdown, or the kernel did as the campaign died — it
SIGKILLs every process that holds a file in (or names) that folder. After a crash it sweeps again until
nothing has turned up for ``SETTLE_SECONDS``: a raylet that was starting an agent at the kill may fork
it a moment later; the folder (Ray's logs) is kept. After a clean end the folder is removed.

Why not note the campaign's process tree by polling (the earlier design): on a loaded machine the
reaper could be descheduled for over a second while Ray started, note nothing, and the agents of a
raylet it never saw survived (about one kill in 200 in the chaos benchmark). Why not a marker in the
environment: Ray retitles its agents and workers (``setproctitle``), which overwrites what
``/proc/<pid>/environ`` shows. Open files are there whatever the reaper was doing.

Usage: ``python agent/reaper.py <campaign pid> <the node's temp folder>`` with a pipe on stdin.
"""

from __future__ import annotations

import os
import shutil
import sys
import time

import psutil

SETTLE_SECONDS = 1.0
"""After a crash, sweeping stops once this long has passed without finding a process to kill."""

SWEEP_INTERVAL_SECONDS = 0.2
GIVE_UP_SECONDS = 15.0
"""After a crash, the longest the reaper keeps sweeping (a raylet spawning without end is not expected)."""

LOG = os.environ.get("LABPILOT_REAPER_LOG")
"""A file the reaper appends what it killed to (for diagnosing a leak; unset: no log)."""


def _log(message: str) -> None:
    if LOG:
        with open(LOG, "a") as f:
            f.write(f"{time.time():.3f} reaper {os.getpid()}: {message}\n")


def _holds(p: psutil.Process, folder: str) -> bool:
    """Whether the process names ``folder`` on its command line or holds a file in it open."""
    return any(folder in part for part in p.cmdline()) or any(f.path.startswith(folder) for f in p.open_files())


def owned(folder: str, spare: int) -> list[psutil.Process]:
    """The processes of the Ray node kept in ``folder``, but for ``spare`` (the campaign: the driver holds
    files there too) and this reaper."""
    folder = os.path.join(folder, "")  # "/tmp/ray/lp-ab/", so that "/tmp/ray/lp-abc" is not taken for it
    out = []
    for p in psutil.process_iter():
        try:
            if p.pid not in (spare, os.getpid()) and _holds(p, folder):
                out.append(p)
        except psutil.Error:
            pass  # gone, a zombie, or not ours to read
    return out


def sweep(folder: str, spare: int) -> int:
    """SIGKILL every process of the node kept in ``folder`` (but ``spare``) that still runs; how many."""
    killed = 0
    for p in owned(folder, spare):
        try:
            if p.status() != psutil.STATUS_ZOMBIE:
                _log(f"kill {p.pid} {p.name()}")
                p.kill()
                killed += 1
        except psutil.Error:
            pass  # ended meanwhile
    return killed


def _campaign(pid: int) -> psutil.Process | None:
    try:
        return psutil.Process(pid)
    except psutil.Error:
        return None  # died before this reaper looked


def _ended(campaign: psutil.Process | None) -> bool:
    """The campaign died (a zombie until its parent reaps it counts as dead)."""
    try:
        return campaign is None or not campaign.is_running() or campaign.status() == psutil.STATUS_ZOMBIE
    except psutil.Error:
        return True


def sweep_until_settled(folder: str, spare: int) -> int:
    """Sweep until nothing to kill has turned up for ``SETTLE_SECONDS`` (or ``GIVE_UP_SECONDS``)."""
    killed, start = 0, time.monotonic()
    last_found = start
    while time.monotonic() - last_found < SETTLE_SECONDS and time.monotonic() - start < GIVE_UP_SECONDS:
        found = sweep(folder, spare)
        if found:
            killed += found
            last_found = time.monotonic()
        time.sleep(SWEEP_INTERVAL_SECONDS)
    return killed


def watch(campaign_pid: int, folder: str) -> int:
    """Wait until stdin closes, then kill the processes of the Ray node kept in ``folder``; how many."""
    campaign = _campaign(campaign_pid)
    while sys.stdin.buffer.read1(4096):  # nobody writes: this returns only at EOF
        pass
    crashed = _ended(campaign)
    _log(f"EOF; campaign {campaign_pid} ended: {crashed}")
    if crashed:
        return sweep_until_settled(folder, campaign_pid)  # the node's logs stay: they say what happened
    killed = sweep(folder, campaign_pid)
    # A node that ended well leaves nothing worth reading; kept, these folders piled up (~200 KB each).
    shutil.rmtree(folder, ignore_errors=True)
    return killed


if __name__ == "__main__":
    watch(int(sys.argv[1]), sys.argv[2])
