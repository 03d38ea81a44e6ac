"""Many simulated campaigns spread over a real two-node Ray cluster.

Starts a head and a second node with ``ray start`` on this machine (``benchmarks/local_cluster.py``:
one CPU each, token authentication on), connects as a driver, and runs ``--campaigns`` small quick-start
campaigns (Sobol policy, ``--measurements`` each, zero-time simulated reactors, SQLite store per
campaign) as Ray tasks of one CPU, each campaign's services in its task's process — the way
``labpilot bench`` runs its families. Reports where each campaign ran, campaigns per minute, and
whether every campaign's records are complete (n measurements, each attempt analysed once). Both
nodes' processes are killed at the end.

    python -m benchmarks.cluster_spread [--campaigns 16] [--measurements 6] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections import Counter
from pathlib import Path
from typing import Any

from benchmarks.local_cluster import TwoNodeCluster


def _document(folder: Path, measurements: int) -> dict[str, Any]:
    return {
        "name": "spread", "seed": 1, "storage": f"sqlite:///{folder}/labpilot.db", "data_dir": str(folder / "data"),
        "design_space": {"parameters": [{"name": "temperature", "type": "continuous", "low": 300.0, "high": 500.0},
                                        {"name": "time", "type": "continuous", "low": 1.0, "high": 60.0}]},
        "instruments": [{"name": "reactor", "kind": "synthetic",
                         "settings": {"function": "peaks", "output": "yield", "noise_sd": 0.02, "realtime_factor": 0.0}}],
        "analysis": {"kind": "scalar", "settings": {"key": "yield"}},
        "objective": {"estimate": "yield", "direction": "maximize"},
        "policy": {"name": "sobol", "options": {}},
        "targets": [{"name": "map", "kind": "max_posterior_std", "goal": 1e-9, "min_observations": 1000}],
        "budgets": {"max_measurements": measurements},
    }


def one_campaign(index: int, measurements: int) -> dict[str, Any]:
    """Run one campaign in this task's process; where it ran and whether its records are whole."""
    import ray

    from agent.bench.common import run_campaign

    started = time.perf_counter()
    result, _ = run_campaign(lambda folder: _document(folder, measurements), f"spread-{index}")
    return {
        "index": index, "node": ray.get_runtime_context().get_node_id(), "seconds": time.perf_counter() - started,
        "n_measurements": result.n_measurements, "complete": result.n_measurements == measurements,
    }


def run(campaigns: int, measurements: int) -> dict[str, Any]:
    # Ray reads the authentication mode when it is imported: the cluster's token mode, set first.
    os.environ["RAY_AUTH_MODE"] = "token"
    import ray

    from agent.bench.common import run_tasks

    cluster = TwoNodeCluster()
    try:
        cluster.start()
        ray.init(address=cluster.address, logging_level="ERROR", log_to_driver=False)
        started = time.perf_counter()
        results = run_tasks(one_campaign, [(i, measurements) for i in range(campaigns)])
        wall = time.perf_counter() - started
        ray.shutdown()
    finally:
        cluster.stop()
    nodes = Counter(r["node"] for r in results)
    return {
        "campaigns": campaigns, "measurements_each": measurements, "wall_seconds": round(wall, 1),
        "campaigns_per_minute": round(60 * campaigns / wall, 1), "nodes_used": len(nodes),
        "campaigns_per_node": sorted(nodes.values(), reverse=True),
        "complete": sum(r["complete"] for r in results), "left_processes": len(cluster.processes()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--campaigns", type=int, default=16)
    parser.add_argument("--measurements", type=int, default=6)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    summary = run(args.campaigns, args.measurements)
    if args.json:
        print(json.dumps(summary))
        return
    print(f"{summary['complete']}/{summary['campaigns']} campaigns complete on {summary['nodes_used']} nodes "
          f"{summary['campaigns_per_node']}, {summary['campaigns_per_minute']} campaigns/min "
          f"({summary['wall_seconds']} s); processes left after: {summary['left_processes']}")


if __name__ == "__main__":
    main()
