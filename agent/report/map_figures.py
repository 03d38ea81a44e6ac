"""The phase-map figure of a campaign over samples: the map refitted from the store, drawn on a dense
ternary grid of a three-component composition group, one column per slice of the first process
variable (e.g. the annealing temperature), with its uncertainty.

Top row: the most probable label at each point of the grid (colour per label); bottom row: that
label's probability (the map's confidence; 1/L is a coin toss between the L labels). The samples
whose process variable lies in a slice's third of its range are drawn on that slice, numbered in the
order they were made, coloured by their own most probable label (hollow: no label; ×: synthesis
failed). Other process variables are held at the middle of their range, categorical ones at their
first choice. The grid's triangles are evaluated at their centroids, so every colour is a map value.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.tri import Triangulation

from agent.report.formatting import fmt
from instruments.types import ParamValue
from policies.protocol import SampleOutcome
from policies.space import CategoricalParameter, DesignSpace

#: Triangles per side of the ternary grid (resolution²  triangles per slice).
RESOLUTION = 30
#: Slices of the first process variable drawn side by side.
N_SLICES = 3
#: The confidence drawn as a contour-free statistic in each panel's title.
CONFIDENT = 0.95

_SQRT3_2 = math.sqrt(3) / 2


@dataclass(frozen=True)
class TernaryLayout:
    """How the design space is drawn: the ternary's components (bottom-left, bottom-right, top) and
    their total; the slice variable with its slice centres and edges (own units); the others' fixed values."""

    components: tuple[str, str, str]
    total: float
    slice_name: str | None
    slice_values: list[float]
    slice_edges: list[float]
    fixed: dict[str, ParamValue] = field(default_factory=dict)


def ternary_layout(space: DesignSpace, n_slices: int = N_SLICES) -> TernaryLayout | None:
    """The ternary layout of ``space``; None when it has no composition group of three components."""
    group = next((g for g in space.compositions if len(g.parameters) == 3), None)
    if group is None:
        return None
    others = [p for p in space.parameters if p.name not in group.parameters]
    numeric = [p for p in others if not isinstance(p, CategoricalParameter)]
    fixed: dict[str, ParamValue] = {}
    for p in others:
        if isinstance(p, CategoricalParameter):
            fixed[p.name] = p.choices[0]
        elif p is not numeric[0]:
            middle = (float(p.low) + float(p.high)) / 2
            fixed[p.name] = round(middle) if p.type == "integer" else middle
    if not numeric:
        return TernaryLayout(tuple(group.parameters), group.total, None, [], [], fixed)  # type: ignore[arg-type]
    s = numeric[0]
    edges = list(np.linspace(float(s.low), float(s.high), n_slices + 1))
    centres = [(lo + hi) / 2 for lo, hi in zip(edges[:-1], edges[1:])]
    return TernaryLayout(tuple(group.parameters), group.total, s.name, centres, edges, fixed)  # type: ignore[arg-type]


def ternary_grid(resolution: int = RESOLUTION) -> tuple[Triangulation, np.ndarray]:
    """The regular triangular grid of the simplex (cartesian) and its triangles' centroids as fractions ``(T, 3)``."""
    i, j = np.meshgrid(np.arange(resolution + 1), np.arange(resolution + 1), indexing="ij")
    keep = i + j <= resolution
    b, c = i[keep] / resolution, j[keep] / resolution
    tri = Triangulation(b + c / 2, c * _SQRT3_2)
    cx, cy = tri.x[tri.triangles].mean(axis=1), tri.y[tri.triangles].mean(axis=1)
    fc = cy / _SQRT3_2
    fb = cx - fc / 2
    return tri, np.column_stack([1 - fb - fc, fb, fc])


