"""The design space: parameters with units, linear inequality constraints, composition groups.

Plain data (pydantic) plus the arithmetic every policy needs: feasibility checks that name the
offending field, an encoding to the unit cube for models, and space-filling feasible samples.

Encoding: continuous and integer parameters map linearly to [0, 1] (log-linearly when
``log_scale``); each categorical parameter becomes one-hot columns. Columns follow parameter order.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Annotated, Literal

import numpy as np
from pydantic import Field, model_validator

from instruments.types import ParamValue, Record

#: Relative tolerance on constraints, in units of the parameter ranges involved.
FEASIBILITY_TOLERANCE = 1e-6


class ContinuousParameter(Record):
    name: str = Field(min_length=1)
    type: Literal["continuous"] = "continuous"
    low: float
    high: float
    units: str = Field(default="", description="physical units of the value, e.g. 'K', 'min', 'mol frac'")
    log_scale: bool = False

    @model_validator(mode="after")
    def _ordered(self) -> ContinuousParameter:
        if not self.low < self.high:
            raise ValueError(f"parameter {self.name!r}: low ({self.low}) must be below high ({self.high})")
        if self.log_scale and self.low <= 0:
            raise ValueError(f"parameter {self.name!r}: log_scale needs low > 0")
        return self


class IntegerParameter(Record):
    name: str = Field(min_length=1)
    type: Literal["integer"] = "integer"
    low: int
    high: int
    units: str = ""

    @model_validator(mode="after")
    def _ordered(self) -> IntegerParameter:
        if not self.low < self.high:
            raise ValueError(f"parameter {self.name!r}: low ({self.low}) must be below high ({self.high})")
        return self


class CategoricalParameter(Record):
    name: str = Field(min_length=1)
    type: Literal["categorical"] = "categorical"
    choices: list[str] = Field(min_length=1)  # one choice: a single configuration is a valid design space
    units: str = ""

    @model_validator(mode="after")
    def _unique(self) -> CategoricalParameter:
        if len(set(self.choices)) != len(self.choices):
            raise ValueError(f"parameter {self.name!r}: choices must be unique")
        return self


Parameter = Annotated[
    ContinuousParameter | IntegerParameter | CategoricalParameter, Field(discriminator="type")
]


class LinearConstraint(Record):
    """``sum(coefficients[name] * value[name]) <= upper_bound``, in the parameters' own units."""

    coefficients: dict[str, float] = Field(min_length=1)
    upper_bound: float


class CompositionGroup(Record):
    """Fractions that must sum to ``total`` (e.g. mole fractions of a ternary)."""

    name: str = "composition"
    parameters: list[str] = Field(min_length=2)
    total: float = Field(default=1.0, gt=0)


def _value_violations(p: Parameter, v: object) -> list[str]:
    """Why value ``v`` is not a value of parameter ``p`` (choice, number, integer, bounds); empty when it is."""
    if isinstance(p, CategoricalParameter):
        return [] if v in p.choices else [f"{p.name}={v!r} is not one of {p.choices}"]
    if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)):
        return [f"{p.name}={v!r} is not a number"]
    if not np.isfinite(float(v)):
        return [f"{p.name}={v!r} is not finite"]
    errors: list[str] = []
    if isinstance(p, IntegerParameter) and float(v) != round(float(v)):
        errors.append(f"{p.name}={v!r} is not an integer")
    span = p.high - p.low
    if float(v) < p.low - FEASIBILITY_TOLERANCE * span or float(v) > p.high + FEASIBILITY_TOLERANCE * span:
        errors.append(f"{p.name}={v} {p.units}".rstrip() + f" is outside [{p.low}, {p.high}]")
    return errors


