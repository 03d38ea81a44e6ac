"""Chaos: SIGKILL campaigns at random instants, resume each time, and count what was lost.

For every (campaign, store) pair — the BO quick start, adaptive SANS and adaptive XRD, on SQLite and on
PostgreSQL (``--pg URL``) — one campaign is started with ``labpilot run`` and SIGKILLed (the campaign
process only, as a crash would) at a random instant — a fifth of the kills during start-up, the rest
``--min-delay`` … ``--max-delay`` seconds after the run's first decision — then resumed with ``labpilot resume``, again and again until
it ends by itself; kills are spread over the pairs until ``--kills`` is reached. After each kill:

- *orphans*: processes of the killed campaign's process tree (Ray's workers and agents included)
  still alive ``--orphan-wait`` seconds later — a crashed campaign must not leave processes on the
  instrument PC (they are then killed, so the next run starts clean);
- *resume time*: seconds from launching ``labpilot resume`` to its first new decision in the store;

and at the end of each campaign, from the store and the instruments' own journals:

- *lost*: a measurement the store had before a kill and not after; a campaign that does not end with
  its budget's measurements, all analysed;
- *duplicated*: an attempt measured twice by an instrument other than one marked re-run after an
  unknown outcome, or recorded measured/analysed twice.

Goal (issue 15): 0 lost, 0 duplicated, 0 orphaned processes, median resume ≤ 5 s.

    python -m benchmarks.chaos [--kills 200] [--pg postgresql://postgres@127.0.0.1:5432/test] [--json]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import yaml

ROOT = Path(__file__).resolve().parents[1]
CAMPAIGNS = ("bo", "sas", "xrd")
STARTUP_KILLS = 0.2
"""Fraction of kills at a random instant of start-up (0.5–4 s after launch); the rest at a random instant
(``--min-delay`` … ``--max-delay``) after the run has made its first decision."""


def campaign_document(kind: str, folder: Path, name: str) -> dict[str, Any]:
    """A small, seconds-long version of a shipped campaign that runs to its measurement budget."""
    if kind == "bo":
        data = yaml.safe_load((ROOT / "experiments" / "quickstart.yaml").read_text())
        data["instruments"][0]["settings"]["realtime_factor"] = 0.0005  # 1800 s → 0.9 s per synthesis
        data["policy"]["options"] = {"n_initial": 4}
        data["targets"][0].update(probability=0.999999, min_observations=1000)  # run to the budget
        data["budgets"] = {"max_measurements": 12}
    else:
        data = yaml.safe_load((ROOT / "experiments" / ("adaptive_sans.yaml" if kind == "sas" else "adaptive_xrd.yaml")).read_text())
        data["instruments"][0]["settings"]["realtime_factor"] = 0.0005 if kind == "sas" else 0.002
        data["stop_on_targets"] = False
        data["budgets"] = {"max_measurements": 6}
    data["name"] = name
    data["data_dir"] = str(folder / "data")
    return data


@dataclass
class PairRecord:
    """What one (campaign, store) pair went through."""

    campaign: str
    store: str
    kills: int = 0
    orphans: int = 0
    lost: int = 0
    duplicated: int = 0
    resume_seconds: list[float] = field(default_factory=list)
    finished: bool = False
    problems: list[str] = field(default_factory=list)


def _launch(args: list[str], cwd: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("LABPILOT_FAILPOINT", None)
    with open(cwd / "cli-stderr.log", "a") as log:  # why a run exited by itself, for the record
        return subprocess.Popen([sys.executable, "-m", "agent.cli", *args, "--json", "--no-report"], cwd=cwd, env=env,
                                stdout=subprocess.DEVNULL, stderr=log, text=True, start_new_session=True)


def _last_line(path: Path) -> str:
    lines = path.read_text(errors="replace").strip().splitlines() if path.exists() else []
    return lines[-1][:200] if lines else "(nothing on stderr)"


def _tree(pid: int) -> list[psutil.Process]:
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def _kill_and_find_orphans(proc: subprocess.Popen[str], wait_seconds: float) -> list[str]:
    """SIGKILL the campaign process alone; the processes of its tree alive ``wait_seconds`` later (then
    killed), each described by its age at the kill and its command line (to tell which start-up step leaked)."""
    tree = _tree(proc.pid)
    proc.send_signal(signal.SIGKILL)
    killed_at = time.time()
    proc.wait()
    deadline = time.monotonic() + wait_seconds
    alive = [p for p in tree[1:] if p.is_running()]
    while alive and time.monotonic() < deadline:
        time.sleep(0.2)
        alive = [p for p in alive if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    found = []
    for p in alive:
        try:
            found.append(f"{killed_at - p.create_time():.1f} s old: {' '.join(p.cmdline())[:160]}")
            p.kill()
        except psutil.NoSuchProcess:
            pass
    return found


def _first_decision_seconds(store_url: str, cid: str, attempts_before: int, launched: float, timeout: float = 120) -> float | None:
    from agent.store import Store

    with Store(store_url) as store:
        while time.monotonic() - launched < timeout:
            if len(store.attempts(cid)) > attempts_before or store.campaign(cid).status != "running":
                return time.monotonic() - launched
            time.sleep(0.05)
    return None


def _wait_for_campaign(store_url: str, name: str, launched: float, timeout: float = 120) -> None:
    """Until the campaign named ``name`` has its first attempt (a new run got going)."""
    from agent.store import Store

    with Store(store_url) as store:
        while time.monotonic() - launched < timeout:
            ids = [c.id for c in store.campaigns() if c.name == name]
            if ids and store.attempts(ids[0]):
                return
            time.sleep(0.05)


def _measured(store_url: str, cid: str) -> set[str]:
    from agent.store import Store

    with Store(store_url) as store:
        return {m.attempt_id for m in store.measurements(cid)}


def _final_checks(store_url: str, cid: str, record: PairRecord, budget: int) -> None:
    """Lost and duplicated, from the store and the instruments' own journals."""
    from agent.store import Store
    from simulators.journal import MeasurementJournal

    with Store(store_url) as store:
        attempts = store.attempts(cid)
        states = Counter(a.state for a in attempts)
        if states["analysed"] != budget:
            record.lost += abs(budget - states["analysed"])
            record.problems.append(f"{states['analysed']} analysed of {budget}: {dict(states)}")
        for a in attempts:
            moves = [to for _, to, _ in store.transitions(a.id)]
            if moves.count("measured") > 1 or moves.count("analysed") > 1:
                record.duplicated += 1
                record.problems.append(f"{a.id} recorded twice: {moves}")
        folder = Path(store.campaign(cid).data_dir) / cid / "instruments"
        physical = Counter(x for d in folder.iterdir() for x in MeasurementJournal(d).acquisitions()) if folder.exists() else Counter()
        reruns = {a.id for a in attempts if a.reconciled == "rerun"}
        for attempt_id, times in physical.items():
            if times > 1 + (attempt_id in reruns):
                record.duplicated += 1
                record.problems.append(f"{attempt_id} measured {times}× by the instrument")


