"""SAS analysis on real data and on samples it does not assume: ``python -m benchmarks.sas_real [--quick]``.

1. **Real data** (sasdata's example files), labpilot's fit against direct fits written here
   (sasmodels kernels and resolution objects on dense grids + :func:`scipy.optimize.least_squares`):
   TK49 (``mono_gauss_coil``, unsmeared), 0.5 µm latex SANS (pinhole) + USANS (slit) jointly and
   SANS alone (polydisperse sphere).
2. **Model-mismatch family** (simulated, :class:`simulators.sas.SASDriver`): samples of
   ``agent.bench.sas.draw_family`` (sphere / core-shell / fuzzy sphere — candidates of the analysis),
   half of them also measured on a slit-smeared USANS configuration, and samples *outside* the
   candidates — interacting spheres (``sphere@hardsphere``, φ 0.15–0.35) and aggregated spheres
   (``sphere+power_law``, a low-Q mass-fractal power law) — each measured once on every
   configuration (fixed protocol) and interpreted once. Reported: coverage of the nominal 95 %
   intervals of every reported parameter where the true model is a candidate (Clopper–Pearson
   interval), and where it is not, how often the answer is a **confident wrong model** (no
   ``poor-fit`` / ``second-minimum`` / ``not-identified`` flag and p(best) ≥ 0.95).

Results go to ``benchmarks/results/sas_real.json`` and stdout. ``--quick``: 12 + 8 samples (~3 min on
2 cores); default 40 + 20.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats
from scipy.optimize import least_squares

from agent.bench.sas import CONFIGURATIONS, INSTRUMENT, BenchSample, draw_family
from agent.targets import UNTRUSTED_FLAGS
from analysis.sas import SASFitAnalysis, SASFitSettings
from instruments.types import Measurement, MeasurementRequest, Timing
from simulators.sas import SASDriver, SASSettings

USANS = {"name": "usans", "q_min": 5e-5, "q_max": 3e-3, "n_points": 40, "flux": 2.0e4, "slit_length": 0.117,
         "min_exposure_seconds": 60, "efficiency": 0.85, "cell_background": 0.03, "wavelength": 2.38}
EXPOSURE_SECONDS = {"15m": 1800.0, "5m": 900.0, "1.5m": 900.0, "usans": 3600.0}
LATEX_FIXED = {"sld": 1.0, "sld_solvent": 6.3}


# -- real data -------------------------------------------------------------------------------------


def _sasdata_blocks(name: str) -> list[Any]:
    import os

    import sasdata
    from sasdata.dataloader.loader import Loader

    return Loader().load(os.path.join(os.path.dirname(sasdata.__file__), "example_data", "1d_data", name))


def _measurement(block: Any, configuration: str, attempt: str) -> Measurement:
    q = np.asarray(block.x, dtype=float)
    data: dict[str, np.ndarray] = {"q": q, "intensity": np.asarray(block.y, dtype=float)}
    if getattr(block, "dxl", None) is not None:
        data["dq_slit_length"] = np.asarray(block.dxl, dtype=float)
        data["dq_slit_width"] = np.zeros_like(q) if block.dxw is None else np.asarray(block.dxw, dtype=float)
    else:
        data["dq"] = np.zeros_like(q) if block.dx is None else np.asarray(block.dx, dtype=float)
    return Measurement(attempt_id=attempt, instrument="file", sample_id="s", params={"configuration": configuration},
                       data=data, sigma={"intensity": np.asarray(block.dy, dtype=float)},
                       timing=Timing(exposure_seconds=0.0))


def _direct_resolution(block: Any, n_calc: int) -> Any:
    from sasmodels import resolution

    q = np.asarray(block.x, dtype=float)
    if getattr(block, "dxl", None) is not None:
        top = float(np.max(np.sqrt(q**2 + np.asarray(block.dxl) ** 2)))
        return resolution.Slit1D(q, q_length=np.asarray(block.dxl), q_width=np.zeros_like(q),
                                 q_calc=np.geomspace(0.5 * q.min(), top, n_calc))
    dq = np.asarray(block.dx, dtype=float)
    if not np.any(dq > 0):
        return resolution.Perfect1D(q)
    lo = max(float(np.min(q - 2.5 * dq)), 0.02 * float(q.min()))
    return resolution.Pinhole1D(q, dq, q_calc=np.geomspace(lo, float(np.max(q + 3 * dq)), n_calc))


def direct_fit(model: str, blocks: list[Any], names: list[str], starts: list[list[float]], bounds: tuple,
               fixed: dict[str, Any]) -> dict[str, float]:
    """Direct weighted least squares (sasmodels kernel, dense resolution, scipy): the best of ``starts``."""
    from sasmodels.core import load_model
    from sasmodels.direct_model import call_kernel

    kernel_model = load_model(model, dtype="double")
    parts = []
    for b in blocks:
        res = _direct_resolution(b, 4000)
        parts.append((res, kernel_model.make_kernel([res.q_calc]), np.asarray(b.y), np.asarray(b.dy)))

    def residuals(t: np.ndarray) -> np.ndarray:
        pars = {**fixed, **dict(zip(names, t)), "background": 0.0}
        bg = float(t[names.index("background")])
        return np.concatenate([(r.apply(call_kernel(k, pars, cutoff=0.0)) + bg - y) / dy for r, k, y, dy in parts])

    fits = [least_squares(residuals, x0, bounds=bounds, x_scale="jac") for x0 in starts]
    best = min(fits, key=lambda f: f.cost)
    sd = np.sqrt(np.diag(np.linalg.inv(best.jac.T @ best.jac)))
    return {"chi2": 2 * float(best.cost), **{n: float(v) for n, v in zip(names, best.x)},
            **{f"sigma:{n}": float(s) for n, s in zip(names, sd)}}


def _latex_settings() -> SASFitSettings:
    return SASFitSettings(candidates=[{"name": "sphere", "model": "sphere", "fixed": LATEX_FIXED, "parameters": {
        "radius": {"value": 1000, "bounds": [10, 10000]}, "radius_pd": {"value": 0.1, "bounds": [0, 0.5]},
        "scale": {"value": 0.01, "bounds": [0, 1]}, "background": {"value": 0.0, "bounds": [-1, 10]}}}])


def real_data() -> dict[str, Any]:
    """The three real-data goals, each with labpilot's answer, the direct fit and whether it is met."""
    out: dict[str, Any] = {}
    (tk49,) = _sasdata_blocks("ISIS_Polymer_Blend_TK49.xml")
    ref = direct_fit("mono_gauss_coil", [tk49], ["i_zero", "rg", "background"], [[10, 50, 0]],
                     ([0, 1, -1], [1e4, 1000, 10]), {})
    coil = SASFitSettings(candidates=[{"name": "coil", "model": "mono_gauss_coil", "parameters": {
        "i_zero": {"value": 10, "bounds": [0, 1e4]}, "rg": {"value": 50, "bounds": [1, 1000]},
        "background": {"value": 0, "bounds": [-1, 10]}}}])
    got = SASFitAnalysis(coil).interpret([_measurement(tk49, "tk49", "a0")])
    rg = got.estimates["rg"]
    out["tk49"] = {"rg": rg.value, "sigma": rg.sigma, "direct_rg": ref["rg"], "direct_sigma": ref["sigma:rg"],
                   "flags": got.flags, "met": abs(rg.value - ref["rg"]) < 0.2 * ref["sigma:rg"]}
    sans, usans = _sasdata_blocks("latex_smeared.xml")
    names = ["radius", "radius_pd", "scale", "background"]
    bounds = ([10, 0, 0, -1], [1e4, 0.5, 1, 10])
    sphere_fixed = {**LATEX_FIXED, "radius_pd_n": 35, "radius_pd_nsigma": 3}
    joint_ref = direct_fit("sphere", [sans, usans], names, [[r, pd, 0.006, 0.06] for r in (1800, 2200, 2600)
                                                            for pd in (0.02, 0.1)], bounds, sphere_fixed)
    got = SASFitAnalysis(_latex_settings()).interpret([_measurement(sans, "sans", "a0"), _measurement(usans, "usans", "a1")])
    radius = got.estimates["radius"]
    out["latex_joint"] = {"radius": radius.value, "sigma": radius.sigma, "direct_radius": joint_ref["radius"],
                          "chi2_reduced": got.details["chi2_reduced"], "flags": got.flags,
                          "met": abs(radius.value - joint_ref["radius"]) < 0.01 * joint_ref["radius"]}
    alone_ref = direct_fit("sphere", [sans], names, [[r, pd, 0.006, 0.06] for r in range(1500, 2700, 100)
                                                     for pd in (0.02, 0.12)], bounds, sphere_fixed)
    got = SASFitAnalysis(_latex_settings()).interpret([_measurement(sans, "sans", "a0")])
    radius = got.estimates["radius"]
    out["latex_sans_alone"] = {
        "radius": radius.value, "sigma": radius.sigma, "direct_radius": alone_ref["radius"],
        "direct_sigma": alone_ref["sigma:radius"], "chi2": got.details["chi2"], "direct_chi2": alone_ref["chi2"],
        "flags": got.flags, "second_minimum_flag": "second-minimum" in got.flags,
        "search_widened_flag": "search-widened" in got.flags,
        "met": "second-minimum" in got.flags,
    }
    return out


