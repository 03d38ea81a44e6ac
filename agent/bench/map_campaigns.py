"""The campaign documents of ``labpilot bench map``: one campaign over samples per (system, hidden
truth, policy), the same document ``labpilot run`` would take.

- ``oxide``: the shipped ``experiments/sdl_oxide_map.yaml`` (MgO–ZnO–CuO + anneal temperature,
  furnace synthesiser, adaptive XRD to p(best) ≥ 0.95 per sample, six candidate phases, three of
  them decoys) with the materials system's and the synthesiser's seeds set to the truth's.
- ``formulation``: the shipped ``experiments/sdl_formulation_map.yaml`` (amphiphile / co-surfactant /
  water recipes, a mixing robot as synthesiser, the SANS instrument of ``experiments/adaptive_sans.yaml``
  with the formulation system as its sample, fitted by ``analysis.sas`` with sphere, cylinder and
  lamellar candidates — the system's three nanostructures — to p(best) ≥ 0.95 per sample) with the
  materials system's, the instrument's and the mixer's seeds set to the truth's.

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

@functools.cache
def _shipped(name: str) -> dict[str, Any]:
    return yaml.safe_load((ROOT / "experiments" / name).read_text())  # type: ignore[no-any-return]


#: The shipped campaign each system's runs start from.
SHIPPED = {"oxide": "sdl_oxide_map.yaml", "formulation": "sdl_formulation_map.yaml"}


def _for_truth(system: str, truth: int) -> dict[str, Any]:
    """The shipped campaign of ``system`` with ``truth`` as the seed of its materials system, its
    instrument's counting noise (1000 + truth) and its synthesiser; no targets."""
    data = copy.deepcopy(_shipped(SHIPPED[system]))
    data |= {"name": f"bench-map-{system}", "seed": truth, "targets": []}
    data["synthesiser"]["settings"]["seed"] = truth
    instrument = data["sample_step"]["instruments"][0]["settings"]
    instrument |= {"seed": 1000 + truth, "materials_system": {"kind": system, "seed": truth}}
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
    data = _for_truth(system, truth)
    data |= {"storage": f"sqlite:///{folder / 'bench.db'}", "data_dir": str(folder / "data"),
             "budgets": {"max_samples": max_samples}}
    data["policy"] = {"name": ACROSS_SAMPLE[policy]}
    if policy == "grid":
        data["policy"]["options"] = {"divisions": GRID_DIVISIONS[system]}
    if policy == "cameo":
        # The fixed scan runs to its end: the per-sample target does not cut it short.
        data["sample_step"] |= {**_full_scan(system), "stop_on_targets": False}
    return data
