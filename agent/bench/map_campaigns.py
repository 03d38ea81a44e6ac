"""The campaign documents of ``labpilot bench map``: one campaign over samples per (system, hidden
truth, policy), the same document ``labpilot run`` would take.

- ``oxide``: the shipped ``experiments/sdl_oxide_map.yaml`` (MgO–ZnO–CuO + anneal temperature,
  furnace synthesiser, adaptive XRD to p(best) ≥ 0.95 per sample, six candidate phases, three of
  them decoys) with the materials system's and the synthesiser's seeds set to the truth's.
- ``formulation``: amphiphile / co-surfactant / water recipes, a mixing robot as synthesiser, the
  SANS instrument of ``experiments/adaptive_sans.yaml`` with the formulation system as its sample,
  fitted by ``analysis.sas`` with sphere, cylinder and lamellar candidates (the system's three
  nanostructures) to p(best) ≥ 0.95 per sample.

Policies: ``phase_map`` (nested adaptive: the across-sample map policy, every sample measured by the
adaptive within-sample planner), ``cameo`` (the same map policy, every sample measured by a fixed
full scan: ``xrd_full_scan``'s one 10–90° window, or the three-configuration SANS protocol),
``grid`` (``map_grid``) and ``random`` (``map_random``), both with the adaptive within-sample planner.
No campaign-level targets: every campaign runs to its sample budget, and the benchmark evaluates the
map (and the map-confidence target) after each sample from the stored outcomes.
"""

from __future__ import annotations

import copy
import functools
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
SYSTEMS = ("oxide", "formulation")
POLICIES = ("phase_map", "cameo", "grid", "random")
ACROSS_SAMPLE = {"phase_map": "phase_map", "cameo": "phase_map", "grid": "map_grid", "random": "map_random"}

#: Lattice steps of the grid baseline: oxide 4 → 15 compositions × 5 temperatures = 75 recipes;
#: formulation 50 → a 0.02 step in every fraction, 50 feasible recipes inside the system's ranges.
GRID_DIVISIONS = {"oxide": 4, "formulation": 50}

SANS_FIXED_PROTOCOL = ({"configuration": "15m", "exposure_seconds": 600.0},
                       {"configuration": "5m", "exposure_seconds": 600.0},
                       {"configuration": "1.5m", "exposure_seconds": 600.0})
"""The formulation's CAMEO-style full scan: every configuration, 600 s each, chosen up front."""

_SLDS = {"sld": 0.3, "sld_solvent": 6.37}  # the formulation system's defaults: hydrogenous chains in D2O
_SAS_SCALE_BG = {"scale": {"value": 0.05, "bounds": [0, 0.5]}, "background": {"value": 0.05, "bounds": [-0.2, 0.3]}}
_PD = {"value": 0.1, "bounds": [0, 0.35]}
# Every candidate fits the size polydispersity the system gives every structure (Schulz, relative
# width 0.1): without it the cylinder and lamellar fits of these concentrated samples (φ 0.02–0.3,
# counting errors ~0.1 %) had χ²_red 300–2400, every sample was flagged poor-fit and so carried no
# label. The cylinder integrates its radius over 11 points (the truth: 21): its kernel, averaged
# over orientations, costs 46 ms per evaluation at 11 points and 93 ms at 21 (80 q points), and a
# fit takes ~10³ evaluations; 11 points gave χ²_red 1.0 (30 s) to 1.3 (3 × 600 s, 240 points). Its
# length has no fringes in orientation-averaged I(q), so only the radius sets the scan's fringe count.
# Its length is bounded by what the instrument resolves: 2π/q_min of the 15 m configuration (0.0015/Å)
# ≈ 4200 Å — a longer rod scatters as q⁻¹ over the whole measured range. The bound is also what
# keeps a fit affordable: sasmodels integrates a cylinder's orientations over 20, 76, 500 or 5000
# points as q·max(R, L/2) passes 10, 100, 750; at q = 0.35/Å a length above 4286 Å takes 5000 points
# (a wrong-model fit of a lamellar sample: 641 evaluations, 163 s with the bound at 20 000 Å).
SAS_CANDIDATES: list[dict[str, Any]] = [
    {"name": "sphere", "model": "sphere", "fixed": {**_SLDS, "radius_pd_type": "schulz", "radius_pd_n": 21},
     "parameters": {"radius": {"value": 40, "bounds": [10, 300]}, "radius_pd": _PD, **_SAS_SCALE_BG}},
    {"name": "cylinder", "model": "cylinder", "fixed": {**_SLDS, "radius_pd_type": "schulz", "radius_pd_n": 11},
     "fringe_parameters": ["radius"],
     "parameters": {"radius": {"value": 40, "bounds": [10, 300]}, "radius_pd": _PD,
                    "length": {"value": 800, "bounds": [50, 4200]}, **_SAS_SCALE_BG}},
    {"name": "lamellar", "model": "lamellar", "fixed": {**_SLDS, "thickness_pd_type": "schulz", "thickness_pd_n": 21},
     "parameters": {"thickness": {"value": 80, "bounds": [10, 400]}, "thickness_pd": _PD, **_SAS_SCALE_BG}},
]


