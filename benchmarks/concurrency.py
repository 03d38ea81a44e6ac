"""Campaigns at once on one store: N ``labpilot run`` processes on one SQLite file (or one PostgreSQL
database), each with its own local Ray, all started together.

Each campaign is a small quick start (Sobol policy, two zero-time simulated reactors, ``--measurements``
each). Afterwards every campaign's records are checked apart: its status ended by its budget, exactly
its measurements, every attempt analysed once, and no record of another campaign among its own (every
attempt id carries its campaign id, every measurement and interpretation belongs to one of its attempts).

    python -m benchmarks.concurrency [--campaigns 8] [--measurements 6] [--pg URL] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]


def campaign_document(name: str, folder: Path, measurements: int) -> dict[str, Any]:
    data = yaml.safe_load((ROOT / "experiments" / "quickstart.yaml").read_text())
    data["name"] = name
    data["data_dir"] = str(folder / "data")
    data["instruments"][0]["settings"]["realtime_factor"] = 0.0
    data["policy"] = {"name": "sobol", "options": {}}
    data["targets"][0].update(probability=0.999999, min_observations=1000)  # run to the budget
    data["budgets"] = {"max_measurements": measurements}
    return data


def check_campaign(store: Any, campaign_id: str, measurements: int) -> list[str]:
    """What is wrong with one campaign's records (empty: nothing)."""
    problems = []
    campaign = store.campaign(campaign_id)
    if campaign.status != "budget_exhausted":
        problems.append(f"status {campaign.status}")
    attempts = store.attempts(campaign_id)
    ids = {a.id for a in attempts}
    if any(not a.startswith(f"{campaign_id}-") for a in ids):
        problems.append("an attempt of another campaign")
    states = Counter(a.state for a in attempts)
    if states.get("analysed") != measurements or len(attempts) != measurements:
        problems.append(f"attempts {dict(states)}, expected {measurements} analysed")
    measured = [m.attempt_id for m in store.measurements(campaign_id)]
    interpreted = [i.attempt_id for i in store.interpretations(campaign_id)]
    for kind, records in (("measurement", measured), ("interpretation", interpreted)):
        if sorted(records) != sorted(ids):
            problems.append(f"{kind}s {len(records)} do not match its {len(ids)} attempts one to one")
    return problems


def run(n: int, measurements: int, store_url: str | None, folder: Path) -> dict[str, Any]:
    """Start ``n`` campaigns at once on one store; wait; check each. Returns the summary."""
    from agent.store import Store

    url = store_url or f"sqlite:///{folder}/labpilot.db"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("RAY_ADDRESS", None)
    names, procs = [], []
    started = time.perf_counter()
    for i in range(n):
        name = f"concurrent-{os.getpid()}-{i}"
        path = folder / f"{name}.yaml"
        path.write_text(yaml.safe_dump(campaign_document(name, folder, measurements)))
        names.append(name)
        procs.append(subprocess.Popen([sys.executable, "-m", "agent.cli", "run", str(path), "--db", url, "--json", "--no-report"],
                                      cwd=folder, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    outputs = [p.communicate(timeout=900) for p in procs]
    exits = [p.returncode for p in procs]
    wall = time.perf_counter() - started
    problems: dict[str, list[str]] = {}
    with Store(url) as store:
        ids = {c.name: c.id for c in store.campaigns() if c.name in names}
        for name, code, (_, err) in zip(names, exits, outputs):
            found = [f"exit {code}: {(err.strip().splitlines() or [''])[-1][:300]}"] if code != 3 else []
            found += check_campaign(store, ids[name], measurements) if name in ids else ["no campaign in the store"]
            if found:
                problems[name] = found
    return {"campaigns": n, "measurements_each": measurements, "store": url.split(":")[0], "wall_seconds": round(wall, 1),
            "clean": n - len(problems), "problems": problems}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--campaigns", type=int, default=8)
    parser.add_argument("--measurements", type=int, default=6)
    parser.add_argument("--pg", default=None, help="a PostgreSQL URL; SQLite (one file) without it")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="labpilot-concurrency-") as tmp:
        summary = run(args.campaigns, args.measurements, args.pg, Path(tmp))
    if args.json:
        print(json.dumps(summary))
        return
    print(f"{summary['clean']}/{summary['campaigns']} campaigns with clean records on one {summary['store']} store, "
          f"{summary['wall_seconds']} s wall")
    for name, found in summary["problems"].items():
        print(f"  {name}: {'; '.join(found)}")


if __name__ == "__main__":
    main()
