"""What every materials system shares: the design variables, the truth records and the protocol.

A materials system is the hidden truth of a self-driving-lab benchmark: given a recipe (composition
fractions and process variables, in the design space's units) it says what sample the synthesis
makes. Only the characterisation simulators ask it, inside their instrument process, so the truth
never reaches analysis or policies (``ARCHITECTURE.md``: a materials system travels with the sample
to the characterisation simulators only).

Two answers per recipe:

- ``truth(recipe, sample_key)`` — the sample actually made: the recipe plus a small synthesis
  scatter (weighing, furnace temperature, growth), drawn from a seed that depends on the system's
  seed and the sample's key only, so a sample measured again, on another instrument or after a
  resume, is the same sample;
- ``label(recipe)`` — the noiseless region label of the nominal recipe (a phase set such as
  ``"cuo_tenorite+mgo_periclase"``, or a nanostructure such as ``"cylinder"``): the truth map a
  benchmark scores a learned map against, on ``dense_grid(n)``.
"""

from __future__ import annotations

import hashlib
import itertools
import math
from collections.abc import Mapping, Sequence
from typing import Literal, Protocol, runtime_checkable

import numpy as np
from pydantic import Field, model_validator

from instruments.types import ParamValue, Record


class RecipeError(ValueError):
    """A recipe the materials system cannot make a sample from; the message names ``recipe`` and the field."""


class Variable(Record):
    """One design variable of a materials system: a composition fraction or a process variable."""

    name: str = Field(min_length=1, description="the recipe key (the design-space parameter's name)")
    low: float = Field(description="lowest value, in the variable's units")
    high: float = Field(description="highest value, in the variable's units")
    units: str = Field(default="", description="'fraction' for a composition, e.g. 'K' for a temperature")

    @model_validator(mode="after")
    def _ordered(self) -> Variable:
        if not self.low < self.high:
            raise ValueError(f"{self.name}: low ({self.low}) must be below high ({self.high})")
        return self


class PhaseTruth(Record):
    """One crystalline phase of a made sample, as the XRD simulator draws it."""

    phase: str = Field(min_length=1, description="library phase name (physics/phases CIF stem)")
    weight_fraction: float = Field(gt=0, le=1, description="mass fraction in the sample")
    composition: dict[str, float] = Field(description="the phase's own composition (component → fraction): a solid solution's")
    lattice_strain: float = Field(ge=-0.03, le=0.03, description="Vegard shift: relative change of every d-spacing")
    crystallite_size_nm: float = Field(gt=1, description="Scherrer size, nm")


class PhaseMixtureTruth(Record):
    """A sample of crystalline phases (oxide system)."""

    kind: Literal["phase_mixture"] = "phase_mixture"
    label: str = Field(description="the region of what was made (its phase set, names sorted, joined by '+')")
    made: dict[str, float] = Field(description="the recipe actually made (nominal + synthesis scatter)")
    phases: list[PhaseTruth] = Field(min_length=1)


class NanostructureTruth(Record):
    """A dispersion of self-assembled nanostructures (formulation system), as a sasmodels model."""

    kind: Literal["nanostructure"] = "nanostructure"
    label: str = Field(description="the nanostructure of what was made: a sasmodels model name")
    made: dict[str, float] = Field(description="the recipe actually made (nominal + synthesis scatter)")
    model: str = Field(description="sasmodels model name")
    parameters: dict[str, float | int | str] = Field(description="sasmodels parameters: lengths Å, SLDs 1e-6/Å²")
    scale: float = Field(ge=0, description="volume fraction of the structures")
    background: float = Field(ge=0, description="incoherent background, 1/cm")
    transmission: float = Field(gt=0, le=1)
    thickness_cm: float = Field(gt=0)


SampleTruth = PhaseMixtureTruth | NanostructureTruth


@runtime_checkable
class MaterialsSystem(Protocol):
    """The hidden truth of a campaign over samples (see the module docstring)."""

    seed: int

    @property
    def components(self) -> list[Variable]:
        """Composition fractions (units 'fraction'; the fractions of a recipe sum to 1)."""
        ...

    @property
    def process_variables(self) -> list[Variable]:
        """Process variables (e.g. annealing temperature, K)."""
        ...

    def truth(self, recipe: Mapping[str, ParamValue], sample_key: str) -> SampleTruth:
        """The sample made from ``recipe``; deterministic in (seed, recipe, sample_key)."""
        ...

    def label(self, recipe: Mapping[str, ParamValue]) -> str:
        """The noiseless region label of ``recipe``."""
        ...

    def labels(self) -> list[str]:
        """Every region label the system can give, sorted."""
        ...

    def dense_grid(self, n: int) -> list[dict[str, float]]:
        """Recipes on a regular grid of the design space (``n`` steps per axis), for map accuracy."""
        ...