@functools.cache
def _shipped(name: str) -> dict[str, Any]:
    return yaml.safe_load((ROOT / "experiments" / name).read_text())  # type: ignore[no-any-return]


def _formulation_step(truth: int) -> dict[str, Any]:
    sans = copy.deepcopy(_shipped("adaptive_sans.yaml")["instruments"][0])
    sans["settings"].pop("sample")
    sans["settings"] |= {"seed": 1000 + truth, "materials_system": {"kind": "formulation", "seed": truth}}
    return {
        "instruments": [sans],
        "design_space": {"parameters": [
            {"name": "configuration", "type": "categorical", "choices": ["15m", "5m", "1.5m"]},
            {"name": "exposure_seconds", "type": "continuous", "low": 30.0, "high": 7200.0, "units": "s"}]},
        "analysis": {"kind": "sas", "settings": {"evidence": "laplace", "candidates": SAS_CANDIDATES}},
        "policy": {"name": "sas_adaptive", "options": {}},
        "targets": [{"name": "structure_known", "kind": "estimate_threshold", "estimate": "p(best)", "at_least": 0.95}],
        "budgets": {"max_measurements": 6, "max_instrument_seconds": 6000},
    }


def _formulation(truth: int) -> dict[str, Any]:
    fractions = {"amphiphile": (0.02, 0.20), "cosurfactant": (0.0, 0.10), "water": (0.70, 0.98)}
    return {
        "name": "bench-map-formulation", "seed": truth,
        "design_space": {
            "parameters": [{"name": n, "type": "continuous", "low": lo, "high": hi, "units": "mass frac"}
                           for n, (lo, hi) in fractions.items()],
            "compositions": [{"name": "formulation", "parameters": list(fractions), "total": 1.0}]},
        "synthesiser": {"name": "mixer", "kind": "synthesis", "settings": {
            "components": list(fractions), "base_seconds": 1800.0,  # weigh, mix, equilibrate
            "failure_probability": 0.02, "seed": truth}},
        "policy": {"name": "phase_map"},
        "sample_step": _formulation_step(truth),
        "targets": [], "budgets": {"max_samples": 1},
    }


def _oxide(truth: int) -> dict[str, Any]:
    data = copy.deepcopy(_shipped("sdl_oxide_map.yaml"))
    data |= {"name": "bench-map-oxide", "seed": truth, "targets": []}
    data["synthesiser"]["settings"]["seed"] = truth
    xrd = data["sample_step"]["instruments"][0]["settings"]
    xrd |= {"seed": 1000 + truth, "materials_system": {"kind": "oxide", "seed": truth}}
    return data  # type: ignore[no-any-return]


def _full_scan(system: str) -> dict[str, Any]:
    """The sample step's fixed full scan of the CAMEO-style baseline: planner and budgets."""
    if system == "oxide":
        return {"policy": {"name": "xrd_full_scan"}, "budgets": {"max_measurements": 1}}
    return {"policy": {"name": "sas_fixed", "options": {"protocol": list(SANS_FIXED_PROTOCOL)}},
            "budgets": {"max_measurements": len(SANS_FIXED_PROTOCOL)}}


def campaign(system: str, truth: int, policy: str, max_samples: int, folder: Path) -> dict[str, Any]:
    """The campaign over samples of one benchmark run, its store and data in ``folder``."""
    if system not in SYSTEMS:
        raise ValueError(f"system: one of {SYSTEMS}, not {system!r}")
    if policy not in POLICIES:
        raise ValueError(f"policy: one of {POLICIES}, not {policy!r}")
    data = _oxide(truth) if system == "oxide" else _formulation(truth)
    data |= {"storage": f"sqlite:///{folder / 'bench.db'}", "data_dir": str(folder / "data"),
             "budgets": {"max_samples": max_samples}}
    data["policy"] = {"name": ACROSS_SAMPLE[policy]}
    if policy == "grid":
        data["policy"]["options"] = {"divisions": GRID_DIVISIONS[system]}
    if policy == "cameo":
        # The fixed scan runs to its end: the per-sample target does not cut it short.
        data["sample_step"] |= {**_full_scan(system), "stop_on_targets": False}
    return data
