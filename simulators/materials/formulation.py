"""A soft-matter formulation: an amphiphile, a co-surfactant and a solvent (three fractions).

Construction (the packing-parameter picture of self-assembly, kept simple):

- **Packing parameter** ``p = v / (a₀ l)`` of the mixed amphiphile film, linear in the recipe:
  ``p = p₀ + k_r · r + k_φ · φ`` with ``r`` = co-surfactant / (amphiphile + co-surfactant) (a
  medium-chain co-surfactant wedges between the head groups, shrinking a₀) and ``φ`` = amphiphile
  + co-surfactant (crowding favours flatter aggregates). ``p₀``, ``k_r`` and ``k_φ`` are drawn from
  the seed, so each seed places the boundaries elsewhere.
- **Nanostructure** (the label, a sasmodels model name): ``sphere`` for p < 1/3, ``cylinder`` for
  1/3 ≤ p < 1/2, ``lamellar`` for p ≥ 1/2.
- **Sizes** from the packing geometry with chain length ``l``: sphere radius 3 p l (= l at p = 1/3),
  cylinder radius 2 p l (= l at p = 1/2), bilayer thickness 2 p l; cylinders grow longer towards the
  lamellar boundary and with concentration, ``L = L_min · exp(κ u) · (φ/φ_ref)^½`` with
  u = (p − 1/3)/(1/6) ∈ [0, 1). Relative size polydispersity ``polydispersity`` (Schulz).
- **Scattering**: sasmodels ``sphere``, ``cylinder`` or ``lamellar`` with the structures' volume
  fraction φ as ``scale`` (dilute: no structure factor), SLDs of the hydrophobic core and the solvent
  (defaults: hydrogenous chains in D₂O), an incoherent background, a fixed cell (transmission,
  thickness) — what the SAS simulator draws and the analysis' candidate models can describe.
- **Synthesis scatter** per sample (``sample_rng``): fractions weighed with an absolute σ, and a
  log-normal scatter of every size.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

import numpy as np
from pydantic import Field, model_validator

from instruments.types import ParamValue, Record
from simulators.materials.base import (
    NanostructureTruth,
    Variable,
    grid_recipes,
    read_composition,
    read_process,
    sample_rng,
    scatter_composition,
)

STRUCTURES = ("sphere", "cylinder", "lamellar")
"""The nanostructures in order of increasing packing parameter (sasmodels model names)."""


def _default_components() -> list[Variable]:
    return [
        Variable(name="amphiphile", low=0.02, high=0.20, units="fraction"),
        Variable(name="cosurfactant", low=0.0, high=0.10, units="fraction"),
        Variable(name="water", low=0.70, high=0.98, units="fraction"),
    ]


class FormulationSystemSettings(Record):
    """Settings of the formulation system (campaign file: ``instruments[].settings.materials_system``)."""

    kind: Literal["formulation"] = "formulation"
    seed: int = Field(default=0, description="the hidden truth: boundary placements")
    components: list[Variable] = Field(
        default_factory=_default_components, min_length=3, max_length=3,
        description="[amphiphile, co-surfactant, solvent] fractions: recipe keys and ranges",
    )
    packing_offset: tuple[float, float] = Field(default=(0.18, 0.25), description="range of p₀")
    packing_per_cosurfactant: tuple[float, float] = Field(default=(0.4, 0.6), description="range of k_r")
    packing_per_concentration: tuple[float, float] = Field(default=(0.2, 0.5), description="range of k_φ")
    chain_length_angstrom: float = Field(default=60.0, gt=5, le=500, description="hydrophobic chain length l, Å")
    min_cylinder_length_angstrom: float = Field(default=150.0, gt=0, description="L_min, Å")
    cylinder_growth: float = Field(default=3.0, ge=0, le=6, description="κ: L grows by e^κ across the cylinder field")
    reference_concentration: float = Field(default=0.05, gt=0, description="φ_ref of the cylinder length")
    polydispersity: float = Field(default=0.1, ge=0, le=0.4, description="relative size polydispersity (Schulz)")
    polydispersity_points: int = Field(default=21, ge=1, le=100, description="sasmodels _pd_n")
    sld: float = Field(default=0.3, description="SLD of the structures, 1e-6/Å²")
    sld_solvent: float = Field(default=6.37, description="SLD of the solvent, 1e-6/Å²")
    background: float = Field(default=0.05, ge=0, description="incoherent background, 1/cm")
    transmission: float = Field(default=0.9, gt=0, le=1, description="the cell's transmission (the same for every sample)")
    thickness_cm: float = Field(default=0.1, gt=0, description="the cell's path length, cm")
    composition_scatter: float = Field(default=0.002, ge=0, le=0.05, description="σ of each weighed fraction")
    size_scatter: float = Field(default=0.05, ge=0, le=0.5, description="log-normal σ of the sizes")

    @model_validator(mode="after")
    def _consistent(self) -> FormulationSystemSettings:
        names = [c.name for c in self.components]
        if len(set(names)) != len(names):
            raise ValueError(f"components: recipe keys must be distinct, got {names}")
        for c in self.components:
            if not 0 <= c.low < c.high <= 1:
                raise ValueError(f"components.{c.name}: a fraction's range must lie in [0, 1], got [{c.low}, {c.high}]")
        for field in ("packing_offset", "packing_per_cosurfactant", "packing_per_concentration"):
            low, high = getattr(self, field)
            if not low <= high:
                raise ValueError(f"{field}: need low ≤ high, got {(low, high)}")
        return self


class FormulationSystem:
    """The formulation system of ``FormulationSystemSettings`` (module docstring)."""

    def __init__(self, settings: FormulationSystemSettings) -> None:
        self.settings = settings
        self.seed = settings.seed
        rng = np.random.default_rng([settings.seed, 0x50F7])
        self.packing_coefficients = (
            float(rng.uniform(*settings.packing_offset)),
            float(rng.uniform(*settings.packing_per_cosurfactant)),
            float(rng.uniform(*settings.packing_per_concentration)),
        )
        """(p₀, k_r, k_φ) of this seed."""

    @property
    def components(self) -> list[Variable]:
        return list(self.settings.components)

    @property
    def process_variables(self) -> list[Variable]:
        return []

    def packing_parameter(self, x: np.ndarray) -> float:
        """p of composition ``x`` = (amphiphile, co-surfactant, solvent) fractions."""
        p0, k_r, k_phi = self.packing_coefficients
        phi = float(x[0] + x[1])
        ratio = float(x[1] / phi) if phi > 0 else 0.0
        return p0 + k_r * ratio + k_phi * phi

    @staticmethod
    def structure(p: float) -> str:
        """The nanostructure of packing parameter ``p``."""
        return "sphere" if p < 1 / 3 else "cylinder" if p < 1 / 2 else "lamellar"

    def label(self, recipe: Mapping[str, ParamValue]) -> str:
        return self.structure(self.packing_parameter(read_composition(recipe, self.components)))

    def labels(self) -> list[str]:
        return sorted(STRUCTURES)

    def structure_parameters(self, x: np.ndarray, size_factor: float = 1.0) -> tuple[str, dict[str, float | int | str]]:
        """(sasmodels model, its size and SLD parameters) of composition ``x``; lengths Å."""
        s = self.settings
        p = self.packing_parameter(x)
        model = self.structure(p)
        length_scale = s.chain_length_angstrom * size_factor
        pd = {"_pd": s.polydispersity, "_pd_n": s.polydispersity_points, "_pd_type": "schulz"}
        size_name = "thickness" if model == "lamellar" else "radius"
        parameters: dict[str, float | int | str] = {"sld": s.sld, "sld_solvent": s.sld_solvent}
        parameters[size_name] = (3 if model == "sphere" else 2) * p * length_scale
        if s.polydispersity > 0:
            parameters.update({size_name + suffix: value for suffix, value in pd.items()})
        if model == "cylinder":
            u = (p - 1 / 3) / (1 / 6)
            phi = float(x[0] + x[1])
            parameters["length"] = (
                s.min_cylinder_length_angstrom * size_factor * np.exp(s.cylinder_growth * u)
                * np.sqrt(phi / s.reference_concentration)
            )
        return model, parameters

    def truth(self, recipe: Mapping[str, ParamValue], sample_key: str) -> NanostructureTruth:
        s = self.settings
        x = read_composition(recipe, self.components)
        read_process(recipe, self.process_variables)
        rng = sample_rng(s.seed, sample_key)
        made = scatter_composition(x, s.composition_scatter, rng)
        model, parameters = self.structure_parameters(made, float(np.exp(rng.normal(0.0, s.size_scatter))))
        return NanostructureTruth(
            label=model, made={c.name: float(v) for c, v in zip(s.components, made)}, model=model,
            parameters={k: float(v) if isinstance(v, np.floating) else v for k, v in parameters.items()},
            scale=float(made[0] + made[1]), background=s.background,
            transmission=s.transmission, thickness_cm=s.thickness_cm,
        )

    def dense_grid(self, n: int) -> list[dict[str, float]]:
        return grid_recipes(self.components, self.process_variables, n)
