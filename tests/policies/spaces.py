"""Design spaces and test objectives shared by the policy tests (physical units on purpose)."""

from __future__ import annotations

import math

import numpy as np

from policies.protocol import Observation
from policies.space import DesignSpace


def plane_space() -> DesignSpace:
    """Temperature × time, so encoding to the unit cube is not the identity."""
    return DesignSpace.model_validate(
        {
            "parameters": [
                {"name": "temperature", "type": "continuous", "low": 300.0, "high": 500.0, "units": "K"},
                {"name": "time", "type": "continuous", "low": 1.0, "high": 10.0, "units": "min"},
            ]
        }
    )


#: Optimum of :func:`bump` in unit-cube coordinates (temperature, time).
BUMP_OPTIMUM_UNIT = (0.7, 0.3)


def bump(params: dict) -> float:
    """A Gaussian bump (max 1 at 440 K, 3.7 min) plus a lower decoy bump; yield in percent / 100."""
    u = (float(params["temperature"]) - 300.0) / 200.0
    v = (float(params["time"]) - 1.0) / 9.0
    main = math.exp(-((u - 0.7) ** 2 + (v - 0.3) ** 2) / (2 * 0.12**2))
    decoy = 0.5 * math.exp(-((u - 0.2) ** 2 + (v - 0.8) ** 2) / (2 * 0.15**2))
    return main + decoy


def unit_distance_to_bump_optimum(params: dict) -> float:
    u = (float(params["temperature"]) - 300.0) / 200.0
    v = (float(params["time"]) - 1.0) / 9.0
    return math.hypot(u - BUMP_OPTIMUM_UNIT[0], v - BUMP_OPTIMUM_UNIT[1])


def ternary_space() -> DesignSpace:
    """Mole fractions of a ternary plus an annealing temperature, with a linear inequality."""
    return DesignSpace.model_validate(
        {
            "parameters": [
                {"name": "x_a", "type": "continuous", "low": 0.0, "high": 1.0, "units": "mol frac"},
                {"name": "x_b", "type": "continuous", "low": 0.0, "high": 0.8, "units": "mol frac"},
                {"name": "x_c", "type": "continuous", "low": 0.1, "high": 1.0, "units": "mol frac"},
                {"name": "anneal", "type": "continuous", "low": 400.0, "high": 800.0, "units": "K"},
            ],
            "compositions": [{"name": "abc", "parameters": ["x_a", "x_b", "x_c"], "total": 1.0}],
            # Lots of A needs a cool anneal: x_a + anneal/1000 <= 1.2.
            "constraints": [{"coefficients": {"x_a": 1.0, "anneal": 0.001}, "upper_bound": 1.2}],
        }
    )


def ternary_objective(params: dict) -> float:
    return -((float(params["x_a"]) - 0.5) ** 2) - (float(params["x_b"]) - 0.2) ** 2 + 0.0005 * float(params["anneal"])


def mixed_space() -> DesignSpace:
    """A categorical solvent, an integer number of layers and a continuous concentration."""
    return DesignSpace.model_validate(
        {
            "parameters": [
                {"name": "solvent", "type": "categorical", "choices": ["water", "ethanol", "toluene"]},
                {"name": "layers", "type": "integer", "low": 1, "high": 6},
                {"name": "concentration", "type": "continuous", "low": 0.01, "high": 1.0, "units": "mol/L", "log_scale": True},
            ],
            "constraints": [{"coefficients": {"layers": 1.0, "concentration": 2.0}, "upper_bound": 6.5}],
        }
    )


def mixed_objective(params: dict) -> float:
    offset = {"water": 0.0, "ethanol": 0.5, "toluene": 0.2}[str(params["solvent"])]
    return offset + 0.1 * int(params["layers"]) - (math.log10(float(params["concentration"])) + 1.0) ** 2


def line_space() -> DesignSpace:
    return DesignSpace.model_validate(
        {"parameters": [{"name": "x", "type": "continuous", "low": 0.0, "high": 1.0, "units": "mm"}]}
    )


def quadratic(params: dict) -> float:
    """Peak 1.0 at x = 0.4 mm."""
    return 1.0 - 4.0 * (float(params["x"]) - 0.4) ** 2


def observe(points: list[dict], objective, sigma: float | None = None, noise_seed: int | None = None) -> list[Observation]:
    """Observations of ``objective`` at ``points``; Gaussian noise of ``sigma`` when ``noise_seed`` is set."""
    rng = np.random.default_rng(noise_seed) if noise_seed is not None else None
    out = []
    for p in points:
        value = objective(p)
        if rng is not None and sigma:
            value += float(rng.normal(0.0, sigma))
        out.append(Observation(params=p, value=value, sigma=sigma))
    return out