# -- the model-mismatch family ---------------------------------------------------------------------


def mismatch_samples(n: int, seed: int) -> list[BenchSample]:
    """``n`` samples outside the candidates: interacting spheres and aggregated spheres, alternately."""
    rng = np.random.default_rng(seed)
    base = draw_family(n, seed + 1)  # candidates and instrument of the ordinary family
    out = []
    for i, sample in enumerate(base):
        radius = float(math.exp(rng.uniform(math.log(40), math.log(120))))
        sld = sample.analysis["candidates"][0]["fixed"]["sld"]
        common = {"sld": sld, "sld_solvent": 6.37, "radius_pd": 0.1, "radius_pd_n": 35, "radius_pd_type": "schulz"}
        if i % 2 == 0:
            phi = float(rng.uniform(0.15, 0.35))
            model, scale = "sphere@hardsphere", 1.0
            parameters = {**common, "radius": radius, "volfraction": phi, "radius_effective": radius}
            truth = {"radius": radius, "volfraction": phi}
        else:
            model, scale = "sphere+power_law", 1.0
            parameters = {**{f"A_{k}": v for k, v in common.items()}, "A_radius": radius, "A_scale": 5e-4,
                          "B_power": float(rng.uniform(2.0, 2.8)), "B_scale": float(rng.uniform(2e-6, 2e-5))}
            truth = {"radius": radius}
        instrument = {**sample.instrument, "sample": {**sample.instrument["sample"], "model": model,
                                                      "parameters": parameters, "scale": scale}}
        # Concentrated samples: the candidates' volume fraction (scale) may reach 0.5, so a misfit is
        # the model's, not a bound's.
        analysis = json.loads(json.dumps(sample.analysis))
        for candidate in analysis["candidates"]:
            candidate["parameters"]["scale"]["bounds"] = [0.0, 0.5]
        out.append(BenchSample(i, model, truth, instrument, analysis))
    return out