def sample_rng(seed: int, sample_key: str) -> np.random.Generator:
    """The generator of one sample's synthesis scatter: keyed on the system's seed and the sample,
    like ``instruments.noise.attempt_seed`` keys counting noise on the attempt."""
    digest = hashlib.sha256(f"materials:{seed}:{sample_key}".encode()).digest()[:8]
    return np.random.default_rng(int.from_bytes(digest, "little"))


def _number(recipe: Mapping[str, ParamValue], name: str) -> float:
    value = recipe[name]
    if isinstance(value, (str, bool)) or not math.isfinite(float(value)):
        raise RecipeError(f"recipe.{name}: {value!r} is not a finite number")
    return float(value)


def read_composition(recipe: Mapping[str, ParamValue], components: Sequence[Variable]) -> np.ndarray:
    """The recipe's composition as fractions (n_components,), summing to 1.

    Every component may be given, or all but one (the one left out is 1 − the others: a design
    space over a simplex often has n − 1 free fractions). Keys the system does not know are ignored
    (a recipe may carry variables of the synthesis another system does not model).
    """
    names = [c.name for c in components]
    missing = [n for n in names if n not in recipe]
    if len(missing) > 1:
        raise RecipeError(f"recipe: lacks the fractions {missing}; give every component of {names} or all but one")
    values = np.array([0.0 if n in missing else _number(recipe, n) for n in names])
    if missing:
        values[names.index(missing[0])] = 1.0 - values.sum()
    elif abs(values.sum() - 1.0) > 1e-3:
        raise RecipeError(f"recipe: the fractions of {names} must sum to 1, they sum to {values.sum():.6g}")
    for name, value, c in zip(names, values, components):
        if not c.low - 1e-9 <= value <= c.high + 1e-9:
            raise RecipeError(f"recipe.{name}: {value:.6g} is outside the system's range [{c.low}, {c.high}]")
    values = np.clip(values, 0.0, None)
    return values / values.sum()


def read_process(recipe: Mapping[str, ParamValue], variables: Sequence[Variable]) -> np.ndarray:
    """The recipe's process variables (n_variables,), each within its range."""
    out = []
    for v in variables:
        if v.name not in recipe:
            raise RecipeError(f"recipe: lacks {v.name!r} ({v.units}, in [{v.low}, {v.high}])")
        value = _number(recipe, v.name)
        if not v.low <= value <= v.high:
            raise RecipeError(f"recipe.{v.name}: {value:.6g} is outside the system's range [{v.low}, {v.high}]")
        out.append(value)
    return np.array(out, dtype=float)


def composition_points(components: Sequence[Variable], n: int) -> list[np.ndarray]:
    """Compositions on a regular grid: the free fractions (all but the last component) on ``n + 1``
    levels each across their ranges, the last one 1 − their sum, kept where it is in its range.
    For fractions ranging over [0, 1] this is the simplex lattice with ``n`` steps per edge. Each
    point is (n_components,), summing to 1."""
    free, last = components[:-1], components[-1]
    points = []
    for head in itertools.product(*(np.linspace(c.low, c.high, n + 1) for c in free)):
        rest = 1.0 - sum(head)
        if last.low - 1e-9 <= rest <= last.high + 1e-9:
            points.append(np.clip(np.array([*head, rest], dtype=float), 0.0, None))
    return points


def grid_recipes(components: Sequence[Variable], process: Sequence[Variable], n: int) -> list[dict[str, float]]:
    """Recipes on ``composition_points`` × a regular grid of ``n + 1`` levels per process variable."""
    if n < 1:
        raise ValueError(f"n: at least 1 step per axis, got {n}")
    levels = [np.linspace(v.low, v.high, n + 1) for v in process]
    recipes = []
    for x in composition_points(components, n):
        for values in itertools.product(*levels):
            recipes.append({**{c.name: float(xi) for c, xi in zip(components, x)},
                            **{v.name: float(value) for v, value in zip(process, values)}})
    return recipes


def scatter_composition(x: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """The composition made when ``x`` is weighed out with an absolute error ``sigma`` per fraction."""
    made = np.clip(x + rng.normal(0.0, sigma, size=x.shape), 0.0, None)
    return made / made.sum()
