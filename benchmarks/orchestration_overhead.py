"""Orchestration overhead per measurement: actor round trips + store writes of the real loop.

Two figures per store backend:
- ``components``: one ``measure`` round trip to a Ray instrument actor around a zero-time driver,
  plus the store writes one measurement needs (decision with guard verdict and dispatch, carrying the
  previous analysis with its target log; measured with raw arrays) — the issue's definition, "actor
  round trip + store writes";
- ``full loop``: the steady-state wall time per measurement of the whole real loop (below).

Runs the real ``CampaignRunner`` with a zero-cost synthetic instrument (no simulated exposure, no
sleeping), the Sobol policy (no model) and a target that is never met, so nearly all wall time is
orchestration: guard, Ray actor calls (check, measure, interpret), and every store write (decision,
proposed/validated/dispatched/measured/analysed, raw arrays, target log). Policy time recorded in the
decisions is subtracted. The instrument keeps no data files (``journal: false``): its cost is zero.

Two paths: the default one (Ray actors for the instrument and the analysis) and the in-process fast
path (campaign ``in_process: true``: driver and analysis called on the loop, no actor, no thread).
For each run: the median ms per measurement at steady state, the campaign process's CPU ms per
measurement (a machine shared with other work stretches wall time, not CPU time), and the drift —
the median interval between consecutive analysed measurements over the last 10 % against the first
10 %. The reference, measured in the same run: bluesky's RunEngine per step, ``count([det], num=N)``
with ophyd.sim's ``det`` (no persistence of its documents). Goals (issue #15): whole loop ≤ 3 ms per
measurement on SQLite, ≤ 5 ms on PostgreSQL, drift < 5 % over 10⁴ measurements.

    python benchmarks/orchestration_overhead.py [--n 300] [--in-process] [--json] [--pg URL] [--no-components]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from agent.campaign import CampaignRunner, new_campaign_id
from agent.config import parse_campaign
from agent.runtime import ray_runtime
from agent.store import Store

GOAL_MS = {"sqlite": 3.0, "postgresql": 5.0}  # whole loop per measurement (issue #15)
COMPONENTS_GOAL_MS = 5.0  # actor round trip + store writes (issue #2)
DRIFT_GOAL = 0.05
ROOT = Path(__file__).resolve().parents[1]


def campaign(n: int, data_dir: str) -> dict:
    data = yaml.safe_load((ROOT / "experiments" / "quickstart.yaml").read_text())
    data["name"] = "overhead"
    data["data_dir"] = data_dir
    data["instruments"] = [{
        "name": "fast", "kind": "synthetic", "count": 1,
        "settings": {"synthesis_seconds": 0, "motion_seconds": 0, "overhead_seconds": 0, "noise_sd": 0.01, "journal": False},
    }]
    data["analysis"] = {"kind": "scalar", "settings": {"key": "yield"}}
    data["policy"] = {"name": "sobol", "options": {}}
    data["targets"] = [{"name": "never", "kind": "relative_uncertainty", "estimate": "yield", "goal": 1e-12}]
    data["budgets"] = {"max_measurements": n}
    return data


def measure(url: str, n: int, data_dir: str, *, in_process: bool = False) -> dict[str, float]:
    """One whole campaign of ``n`` measurements: steady-state ms per measurement, CPU, drift."""
    import statistics

    config = parse_campaign({**campaign(n, data_dir), "in_process": in_process})
    store = Store(url)
    cpu_at: dict[int, float] = {}  # measurements so far → this process's CPU seconds when the loop first saw them

    def seen(progress: Any) -> None:
        cpu_at.setdefault(progress.n_measurements, time.process_time())

    runner = CampaignRunner(config, store, new_campaign_id(config.name), on_progress=seen)
    started, cpu = time.perf_counter(), time.process_time()
    result = asyncio.run(runner.run())
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    # Steady state: from the first analysed measurement to the last (the target log is written
    # after each), so actor start-up and shutdown — paid once per campaign — are reported apart.
    log = store.target_evaluations(result.campaign_id)
    steady = log[-1].wall_seconds - log[0].wall_seconds
    decisions = store.decisions(result.campaign_id)
    policy = sum(d.decision_seconds for d in decisions[1:])
    store.close()
    assert result.n_measurements == n, result
    per = (steady - policy) / (log[-1].n_measurements - log[0].n_measurements) * 1000
    # Per measurement: the interval between consecutive target-log entries, less its decision's policy time.
    intervals = [(b.wall_seconds - a.wall_seconds - d.decision_seconds) * 1000
                 for a, b, d in zip(log, log[1:], decisions[1:])]
    tenth = max(len(intervals) // 10, 1)
    first, last = statistics.median(intervals[:tenth]), statistics.median(intervals[-tenth:])
    # The same in CPU time of the campaign process (policy included): what other work on a shared
    # machine does not stretch, so its drift is the loop's own.
    counts = sorted(cpu_at)
    cpu_steps = [(cpu_at[b] - cpu_at[a]) / (b - a) * 1000 for a, b in zip(counts, counts[1:]) if a >= 1]
    cpu_tenth = max(len(cpu_steps) // 10, 1)
    cpu_first, cpu_last = statistics.median(cpu_steps[:cpu_tenth]), statistics.median(cpu_steps[-cpu_tenth:])
    policy_first = statistics.median(d.decision_seconds * 1000 for d in decisions[1:tenth + 1])
    policy_last = statistics.median(d.decision_seconds * 1000 for d in decisions[-tenth:])
    return {
        "n": n, "wall_seconds": wall, "startup_and_shutdown_seconds": wall - steady, "policy_seconds": policy,
        "overhead_ms_per_measurement": per, "median_ms_per_measurement": statistics.median(intervals),
        "cpu_ms_per_measurement": cpu / n * 1000,
        "first_tenth_median_ms": first, "last_tenth_median_ms": last, "drift": last / first - 1.0,
        "median_cpu_ms_per_measurement": statistics.median(cpu_steps), "first_tenth_cpu_ms": cpu_first,
        "last_tenth_cpu_ms": cpu_last, "cpu_drift": cpu_last / cpu_first - 1.0,
        "first_tenth_policy_ms": policy_first, "last_tenth_policy_ms": policy_last,
    }


def bluesky_reference(n: int) -> dict[str, float]:
    """bluesky's RunEngine per step: ``count([det], num=n)`` with ophyd.sim's ``det``, the median
    interval between consecutive events (and wall and this process's CPU per step)."""
    import statistics

    from bluesky import RunEngine
    from bluesky.plans import count
    from ophyd.sim import det

    engine = RunEngine({})
    engine(count([det], num=20))  # warm-up: first-call imports and caches
    stamps: list[float] = []
    engine.subscribe(lambda name, doc: stamps.append(time.perf_counter()) if name == "event" else None)
    started, cpu = time.perf_counter(), time.process_time()
    engine(count([det], num=n))
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    steps = [(b - a) * 1000 for a, b in zip(stamps, stamps[1:])]
    return {"n": n, "median_ms_per_step": statistics.median(steps), "wall_ms_per_step": wall / n * 1000,
            "cpu_ms_per_step": cpu / n * 1000}


def _components_run(url: str) -> tuple[Any, Any, Any, str]:
    """A zero-cost instrument actor, a store with a campaign, and the composer of its documents."""
    from functools import partial

    import ray

    from agent.documents import RunComposer
    from instruments.actor import InstrumentActor
    from simulators.synthetic import SyntheticPropertyDriver, SyntheticSettings

    settings = SyntheticSettings(inputs={"x": (0.0, 1.0)}, synthesis_seconds=0, motion_seconds=0, overhead_seconds=0)
    actor = InstrumentActor.options(num_cpus=0).remote(partial(SyntheticPropertyDriver, "fast", settings))
    ray.get(actor.health.remote())
    store = Store(url)
    cid = new_campaign_id("components")
    store.create_campaign(cid, "components", {}, 0, "/tmp", {})
    # The engine writes an event-model document with every record (the outbox): so does this.
    composer = RunComposer(cid, 0, None, {}, {})
    store.add_documents(cid, composer.open(
        config={"name": "components", "policy": {"name": "sobol"}, "targets": [], "budgets": {},
                "design_space": {"parameters": [{"name": "x", "type": "continuous", "low": 0.0, "high": 1.0}]}},
        started=time.time(), data_keys={"fast": ray.get(actor.describe.remote())}, estimates={"yield": ""}, previous_start=None, scan_id=1,
    ))
    return actor, store, composer, cid


async def _one_measurement(actor: Any, store: Any, composer: Any, cid: str, i: int, carry: list[Any]) -> tuple[float, float]:
    """(seconds of the measure round trip, seconds of the store writes with their documents). As the
    loop writes them: the decision carries the previous measurement's analysis (``carry``), the
    measured record is committed without waiting for PostgreSQL's disk flush — two commits."""
    from agent.store import AnalysedRecord, ProposedAttempt, TargetEvaluation
    from analysis.protocol import Estimate, Interpretation
    from instruments.types import MeasurementRequest

    aid = f"{cid}-{i:05d}"
    t0 = time.perf_counter()
    decided = composer.decision(i, "sobol", False, [{"x": 0.5}], [{"phase": "space-filling"}], 0.0, time.time())
    store.record_decision(cid, i, policy="sobol", fallback=False, error=None, seed=0, n_history=i, n_pending=0,
                          reasons=[{"phase": "space-filling"}], decision_seconds=0.0, versions={},
                          attempts=[ProposedAttempt(aid, i, {"x": 0.5}, path=("validated", "dispatched"), instrument="fast")],
                          documents=[decided], analysed=carry)
    composer.committed(decided)
    carry.clear()
    t1 = time.perf_counter()
    m = await actor.measure.remote(MeasurementRequest(attempt_id=aid, params={"x": 0.5}))
    t2 = time.perf_counter()
    measured = composer.measurement(m)
    store.record_measurement(cid, m, documents=[measured], synchronous=False)
    composer.committed(measured)
    interpretation = Interpretation(attempt_id=aid, sample_id=aid, analysis="scalar",
                                    estimates={"yield": Estimate(value=float(m.scalar("yield")), sigma=0.01)}, valid=True)
    analysed = composer.interpretation(interpretation, time.time())
    composer.committed(analysed)  # counted when composed, as the recorder does for a carried analysis
    carry.append(AnalysedRecord(
        interpretation, TargetEvaluation(i + 1, 0.0, 0.0, {"t": {"value": 1.0, "goal": 0.5, "met": False}}, False), [analysed]))
    t3 = time.perf_counter()
    return t2 - t1, (t1 - t0) + (t3 - t2)


def components(url: str, n: int = 200) -> dict[str, float]:
    """Median ms of one measure round trip and of one measurement's store writes (see module doc)."""
    import statistics

    import ray

    actor, store, composer, cid = _components_run(url)

    async def all_of_them() -> list[tuple[float, float]]:
        carry: list[Any] = []
        return [await _one_measurement(actor, store, composer, cid, i, carry) for i in range(n)]

    timings = asyncio.run(all_of_them())
    ray.kill(actor)
    store.close()
    trip, write = (statistics.median(t[k] for t in timings) * 1000 for k in (0, 1))
    return {"measure_round_trip_ms": trip, "store_writes_ms": write, "total_ms": trip + write, "n": float(n)}


def _run(args: argparse.Namespace, console: Console) -> dict[str, Any]:
    """Every measurement the arguments ask for, in one Ray session (see the module doc)."""
    paths = {"in-process": True} if args.in_process else {"actor": False, "in-process": True}
    results: dict[str, dict[str, float]] = {}
    parts: dict[str, dict[str, float]] = {}
    needs_ray = not (args.in_process and args.no_components)  # the in-process path alone runs without Ray
    with tempfile.TemporaryDirectory() as tmp, ray_runtime(num_cpus=2) if needs_ray else contextlib.nullcontext():
        backends = {"sqlite": f"sqlite:///{tmp}/overhead.db"}
        if args.pg:
            backends["postgresql"] = args.pg
        with Progress(console=console, transient=True) as bar:
            task = bar.add_task("runs", total=len(backends) * (len(paths) + (not args.no_components)) + 2)
            for in_process in set(paths.values()):  # start Ray workers, import what each path needs, once
                measure(backends["sqlite"].replace("overhead.db", "warmup.db"), 20, tmp, in_process=in_process)
            bar.advance(task)
            for name, url in backends.items():
                if not args.no_components:
                    parts[name] = components(url)
                    bar.advance(task)
                for path, in_process in paths.items():
                    results[f"{name} {path}"] = {"goal_ms": GOAL_MS[name], **measure(url, args.n, tmp, in_process=in_process)}
                    bar.advance(task)
            reference = bluesky_reference(min(args.n, 2000))
            bar.advance(task)
    return {"goal_ms": GOAL_MS, "drift_goal": DRIFT_GOAL, "components": parts, "full_loop": results,
            "bluesky_reference": reference}


def _tables(out: dict[str, Any]) -> None:
    table = Table("store, path", "measurements", "wall s", "start-up + shutdown s", "policy s", "ms/measurement (mean)",
                  "median ms", "CPU ms", "goal", "first 10 % ms", "last 10 % ms", "drift", "CPU drift",
                  title="Whole loop, steady state: guard + check + measure + analysis, all store writes, targets")
    for name, r in out["full_loop"].items():
        ok = r["median_ms_per_measurement"] <= r["goal_ms"]
        flat = abs(r["drift"]) < DRIFT_GOAL
        table.add_row(name, str(int(r["n"])), f"{r['wall_seconds']:.1f}", f"{r['startup_and_shutdown_seconds']:.2f}",
                      f"{r['policy_seconds']:.2f}", f"{r['overhead_ms_per_measurement']:.2f}",
                      f"{r['median_ms_per_measurement']:.2f}", f"{r['cpu_ms_per_measurement']:.2f}",
                      f"≤ {r['goal_ms']:g} " + ("[green]met[/]" if ok else "[red]missed[/]"),
                      f"{r['first_tenth_median_ms']:.2f}", f"{r['last_tenth_median_ms']:.2f}",
                      f"{r['drift']:+.1%} " + ("[green]flat[/]" if flat else "[red]drifts[/]"),
                      f"{r['first_tenth_cpu_ms']:.2f} → {r['last_tenth_cpu_ms']:.2f} ms, {r['cpu_drift']:+.1%}")
    console = Console(width=max(Console().width, 200))
    console.print(table)
    ref = out["bluesky_reference"]
    console.print(f"bluesky RunEngine, count([det], num={ref['n']}) in the same run: median {ref['median_ms_per_step']:.2f} ms "
                    f"per step (wall {ref['wall_ms_per_step']:.2f} ms, CPU {ref['cpu_ms_per_step']:.2f} ms)", markup=False)
    if not out["components"]:
        return
    parts_table = Table("store", "measure round trip ms", "store writes ms", "sum ms", f"goal ≤ {COMPONENTS_GOAL_MS:g} ms",
                        title="Components: one actor round trip + one measurement's store writes (medians)")
    for name, r in out["components"].items():
        ok = r["total_ms"] <= COMPONENTS_GOAL_MS
        parts_table.add_row(name, f"{r['measure_round_trip_ms']:.2f}", f"{r['store_writes_ms']:.2f}", f"{r['total_ms']:.2f}",
                            "[green]met[/]" if ok else "[red]missed[/]")
    console.print(parts_table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=300, help="measurements per campaign (10000 for the drift check)")
    parser.add_argument("--in-process", action="store_true", help="only the in-process fast path (default: both paths)")
    parser.add_argument("--no-components", action="store_true", help="skip the actor round trip + store writes figures")
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/test", help="PostgreSQL URL ('' to skip)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    out = _run(args, Console(stderr=True))
    if args.json:
        print(json.dumps(out))
        return
    _tables(out)


if __name__ == "__main__":
    main()
