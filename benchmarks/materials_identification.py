"""Can the shipped analyses tell the materials systems' samples apart? One fixed characterisation per
sample, then the analysis' most probable label against the truth.

For each system, ``--samples`` recipes spread over ``dense_grid(6)`` (seed ``--seed``): the oxide
system's samples measured once by the simulated diffractometer (Cu Kα, 20–80°, 0.03°, 0.5 s per step)
and identified by ``analysis.xrd`` (default settings) over six candidate oxides: the system's three and
three it does not make, one of them isostructural with periclase (NiO); the formulation system's
measured on the three configurations of ``experiments/adaptive_sans.yaml`` (300 s each) and fitted by
``analysis.sas`` with sphere, cylinder and lamellar candidates. Reported per sample: the label of
what was made, the analysis' best label and its probability; per system: the fraction right and the
seconds of analysis. Not a test (minutes, not seconds): what sdlmap's map policies can expect.

    python benchmarks/materials_identification.py [--samples 8] [--seed 2] [--json]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import yaml

from analysis.sas import SASFitAnalysis, SASFitSettings
from analysis.xrd import XRDPhaseIdentification, XRDPhaseIDSettings
from instruments.types import MeasurementRequest
from simulators.sas import SASDriver, SASSettings
from simulators.xrd import XRDDriver, XRDSettings

ROOT = Path(__file__).resolve().parents[1]
XRD_WINDOW = {"two_theta_start": 20.0, "two_theta_stop": 80.0, "two_theta_step": 0.03, "dwell_seconds": 0.5}
XRD_CANDIDATES = ["mgo_periclase", "zno_zincite", "cuo_tenorite", "nio_bunsenite", "tio2_rutile", "al2o3_corundum"]
SLDS = {"sld": 0.3, "sld_solvent": 6.37}
SAS_CANDIDATES: list[dict[str, Any]] = [
    {"name": "sphere", "model": "sphere", "fixed": {**SLDS, "radius_pd_type": "schulz", "radius_pd_n": 21},
     "parameters": {"radius": {"value": 40, "bounds": [10, 300]}, "radius_pd": {"value": 0.1, "bounds": [0, 0.35]},
                    "scale": {"value": 0.05, "bounds": [0, 0.5]}, "background": {"value": 0.05, "bounds": [-0.2, 0.3]}}},
    {"name": "cylinder", "model": "cylinder", "fixed": SLDS,
     "parameters": {"radius": {"value": 40, "bounds": [10, 300]}, "length": {"value": 800, "bounds": [50, 20000]},
                    "scale": {"value": 0.05, "bounds": [0, 0.5]}, "background": {"value": 0.05, "bounds": [-0.2, 0.3]}}},
    {"name": "lamellar", "model": "lamellar", "fixed": SLDS,
     "parameters": {"thickness": {"value": 80, "bounds": [10, 400]},
                    "scale": {"value": 0.05, "bounds": [0, 0.5]}, "background": {"value": 0.05, "bounds": [-0.2, 0.3]}}},
]


def _spread(grid: list[dict[str, float]], n: int) -> list[dict[str, float]]:
    return [grid[round(i * (len(grid) - 1) / max(n - 1, 1))] for i in range(n)]


def oxide_rows(samples: int, seed: int) -> list[dict[str, Any]]:
    driver = XRDDriver("xrd", XRDSettings.model_validate({"materials_system": {"kind": "oxide", "seed": seed}, "seed": seed}))
    analysis = XRDPhaseIdentification(XRDPhaseIDSettings(candidates=XRD_CANDIDATES))
    assert driver._made is not None
    rows = []
    for i, recipe in enumerate(_spread(driver._made.system.dense_grid(6), samples)):
        request = MeasurementRequest(attempt_id=f"x-{i}", params=XRD_WINDOW, recipe=recipe, sample_id=f"oxide-{i}")
        measurement = driver.measure(request)
        started = time.perf_counter()
        interpretation = analysis.interpret([measurement])
        rows.append({"truth": driver.sample_truth(request).label, "best": interpretation.details.get("best_set"),
                     "p_best": interpretation.estimates["p(best)"].value, "seconds": time.perf_counter() - started})
    return rows


def formulation_rows(samples: int, seed: int) -> list[dict[str, Any]]:
    instrument = yaml.safe_load((ROOT / "experiments" / "adaptive_sans.yaml").read_text())["instruments"][0]["settings"]
    instrument.pop("sample")
    driver = SASDriver("sans", SASSettings.model_validate({**instrument, "materials_system": {"kind": "formulation", "seed": seed}}))
    analysis = SASFitAnalysis(SASFitSettings.model_validate({"evidence": "laplace", "candidates": SAS_CANDIDATES}))
    assert driver._made is not None
    rows = []
    for i, recipe in enumerate(_spread(driver._made.system.dense_grid(6), samples)):
        requests = [MeasurementRequest(attempt_id=f"s-{i}-{c.name}", params={"configuration": c.name, "exposure_seconds": 300.0},
                                       recipe=recipe, sample_id=f"formulation-{i}") for c in driver.settings.configurations]
        measurements = [driver.measure(r) for r in requests]
        started = time.perf_counter()
        interpretation = analysis.interpret(measurements)
        rows.append({"truth": driver.sample_truth(requests[0]).label, "best": interpretation.details.get("best_model"),
                     "p_best": interpretation.estimates["p(best)"].value, "seconds": time.perf_counter() - started})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=8)
    parser.add_argument("--seed", type=int, default=2)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    results = {"oxide": oxide_rows(args.samples, args.seed), "formulation": formulation_rows(args.samples, args.seed)}
    if args.json:
        print(json.dumps(results, indent=2))
        return
    for name, rows in results.items():
        right = sum(r["truth"] == r["best"] for r in rows)
        print(f"{name}: {right}/{len(rows)} right, median analysis {sorted(r['seconds'] for r in rows)[len(rows) // 2]:.0f} s")
        for r in rows:
            print(f"  {r['truth']:40s} → {str(r['best']):40s} p = {r['p_best']:.3f}")


if __name__ == "__main__":
    main()
