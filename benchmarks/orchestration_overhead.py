"""Orchestration overhead per measurement: actor round trips + store writes of the real loop.

Runs the real ``CampaignRunner`` with a zero-cost synthetic instrument (no simulated exposure, no
sleeping), the Sobol policy (no model) and a target that is never met, so nearly all wall time is
orchestration: guard, Ray actor calls (check, measure, interpret), and every store write (decision,
proposed/validated/dispatched/measured/analysed, raw arrays, target log). Policy time recorded in the
decisions is subtracted. Goal (issue #2): ≤ 5 ms per measurement.

    python benchmarks/orchestration_overhead.py [--n 300] [--json] [--pg URL]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from pathlib import Path

import yaml
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from agent.campaign import CampaignRunner, new_campaign_id
from agent.config import parse_campaign
from agent.runtime import ray_runtime
from agent.store import Store

GOAL_MS = 5.0
ROOT = Path(__file__).resolve().parents[1]


def campaign(n: int, data_dir: str) -> dict:
    data = yaml.safe_load((ROOT / "experiments" / "quickstart.yaml").read_text())
    data["name"] = "overhead"
    data["data_dir"] = data_dir
    data["instruments"] = [{
        "name": "fast", "kind": "synthetic", "count": 1,
        "settings": {"synthesis_seconds": 0, "motion_seconds": 0, "overhead_seconds": 0, "noise_sd": 0.01},
    }]
    data["analysis"] = {"kind": "scalar", "settings": {"key": "yield"}}
    data["policy"] = {"name": "sobol", "options": {}}
    data["targets"] = [{"name": "never", "kind": "relative_uncertainty", "estimate": "yield", "goal": 1e-12}]
    data["budgets"] = {"max_measurements": n}
    return data


def measure(url: str, n: int, data_dir: str) -> dict[str, float]:
    config = parse_campaign(campaign(n, data_dir))
    store = Store(url)
    runner = CampaignRunner(config, store, new_campaign_id(config.name))
    started = time.perf_counter()
    result = asyncio.run(runner.run())
    wall = time.perf_counter() - started
    decisions = sum(d.decision_seconds for d in store.decisions(result.campaign_id))
    store.close()
    assert result.n_measurements == n, result
    per = (wall - decisions) / n * 1000
    return {"n": n, "wall_seconds": wall, "policy_seconds": decisions, "overhead_ms_per_measurement": per}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=300)
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/test", help="PostgreSQL URL ('' to skip)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    console = Console(stderr=True)
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp, ray_runtime(num_cpus=2):
        backends = {"sqlite": f"sqlite:///{tmp}/overhead.db"}
        if args.pg:
            backends["postgresql"] = args.pg
        with Progress(console=console, transient=True) as bar:
            task = bar.add_task("backends", total=len(backends) + 1)
            measure(backends["sqlite"].replace("overhead.db", "warmup.db"), 20, tmp)  # start Ray workers once
            bar.advance(task)
            for name, url in backends.items():
                results[name] = measure(url, args.n, tmp)
                bar.advance(task)
    out = {"goal_ms": GOAL_MS, "backends": results}
    if args.json:
        print(json.dumps(out))
        return
    table = Table("store", "measurements", "wall s", "policy s", "overhead ms/measurement", "goal ≤ 5 ms",
                  title="Orchestration overhead per measurement")
    for name, r in results.items():
        ok = r["overhead_ms_per_measurement"] <= GOAL_MS
        table.add_row(name, str(int(r["n"])), f"{r['wall_seconds']:.2f}", f"{r['policy_seconds']:.2f}",
                      f"{r['overhead_ms_per_measurement']:.2f}", "[green]met[/]" if ok else "[red]missed[/]")
    Console().print(table)


if __name__ == "__main__":
    main()
