"""Resume time: from launching ``labpilot resume`` to its first new decision in the store, with where it goes.

For each campaign kind (the chaos benchmark's small BO quick start, adaptive SANS and adaptive XRD,
``benchmarks/chaos.py:campaign_document``, with a larger measurement budget so that it does not end
while being timed), one campaign is started with ``labpilot run`` and SIGKILLed once it has decided
its first attempts; then ``--resumes`` times: ``labpilot resume`` is launched, timed to its first new
decision in the store (what the chaos benchmark times), left to run ``--after`` seconds more, and
SIGKILLed (the campaign process alone, as a crash would; the processes of its tree still alive 10 s
later are killed and counted). Each resume runs under ``benchmarks/resume_phases.py``, which marks
when each start-up phase ends (imports, store, Ray, actors, ledger, reconciliation, policy), so the
report gives the median instant of each phase as well as the total. CPU seconds of the resume's whole
process tree (Ray's processes included) up to the first decision are reported too: other users of a
shared machine stretch wall time, much less CPU time.

Goal (issue 15): median ≤ 5 s.

    python -m benchmarks.resume_time [--resumes 5] [--kinds bo,sas,xrd] [--pg URL] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil
import yaml

from benchmarks.chaos import campaign_document

ROOT = Path(__file__).resolve().parents[1]
GOAL_SECONDS = 5.0


def _launch(args: list[str], folder: Path, marks: Path | None = None) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("LABPILOT_FAILPOINT", None)
    command = ([sys.executable, "-m", "benchmarks.resume_phases", str(marks)] if marks is not None
               else [sys.executable, "-m", "agent.cli"])
    with open(folder / "cli-stderr.log", "ab") as log:
        return subprocess.Popen([*command, *args, "--json", "--no-report"], cwd=folder, env=env,
                                stdout=subprocess.DEVNULL, stderr=log, start_new_session=True)


def _tree_cpu(pid: int) -> float:
    """CPU seconds (user + system) of the process and every descendant still running."""
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.Error:
        return float("nan")
    total = 0.0
    for p in procs:
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except psutil.Error:
            pass
    return total


def _kill(proc: subprocess.Popen[bytes]) -> int:
    """SIGKILL the campaign process alone; kill (and count) what of its tree is alive 10 s later."""
    try:
        tree = psutil.Process(proc.pid).children(recursive=True)
    except psutil.Error:
        tree = []
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    deadline = time.monotonic() + 10
    alive = [p for p in tree if p.is_running()]
    while alive and time.monotonic() < deadline:
        time.sleep(0.2)
        alive = [p for p in alive if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    for p in alive:
        try:
            p.kill()
        except psutil.Error:
            pass
    return len(alive)


def _wait_for_attempts(store_url: str, cid: str | None, name: str, more_than: int, proc: subprocess.Popen[bytes],
                       timeout: float = 180) -> tuple[str | None, float | None]:
    """Poll the store until the campaign (by id, or by name) has more than ``more_than`` attempts:
    (its id, the monotonic instant seen), or (id, None) if the process ended or the timeout passed."""
    from agent.store import Store

    started = time.monotonic()
    with Store(store_url) as store:
        while time.monotonic() - started < timeout and proc.poll() is None:
            if cid is None:
                cid = next((c.id for c in store.campaigns() if c.name == name), None)
            if cid is not None and len(store.attempts(cid)) > more_than:
                return cid, time.monotonic()
            time.sleep(0.02)
    return cid, None


def _count(store_url: str, cid: str) -> int:
    from agent.store import Store

    with Store(store_url) as store:
        return len(store.attempts(cid))


def _phases(marks: Path, launched: float, decided: float) -> dict[str, float]:
    """Seconds from launch to the first time each phase ended, up to the first decision."""
    out: dict[str, float] = {}
    if marks.exists():
        for line in marks.read_text().splitlines():
            m = json.loads(line)
            if m["t"] <= decided + 0.05:
                out.setdefault(m["phase"], round(m["t"] - launched, 3))
    return out


def time_resumes(kind: str, store_url: str, resumes: int, after: float, folder: Path) -> dict[str, Any]:
    """One campaign of ``kind``: started, killed, then resumed and timed ``resumes`` times."""
    name = f"resume-{kind}-{os.getpid()}-{int(time.time())}"
    data = campaign_document(kind, folder, name)
    data["storage"] = store_url
    data["budgets"] = {"max_measurements": 1000}
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data))
    proc = _launch(["run", str(path), "--db", store_url], folder)
    cid, seen = _wait_for_attempts(store_url, None, name, 1, proc)
    if cid is None or seen is None:
        raise RuntimeError(f"{kind}: the first run made no decision; see {folder / 'cli-stderr.log'}")
    time.sleep(after)
    orphans = _kill(proc)
    runs = []
    for i in range(resumes):
        before, marks = _count(store_url, cid), folder / f"marks-{i}.jsonl"
        launched = time.monotonic()
        proc = _launch(["resume", cid, "--db", store_url], folder, marks)
        _, decided = _wait_for_attempts(store_url, cid, name, before, proc)
        if decided is None:
            raise RuntimeError(f"{kind}: resume {i} made no decision; see {folder / 'cli-stderr.log'}")
        cpu = _tree_cpu(proc.pid)
        runs.append({"seconds": round(decided - launched, 3), "cpu_seconds": round(cpu, 2),
                     "phases": _phases(marks, launched, decided)})
        time.sleep(after)
        orphans += _kill(proc)
    return {"kind": kind, "campaign_id": cid, "runs": runs, "orphans": orphans}


def summarise(results: list[dict[str, Any]]) -> dict[str, Any]:
    runs = [r for res in results for r in res["runs"]]
    phases: dict[str, list[float]] = {}
    for r in runs:
        for phase, t in r["phases"].items():
            phases.setdefault(phase, []).append(t)
    return {
        "resumes": len(runs),
        "median_seconds": round(statistics.median(r["seconds"] for r in runs), 2),
        "max_seconds": round(max(r["seconds"] for r in runs), 2),
        "median_cpu_seconds": round(statistics.median(r["cpu_seconds"] for r in runs), 2),
        "by_kind": {res["kind"]: {"median_seconds": round(statistics.median(r["seconds"] for r in res["runs"]), 2),
                                  "median_cpu_seconds": round(statistics.median(r["cpu_seconds"] for r in res["runs"]), 2)}
                    for res in results},
        # The median instant (s after launch) each phase ended, over the resumes that reached it, in time order.
        "phases": dict(sorted(((p, round(statistics.median(ts), 2)) for p, ts in phases.items()), key=lambda kv: kv[1])),
        "orphans": sum(res["orphans"] for res in results),
        "load_average": round(os.getloadavg()[0], 2),
        "goal_seconds": GOAL_SECONDS,
        "results": results,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resumes", type=int, default=5, help="timed resumes per campaign kind")
    parser.add_argument("--kinds", default="bo,sas,xrd")
    parser.add_argument("--pg", default=None, help="PostgreSQL URL (default: a fresh SQLite file)")
    parser.add_argument("--after", type=float, default=1.0, help="seconds a run goes on after its first decision before the kill")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory(prefix="labpilot-resume-") as tmp:
        for kind in args.kinds.split(","):
            folder = Path(tmp) / kind
            folder.mkdir()
            store_url = args.pg or f"sqlite:///{Path(tmp)}/store.db"
            results.append(time_resumes(kind, store_url, args.resumes, args.after, folder))
            print(f"{kind}: {[r['seconds'] for r in results[-1]['runs']]} s", file=sys.stderr, flush=True)
    summary = summarise(results)
    if args.json:
        print(json.dumps(summary))
        return
    print(f"{summary['resumes']} resumes: median {summary['median_seconds']} s (max {summary['max_seconds']} s; goal "
          f"{GOAL_SECONDS:g} s), CPU {summary['median_cpu_seconds']} s; load average {summary['load_average']}; "
          f"orphaned processes {summary['orphans']}")
    for kind, row in summary["by_kind"].items():
        print(f"  {kind}: median {row['median_seconds']} s, CPU {row['median_cpu_seconds']} s")
    print("phases (median s after launch when each ended):")
    for phase, t in summary["phases"].items():
        print(f"  {t:6.2f}  {phase}")


if __name__ == "__main__":
    main()
