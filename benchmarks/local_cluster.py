"""A real Ray cluster of two nodes on this machine, started the way a lab starts one (``ray start``).

For the cluster test (``tests/agent/test_cluster.py``) and the spread benchmark
(``benchmarks/cluster_spread.py``): a head node (the campaign PC, resource ``campaign_pc``) and a second
node (an instrument PC, resource ``reactor_pc``), each with one CPU, their own ports, one temp dir.
The instrument node can be killed alone (every process it started, SIGKILL: the PC loses power) and
started again with the same resources (the PC is back), as the node-loss test does.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import psutil

RAY = str(Path(sys.executable).with_name("ray"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class TwoNodeCluster:
    """A head node and an instrument node, started by ``ray start`` and killed (every process of both,
    found by the cluster's temp dir and port) by :meth:`stop` — ``ray stop`` would end every Ray on the machine."""

    def __init__(self) -> None:
        # A short path: Ray's Unix sockets live below it (a socket path may not exceed 107 bytes).
        self.temp_dir = tempfile.mkdtemp(prefix="lpray", dir="/tmp")
        self.port = _free_port()
        self.address = f"127.0.0.1:{self.port}"
        # Token authentication stays on (Ray's default for `ray start --head`); the other node and the
        # campaign must say they use it.
        self.env = {**os.environ, "RAY_AUTH_MODE": "token"}
        self.env.pop("RAY_ADDRESS", None)
        self.instrument_node: list[psutil.Process] = []  # the processes `ray start` left for the instrument node

    _COMMON = ("--node-ip-address=127.0.0.1", "--num-cpus=1", "--disable-usage-stats")

    def start(self) -> None:
        self._ray("start", "--head", f"--port={self.port}", f"--temp-dir={self.temp_dir}", "--include-dashboard=true",
                  "--dashboard-host=127.0.0.1", f"--dashboard-port={_free_port()}", "--resources={\"campaign_pc\": 1}",
                  *self._COMMON)
        self.start_instrument_node()

    def start_instrument_node(self) -> None:
        """(Re)start the instrument node: ``ray start`` joining the head, offering ``reactor_pc``. The
        processes it leaves (its raylet, log monitor; their children come later) are remembered: new
        processes of the cluster whose parent is not one of the cluster's (a new worker of the head is a
        child of the head's raylet, not the instrument node's)."""
        before = {p.pid for p in self.processes()}
        self._ray("start", f"--address={self.address}", "--resources={\"reactor_pc\": 2}", *self._COMMON)
        after = {p.pid: p for p in self.processes()}
        self.instrument_node = [p for pid, p in after.items() if pid not in before and _parent(p) not in after]

    def kill_instrument_node(self) -> list[int]:
        """The instrument PC goes down: SIGKILL every process of the instrument node (its raylet, the
        raylet's workers and agents, its log monitor) and nothing of the head. Returns the pids killed."""
        doomed = _with_descendants(self.instrument_node)
        _kill_and_wait(doomed)
        self.instrument_node = []
        return [p.pid for p in doomed]

    def _ray(self, *args: str) -> None:
        subprocess.run([RAY, *args], env=self.env, check=True, capture_output=True, text=True, timeout=180)

    def processes(self) -> list[psutil.Process]:
        """Every live process of this cluster (both nodes), found by its temp dir or port and as their children."""
        mine = []
        for p in psutil.process_iter(["cmdline"]):
            line = " ".join(p.info["cmdline"] or [])
            if self.temp_dir in line or f":{self.port}" in line:
                mine.append(p)
        return list({p.pid: p for p in _with_descendants(mine)}.values())

    def stop(self) -> None:
        _kill_and_wait(self.processes())
        shutil.rmtree(self.temp_dir, ignore_errors=True)


def _with_descendants(processes: list[psutil.Process]) -> list[psutil.Process]:
    found = list(processes)
    for p in processes:
        try:
            found.extend(p.children(recursive=True))
        except psutil.NoSuchProcess:
            pass
    return found


def _kill_and_wait(processes: list[psutil.Process]) -> None:
    """SIGKILL (a machine losing power) and wait until each is gone."""
    for p in processes:
        try:
            p.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(processes, timeout=20)


def _parent(p: psutil.Process) -> int | None:
    try:
        return p.ppid()
    except psutil.NoSuchProcess:
        return None