def _cartesian(fractions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    fractions = fractions / fractions.sum(axis=1, keepdims=True)
    return fractions[:, 1] + fractions[:, 2] / 2, fractions[:, 2] * _SQRT3_2


def slice_points(layout: TernaryLayout, fractions: np.ndarray, value: float | None) -> list[dict[str, ParamValue]]:
    """Design-space points (own units) at the grid's ``fractions`` and the slice ``value``."""
    names = layout.components
    points = []
    for row in fractions:
        point: dict[str, ParamValue] = {n: float(f) * layout.total for n, f in zip(names, row)}
        if layout.slice_name is not None and value is not None:
            point[layout.slice_name] = value
        points.append(point | layout.fixed)
    return points


@dataclass(frozen=True)
class SliceMap:
    """The map over one slice's grid: probabilities ``(T, L)``, NaN rows where a point is infeasible."""

    value: float | None
    probabilities: np.ndarray


def map_slices(space: DesignSpace, layout: TernaryLayout, phase_map: Any, fractions: np.ndarray) -> list[SliceMap]:
    """The map on every slice of ``layout`` (one call to the map: all slices' points at once)."""
    values: list[float | None] = list(layout.slice_values) or [None]
    points = [p for v in values for p in slice_points(layout, fractions, v)]
    feasible = np.array([not space.violations(p) for p in points])
    probabilities = np.full((len(points), len(phase_map.labels)), np.nan)
    if feasible.any():
        probabilities[feasible] = phase_map.probabilities_at([p for p, ok in zip(points, feasible) if ok])
    return [SliceMap(v, chunk) for v, chunk in zip(values, np.split(probabilities, len(values)))]


def _label_colours(labels: Sequence[str]) -> list[Any]:
    from matplotlib import colormaps

    cmap = colormaps["tab10" if len(labels) <= 10 else "tab20"]
    return [cmap(k % cmap.N) for k in range(len(labels))]


def _outline(ax: Any, names: tuple[str, str, str]) -> None:
    ax.plot([0, 1, 0.5, 0], [0, 0, _SQRT3_2, 0], color="k", lw=0.8)
    ax.annotate(names[0], (0, 0), xytext=(-4, -12), textcoords="offset points", ha="center", fontsize=8)
    ax.annotate(names[1], (1, 0), xytext=(4, -12), textcoords="offset points", ha="center", fontsize=8)
    ax.annotate(names[2], (0.5, _SQRT3_2), xytext=(0, 5), textcoords="offset points", ha="center", fontsize=8)
    ax.set_xlim(-0.08, 1.08)
    ax.set_ylim(-0.1, _SQRT3_2 + 0.08)
    ax.set_aspect("equal")
    ax.axis("off")


@dataclass(frozen=True)
class DrawnSample:
    """A sample as the map figure draws it: its number, recipe and outcome (None: no outcome yet)."""

    number: int
    recipe: dict[str, ParamValue]
    outcome: SampleOutcome | None


def _in_slice(layout: TernaryLayout, k: int, recipe: dict[str, ParamValue]) -> bool:
    if layout.slice_name is None:
        return True
    value = float(recipe.get(layout.slice_name, math.nan))  # type: ignore[arg-type]
    lo, hi = layout.slice_edges[k], layout.slice_edges[k + 1]
    last = k == len(layout.slice_values) - 1
    return lo <= value < hi or (last and value == hi)


def _draw_samples(ax: Any, layout: TernaryLayout, k: int, samples: Sequence[DrawnSample], colours: dict[str, Any]) -> None:
    for s in samples:
        if not _in_slice(layout, k, s.recipe):
            continue
        fractions = np.array([[float(s.recipe[n]) for n in layout.components]])  # type: ignore[arg-type]
        x, y = _cartesian(fractions)
        labels = s.outcome.label_probabilities if s.outcome is not None else {}
        if s.outcome is not None and s.outcome.status == "failed":
            ax.scatter(x, y, marker="X", s=60, c="white", edgecolors="k", linewidths=0.8, zorder=4)
        elif labels:
            best = max(labels, key=labels.__getitem__)
            ax.scatter(x, y, marker="o", s=55, color=colours.get(best, "0.5"), edgecolors="k", linewidths=1.0, zorder=4)
        else:
            ax.scatter(x, y, marker="o", s=55, facecolors="none", edgecolors="k", linewidths=1.0, zorder=4)
        ax.annotate(str(s.number), (x[0], y[0]), xytext=(5, 4), textcoords="offset points", fontsize=8, zorder=5,
                    bbox={"boxstyle": "round,pad=0.1", "fc": "white", "ec": "none", "alpha": 0.7})


def _slice_title(layout: TernaryLayout, space: DesignSpace, m: SliceMap, k: int) -> str:
    if layout.slice_name is None:
        return "the composition"
    units = space.parameter(layout.slice_name).units
    unit = f" {units}" if units else ""
    lo, hi = layout.slice_edges[k], layout.slice_edges[k + 1]
    return f"{layout.slice_name} = {fmt(m.value)}{unit}\n(samples with {lo:.4g}–{hi:.4g}{unit} drawn here)"


def phase_map_figure(space: DesignSpace, layout: TernaryLayout, labels: Sequence[str], slices: Sequence[SliceMap],
                     tri: Triangulation, samples: Sequence[DrawnSample]) -> Figure:
    """Most probable label (top) and its probability (bottom) per slice, with the samples (see the module)."""
    colours = dict(zip(labels, _label_colours(labels)))
    cmap = ListedColormap([colours[label] for label in labels])
    fig = Figure(figsize=(4.3 * len(slices) + 1.0, 8.2))
    axes = fig.subplots(2, len(slices), squeeze=False)
    mappable = None
    for k, m in enumerate(slices):
        best = np.nanmax(m.probabilities, axis=1)
        index = np.where(np.isnan(best), np.nan, np.argmax(np.nan_to_num(m.probabilities, nan=-1.0), axis=1))
        top, bottom = axes[0, k], axes[1, k]
        top.tripcolor(tri, facecolors=np.ma.masked_invalid(index), cmap=cmap, vmin=-0.5, vmax=len(labels) - 0.5)
        mappable = bottom.tripcolor(tri, facecolors=np.ma.masked_invalid(best), cmap="viridis", vmin=0.0, vmax=1.0)
        for ax in (top, bottom):
            _outline(ax, layout.components)
            _draw_samples(ax, layout, k, samples, colours)
        top.set_title("most probable label, " + _slice_title(layout, space, m, k), fontsize=9)
        confident = float(np.mean(best[np.isfinite(best)] >= CONFIDENT)) if np.isfinite(best).any() else 0.0
        bottom.set_title(f"p(most probable label); ≥ {CONFIDENT:g} on {confident:.0%} of the slice", fontsize=9)
    # Fixed margins (one draw, see layout.py): room for two title lines above, the legend below.
    fig.subplots_adjust(left=0.02, right=0.9, top=0.92, bottom=0.11, wspace=0.08, hspace=0.2)
    colourbar_axes = fig.add_axes((0.92, 0.2, 0.015, 0.3))
    fig.colorbar(mappable, cax=colourbar_axes, label="probability")
    handles = [Patch(color=colours[label], label=label.replace("+", " + ")) for label in labels]
    fig.legend(handles=handles, loc="lower center", ncol=min(3, len(handles)), fontsize=8, frameon=False,
               title="labels (samples: their own most probable label; hollow: none; ×: synthesis failed)",
               title_fontsize=8)
    return fig
