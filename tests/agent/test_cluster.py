"""A real two-node Ray cluster: a head (the campaign's PC) and a second node that holds the instrument.

Both nodes are started with Ray's own ``ray start`` (the way a lab starts them), on this machine, with
their own temp dir and ports. The campaign names the instrument node's custom resource in its file
(``ray_resources``), runs as ``labpilot run`` with ``RAY_ADDRESS`` pointing at the head, and its
instrument actor must run on the instrument's node — read back from Ray's state API, which keeps the
node of every actor, dead or alive. A resource no node offers refuses to start instead of hanging.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from benchmarks.local_cluster import TwoNodeCluster
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
