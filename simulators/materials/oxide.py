"""An oxide system: three components on a composition simplex plus an annealing temperature.

Construction (physically plausible, deliberately simple; defaults: MgO–ZnO–CuO, whose end members
are rock-salt periclase, wurtzite zincite and monoclinic tenorite — three different structures, so
each forms a terminal solid solution rather than a complete one):

- **Phase fields.** At each temperature the isothermal section has three terminal solid solutions
  (one per corner phase), three two-phase fields and one three-phase field —
  ``simulators.materials.ternary``: 7 regions, of 1, 2 and 3 phases. A recipe's label is its
  field's phase set (library names, sorted, joined by '+').
- **Random boundaries.** Each host's solubility of each other component at the highest temperature
  is drawn from the seed within the host's ``solubility`` range; it falls linearly to a drawn
  fraction (``low_temperature_ratio``) of that at the lowest temperature (solubility rises with
  temperature), and the three-phase triangle's corners hold a drawn fraction γ of the binary
  solubilities. Different seeds move every boundary; each seed is one hidden truth.
- **Lever rule.** Inside a two-phase field both phases' compositions lie on the tie line through the
  recipe, and their fractions are the lever rule's; in the three-phase field they are the
  barycentric coordinates in the triangle of saturated compositions. Fractions are molar fractions
  of the components' formula units, used as weight fractions (a simplification: the end members'
  formula masses differ by < 2×).
- **Vegard's law.** A phase's d-spacings change by ``Σ_Y vegard[host][Y] · x_Y`` (x_Y: fraction of Y
  dissolved in it), a lattice strain the XRD simulator applies. Default coefficients: periclase
  +0.011 per unit ZnO (below the full Vegard slope to rock-salt ZnO, a = 4.28 Å against 4.21 Å,
  +0.016) and +0.003 per unit CuO; the others small (≤ 0.008), of the sign the ionic radii
  suggest. Chosen so that the largest shift, in periclase saturated with both, stays within the
  XRD analysis' default ``lattice_strain_bound`` (0.5 %): a wider bound lets an isostructural decoy
  (rock-salt NiO, 1 % smaller) sit on periclase's peaks.
- **Crystallite size** grows with temperature, Arrhenius-like:
  ``D = D_ref · exp(E/k_B · (1/T_ref − 1/T))``, ``D_ref`` drawn per phase from the seed.
- **Minor phases near boundaries** follow from the lever rule: a phase's fraction goes to zero on
  its field's boundary, so recipes near a boundary hold a few per cent of a second or third phase.
- **Synthesis scatter** per sample (``sample_rng``): the composition weighed out with an absolute
  error per fraction, the furnace temperature with a σ in K, and a log-normal scatter of sizes —
  a sample made near a boundary may land on the other side of it (its ``truth.label`` then differs
  from ``label(recipe)``).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Literal

import numpy as np
from pydantic import Field, field_validator, model_validator

from instruments.types import ParamValue, Record
from simulators.materials.base import (
    PhaseMixtureTruth,
    PhaseTruth,
    Variable,
    grid_recipes,
    read_composition,
    read_process,
    sample_rng,
    scatter_composition,
)
from simulators.materials.ternary import TernarySection

BOLTZMANN_EV_PER_K = 8.617333262e-5


class OxideComponent(Record):
    """One component (a corner of the simplex) and the phase it crystallises as."""

    name: str = Field(min_length=1, description="recipe key of the component's fraction, e.g. 'MgO'")
    phase: str = Field(min_length=1, description="library phase of the corner's solid solution (physics/phases)")
    solubility: tuple[float, float] = Field(
        description="range the host's solubility of each other component is drawn from, at the highest temperature (fraction)"
    )
    vegard: dict[str, float] = Field(
        default_factory=dict,
        description="relative d-spacing change of this phase per unit fraction of each dissolved component (by name)",
    )

    @field_validator("solubility")
    @classmethod
    def _range(cls, value: tuple[float, float]) -> tuple[float, float]:
        if not 0 < value[0] <= value[1] < 0.5:
            raise ValueError(f"solubility: need 0 < low ≤ high < 0.5, got {value}")
        return value


def _default_components() -> list[OxideComponent]:
    return [
        OxideComponent(name="MgO", phase="mgo_periclase", solubility=(0.2, 0.4), vegard={"ZnO": 0.011, "CuO": 0.003}),
        OxideComponent(name="ZnO", phase="zno_zincite", solubility=(0.08, 0.2), vegard={"MgO": -0.006, "CuO": 0.003}),
        OxideComponent(name="CuO", phase="cuo_tenorite", solubility=(0.08, 0.2), vegard={"MgO": 0.008, "ZnO": 0.006}),
    ]


class OxideSystemSettings(Record):
    """Settings of the oxide system (campaign file: ``instruments[].settings.materials_system``)."""

    kind: Literal["oxide"] = "oxide"
    seed: int = Field(default=0, description="the hidden truth: boundary placements and sizes")
    components: list[OxideComponent] = Field(default_factory=_default_components, min_length=3, max_length=3)
    temperature: Variable = Field(
        default_factory=lambda: Variable(name="anneal_temperature_k", low=773.0, high=1373.0, units="K"),
        description="the annealing temperature's recipe key and range, K",
    )
    low_temperature_ratio: tuple[float, float] = Field(
        default=(0.35, 0.65), description="solubility at the lowest temperature / at the highest: drawn from this range"
    )
    gamma: tuple[float, float] = Field(
        default=(0.6, 0.9), description="three-phase corners' share of the binary solubilities: drawn from this range"
    )
    size_reference_nm: tuple[float, float] = Field(
        default=(40.0, 70.0), description="crystallite size at the reference temperature, nm: drawn per phase"
    )
    size_reference_k: float = Field(default=1073.0, gt=0, description="reference temperature of the size, K")
    size_activation_ev: float = Field(default=0.25, ge=0, description="activation energy of grain growth, eV")
    composition_scatter: float = Field(default=0.004, ge=0, le=0.05, description="σ of each weighed fraction")
    temperature_scatter_k: float = Field(default=5.0, ge=0, le=50, description="σ of the furnace temperature, K")
    size_scatter: float = Field(default=0.1, ge=0, le=0.5, description="log-normal σ of crystallite sizes")

    @model_validator(mode="after")
    def _consistent(self) -> OxideSystemSettings:
        names = [c.name for c in self.components] + [self.temperature.name]
        if len(set(names)) != len(names):
            raise ValueError(f"components/temperature: recipe keys must be distinct, got {names}")
        phases = [c.phase for c in self.components]
        if len(set(phases)) != len(phases):
            raise ValueError(f"components: each component needs its own phase, got {phases}")
        for c in self.components:
            unknown = sorted(set(c.vegard) - set(names[:3]) | ({c.name} & set(c.vegard)))
            if unknown:
                raise ValueError(f"components.{c.name}.vegard: {unknown} are not other components of {names[:3]}")
        for field in ("low_temperature_ratio", "gamma", "size_reference_nm"):
            low, high = getattr(self, field)
            if not 0 < low <= high:
                raise ValueError(f"{field}: need 0 < low ≤ high, got {(low, high)}")
        if not (0.5 < self.gamma[0] and self.gamma[1] <= 1):
            raise ValueError(f"gamma: need 0.5 < low ≤ high ≤ 1, got {self.gamma}")
        return self

    def phases(self) -> list[str]:
        """The library phases the system makes (what an XRD simulator's library must hold)."""
        return [c.phase for c in self.components]


class OxideSystem:
    """The oxide system of ``OxideSystemSettings`` (module docstring)."""

    def __init__(self, settings: OxideSystemSettings) -> None:
        self.settings = settings
        self.seed = settings.seed
        rng = np.random.default_rng([settings.seed, 0x0C1DE])
        s = settings
        high = np.zeros((3, 3))
        for x, c in enumerate(s.components):
            for y in range(3):
                if y != x:
                    high[x, y] = rng.uniform(*c.solubility)
        self._solubility_high = high
        self._solubility_low = high * rng.uniform(*s.low_temperature_ratio, size=(3, 3))
        self._gamma = rng.uniform(*s.gamma, size=3)
        self._size_reference = rng.uniform(*s.size_reference_nm, size=3)
        self._vegard = np.array([[c.vegard.get(other.name, 0.0) for other in s.components] for c in s.components])

    @property
    def components(self) -> list[Variable]:
        return [Variable(name=c.name, low=0.0, high=1.0, units="fraction") for c in self.settings.components]

    @property
    def process_variables(self) -> list[Variable]:
        return [self.settings.temperature]

    # -- the section at a temperature ----------------------------------------------------------------
    @functools.lru_cache(maxsize=4096)  # noqa: B019 — one section per temperature, systems live as long as their driver
    def section(self, temperature_k: float) -> TernarySection:
        """The isothermal section at ``temperature_k`` (K)."""
        t = self.settings.temperature
        u = min(max((temperature_k - t.low) / (t.high - t.low), 0.0), 1.0)
        return TernarySection(self._solubility_low + u * (self._solubility_high - self._solubility_low), self._gamma)

    def crystallite_size_nm(self, phase_index: int, temperature_k: float) -> float:
        """Mean crystallite size of a phase annealed at ``temperature_k``, nm (no scatter)."""
        s = self.settings
        exponent = s.size_activation_ev / BOLTZMANN_EV_PER_K * (1.0 / s.size_reference_k - 1.0 / temperature_k)
        return float(self._size_reference[phase_index] * np.exp(exponent))

    def lattice_strain(self, phase_index: int, composition: np.ndarray) -> float:
        """Vegard shift of a phase of ``composition`` (3,): relative d-spacing change."""
        return float(np.clip(self._vegard[phase_index] @ composition, -0.03, 0.03))

    def _phase_label(self, phases: tuple[int, ...]) -> str:
        return "+".join(sorted(self.settings.components[i].phase for i in phases))

    # -- the protocol --------------------------------------------------------------------------------
    def label(self, recipe: Mapping[str, ParamValue]) -> str:
        x = read_composition(recipe, self.components)
        (temperature,) = read_process(recipe, self.process_variables)
        return self._phase_label(self.section(float(temperature)).field(x).phases)

    def labels(self) -> list[str]:
        sets = [(0,), (1,), (2,), (0, 1), (1, 2), (0, 2), (0, 1, 2)]
        return sorted(self._phase_label(p) for p in sets)

    def truth(self, recipe: Mapping[str, ParamValue], sample_key: str) -> PhaseMixtureTruth:
        s = self.settings
        x = read_composition(recipe, self.components)
        (temperature,) = read_process(recipe, self.process_variables)
        rng = sample_rng(s.seed, sample_key)
        made = scatter_composition(x, s.composition_scatter, rng)
        temperature = float(np.clip(temperature + rng.normal(0.0, s.temperature_scatter_k), s.temperature.low, s.temperature.high))
        size_factors = np.exp(rng.normal(0.0, s.size_scatter, size=3))
        field = self.section(round(temperature, 6)).field(made)
        phases = []
        for index, composition, fraction in zip(field.phases, field.compositions, field.fractions):
            if fraction < 1e-6:
                continue  # exactly on a boundary: the phase is absent
            phases.append(PhaseTruth(
                phase=s.components[index].phase, weight_fraction=fraction,
                composition={c.name: max(float(v), 0.0) for c, v in zip(s.components, composition)},
                lattice_strain=self.lattice_strain(index, composition),
                crystallite_size_nm=max(self.crystallite_size_nm(index, temperature) * size_factors[index], 2.0),
            ))
        total = sum(p.weight_fraction for p in phases)
        phases = [p.model_copy(update={"weight_fraction": p.weight_fraction / total}) for p in phases]
        return PhaseMixtureTruth(
            label=self._phase_label(tuple(i for i, f in zip(field.phases, field.fractions) if f >= 1e-6)),
            made={**{c.name: float(v) for c, v in zip(s.components, made)}, s.temperature.name: temperature},
            phases=phases,
        )

    def dense_grid(self, n: int) -> list[dict[str, float]]:
        return grid_recipes(self.components, self.process_variables, n)