def measure_once(instrument: dict[str, Any], with_usans: bool) -> list[Measurement]:
    """One exposure per configuration (fixed protocol) of a simulated instrument."""
    settings = dict(instrument)
    if with_usans:
        settings["configurations"] = [*instrument["configurations"], USANS]
    driver = SASDriver("sans", SASSettings.model_validate(settings))
    names = [*CONFIGURATIONS, "usans"] if with_usans else list(CONFIGURATIONS)
    return [driver.measure(MeasurementRequest(attempt_id=f"a{j}", sample_id="s",
                                              params={"configuration": c, "exposure_seconds": EXPOSURE_SECONDS[c]}))
            for j, c in enumerate(names)]


def _confident(interpretation: Any) -> bool:
    p_best = interpretation.estimates["p(best)"].value
    untrusted = any(f in UNTRUSTED_FLAGS or f.startswith("second-minimum") for f in interpretation.flags)
    return bool(interpretation.valid and not untrusted and p_best is not None and p_best >= 0.95)


def in_candidates_row(sample: BenchSample) -> dict[str, Any]:
    got = SASFitAnalysis(SASFitSettings.model_validate(sample.analysis)).interpret(
        measure_once(sample.instrument, with_usans=sample.index % 2 == 1))
    covered = {}
    for name in ("radius", "radius_pd", "scale", "background"):
        est = got.estimates[name]
        if est.value is not None and est.sigma is not None:
            covered[name] = abs(est.value - sample.truth[name]) <= 1.96 * est.sigma
    best = got.details.get("best_model")
    return {"model": sample.model, "best_model": best, "p_best": got.estimates["p(best)"].value,
            "covered": covered, "flags": got.flags, "confident_wrong": _confident(got) and best != sample.model}