def _kill(record: PairRecord, proc: subprocess.Popen[str], orphan_wait: float) -> None:
    """Kill the run; count the kill and the processes it left behind (each named in the problems)."""
    orphans = _kill_and_find_orphans(proc, orphan_wait)
    record.orphans += len(orphans)
    record.problems += [f"orphan after kill {record.kills + 1}: {o}" for o in orphans]
    record.kills += 1


def chaos_pair(kind: str, store_url: str, store_label: str, kills: int, rng: random.Random, delays: tuple[float, float],
               orphan_wait: float, folder: Path) -> PairRecord:
    """One campaign of ``kind``: killed ``kills`` times at random instants, resumed each time, then run to its end."""
    from agent.store import Store

    name = f"chaos-{kind}-{store_label}-{rng.randrange(10**6):06d}"
    data = campaign_document(kind, folder, name)
    data["storage"] = store_url
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data))
    record, cid, before, errors = PairRecord(kind, store_label), None, set(), 0
    while True:
        launched = time.monotonic()
        if cid is None:
            proc = _launch(["run", str(path), "--db", store_url], folder)
        else:
            with Store(store_url) as store:
                attempts_before = len(store.attempts(cid))
                status = store.campaign(cid).status
            if status not in ("running", "paused"):
                # The kill came after the campaign had ended (while it wrote its report or shut Ray down):
                # a resume would only start up and exit, and killing that measures nothing of the loop.
                record.finished = status in ("completed", "budget_exhausted")
                break
            proc = _launch(["resume", cid, "--db", store_url], folder)
        if record.kills >= kills:
            proc.wait(timeout=900)
            record.finished = proc.returncode in (0, 3)
            if not record.finished:
                record.problems.append(f"final run exited {proc.returncode}")
            break
        if rng.random() < STARTUP_KILLS:  # a crash while starting up (imports, Ray, actors)
            time.sleep(rng.uniform(0.5, 4.0))
        else:  # a crash while it runs: a random instant after it has taken the campaign over
            if cid is not None:
                seconds = _first_decision_seconds(store_url, cid, attempts_before, launched)
                if seconds is not None:
                    record.resume_seconds.append(seconds)
            else:
                _wait_for_campaign(store_url, name, launched)
            time.sleep(rng.uniform(*delays))
        if proc.poll() is not None:  # it ended before the kill
            record.finished = proc.returncode in (0, 3)
            if not record.finished and cid is not None and errors < 3:
                errors += 1  # it failed by itself (e.g. Ray did not start): say why, and resume it again
                record.problems.append(f"a run exited {proc.returncode} by itself: {_last_line(folder / 'cli-stderr.log')}")
                continue
            break
        _kill(record, proc, orphan_wait)
        with Store(store_url) as store:
            cid = cid or next((c.id for c in store.campaigns() if c.name == name), None)
        if cid is None:
            continue  # killed before the campaign was created: start again
        now = _measured(store_url, cid)
        record.lost += len(before - now)
        before = now
    if cid is not None:
        _final_checks(store_url, cid, record, data["budgets"]["max_measurements"])
    return record


