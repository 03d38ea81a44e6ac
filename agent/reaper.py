"""The reaper of a local Ray: ends every process a campaign's Ray started when the campaign process
ends, however it ends (SIGKILL included), so a crashed campaign leaves nothing running on the lab PC.

Why: Ray ties its GCS and raylet to the process that called ``ray.init`` (they die with it), but the
raylet's own children — ``DashboardAgent``, ``RuntimeEnvAgent`` — outlive a killed campaign. The
reaper is a small process started beside Ray (``agent/runtime.py``), run as a script (no labpilot or
Ray import, so it starts in ~50 ms), before ``ray.init`` (a campaign killed while Ray starts leaks
nothing either). Every ``POLL_SECONDS`` it notes the campaign's children that run Ray's code (GCS,
raylet, monitors: their command line names Ray's package folder) — never the campaign's other
children, which are not Ray's to end — and their descendants; when its stdin closes — the campaign closed it at shutdown, or
the kernel did as the campaign died — it SIGKILLs every noted process still running (psutil checks
creation times, so a reused process id is never hit), their own children, and every process whose
environment names one of the noted raylets (``RAY_RAYLET_PID``: the agents, orphaned once the raylet died).

Usage: ``python agent/reaper.py <campaign pid> <Ray's package folder>`` with a pipe on stdin.
"""

from __future__ import annotations

import os
import select
import sys
import time

import psutil

POLL_SECONDS = 0.5
"""How often the campaign's process tree is noted: a process started and orphaned within this
interval before a kill may be missed (Ray's agents start with the raylet, long before)."""


SECOND_SWEEP_SECONDS = 1.0
"""After a crash, how long the reaper waits for Ray processes that share the campaign's fate to die
before looking again for their orphans."""


def _descendants(parent: psutil.Process) -> list[psutil.Process]:
    try:
        return parent.children(recursive=True)
    except psutil.Error:  # the campaign is gone: keep what was noted before
        return []


def _raylet_children(raylet_pids: set[int]) -> list[psutil.Process]:
    """Processes a raylet of ours started (its agents, its workers), found by ``RAY_RAYLET_PID`` in
    their environment: after the raylet died they are orphans, no longer its children."""
    wanted, out = {str(pid) for pid in raylet_pids}, []
    for p in psutil.process_iter():
        try:
            if p.environ().get("RAY_RAYLET_PID") in wanted:
                out.append(p)
        except psutil.Error:
            pass  # gone, or not ours to read
    return out


def _orphans_of_dead_raylets(since: float, ray_dir: str) -> list[psutil.Process]:
    """Ray's processes started after ``since`` (this reaper's start) whose raylet (``RAY_RAYLET_PID``)
    no longer runs: a raylet started within ``POLL_SECONDS`` of the kill was never noted, and its agents
    outlive it. A live raylet's processes (another campaign's, a cluster node's) are never touched."""
    out = []
    for p in psutil.process_iter():
        try:
            raylet = p.environ().get("RAY_RAYLET_PID")
            if (raylet and raylet.isdigit() and p.create_time() >= since and not psutil.pid_exists(int(raylet))
                    and any(ray_dir in part for part in p.cmdline())):
                out.append(p)
        except psutil.Error:
            pass  # gone, or not ours to read
    return out


def _kill(noted: dict[tuple[int, float], psutil.Process], since: float, ray_dir: str) -> int:
    """SIGKILL the noted processes that still run, their children, and the raylets' orphans; how many."""
    raylets = {p.pid for p in noted.values() if _name(p) == "raylet"}
    victims = []
    for p in noted.values():
        if p.is_running():
            victims.append(p)
            victims += _descendants(p)
    victims += _raylet_children(raylets) if raylets else []
    victims += _orphans_of_dead_raylets(since, ray_dir)
    killed = 0
    for p in victims:
        try:
            if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                p.kill()
                killed += 1
        except psutil.Error:
            pass  # ended meanwhile
    return killed


def _ended(campaign: psutil.Process) -> bool:
    """The campaign died (a zombie until its parent reaps it counts as dead)."""
    try:
        return not campaign.is_running() or campaign.status() == psutil.STATUS_ZOMBIE
    except psutil.Error:
        return True


def _name(p: psutil.Process) -> str:
    try:
        return p.name()
    except psutil.Error:
        return ""


def _ray_children(campaign: psutil.Process, ray_dir: str) -> list[psutil.Process]:
    """The campaign's children that Ray started: their command line runs something from Ray's package."""
    out = []
    for child in _descendants_direct(campaign):
        try:
            # (the reaper is a child too, and names Ray's folder in its own arguments)
            if child.pid != os.getpid() and any(ray_dir in part for part in child.cmdline()):
                out.append(child)
        except psutil.Error:
            pass
    return out


def _descendants_direct(parent: psutil.Process) -> list[psutil.Process]:
    try:
        return parent.children()
    except psutil.Error:
        return []


def watch(campaign_pid: int, ray_dir: str) -> int:
    """Note Ray's processes under the campaign until stdin closes, then kill what is left of them;
    how many were killed."""
    try:
        campaign = psutil.Process(campaign_pid)
    except psutil.NoSuchProcess:
        return 0
    since = psutil.Process().create_time()
    noted: dict[tuple[int, float], psutil.Process] = {}
    roots: dict[tuple[int, float], psutil.Process] = {}
    while True:
        for r in _ray_children(campaign, ray_dir):
            try:
                roots.setdefault((r.pid, r.create_time()), r)
            except psutil.Error:
                pass
        for p in [*roots.values(), *(d for r in roots.values() for d in _descendants(r))]:
            try:
                noted.setdefault((p.pid, p.create_time()), p)
            except psutil.Error:
                pass
        ready, _, _ = select.select([sys.stdin], [], [], POLL_SECONDS)
        if ready and not sys.stdin.buffer.read1(4096):  # EOF: the campaign closed the pipe, or died
            killed = _kill(noted, since, ray_dir)
            if _ended(campaign):
                # A crash: a raylet started just before it (never noted) dies with the campaign a moment
                # later; then its agents are orphans of a dead raylet, found by a second sweep.
                time.sleep(SECOND_SWEEP_SECONDS)
                killed += _kill({}, since, ray_dir)
            return killed


if __name__ == "__main__":
    watch(int(sys.argv[1]), sys.argv[2])