def mismatch_row(sample: BenchSample) -> dict[str, Any]:
    got = SASFitAnalysis(SASFitSettings.model_validate(sample.analysis)).interpret(
        measure_once(sample.instrument, with_usans=False))
    return {"model": sample.model, "best_model": got.details.get("best_model"), "p_best": got.estimates["p(best)"].value,
            "chi2_reduced": got.details.get("chi2_reduced"), "flags": got.flags, "confident_wrong": _confident(got)}


def clopper_pearson(k: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Exact binomial interval of a proportion k/n."""
    a = (1 - level) / 2
    lo = 0.0 if k == 0 else float(stats.beta.ppf(a, k, n - k + 1))
    hi = 1.0 if k == n else float(stats.beta.ppf(1 - a, k + 1, n - k))
    return lo, hi


def summarise(rows_in: list[dict[str, Any]], rows_out: list[dict[str, Any]]) -> dict[str, Any]:
    hits = [v for r in rows_in for v in r["covered"].values()]
    k, n = int(sum(hits)), len(hits)
    per_parameter = {p: float(np.mean([r["covered"][p] for r in rows_in if p in r["covered"]]))
                     for p in ("radius", "radius_pd", "scale", "background")}
    confident_wrong = sum(r["confident_wrong"] for r in rows_out)
    coverage = k / n if n else math.nan
    return {
        "coverage_95": coverage, "coverage_interval": clopper_pearson(k, n), "n_intervals": n,
        "coverage_by_parameter": per_parameter,
        "model_right": float(np.mean([r["best_model"] == r["model"] for r in rows_in])),
        "confident_wrong_in_candidates": sum(r["confident_wrong"] for r in rows_in),
        "mismatch_confident_wrong": confident_wrong, "mismatch_n": len(rows_out),
        "mismatch_flagged_poor_fit": sum("poor-fit" in r["flags"] for r in rows_out),
        "goals": {"coverage_0.90_0.98": 0.90 <= coverage <= 0.98, "no_confident_wrong_on_mismatch": confident_wrong == 0},
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="12 + 8 samples instead of 40 + 20")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="benchmarks/results/sas_real.json")
    args = parser.parse_args(argv)
    n_in, n_out = (12, 8) if args.quick else (40, 20)
    t0 = time.perf_counter()
    result: dict[str, Any] = {"real_data": real_data()}
    rows_in = [in_candidates_row(s) for s in draw_family(n_in, args.seed)]
    rows_out = [mismatch_row(s) for s in mismatch_samples(n_out, args.seed + 100)]
    result["family"] = summarise(rows_in, rows_out)
    result["rows_in_candidates"], result["rows_mismatch"] = rows_in, rows_out
    result["seconds"] = time.perf_counter() - t0
    result["command"] = "python -m benchmarks.sas_real" + (" --quick" if args.quick else "") + f" --seed {args.seed}"
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2, default=str))
    print(json.dumps({"real_data": result["real_data"], "family": result["family"], "seconds": result["seconds"]},
                     indent=2, default=str))
    return result


if __name__ == "__main__":
    main()
