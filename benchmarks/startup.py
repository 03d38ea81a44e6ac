"""Start-up and tear-down of the ``labpilot`` command, as a user waits for it.

- ``status``: wall time of ``labpilot status --db URL`` on a store with a few campaigns;
- ``export``: wall time of ``labpilot export ATTEMPT --format nxcansas`` of one SANS measurement;
- ``run overhead``: wall time of ``labpilot run`` of a tiny campaign (the quick start with the Sobol
  policy and 4 measurements, HTML report on) minus its loop time (the campaign's ``wall_seconds`` in
  the store): imports, Ray start, report, Ray shutdown, interpreter exit.

Each is the median of ``--runs`` runs, each a fresh process (``agent.cli:main`` — what the ``labpilot`` script runs — or ``app``
in a tree without it). Goals (issue 13), on an idle machine: status and export
≤ 1 s, run overhead ≤ 5 s. The 1-minute load average is printed with the numbers: on a shared machine
they are upper bounds.

    python benchmarks/startup.py [--runs 5] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from agent.store import Store

ROOT = Path(__file__).resolve().parents[1]
CODE = ROOT
"""The source tree whose ``labpilot`` is timed (``--code``: e.g. another checkout, for a before/after)."""
CLI = [sys.executable, "-c", "import agent.cli as c; (getattr(c, 'main', None) or c.app)()"]
GOALS_S = {"status": 1.0, "export": 1.0, "run_overhead": 5.0}


CPU_SECONDS: list[float] = []
"""CPU seconds (user + system) of each ``labpilot`` process and the children it reaped (Ray's), in call
order: unlike wall time, hardly changed by other users of a shared machine."""


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _labpilot(args: list[str], cwd: Path) -> tuple[float, subprocess.CompletedProcess[str]]:
    """(wall seconds, the finished process) of one ``labpilot ARGS``; its CPU seconds go to ``CPU_SECONDS``."""
    env = {**os.environ, "PYTHONPATH": str(CODE), "LABPILOT_DB": ""}
    cpu, started = _children_cpu(), time.perf_counter()
    done = subprocess.run([*CLI, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    seconds = time.perf_counter() - started
    CPU_SECONDS.append(_children_cpu() - cpu)
    if done.returncode not in (0, 3):  # 3: a budget ended the campaign, as intended here
        raise RuntimeError(f"labpilot {' '.join(args)} exited {done.returncode}: {done.stderr[-2000:]}")
    return seconds, done


def _campaign_files(folder: Path) -> tuple[Path, Path, str]:
    """(tiny quick start, one-measurement SANS campaign, store URL), all in ``folder``."""
    url = f"sqlite:///{folder}/labpilot.db"
    quick = yaml.safe_load((ROOT / "experiments" / "quickstart.yaml").read_text())
    quick.update(storage=url, data_dir=str(folder / "data"), policy={"name": "sobol", "options": {}},
                 budgets={"max_measurements": 4})
    sans = yaml.safe_load((ROOT / "experiments" / "adaptive_sans.yaml").read_text())
    sans.update(storage=url, data_dir=str(folder / "data"), budgets={"max_measurements": 1})
    files = folder / "quick.yaml", folder / "sans.yaml"
    files[0].write_text(yaml.safe_dump(quick))
    files[1].write_text(yaml.safe_dump(sans))
    return files[0], files[1], url


def measure(runs: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="labpilot-startup-") as tmp:
        folder = Path(tmp)
        quick, sans, url = _campaign_files(folder)
        _, done = _labpilot(["run", str(sans), "--json", "--no-report"], folder)
        attempt = f"{json.loads(done.stdout)['campaign_id']}-00000"
        overheads, loops, walls, run_cpu = [], [], [], []
        for _ in range(runs):
            wall, done = _labpilot(["run", str(quick), "--json"], folder)
            run_cpu.append(CPU_SECONDS[-1])
            with Store(url, existing=True) as store:
                loop = store.campaign(json.loads(done.stdout)["campaign_id"]).wall_seconds
            walls.append(wall)
            loops.append(loop)
            overheads.append(wall - loop)
        status = [_labpilot(["status", "--db", url], folder)[0] for _ in range(runs)]
        status_cpu = CPU_SECONDS[-runs:]
        export = [_labpilot(["export", attempt, "--format", "nxcansas", "--out", str(folder / "e.h5"), "--db", url],
                            folder)[0] for _ in range(runs)]
        export_cpu = CPU_SECONDS[-runs:]
    return {
        "runs": runs,
        "load_average_1min": os.getloadavg()[0],
        "cpus": os.cpu_count(),
        "median_seconds": {"status": statistics.median(status), "export": statistics.median(export),
                           "run_overhead": statistics.median(overheads), "run_wall": statistics.median(walls),
                           "run_loop": statistics.median(loops)},
        "median_cpu_seconds": {"status": statistics.median(status_cpu), "export": statistics.median(export_cpu),
                               "run": statistics.median(run_cpu)},
        "all_seconds": {"status": status, "export": export, "run_overhead": overheads, "run_wall": walls, "run_loop": loops},
        "goals_seconds": GOALS_S,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="runs of each command (median reported)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument("--code", type=Path, default=ROOT, help="source tree whose labpilot is timed (default: this one)")
    args = parser.parse_args()
    global CODE
    CODE = args.code.resolve()
    load_before = os.getloadavg()[0]
    result = {**measure(args.runs), "load_average_1min_before": load_before}
    if args.json:
        print(json.dumps(result, indent=2))
        return
    medians = result["median_seconds"]
    print(f"{args.runs} runs each, {result['cpus']} CPUs, load average {load_before:.1f} before / "
          f"{result['load_average_1min']:.1f} after")
    for name, goal in GOALS_S.items():
        print(f"  {name:13s} {medians[name]:6.2f} s   (goal ≤ {goal:.0f} s)")
    print(f"  run wall {medians['run_wall']:.2f} s = loop {medians['run_loop']:.2f} s + overhead")
    cpu = result["median_cpu_seconds"]
    print(f"  CPU s (process + Ray's): status {cpu['status']:.2f}, export {cpu['export']:.2f}, run {cpu['run']:.2f}")


if __name__ == "__main__":
    main()
