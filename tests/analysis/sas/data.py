"""Shared data of the SAS fit tests: sasmodels-made measurements with a known, counts-like σ.

Data are made here with sasmodels directly (``DirectModel`` on ``Data1D`` with ``dx`` = pinhole dQ,
i.e. sasmodels' own smearing), never through ``simulators`` (the analysis layer must not need it),
and given Gaussian noise with a known, counts-like σ: σ² = (I + 0.05)/(flux · t).
"""

from __future__ import annotations

import numpy as np

from analysis.sas import SASFitSettings
from instruments.types import Measurement, Timing

# Three pinhole configurations (q_min, q_max, dq floor), like a SANS low/mid/high Q set-up.
CONFIGS = {"low": (0.003, 0.03, 0.0015), "mid": (0.015, 0.15, 0.004), "high": (0.06, 0.5, 0.01)}
D2O = 6.36  # 1e-6/Å²
SPHERE_TRUTH = {"radius": 60.0, "radius_pd": 0.1, "scale": 0.01, "background": 0.001}

_models: dict[str, object] = {}


def smeared(model: str, q: np.ndarray, dq: np.ndarray, pars: dict) -> np.ndarray:
    """Resolution-smeared I(q) by sasmodels (double precision, whole polydispersity mesh)."""
    from sasmodels.core import load_model
    from sasmodels.data import Data1D
    from sasmodels.direct_model import DirectModel

    if model not in _models:
        _models[model] = load_model(model, dtype="double")
    return DirectModel(Data1D(x=q, y=None, dx=dq), _models[model], cutoff=0.0)(**pars)


def grid(config: str, n: int) -> tuple[np.ndarray, np.ndarray]:
    lo, hi, dq0 = CONFIGS[config]
    q = np.geomspace(lo, hi, n)
    return q, np.sqrt((0.04 * q) ** 2 + dq0**2)


def measurement(q, intensity, dq, sigma, config="mid", exposure=10.0, attempt="a") -> Measurement:
    return Measurement(
        attempt_id=attempt, instrument="sans", sample_id="s1",
        params={"configuration": config, "exposure_seconds": exposure},
        data={"q": q, "intensity": intensity, "dq": dq}, sigma={"intensity": sigma},
        timing=Timing(exposure_seconds=exposure),
    )


def simulate(model, pars, rng, configs=("low", "mid", "high"), n=40, flux=20.0, exposure=10.0) -> list[Measurement]:
    out = []
    for j, config in enumerate(configs):
        q, dq = grid(config, n)
        truth = smeared(model, q, dq, pars)
        sigma = np.sqrt((np.abs(truth) + 0.05) / (flux * exposure))
        y = truth + rng.normal(size=q.size) * sigma
        out.append(measurement(q, y, dq, sigma, config, exposure, attempt=f"a{j}"))
    return out


def sphere_pars(**over) -> dict:
    pars = {**SPHERE_TRUTH, "sld": 1.0, "sld_solvent": D2O, "radius_pd_n": 35}
    pars.update(over)
    return pars


SCALE_BG = {"scale": {"value": 0.01, "bounds": [0, 0.1]}, "background": {"value": 0, "bounds": [-0.05, 0.05]}}
SPHERE = {
    "name": "sphere", "model": "sphere",
    "parameters": {
        "radius": {"value": 40, "bounds": [10, 300]}, "radius_pd": {"value": 0.15, "bounds": [0.0, 0.3]}, **SCALE_BG,
    },
    "fixed": {"sld": 1.0, "sld_solvent": D2O, "radius_pd_type": "gaussian", "radius_pd_n": 35},
}
CORE_SHELL = {
    "name": "core_shell", "model": "core_shell_sphere",
    "parameters": {
        "radius": {"value": 40, "bounds": [10, 300]}, "thickness": {"value": 10, "bounds": [5, 60]},
        "radius_pd": {"value": 0.15, "bounds": [0.0, 0.3]}, **SCALE_BG,
    },
    "fixed": {"sld_core": 1.0, "sld_shell": 3.0, "sld_solvent": D2O, "radius_pd_n": 35},
}
CYLINDER = {
    "name": "cylinder", "model": "cylinder",
    "parameters": {"radius": {"value": 30, "bounds": [5, 300]}, "length": {"value": 200, "bounds": [10, 3000]}, **SCALE_BG},
    # A fixed 10 % radius spread with 10 points keeps the (orientation-averaged) kernel cheap.
    "fixed": {"sld": 1.0, "sld_solvent": D2O, "radius_pd": 0.1, "radius_pd_n": 10},
}


def settings(*candidates, **over) -> SASFitSettings:
    return SASFitSettings.model_validate({"candidates": list(candidates), **over})


CLEAR_CASES = {
    "sphere": ("sphere", sphere_pars()),
    "core_shell": (
        "core_shell_sphere",
        {"radius": 40.0, "thickness": 15.0, "radius_pd": 0.1, "radius_pd_n": 35, "sld_core": 1.0,
         "sld_shell": 3.0, "sld_solvent": D2O, "scale": 0.01, "background": 0.001},
    ),
    "cylinder": (
        "cylinder",
        {"radius": 25.0, "length": 250.0, "radius_pd": 0.1, "radius_pd_n": 10, "sld": 1.0, "sld_solvent": D2O,
         "scale": 0.01, "background": 0.001},
    ),
}

