"""Baselines of a map campaign, on the same code path as the active learner: a fixed grid and random.

Both read only ``context.samples`` and ``context.pending_recipes``. The grid is a lattice over the
design space (a simplex lattice for each composition group, evenly spaced values for every other
numeric parameter, every choice of a categorical one), measured in a fixed raster order, skipping
recipes already made or pending. Random draws the space's seeded uniform sequence, indexed by the
number of recipes asked for so far (batch-invariant, resumable).

The CAMEO-style baseline is not a policy: it is the ``phase_map`` policy in a campaign whose every
sample is characterised by a fixed full scan (a campaign configuration of the sample step).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence

import numpy as np
from pydantic import Field

from instruments.types import ParamValue, Record
from policies.baselines import space_filling_points
from policies.protocol import PlanningContext, Proposal
from policies.space import CategoricalParameter, DesignSpace, IntegerParameter

#: Two recipes closer than this (max over encoded columns) are the same recipe.
SAME_RECIPE_TOLERANCE = 1e-6


def _simplex_lattice(n_components: int, divisions: int) -> np.ndarray:
    """Every composition ``k / divisions`` with integer k ≥ 0 summing to 1: ``(M, n_components)``."""
    rows = [c for c in itertools.product(range(divisions + 1), repeat=n_components - 1) if sum(c) <= divisions]
    counts = np.array([list(c) + [divisions - sum(c)] for c in rows], dtype=float)
    return counts / divisions


def _axis_values(space: DesignSpace, name: str, divisions: int) -> list[ParamValue]:
    """Lattice values of one parameter outside composition groups."""
    p = space.parameter(name)
    if isinstance(p, CategoricalParameter):
        return list(p.choices)
    if isinstance(p, IntegerParameter):
        return sorted({int(round(v)) for v in np.linspace(p.low, p.high, divisions + 1)})
    return [float(v) for v in np.linspace(p.low, p.high, divisions + 1)]


def design_grid(space: DesignSpace, divisions: int) -> list[dict[str, ParamValue]]:
    """The feasible lattice points of ``space`` with ``divisions`` steps per axis, in raster order.

    A composition group of k components contributes the simplex lattice of step ``1/divisions``
    (times the group's total); every other parameter ``divisions + 1`` even values (integers
    deduplicated, categoricals all choices). Infeasible points (bounds, constraints) are dropped.
    """
    if divisions < 1:
        raise ValueError(f"divisions must be >= 1, not {divisions}")
    grouped = {n for g in space.compositions for n in g.parameters}
    axes: list[list[dict[str, ParamValue]]] = []
    for g in space.compositions:
        lattice = _simplex_lattice(len(g.parameters), divisions) * g.total
        axes.append([dict(zip(g.parameters, map(float, row), strict=True)) for row in lattice])
    for name in space.names:
        if name not in grouped:
            axes.append([{name: v} for v in _axis_values(space, name, divisions)])
    points = []
    for combination in itertools.product(*axes):
        params = {k: v for part in combination for k, v in part.items()}
        if not space.violations(params):
            points.append({n: params[n] for n in space.names})
    return points


def taken(space: DesignSpace, points: Sequence[Mapping[str, ParamValue]], made: Sequence[Mapping[str, ParamValue]]) -> np.ndarray:
    """Boolean ``(len(points),)``: which ``points`` equal a recipe in ``made`` (encoded, to tolerance)."""
    if not made or not points:
        return np.zeros(len(points), dtype=bool)
    a, b = space.encode(points), space.encode(made)
    distance = np.abs(a[:, None, :] - b[None, :, :]).max(axis=-1)
    return distance.min(axis=1) <= SAME_RECIPE_TOLERANCE  # type: ignore[no-any-return]


class MapGridPolicy:
    """The next ``n`` lattice points not yet made or pending, in raster order."""

    name = "map_grid"
    campaign_arguments: tuple[str, ...] = ()

    class Options(Record):
        divisions: int = Field(default=10, ge=1, le=200, description="lattice steps per axis (a step of 1/divisions of each range)")

    def __init__(self, space: DesignSpace, *, seed: int = 0, options: Options | None = None) -> None:
        self.space = space
        self.seed = int(seed)
        self.options = options if options is not None else self.Options()
        self.grid = design_grid(space, self.options.divisions)

    def plan(self, context: PlanningContext, n: int) -> list[Proposal]:
        """Lattice points in raster order, skipping made and pending recipes; fewer when the grid is done."""
        made = [s.recipe for s in context.samples] + list(context.pending_recipes)
        free = np.flatnonzero(~taken(self.space, self.grid, made))
        return [
            Proposal(params=self.grid[i], policy=self.name, reason={"phase": "grid", "index": int(i), "grid_size": len(self.grid)})
            for i in free[:n]
        ]


class MapRandomPolicy:
    """Seeded uniform-random recipes: the k-th recipe of a campaign is the same however it is batched."""

    name = "map_random"
    campaign_arguments: tuple[str, ...] = ()

    class Options(Record):
        """No options: the sequence is a function of the campaign's seed and the number of recipes."""

    def __init__(self, space: DesignSpace, *, seed: int = 0, options: Options | None = None) -> None:
        self.space = space
        self.seed = int(seed)
        self.options = options if options is not None else self.Options()

    def plan(self, context: PlanningContext, n: int) -> list[Proposal]:
        """Points ``[k, k + n)`` of the seeded random sequence, ``k`` = samples made + pending."""
        start = len(context.samples) + len(context.pending_recipes)
        points = space_filling_points(self.space, start, n, self.seed, "random")
        return [
            Proposal(params=p, policy=self.name, reason={"phase": "random", "index": start + i, "seed": self.seed})
            for i, p in enumerate(points)
        ]


__all__ = ["MapGridPolicy", "MapRandomPolicy", "design_grid", "taken"]
