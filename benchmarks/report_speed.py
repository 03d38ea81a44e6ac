"""How long the HTML report of the shipped adaptive SANS campaign takes (issue 13: ≤ 3 s).

Runs ``experiments/adaptive_sans.yaml`` once (drivers and analysis in this process) into a temporary
store, then, in a fresh Python process each time (as ``labpilot report`` would be):

- ``import``: importing ``agent.store`` and ``agent.report``;
- ``write``: ``write_report`` itself (reading the store, the answer, four figures, the page);
- ``command``: the whole ``labpilot report ID`` command, from the shell.

Wall and CPU seconds are both given: on a shared machine the wall time mostly measures the load.

    python benchmarks/report_speed.py [--repeats 3] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = """
import sys, time, json
from pathlib import Path
t0, c0 = time.perf_counter(), time.process_time()
from agent.store import Store
from agent.report import write_report
t1, c1 = time.perf_counter(), time.process_time()
write_report(Store(sys.argv[1]), sys.argv[2], Path(sys.argv[3]))
t2, c2 = time.perf_counter(), time.process_time()
print(json.dumps({"import_wall": t1 - t0, "import_cpu": c1 - c0, "write_wall": t2 - t1, "write_cpu": c2 - c1}))
"""


def run_campaign(folder: Path) -> str:
    """The shipped adaptive SANS campaign into ``folder``; returns the store URL."""
    sys.path.insert(0, str(ROOT))
    from agent.campaign import CampaignRunner
    from agent.config import parse_campaign
    from agent.store import Store
    from tests.agent.campaign_files import shipped

    config = parse_campaign(shipped("adaptive_sans.yaml", folder))
    store = Store(config.storage)
    result = asyncio.run(CampaignRunner(config, store, "sans-bench", in_process=True).run())
    assert result.status == "completed", result.stop_reason
    store.close()
    return config.storage


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with tempfile.TemporaryDirectory() as tmp:
        url = run_campaign(Path(tmp))
        runs = []
        for i in range(args.repeats):
            out = subprocess.run([sys.executable, "-c", CHILD, url, "sans-bench", f"{tmp}/r{i}.html"], env=env,
                                 capture_output=True, text=True, check=True)
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-c", "from agent.cli import app; app()", "report", "sans-bench", "--db", url,
                            "--out", f"{tmp}/c{i}.html"], env=env, capture_output=True, check=True)
            runs.append({**json.loads(out.stdout), "command_wall": time.perf_counter() - t0})
    summary = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    summary["load_average_1min"] = os.getloadavg()[0]
    if args.json:
        print(json.dumps({"median": summary, "runs": runs}, indent=2))
        return
    for key, value in summary.items():
        print(f"{key:>20}: {value:.2f}")


if __name__ == "__main__":
    main()
