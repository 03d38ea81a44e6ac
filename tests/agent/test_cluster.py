"""A real two-node Ray cluster: a head (the campaign's PC) and a second node that holds the instrument.

Both nodes are started with Ray's own ``ray start`` (the way a lab starts them), on this machine, with
their own temp dir and ports. The campaign names the instrument node's custom resource in its file
(``ray_resources``), runs as ``labpilot run`` with ``RAY_ADDRESS`` pointing at the head, and its
instrument actor must run on the instrument's node — read back from Ray's state API, which keeps the
node of every actor, dead or alive. A resource no node offers refuses to start instead of hanging.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
import yaml

from tests.agent.campaign_files import instrument_settings, quickstart

pytestmark = pytest.mark.timeout(420)

ROOT = Path(__file__).resolve().parents[2]
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
