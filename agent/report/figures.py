"""The report's campaign figures, one function per figure: measured points over the design space,
the model's posterior mean and standard deviation, and target progress against instrument time.

Figures are drawn with matplotlib's object API (``Figure``), never ``pyplot``: no global figure
registry to leak into, no GUI backend to select, and safe alongside any backend a caller has already
chosen. The page turns them into embedded PNGs. The sample figures (SAS, XRD) are in ``sample.py``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import numpy as np
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.transforms import blended_transform_factory

from agent.report.data import AttemptPoint
from agent.report.layout import fixed_margins
from agent.report.formatting import float_or_nan, in_units, is_number, time_unit
from agent.report.model import GridSlice, LineSlice, ModelSlice, SampleSlice, is_log
from agent.store import TargetEvaluation
from policies.protocol import Observation
from policies.space import DesignSpace

#: kind → (legend label, marker, whether coloured by the estimate, face colour, edge colour)
POINT_STYLES: dict[str, tuple[str, str, bool, str, str]] = {
    "trained": ("valid (used by the model)", "o", True, "", "black"),
    "flagged": ("valid but flagged", "s", True, "", "black"),
    "invalid": ("invalid / no estimate", "X", False, "tab:red", "tab:red"),
    "failed": ("failed / outcome unknown", "D", False, "none", "tab:orange"),
    "refused": ("refused proposal", "v", False, "none", "dimgray"),
    "pending": ("not analysed yet", "o", False, "none", "darkgray"),
}

#: ``paint(ax, values, cmap)`` draws one panel of a mean/std figure and returns its colour mappable.
Painter = Callable[[Any, np.ndarray, str], Any]


# -- measured points over the design space ---------------------------------------------------------


def design_space_figure(space: DesignSpace, names: list[str], points: list[AttemptPoint], colour_label: str) -> Figure:
    """Every attempt at its requested point over ``names`` (one or two numeric parameters), numbered
    in measurement order; trained points coloured by their estimate (in 1-d: placed at it, ±2σ)."""
    one_d = len(names) == 1
    fig = Figure(figsize=(7.5, 5.5) if not one_d else (8, 4.5))
    ax = fig.add_subplot()
    values = [p.value for p in points if POINT_STYLES[p.kind][2] and p.value is not None]
    norm = _norm(values)
    mappable = None
    # Off-axis kinds in 1-d (no estimate to place them at) sit on a rug just above the x axis.
    rug = blended_transform_factory(ax.transData, ax.transAxes)
    for kind, (label, marker, coloured, face, edge) in POINT_STYLES.items():
        group = [p for p in points if p.kind == kind and all(is_number(p.attempt.params.get(n)) for n in names)]
        if not group:
            continue
        x = np.array([float(p.attempt.params[names[0]]) for p in group])
        if one_d:
            y = np.array([p.value if coloured else 0.03 for p in group], dtype=float)
            transform = ax.transData if coloured else rug
        else:
            y = np.array([float(p.attempt.params[names[1]]) for p in group])
            transform = ax.transData
        style: dict[str, Any] = {"marker": marker, "s": 46, "label": label, "zorder": 3, "transform": transform}
        if coloured:
            style.update(c=[p.value for p in group], cmap="viridis", norm=norm, edgecolors=edge, linewidths=0.6)
            if one_d:
                sig = np.array([p.sigma if p.sigma is not None else np.nan for p in group], dtype=float)
                ax.errorbar(x, y, yerr=np.nan_to_num(2 * sig), fmt="none", ecolor="gray", elinewidth=0.8, zorder=2)
        else:
            style.update(facecolors=face, edgecolors=edge, linewidths=1.2)
        artist = ax.scatter(x, y, **style)
        if coloured and mappable is None:
            mappable = artist
        for xi, yi, p in zip(x, y, group):
            if p.order is not None:
                ax.annotate(str(p.order), (xi, yi), xycoords=transform, xytext=(4, 3),
                            textcoords="offset points", fontsize=7, color="black")
    label_axis(ax, "x", space, names[0])
    if one_d:
        ax.set_ylabel(f"{colour_label}  (±2σ)")
    else:
        label_axis(ax, "y", space, names[1])
        if mappable is not None:
            fig.colorbar(mappable, ax=ax, label=colour_label)
    ax.grid(True, alpha=0.3)
    ax.set_title("Measured points (numbers: measurement order)")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=3, fontsize=8, frameon=False)
    fig.tight_layout()
    return fig


# -- model mean and standard deviation ---------------------------------------------------------------


def model_figure(
    space: DesignSpace, view: ModelSlice, history: list[Observation], incumbent: Observation, label: str
) -> Figure:
    """The posterior over ``view`` with the observations and the incumbent; ``label`` names the objective."""
    if isinstance(view, LineSlice):
        return model_line_figure(space, view, history, incumbent, label)
    if isinstance(view, GridSlice):
        return _mean_std_figure(space, view.names, view.mean, view.std, partial(_paint_cells, view),
                                history, incumbent, label, "")
    return _mean_std_figure(space, view.names, view.mean, view.std, partial(_paint_dots, view),
                            history, incumbent, label, " (feasible sample)")


def _paint_cells(view: GridSlice, ax: Any, z: np.ndarray, cmap: str) -> Any:
    z = np.ma.masked_invalid(z.reshape(len(view.ys), len(view.xs)))
    return ax.pcolormesh(view.x_edges, view.y_edges, z, cmap=cmap, shading="flat")


def _paint_dots(view: SampleSlice, ax: Any, z: np.ndarray, cmap: str) -> Any:
    return ax.scatter(view.x, view.y, c=z, cmap=cmap, s=9, linewidths=0)


def _mean_std_figure(
    space: DesignSpace, names: list[str], mean: np.ndarray, std: np.ndarray, paint: Painter,
    history: list[Observation], incumbent: Observation, label: str, subtitle: str,
) -> Figure:
    """Mean and std side by side; ``paint(ax, values, cmap)`` paints one panel and returns its mappable."""
    fig = Figure(figsize=(12, 4.8))
    for i, (z, what, cmap) in enumerate(((mean, "posterior mean", "viridis"), (std, "posterior std", "magma"))):
        ax = fig.add_subplot(1, 2, i + 1)
        fig.colorbar(paint(ax, z, cmap), ax=ax, label=f"{what} of {label}")
        _overlay_observations(ax, names, history, incumbent)
        label_axis(ax, "x", space, names[0])
        label_axis(ax, "y", space, names[1])
        ax.set_title(what + subtitle)
        if i == 0:
            ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=2, fontsize=8, frameon=False)
    fig.tight_layout()
    return fig


def _overlay_observations(ax: Any, names: list[str], history: list[Observation], incumbent: Observation) -> None:
    ax.scatter([float(o.params[names[0]]) for o in history], [float(o.params[names[1]]) for o in history],
               s=18, c="white", edgecolors="black", linewidths=0.8, label="observations", zorder=3)
    ax.scatter([float(incumbent.params[names[0]])], [float(incumbent.params[names[1]])], marker="*", s=180,
               c="gold", edgecolors="black", linewidths=0.8, label="incumbent", zorder=4)


def model_line_figure(
    space: DesignSpace, view: LineSlice, history: list[Observation], incumbent: Observation, label: str
) -> Figure:
    """The posterior mean ± 2σ along one parameter, with the observations (±2σ) and the incumbent."""
    name, xs, mean, std = view.name, view.xs, view.mean, view.std
    fig = Figure(figsize=(8, 4.5))
    ax = fig.add_subplot()
    ax.fill_between(xs.astype(float), mean - 2 * std, mean + 2 * std, color="tab:blue", alpha=0.25, label="mean ± 2σ")
    ax.plot(xs, mean, color="tab:blue", label="posterior mean")
    ox = np.array([float(o.params[name]) for o in history])
    oy = np.array([o.value for o in history])
    osig = np.array([2 * o.sigma if o.sigma is not None else 0.0 for o in history])
    ax.errorbar(ox, oy, yerr=osig, fmt="o", color="black", ms=4, elinewidth=0.8, label="observations (±2σ)")
    ax.scatter([float(incumbent.params[name])], [incumbent.value], marker="*", s=180, c="gold",
               edgecolors="black", zorder=4, label="incumbent")
    label_axis(ax, "x", space, name)
    ax.set_ylabel(label)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


# -- target progress ---------------------------------------------------------------------------------


def targets_figure(names: list[str], evaluations: list[TargetEvaluation], first_met: TargetEvaluation | None) -> Figure:
    """One panel per target: its value after each evaluation against cumulative instrument time,
    filled where met, with its goal and (dashed) the moment all targets were first met together."""
    scale, unit = time_unit(max(e.instrument_seconds for e in evaluations))
    fig = Figure(figsize=(8, 2.6 * len(names) + 0.6))
    axes = fig.subplots(len(names), 1, sharex=True, squeeze=False)[:, 0]
    t = np.array([e.instrument_seconds for e in evaluations]) / scale
    for ax, name in zip(axes, names):
        results = [e.results.get(name) or {} for e in evaluations]
        value = np.array([float_or_nan(r.get("value")) for r in results])
        met = np.array([bool(r.get("met")) for r in results])
        ax.plot(t, value, color="tab:blue", lw=1, zorder=2)
        if met.any():
            ax.scatter(t[met], value[met], color="tab:blue", s=22, zorder=3, label="met")
        unmet = ~met & np.isfinite(value)  # "not evaluated yet" has no value to draw
        if unmet.any():
            ax.scatter(t[unmet], value[unmet], facecolors="white", edgecolors="tab:blue", s=22, zorder=3, label="not met")
        goals = [g for g in (float_or_nan(r.get("goal")) for r in results) if math.isfinite(g)]
        if goals:
            ax.axhline(goals[-1], color="tab:red", ls="-", lw=1, label=f"goal {goals[-1]:.4g}")
        if first_met is not None:
            ax.axvline(first_met.instrument_seconds / scale, color="tab:green", ls="--", lw=1, label="all targets met")
        ax.set_ylabel(name)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8, loc="best")
    axes[-1].set_xlabel(f"cumulative instrument time ({unit})")
    fixed_margins(fig, left=1.0, top=0.2, hspace=0.1)
    return fig


# -- shared --------------------------------------------------------------------------------------------


def label_axis(ax: Any, axis: str, space: DesignSpace, name: str) -> None:
    """Label the ``"x"`` or ``"y"`` axis with the parameter's name and units; log-scale it if the parameter is."""
    p = space.parameter(name)
    label = f"{name}{in_units(p.units)}"
    if axis == "x":
        ax.set_xlabel(label)
        if is_log(p):
            ax.set_xscale("log")
    else:
        ax.set_ylabel(label)
        if is_log(p):
            ax.set_yscale("log")


def _norm(values: Sequence[float]) -> Normalize:
    if not values:
        return Normalize(0.0, 1.0)
    lo, hi = float(min(values)), float(max(values))
    if lo == hi:  # one value (or all equal): give the colour bar some width
        pad = abs(lo) * 0.05 or 0.5
        lo, hi = lo - pad, hi + pad
    return Normalize(lo, hi)