def run(kills: int, pg_url: str | None, delays: tuple[float, float], orphan_wait: float, seed: int,
        out: Path | None = None) -> dict[str, Any]:
    """Kill campaigns of every (campaign, store) pair in turn until each pair has its share of the kills.

    A campaign absorbs only a few kills before it reaches its budget, so each pair runs new campaigns
    (in turn with the other pairs, so a run stopped early still covers every pair) until its share is
    reached. ``out``: the summary so far is written there after every campaign."""
    rng = random.Random(seed)
    stores = [("sqlite", None)] + ([("postgresql", pg_url)] if pg_url else [])
    pairs = [(kind, label, url) for kind in CAMPAIGNS for label, url in stores]
    per_pair = max(1, math.ceil(kills / len(pairs)))
    records: list[PairRecord] = []
    done, idle = Counter(), Counter()
    with tempfile.TemporaryDirectory(prefix="labpilot-chaos-") as tmp:
        while any(done[p] < per_pair and idle[p] < 3 for p in pairs):
            for kind, label, url in pairs:
                if done[(kind, label, url)] >= per_pair or idle[(kind, label, url)] >= 3:
                    continue
                folder = Path(tmp) / f"{kind}-{label}-{len(records)}"
                folder.mkdir()
                store_url = url or f"sqlite:///{Path(tmp)}/{kind}-{label}.db"
                record = chaos_pair(kind, store_url, label, per_pair - done[(kind, label, url)], rng, delays,
                                    orphan_wait, folder)
                records.append(record)
                done[(kind, label, url)] += record.kills
                idle[(kind, label, url)] = 0 if record.kills else idle[(kind, label, url)] + 1
                _report_progress(record, records, out)
    return summarise(records)


def _report_progress(record: PairRecord, records: list[PairRecord], out: Path | None) -> None:
    print(f"{record.campaign}/{record.store}: {record.kills} kills, lost {record.lost}, duplicated {record.duplicated}, "
          f"orphans {record.orphans}, finished {record.finished}; {sum(r.kills for r in records)} kills so far",
          file=sys.stderr, flush=True)
    if out is not None:
        out.write_text(json.dumps(summarise(records)))


def summarise(records: list[PairRecord]) -> dict[str, Any]:
    resumes = [s for r in records for s in r.resume_seconds]
    return {
        "kills": sum(r.kills for r in records), "campaigns": len(records), "lost": sum(r.lost for r in records),
        "duplicated": sum(r.duplicated for r in records), "orphaned_processes": sum(r.orphans for r in records),
        "all_finished": all(r.finished for r in records),
        "resume_seconds_median": round(statistics.median(resumes), 2) if resumes else None,
        "resume_seconds_max": round(max(resumes), 2) if resumes else None,
        "kills_by_pair": {f"{k}/{s}": sum(r.kills for r in records if (r.campaign, r.store) == (k, s))
                          for k, s in dict.fromkeys((r.campaign, r.store) for r in records)},
        "pairs": [vars(r) | {"resume_seconds": [round(s, 2) for s in r.resume_seconds]} for r in records],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=200)
    parser.add_argument("--pg", default=None, help="PostgreSQL URL (a fresh database is best); SQLite only without it")
    parser.add_argument("--min-delay", type=float, default=0.0)
    parser.add_argument("--max-delay", type=float, default=6.0)
    parser.add_argument("--orphan-wait", type=float, default=10.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--out", type=Path, default=None, help="write the summary so far here after every campaign")
    args = parser.parse_args()
    summary = run(args.kills, args.pg, (args.min_delay, args.max_delay), args.orphan_wait, args.seed, args.out)
    if args.json:
        print(json.dumps(summary))
        return
    print(f"{summary['kills']} kills over {summary['campaigns']} campaigns: lost {summary['lost']}, duplicated {summary['duplicated']}, orphaned processes "
          f"{summary['orphaned_processes']}, all finished {summary['all_finished']}; resume median "
          f"{summary['resume_seconds_median']} s (max {summary['resume_seconds_max']} s)")
    for pair in summary["pairs"]:
        for problem in pair["problems"]:
            print(f"  {pair['campaign']}/{pair['store']}: {problem}")


if __name__ == "__main__":
    main()
