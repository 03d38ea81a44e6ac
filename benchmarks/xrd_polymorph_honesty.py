"""Is the XRD phase identification honest on the shipped P25 titania survey? Counts confident wrong answers.

The sample of ``experiments/adaptive_xrd.yaml`` (anatase 78 wt % + rutile 16 % + brookite 6 %, three
polymorphs whose strongest peaks overlap) is measured with the campaign's survey window (the
``xrd_adaptive`` policy's default: 10–60°, 0.04°, 0.1 s per step) under N noise draws, and each
pattern is identified once with the campaign's analysis settings. Noise draw ``i`` uses the noise key
the campaign gives its attempt number ``i`` (``"<seed>:<i:05d>:<sample>"``), so id 0 is exactly the
shipped campaign's survey. Per id: the best set, p(best) and the seconds the identification took.
Counted: right set (whole truth), wrong at p(best) ≥ ``--confident`` (a confident wrong answer: the
worst outcome) and wrong but unsure, with Clopper–Pearson 95 % intervals of the rates
(``scipy.stats.binomtest(...).proportion_ci``).

The analysis is whichever ``analysis.xrd`` the Python path resolves; to compare two versions of the
code, run this file with ``PYTHONPATH`` set to each tree:

    PYTHONPATH=$PWD nice -n 10 python benchmarks/xrd_polymorph_honesty.py --ids 30 --out new.json
    PYTHONPATH=/path/to/old/tree nice -n 10 python benchmarks/xrd_polymorph_honesty.py --ids 30 --out old.json

Identifications run in ``--processes`` processes (default 2); ``--budget-seconds`` bounds the wall
time (ids not finished by then are reported as not run).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import time
from pathlib import Path
from typing import Any

import yaml
from scipy import stats

CAMPAIGN = Path(__file__).resolve().parents[1] / "experiments" / "adaptive_xrd.yaml"
SURVEY = {"two_theta_start": 10.0, "two_theta_stop": 60.0, "two_theta_step": 0.04, "dwell_seconds": 0.1}
"""The ``xrd_adaptive`` policy's default survey (start, stop, step in degrees; dwell in s per step)."""


def load_case(campaign: Path) -> dict[str, Any]:
    """The campaign's seed, sample id, diffractometer settings, analysis settings and true phase set."""
    data = yaml.safe_load(campaign.read_text())
    instrument = data["instruments"][0]["settings"]
    truth = "+".join(sorted(p["phase"] for p in instrument["sample"]["phases"]))
    return {"seed": int(data["seed"]), "sample": str(data["sample"]), "instrument": instrument,
            "analysis": data["analysis"]["settings"], "truth": truth}


def run_id(job: tuple[dict[str, Any], int]) -> dict[str, Any]:
    """Measure the survey with noise draw ``i`` and identify it: {'id', 'best', 'p', 'seconds'}."""
    case, i = job
    from analysis.xrd import XRDPhaseIdentification, XRDPhaseIDSettings
    from instruments.types import MeasurementRequest
    from simulators.xrd import XRDDriver, XRDSettings

    driver = XRDDriver("diffractometer", XRDSettings.model_validate(case["instrument"]))
    request = MeasurementRequest(attempt_id=f"xrd-adaptive-{i:05d}", params=dict(SURVEY), sample_id=case["sample"],
                                 noise_key=f"{case['seed']}:{i:05d}:{case['sample']}")
    measurement = driver.measure(request)
    analysis = XRDPhaseIdentification(XRDPhaseIDSettings.model_validate(case["analysis"]))
    t0 = time.perf_counter()
    result = analysis.interpret([measurement])
    return {"id": i, "best": result.details.get("best_set"), "p": result.estimates["p(best)"].value,
            "seconds": time.perf_counter() - t0}


def interval(k: int, n: int) -> list[float] | None:
    """Clopper–Pearson 95 % interval of k successes in n trials (None for n = 0)."""
    if n == 0:
        return None
    ci = stats.binomtest(k, n).proportion_ci(confidence_level=0.95, method="exact")
    return [float(ci.low), float(ci.high)]


def summarise(rows: list[dict[str, Any]], truth: str, confident: float) -> dict[str, Any]:
    """Counts of right, confidently wrong and unsure-wrong answers with their intervals."""
    n = len(rows)
    right = sum(r["best"] == truth for r in rows)
    wrong_confident = sum(r["best"] != truth and (r["p"] or 0.0) >= confident for r in rows)
    return {"n": n, "truth": truth, "confident_at": confident,
            "right": right, "right_ci95": interval(right, n),
            "confidently_wrong": wrong_confident, "confidently_wrong_ci95": interval(wrong_confident, n),
            "wrong_unsure": n - right - wrong_confident,
            "right_confident": sum(r["best"] == truth and (r["p"] or 0.0) >= confident for r in rows),
            "max_p_wrong": max([r["p"] or 0.0 for r in rows if r["best"] != truth], default=None),
            "median_seconds": sorted(r["seconds"] for r in rows)[n // 2] if rows else None}


def run_all(case: dict[str, Any], ids: list[int], processes: int, budget: float) -> list[dict[str, Any]]:
    """Rows of the ids finished within ``budget`` seconds, in id order (at most ``processes`` at once)."""
    rows: list[dict[str, Any]] = []
    deadline = time.monotonic() + budget
    with multiprocessing.get_context("spawn").Pool(processes) as pool:
        pending = pool.imap_unordered(run_id, [(case, i) for i in ids])
        for _ in ids:
            try:
                row = pending.next(timeout=max(deadline - time.monotonic(), 0.001))
            except multiprocessing.TimeoutError:
                break
            print(f"id {row['id']:3d}  {row['best']:<45} p={row['p']:.3f}  {row['seconds']:.1f} s", flush=True)
            rows.append(row)
        pool.terminate()
    return sorted(rows, key=lambda r: r["id"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ids", type=int, default=30, help="number of noise draws (ids 0 … N−1, or from --first)")
    parser.add_argument("--first", type=int, default=0, help="first id")
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--budget-seconds", type=float, default=3600.0, help="wall-time bound of the whole run")
    parser.add_argument("--confident", type=float, default=0.95, help="p(best) from which an answer counts as confident")
    parser.add_argument("--campaign", type=Path, default=CAMPAIGN)
    parser.add_argument("--out", type=Path, help="write the rows and summary as JSON here")
    args = parser.parse_args(argv)
    import analysis.xrd

    case = load_case(args.campaign)
    rows = run_all(case, list(range(args.first, args.first + args.ids)), args.processes, args.budget_seconds)
    summary = summarise(rows, case["truth"], args.confident)
    summary["code"] = str(Path(analysis.xrd.__file__).resolve().parents[2])
    print(json.dumps(summary, indent=2))
    if args.out is not None:
        args.out.write_text(json.dumps({"summary": summary, "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
