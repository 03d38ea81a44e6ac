"""``labpilot bench map``'s campaigns with a sample budget per policy, two at a time, each run saved
as it ends — for when the whole benchmark does not fit the time at hand.

``python -m benchmarks.map_budgets --system formulation --truth 0 --budgets phase_map=6,random=6,grid=6,cameo=3 --out DIR``

The campaigns, scoring, summary and figures are ``agent.bench.map``'s (``run_one``, ``summarise``,
``write``: ``DIR/map_benchmark.json`` and its two figures); only the budgets differ. Why per policy:
the benchmark compares accuracy against *total time* (synthesis + instrument), and a CAMEO-style
sample (a fixed full scan) costs about twice an adaptive one on the formulation system, so the
same time span takes half as many of its samples. Each finished run is pickled to
``DIR/run_<policy>.pkl`` at once, so an interrupted session keeps the runs that ended; ``--resume``
skips runs already saved.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import multiprocessing
import pickle
import time
from pathlib import Path
from typing import Any

from agent.bench.map_campaigns import POLICIES, SYSTEMS


def _budgets(text: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for item in text.split(","):
        policy, _, n = item.partition("=")
        if policy not in POLICIES or not n.isdigit() or int(n) < 1:
            raise argparse.ArgumentTypeError(f"budgets: policy=samples with a policy of {POLICIES}, not {item!r}")
        out[policy] = int(n)
    return out


def _run(system: str, truth: int, policy: str, samples: int, out: Path) -> tuple[str, float]:
    from agent.bench.map import run_one

    start = time.perf_counter()
    result = run_one(system, truth, policy, samples)
    wall = time.perf_counter() - start
    (out / f"run_{policy}.pkl").write_bytes(pickle.dumps({**result, "wall_seconds": wall}))
    return policy, wall


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--system", choices=SYSTEMS, default="formulation")
    parser.add_argument("--truth", type=int, default=0)
    parser.add_argument("--budgets", type=_budgets, required=True, help="policy=samples,… (run in this order)")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--resume", action="store_true", help="skip runs whose run_<policy>.pkl exists")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    todo = {p: n for p, n in args.budgets.items() if not (args.resume and (args.out / f"run_{p}.pkl").exists())}
    context = multiprocessing.get_context("spawn")  # torch and sasmodels' DLLs do not survive a fork well
    with concurrent.futures.ProcessPoolExecutor(args.workers, mp_context=context) as pool:
        futures = [pool.submit(_run, args.system, args.truth, p, n, args.out) for p, n in todo.items()]
        for future in concurrent.futures.as_completed(futures):
            policy, wall = future.result()
            print(f"{time.strftime('%H:%M:%S')} {args.system}/{args.truth}/{policy}: done in {wall:.0f} s", flush=True)
    return write_saved(args.out, list(args.budgets))


def write_saved(out: Path, policies: list[str]) -> dict[str, Any]:
    """Summary and figures of the runs saved in ``out`` (those that ended)."""
    from agent.bench.map import summarise, write

    runs = [pickle.loads((out / f"run_{p}.pkl").read_bytes()) for p in policies if (out / f"run_{p}.pkl").exists()]
    summary = summarise(runs)
    write(summary, runs, out)
    return summary


if __name__ == "__main__":
    import json

    print(json.dumps(main()["systems"], indent=1, default=str))