class DesignSpace(Record):
    parameters: list[Parameter] = Field(min_length=1)
    constraints: list[LinearConstraint] = Field(default_factory=list)
    compositions: list[CompositionGroup] = Field(default_factory=list)

    @model_validator(mode="after")
    def _consistent(self) -> DesignSpace:
        names = [p.name for p in self.parameters]
        duplicated = sorted({n for n in names if names.count(n) > 1})
        if duplicated:
            raise ValueError(f"duplicate parameter names: {duplicated}")
        numeric = {p.name: p for p in self.parameters if p.type != "categorical"}
        for i, c in enumerate(self.constraints):
            unknown = sorted(set(c.coefficients) - set(numeric))
            if unknown:
                raise ValueError(f"constraints[{i}] names unknown or categorical parameters {unknown}; numeric: {sorted(numeric)}")
        seen: set[str] = set()
        for g in self.compositions:
            for n in g.parameters:
                p = numeric.get(n)
                if p is None or p.type != "continuous":
                    raise ValueError(f"composition {g.name!r}: {n!r} is not a continuous parameter")
                if p.log_scale:
                    raise ValueError(f"composition {g.name!r}: {n!r} cannot be log-scaled")
                if n in seen:
                    raise ValueError(f"composition {g.name!r}: {n!r} belongs to two composition groups")
                seen.add(n)
            lows = sum(numeric[n].low for n in g.parameters)
            highs = sum(numeric[n].high for n in g.parameters)
            if not lows - 1e-9 <= g.total <= highs + 1e-9:
                raise ValueError(
                    f"composition {g.name!r}: total {g.total} is unreachable with bounds summing to [{lows}, {highs}]"
                )
        return self

    # -- lookup -------------------------------------------------------------------------------
    @property
    def names(self) -> list[str]:
        return [p.name for p in self.parameters]

    def parameter(self, name: str) -> Parameter:
        for p in self.parameters:
            if p.name == name:
                return p
        raise KeyError(f"unknown parameter {name!r}; known: {self.names}")

    @property
    def numeric_names(self) -> list[str]:
        return [p.name for p in self.parameters if p.type != "categorical"]

    @property
    def categorical(self) -> list[CategoricalParameter]:
        return [p for p in self.parameters if isinstance(p, CategoricalParameter)]

    # -- feasibility ---------------------------------------------------------------------------
    def violations(self, params: Mapping[str, object]) -> list[str]:
        """Every reason ``params`` is not a point of this space; empty when it is feasible.

        Names and values first; the linear constraints and composition sums only when every
        value is a valid number within its bounds.
        """
        errors: list[str] = []
        missing = [n for n in self.names if n not in params]
        unknown = sorted(set(params) - set(self.names))
        if missing:
            errors.append(f"missing parameters {missing}")
        if unknown:
            errors.append(f"unknown parameters {unknown}; known: {self.names}")
        for p in self.parameters:
            if p.name in params:
                errors += _value_violations(p, params[p.name])
        if errors:
            return errors
        return self._constraint_violations(params)

    def _constraint_violations(self, params: Mapping[str, object]) -> list[str]:
        """Broken linear constraints and composition sums of a point whose values are all valid."""
        errors: list[str] = []
        for i, c in enumerate(self.constraints):
            lhs = sum(coef * float(params[n]) for n, coef in c.coefficients.items())  # type: ignore[arg-type]
            scale = sum(abs(coef) * self._span(n) for n, coef in c.coefficients.items())
            if lhs > c.upper_bound + FEASIBILITY_TOLERANCE * max(scale, 1e-12):
                errors.append(f"constraints[{i}] violated: {lhs:.6g} > {c.upper_bound:.6g}")
        for g in self.compositions:
            total = sum(float(params[n]) for n in g.parameters)  # type: ignore[arg-type]
            if abs(total - g.total) > 1e-6 * g.total:
                errors.append(f"composition {g.name!r} sums to {total:.6g}, not {g.total:.6g}")
        return errors

    def _span(self, name: str) -> float:
        p = self.parameter(name)
        return float(p.high - p.low)  # type: ignore[union-attr]

    # -- encoding to the unit cube ----------------------------------------------------------------
    @property
    def n_columns(self) -> int:
        return sum(len(p.choices) if isinstance(p, CategoricalParameter) else 1 for p in self.parameters)

    def column_slices(self) -> dict[str, slice]:
        out: dict[str, slice] = {}
        i = 0
        for p in self.parameters:
            w = len(p.choices) if isinstance(p, CategoricalParameter) else 1
            out[p.name] = slice(i, i + w)
            i += w
        return out

    def encode(self, points: Sequence[Mapping[str, ParamValue]]) -> np.ndarray:
        """Feasible points → array (n, n_columns) in [0, 1]."""
        x = np.zeros((len(points), self.n_columns))
        slices = self.column_slices()
        for row, params in enumerate(points):
            for p in self.parameters:
                s = slices[p.name]
                v = params[p.name]
                if isinstance(p, CategoricalParameter):
                    x[row, s.start + p.choices.index(str(v))] = 1.0
                elif isinstance(p, ContinuousParameter) and p.log_scale:
                    x[row, s.start] = np.log(float(v) / p.low) / np.log(p.high / p.low)
                else:
                    x[row, s.start] = (float(v) - p.low) / (p.high - p.low)
        return x

    def decode(self, x: np.ndarray) -> list[dict[str, ParamValue]]:
        """Array (n, n_columns) → points; categoricals take their arg-max, integers are rounded."""
        x = np.atleast_2d(np.asarray(x, dtype=float))
        slices = self.column_slices()
        out: list[dict[str, ParamValue]] = []
        for row in x:
            params: dict[str, ParamValue] = {}
            for p in self.parameters:
                s = slices[p.name]
                if isinstance(p, CategoricalParameter):
                    params[p.name] = p.choices[int(np.argmax(row[s]))]
                    continue
                u = float(np.clip(row[s.start], 0.0, 1.0))
                if isinstance(p, IntegerParameter):
                    params[p.name] = int(round(p.low + u * (p.high - p.low)))
                elif p.log_scale:
                    params[p.name] = float(p.low * (p.high / p.low) ** u)
                else:
                    params[p.name] = float(p.low + u * (p.high - p.low))
            out.append(params)
        return out

    def linear_constraints_unit(self) -> tuple[list[tuple[list[int], list[float], float]], list[tuple[list[int], list[float], float]]]:
        """Constraints in encoded (unit-cube) columns, in BoTorch's form ``sum(c_i * x[i]) >= rhs``.

        Returns (inequalities, equalities), each a list of (column indices, coefficients, rhs).
        Only linear parameters can appear (log-scaled ones are refused by validation for groups).
        """
        slices = self.column_slices()
        ineq: list[tuple[list[int], list[float], float]] = []
        for c in self.constraints:
            idx, coef, offset = [], [], 0.0
            for n, a in c.coefficients.items():
                p = self.parameter(n)
                idx.append(slices[n].start)
                coef.append(-a * (p.high - p.low))  # type: ignore[union-attr]
                offset += a * p.low  # type: ignore[union-attr]
            ineq.append((idx, coef, -(c.upper_bound - offset)))
        eq: list[tuple[list[int], list[float], float]] = []
        for g in self.compositions:
            idx, coef, offset = [], [], 0.0
            for n in g.parameters:
                p = self.parameter(n)
                idx.append(slices[n].start)
                coef.append(p.high - p.low)  # type: ignore[union-attr]
                offset += p.low  # type: ignore[union-attr]
            eq.append((idx, coef, g.total - offset))
        return ineq, eq

    # -- space-filling samples -------------------------------------------------------------------
    def sample(self, n: int, seed: int, method: Literal["sobol", "random"] = "sobol") -> list[dict[str, ParamValue]]:
        """``n`` feasible points, space-filling (scrambled Sobol) or uniform random, reproducible by seed.

        Composition groups are filled uniformly on their bounded simplex: the uniform-spacings
        construction over what the lower bounds leave, points above an upper bound rejected (clipping
        them instead piled every draw of a tightly bounded group onto one vertex); inequality
        constraints by rejection. Raises if no feasible point is found in a generous number of draws
        (the constraints leave no room).
        """
        if n <= 0:
            return []
        rng = np.random.default_rng(seed)
        d = self.n_columns
        found: list[dict[str, ParamValue]] = []
        draws = 0
        # scipy.stats is imported here, not at module level: it costs ~0.7 s, and commands that only
        # read a campaign file or the store (status, export, validate) never sample.
        from scipy.stats import qmc

        sobol = qmc.Sobol(d, scramble=True, seed=rng) if method == "sobol" else None
        while len(found) < n:
            # Powers of two keep Sobol's balance properties (and scipy quiet about them).
            batch = 1 << max(2 * (n - len(found)), 16).bit_length()
            u = sobol.random(batch) if sobol is not None else rng.random((batch, d))
            draws += batch
            projected, inside = self._project(u)
            for params in self.decode(projected[inside]):
                if not self.violations(params):
                    found.append(params)
                    if len(found) == n:
                        break
            if draws > 20000 * max(n, 1):
                raise ValueError(
                    f"found only {len(found)} of {n} feasible points in {draws} draws: "
                    "the constraints leave (almost) no room in the design space"
                )
        return found

    def _project(self, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Map unit-cube draws onto the composition simplices (and one-hot the categoricals); also
        which rows keep every component within its bounds."""
        u = u.copy()
        inside = np.ones(len(u), dtype=bool)
        slices = self.column_slices()
        for p in self.categorical:
            s = slices[p.name]
            k = np.minimum((u[:, s.start] * len(p.choices)).astype(int), len(p.choices) - 1)
            u[:, s] = 0.0
            u[np.arange(len(u)), s.start + k] = 1.0
        for g in self.compositions:
            cols = [slices[n].start for n in g.parameters]
            # Uniform spacings: sorted uniforms with 0 and 1 give a uniform point on the simplex.
            # Spread over what the lower bounds leave, so a group with lower bounds is not rejected wholesale.
            cuts = np.sort(u[:, cols[:-1]], axis=1)
            edges = np.hstack([np.zeros((len(u), 1)), cuts, np.ones((len(u), 1))])
            lows = np.array([self.parameter(n).low for n in g.parameters])  # type: ignore[union-attr]
            highs = np.array([self.parameter(n).high for n in g.parameters])  # type: ignore[union-attr]
            fractions = lows + np.diff(edges, axis=1) * (g.total - lows.sum())
            inside &= np.all(fractions <= highs + 1e-12, axis=1)
            u[:, cols] = (fractions - lows) / (highs - lows)
        return u, inside
