"""The model the report shows: the GP refitted from the stored history, and the slice of the design
space its posterior is drawn over.

A slice goes through the incumbent: the first one or two numeric parameters are gridded, the others
held at the incumbent's values (composition partners share the remainder, see :func:`slice_point`).
When a constrained slice has (almost) no feasible cell, a space-filling sample of the whole feasible
space stands in for it. The figures draw the slices; nothing here draws.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from instruments.types import ParamValue
from policies.protocol import Observation
from policies.space import ContinuousParameter, DesignSpace, IntegerParameter

if TYPE_CHECKING:  # torch/BoTorch: loaded only when there is a model to fit
    from policies.models import Direction, FittedModel

#: Grid resolution (per axis) of the model heat maps and points along a 1-d model line.
GRID_POINTS_2D = 60
GRID_POINTS_1D = 200
#: Space-filling feasible points shown when a constrained slice has (almost) no feasible grid cell.
FALLBACK_SAMPLE_POINTS = 2000
#: Below this many feasible grid cells, the heat map is replaced by the sampled scatter.
MIN_FEASIBLE_CELLS = 20


@dataclass(frozen=True)
class LineSlice:
    """The posterior along one numeric parameter through the incumbent.

    ``xs``: (n,) grid values; ``mean``, ``std``: (n,) in objective units, NaN where infeasible.
    """

    name: str
    xs: np.ndarray
    mean: np.ndarray
    std: np.ndarray


@dataclass(frozen=True)
class GridSlice:
    """The posterior over a grid of two numeric parameters through the incumbent.

    ``xs``: (nx,), ``ys``: (ny,) cell centres; ``x_edges``: (nx + 1,), ``y_edges``: (ny + 1,) cell
    edges; ``mean``, ``std``: (ny * nx,) in objective units, x fastest, NaN where infeasible.
    """

    names: list[str]
    xs: np.ndarray
    ys: np.ndarray
    x_edges: np.ndarray
    y_edges: np.ndarray
    mean: np.ndarray
    std: np.ndarray


@dataclass(frozen=True)
class SampleSlice:
    """The posterior at space-filling feasible points of the whole space, projected onto two
    parameters: ``x``, ``y``, ``mean``, ``std`` are (n,), the last two in objective units."""

    names: list[str]
    x: np.ndarray
    y: np.ndarray
    mean: np.ndarray
    std: np.ndarray


ModelSlice = LineSlice | GridSlice | SampleSlice


def fit_model(space: DesignSpace, history: list[Observation], direction: Direction) -> tuple[FittedModel, Observation]:
    """(the GP fitted to ``history`` as the policy would fit it, the incumbent).

    The incumbent is the observed point with the best posterior mean (not the best raw value).
    """
    # torch/BoTorch: loaded only when there is a model to fit
    from policies.models import ModelCache

    model = ModelCache().fit(space, history, direction)
    means, _ = model.predict([o.params for o in history])
    incumbent = history[int(np.argmax(means if direction == "maximize" else -means))]
    return model, incumbent


def model_slice(space: DesignSpace, names: list[str], model: Any, incumbent: Observation) -> ModelSlice:
    """The posterior of ``model`` over ``names`` (one or two numeric parameters) through ``incumbent``."""
    if len(names) == 1:
        xs = axis_values(space.parameter(names[0]), GRID_POINTS_1D)
        grid = [slice_point(space, incumbent.params, names, (x,)) for x in xs]
        mean, std, _ = predict_where_feasible(space, model, grid)
        return LineSlice(names[0], xs, mean, std)
    xs = axis_values(space.parameter(names[0]), GRID_POINTS_2D)
    ys = axis_values(space.parameter(names[1]), GRID_POINTS_2D)
    grid = [slice_point(space, incumbent.params, names, (xv, yv)) for yv in ys for xv in xs]
    mean, std, n_feasible = predict_where_feasible(space, model, grid)
    if n_feasible >= MIN_FEASIBLE_CELLS:
        x_edges = edges(xs, is_log(space.parameter(names[0])))
        y_edges = edges(ys, is_log(space.parameter(names[1])))
        return GridSlice(names, xs, ys, x_edges, y_edges, mean, std)
    # The slice through the incumbent is (nearly) empty: show the whole feasible space instead.
    return _feasible_sample(space, names, model)


def _feasible_sample(space: DesignSpace, names: list[str], model: Any) -> SampleSlice:
    from policies.baselines import space_filling_points

    sample = space_filling_points(space, 0, FALLBACK_SAMPLE_POINTS, seed=0)
    mean, std = model.predict(sample)
    x = np.array([float(p[names[0]]) for p in sample])
    y = np.array([float(p[names[1]]) for p in sample])
    return SampleSlice(names, x, y, mean, std)


def describe_slice(space: DesignSpace, view: ModelSlice) -> str:
    """A sentence saying what part of the space ``view`` shows, and how the other parameters are set."""
    if isinstance(view, LineSlice):
        return f"Posterior along {view.name}. {slice_description(space, [view.name])}"
    names = view.names
    if isinstance(view, GridSlice):
        blank = " Infeasible cells are blank." if space.compositions or space.constraints else ""
        return f"Grid over {names[0]} × {names[1]}. {slice_description(space, names)}{blank}"
    return (f"The slice through the incumbent has almost no feasible point, so {len(view.x)} space-filling "
            f"feasible points of the whole space are shown, projected onto {names[0]} × {names[1]}.")


def predict_where_feasible(
    space: DesignSpace, model: Any, grid: list[dict[str, ParamValue]]
) -> tuple[np.ndarray, np.ndarray, int]:
    """(mean, std, number of feasible points) over ``grid``; NaN where a point violates the space."""
    feasible = np.array([not space.violations(p) for p in grid], dtype=bool)
    mean = np.full(len(grid), np.nan)
    std = np.full(len(grid), np.nan)
    if feasible.any():
        mean[feasible], std[feasible] = model.predict([p for p, ok in zip(grid, feasible) if ok])
    return mean, std, int(feasible.sum())


def slice_description(space: DesignSpace, names: list[str]) -> str:
    """How the parameters that are not gridded are set (see :func:`slice_point`)."""
    partners = [n for g in space.compositions if set(g.parameters) & set(names) for n in g.parameters if n not in names]
    held = [n for n in space.names if n not in names and n not in partners]
    parts = []
    if held:
        parts.append(f"Fixed at the incumbent's values: {', '.join(held)}.")
    if partners:
        parts.append(f"Sharing the rest of their composition in the incumbent's proportions: {', '.join(partners)}.")
    return " ".join(parts)


def axis_values(p: Any, n: int) -> np.ndarray:
    """Grid values of a numeric parameter: log-spaced when log-scaled, whole numbers for integers."""
    if isinstance(p, IntegerParameter):
        return np.unique(np.round(np.linspace(p.low, p.high, min(n, p.high - p.low + 1)))).astype(int)
    if isinstance(p, ContinuousParameter) and p.log_scale:
        return np.geomspace(p.low, p.high, n)
    return np.linspace(p.low, p.high, n)


def edges(centres: np.ndarray, log: bool) -> np.ndarray:
    """Cell edges around sorted cell centres (geometric midpoints on a log axis)."""
    c = np.log(centres.astype(float)) if log else centres.astype(float)
    if len(c) == 1:
        e = np.array([c[0] - 0.5, c[0] + 0.5])
    else:
        mid = (c[1:] + c[:-1]) / 2
        e = np.concatenate([[c[0] - (mid[0] - c[0])], mid, [c[-1] + (c[-1] - mid[-1])]])
    return np.exp(e) if log else e


def is_log(p: Any) -> bool:
    """Whether parameter ``p`` is drawn (and gridded) on a log axis."""
    return isinstance(p, ContinuousParameter) and p.log_scale


def slice_point(
    space: DesignSpace, incumbent: Mapping[str, ParamValue], names: list[str], values: Sequence[float]
) -> dict[str, ParamValue]:
    """The incumbent with ``names`` set to ``values``.

    In a composition group that contains a gridded parameter, the group's other members cannot stay
    at the incumbent's values (the sum would break); they share the remainder in the incumbent's
    proportions, so a ternary's slice is the whole (a, b) triangle.
    """
    point: dict[str, ParamValue] = dict(incumbent)
    for name, v in zip(names, values):
        point[name] = int(v) if isinstance(space.parameter(name), IntegerParameter) else float(v)
    for group in space.compositions:
        gridded = [n for n in group.parameters if n in names]
        partners = [n for n in group.parameters if n not in names]
        if not gridded or not partners:
            continue
        remainder = group.total - sum(float(point[n]) for n in gridded)
        weights = np.array([max(float(incumbent[n]), 0.0) for n in partners])
        shares = weights / weights.sum() if weights.sum() > 0 else np.full(len(partners), 1.0 / len(partners))
        for n, share in zip(partners, shares):
            point[n] = float(remainder * share)
    return point
