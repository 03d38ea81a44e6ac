"""A real Ray cluster of two nodes on this machine, started the way a lab starts one (``ray start``).

For the cluster test (``tests/agent/test_cluster.py``) and the spread benchmark
(``benchmarks/cluster_spread.py``): a head node (the campaign PC, resource ``campaign_pc``) and a second
node (an instrument PC, resource ``reactor_pc``), each with one CPU, their own ports, one temp dir.
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

    def start(self) -> None:
        common = ["--node-ip-address=127.0.0.1", "--num-cpus=1", "--disable-usage-stats"]
        self._ray("start", "--head", f"--port={self.port}", f"--temp-dir={self.temp_dir}", "--include-dashboard=true",
                  "--dashboard-host=127.0.0.1", f"--dashboard-port={_free_port()}", "--resources={\"campaign_pc\": 1}", *common)
        self._ray("start", f"--address={self.address}", "--resources={\"reactor_pc\": 2}", *common)

    def _ray(self, *args: str) -> None:
        subprocess.run([RAY, *args], env=self.env, check=True, capture_output=True, text=True, timeout=180)

    def processes(self) -> list[psutil.Process]:
        mine = []
        for p in psutil.process_iter(["cmdline"]):
            line = " ".join(p.info["cmdline"] or [])
            if self.temp_dir in line or f":{self.port}" in line:
                mine.append(p)
        for p in list(mine):
            try:
                mine.extend(p.children(recursive=True))
            except psutil.NoSuchProcess:
                pass
        return list({p.pid: p for p in mine}.values())

    def stop(self) -> None:
        processes = self.processes()
        for p in processes:
            try:
                p.kill()
            except psutil.NoSuchProcess:
                pass
        psutil.wait_procs(processes, timeout=20)
        shutil.rmtree(self.temp_dir, ignore_errors=True)
