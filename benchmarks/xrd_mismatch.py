"""The model-mismatch XRD family: is the phase identification honest on data it did not simulate?

Each sample holds one or two phases of a 12-phase analysis library and, in half the samples, an
impurity from phases the analysis does not know (5–15 wt %). The simulated diffractometer adds
what the analysis does not assume or starts elsewhere from (``simulators.xrd``): Debye–Waller B
per phase (0.2–1.5 Å²), axial asymmetry (A 0.02–0.1), Caglioti U, V, W off the analysis' start by
×0.5–2, an amorphous hump (half the samples), thin-sample absorption and surface roughness (half).
One full scan per sample (10–90°, 0.02°, 0.5 s per step), one identification (with diffuse humps
of 8° FWHM in the background, ``--diffuse``: the family has amorphous content).

Reported: ``precision_at_0.95`` — among samples reported at p(best) ≥ 0.95, the fraction whose
reported set is the whole truth (the in-library phases, and no impurity outside the library), with
its Clopper–Pearson 95 % interval; ``missing_detection`` — samples with an out-of-library impurity
that are flagged (``p_missing_phase`` ≥ 0.5, ``unexplained-peaks`` or a strain at its bound), and
``false_alarm`` — clean samples flagged alike.

The family itself (``draw_sample``, ``LIBRARY``, ``OUTSIDE``, ``START``) is defined in
``agent.bench.xrd_mismatch_family``, shared with ``labpilot bench xrd --family mismatch``, which runs
real campaigns (adaptive, full scan, heuristic) on the same samples.

    python -m benchmarks.xrd_mismatch [--samples N] [--seed S] [--only I,J,…] [--rows FILE] [--json]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import time
from typing import Any

import numpy as np
from scipy import stats

from agent.bench.xrd_mismatch_family import LIBRARY, START, draw_sample

SCAN = {"two_theta_start": 10.0, "two_theta_stop": 90.0, "two_theta_step": 0.02, "dwell_seconds": 0.5}


def run_one(case: dict[str, Any]) -> dict[str, Any]:
    """Measure one full scan and identify: the reported answer beside the truth."""
    from analysis.xrd import XRDPhaseIdentification, XRDPhaseIDSettings
    from instruments.types import MeasurementRequest
    from simulators.xrd import XRDDriver, XRDSettings

    driver = XRDDriver("xrd", XRDSettings.model_validate(case["settings"]))
    m = driver.measure(MeasurementRequest(attempt_id=f"s{case['index']}", params=dict(SCAN)))
    analysis = XRDPhaseIdentification(XRDPhaseIDSettings(candidates=list(LIBRARY), wavelength="CuKa", **START,
                                                         diffuse_fwhm_deg=case["diffuse_fwhm_deg"]))
    t0 = time.perf_counter()
    result = analysis.interpret([m])
    d = result.details
    flagged = (float(d.get("p_missing_phase") or 0.0) >= 0.5 or "unexplained-peaks" in result.flags
               or any(f.startswith("strain-at-bound") for f in result.flags))
    return {"index": case["index"], "truth": case["truth"], "impurity": case["impurity"], "reported": d.get("best_set"),
            "p_best": result.estimates["p(best)"].value, "p_missing": d.get("p_missing_phase"), "flagged": flagged,
            "identified": d.get("identified"), "seconds": time.perf_counter() - t0}


def clopper_pearson(k: int, n: int, level: float = 0.95) -> tuple[float, float]:
    if n == 0:
        return 0.0, 1.0
    a = (1 - level) / 2
    lo = 0.0 if k == 0 else float(stats.beta.ppf(a, k, n - k + 1))
    hi = 1.0 if k == n else float(stats.beta.ppf(1 - a, k + 1, n - k))
    return lo, hi


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    confident = [r for r in rows if (r["p_best"] or 0.0) >= 0.95]
    right = [r for r in confident if r["reported"] == r["truth"] and r["impurity"] is None]
    with_impurity = [r for r in rows if r["impurity"] is not None]
    clean = [r for r in rows if r["impurity"] is None]
    detected = sum(r["flagged"] for r in with_impurity)
    alarms = sum(r["flagged"] for r in clean)
    return {
        "samples": len(rows),
        "decisions_at_0.95": len(confident), "right_at_0.95": len(right),
        "precision_at_0.95": len(right) / len(confident) if confident else None,
        "precision_ci95": clopper_pearson(len(right), len(confident)),
        "missing_detection": detected / len(with_impurity) if with_impurity else None,
        "missing_detection_ci95": clopper_pearson(detected, len(with_impurity)),
        "false_alarm": alarms / len(clean) if clean else None,
        "false_alarm_ci95": clopper_pearson(alarms, len(clean)),
        "clean_sets_right": sum(r["reported"] == r["truth"] for r in clean) / len(clean) if clean else None,
        "median_analysis_seconds": float(np.median([r["seconds"] for r in rows])) if rows else None,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=16)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--diffuse", type=float, default=8.0,
                        help="the analysis' diffuse_fwhm_deg (amorphous humps in the background), degrees; 0: off")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--rows", help="append each finished sample's row to this JSON-lines file as it finishes")
    parser.add_argument("--only", help="comma-separated sample indices to run (of the --samples drawn); default: all")
    args = parser.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    diffuse = args.diffuse if args.diffuse > 0 else None
    cases = [{**draw_sample(rng, i), "index": i, "diffuse_fwhm_deg": diffuse} for i in range(args.samples)]
    if args.only:
        # The same draws (the generator runs through every sample), a subset run: split over machines or resume.
        chosen = {int(i) for i in args.only.split(",")}
        cases = [c for c in cases if c["index"] in chosen]
    rows = []
    with multiprocessing.get_context("spawn").Pool(args.processes) as pool:
        # Rows are kept as they finish: a 30-sample run takes half an hour, and a kill should not lose it all.
        for row in pool.imap_unordered(run_one, cases):
            rows.append(row)
            if args.rows:
                with open(args.rows, "a") as f:
                    f.write(json.dumps(row, default=str) + "\n")
    rows.sort(key=lambda r: r["index"])
    summary = summarise(rows)
    if args.json:
        print(json.dumps({"summary": summary, "rows": rows}, indent=2, default=str))
    else:
        for r in rows:
            print(f"{r['index']:3d} truth={r['truth']:<32} impurity={str(r['impurity']):<16} reported={str(r['reported']):<32} "
                  f"p={r['p_best'] if r['p_best'] is None else round(r['p_best'], 3)} p_missing={round(r['p_missing'] or 0, 3)} "
                  f"flagged={r['flagged']} {r['seconds']:.0f}s")
        print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
