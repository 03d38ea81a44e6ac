"""The campaign report: one self-contained HTML page built from the store alone.

Everything shown is read back from the store (the truth), and the model is refitted from the stored
valid interpretations exactly as the campaign loop builds its history, so a report of a finished,
crashed or still-running campaign shows what the policy would see now.

Sections: header (status, budgets used, attempt counts, versions); measured points over the design
space; the model's posterior mean and standard deviation; target progress against instrument time;
the decision log (one row per attempt, with the policy's stated reasons).

Figures are drawn with matplotlib's object API (``Figure`` + the Agg canvas), never ``pyplot``: no
global figure registry to leak into, no GUI backend to select, and safe alongside any backend a
caller has already chosen. Each figure is embedded as a base64 PNG; the page has no external assets.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
import os
import re
import warnings
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.transforms import blended_transform_factory

from agent.config import CampaignConfig
from agent.store import Attempt, Campaign, Decision, Store, TargetEvaluation
from agent.store.schema import ATTEMPT_STATES
from analysis.protocol import Interpretation
from instruments.types import Measurement, ParamValue
from policies.protocol import Observation
from policies.space import ContinuousParameter, DesignSpace, IntegerParameter

#: Grid resolution (per axis) of the model heat maps and points along a 1-d model line.
GRID_POINTS_2D = 60
GRID_POINTS_1D = 200
#: Space-filling feasible points shown when a constrained slice has (almost) no feasible grid cell.
FALLBACK_SAMPLE_POINTS = 2000
#: Below this many feasible grid cells, the heat map is replaced by the sampled scatter.
MIN_FEASIBLE_CELLS = 20
DPI = 110

#: Reason keys shown in the decision log, in this order (reasons are free-form dicts; the full
#: dict is always available as the cell's tooltip).
REASON_KEYS = ("acquisition", "acquisition_value", "phase", "error")
#: Hyperparameters shown when a reason carries them (top level, or under one of HYPERPARAMETER_HOLDERS).
HYPERPARAMETER_KEYS = ("lengthscales", "outputscale", "noise", "noise_model", "n_train")
HYPERPARAMETER_HOLDERS = ("hyperparameters", "model")


# -- data read from the store --------------------------------------------------------------------


@dataclass(frozen=True)
class _Point:
    """One attempt as the design-space figure sees it."""

    attempt: Attempt
    kind: str  # see POINT_STYLES
    value: float | None  # objective estimate, for trained points
    sigma: float | None
    order: int | None  # 1-based measurement order, None when never measured


@dataclass(frozen=True)
class _ReportData:
    campaign: Campaign
    config: CampaignConfig | None
    config_error: str | None
    attempts: list[Attempt]
    decisions: dict[int, Decision]
    interpretations: dict[str, Interpretation]
    measurement_order: dict[str, int]
    measurements: list[Measurement]
    """Every measurement with its arrays, oldest first (the sample figures draw them)."""
    n_measurements: int
    instrument_seconds: float
    evaluations: list[TargetEvaluation]

    @property
    def space(self) -> DesignSpace | None:
        return self.config.design_space if self.config is not None else None

    def objective_estimate(self, attempt_id: str) -> tuple[float | None, float | None, str]:
        """(value, sigma, units) of the objective estimate of an attempt; values None when absent."""
        interp = self.interpretations.get(attempt_id)
        if interp is None or self.config is None:
            return None, None, ""
        est = interp.estimates.get(self.config.objective.estimate)
        if est is None:
            return None, None, ""
        return est.value, est.sigma, est.units

    def history(self) -> list[Observation]:
        """Valid observations of the objective, as the campaign loop builds them (seq order)."""
        out = []
        for a in self.attempts:
            interp = self.interpretations.get(a.id)
            value, sigma, _ = self.objective_estimate(a.id)
            if interp is not None and interp.valid and value is not None:
                out.append(Observation(params=a.params, value=value, sigma=sigma, attempt_id=a.id))
        return out


def _load(store: Store, campaign_id: str) -> _ReportData:
    campaign = store.campaign(campaign_id)  # raises UnknownCampaign first
    config, config_error = None, None
    try:
        config = CampaignConfig.model_validate(campaign.config)
    except Exception as exc:  # noqa: BLE001 — an old or hand-edited config must not hide the rest
        config_error = f"{type(exc).__name__}: {_first_line(exc)}"
    n_measurements, instrument_seconds = store.totals(campaign_id)
    # Loaded once, arrays included: the order of measurements and the sample figures both need them.
    measurements = store.measurements(campaign_id)
    order = {m.attempt_id: i + 1 for i, m in enumerate(measurements)}
    return _ReportData(
        campaign=campaign,
        config=config,
        config_error=config_error,
        attempts=store.attempts(campaign_id),
        decisions={d.id: d for d in store.decisions(campaign_id)},
        interpretations={i.attempt_id: i for i in store.interpretations(campaign_id)},
        measurement_order=order,
        measurements=measurements,
        n_measurements=n_measurements,
        instrument_seconds=instrument_seconds,
        evaluations=store.target_evaluations(campaign_id),
    )


# -- the page ------------------------------------------------------------------------------------


def write_report(store: Store, campaign_id: str, out: Path | None = None) -> Path:
    """Write the HTML report of ``campaign_id`` and return its path.

    Args:
        store: the store holding the campaign.
        campaign_id: the campaign to report on.
        out: the file to write; default ``reports/<campaign_id>.html`` (relative to the working
            directory). Missing folders are created; the file is replaced atomically.

    Raises:
        UnknownCampaign: the store has no campaign ``campaign_id``.
    """
    data = _load(store, campaign_id)
    if out is None:
        out = Path("reports") / f"{re.sub(r'[^A-Za-z0-9_.-]', '_', campaign_id)}.html"
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    page = _page(
        f"labpilot report: {campaign_id}",
        [
            _header_section(data),
            _design_space_section(data),
            _model_section(data),
            _targets_section(data),
            _sample_section(data),
            _decision_log_section(data),
        ],
    )
    partial = out.with_name(out.name + ".partial")
    partial.write_text(page, encoding="utf-8")
    os.replace(partial, out)
    return out


_CSS = """
body { font-family: system-ui, sans-serif; margin: 1.5em 2em; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 2em; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; font-size: 0.85em; }
th, td { border: 1px solid #ddd; padding: 3px 6px; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
table.summary th { width: 12em; }
tr.refused td, tr.failed td, tr.unknown td { background: #fff4f0; }
tr.invalid td { background: #fffbe6; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
p.note { color: #7a4b00; background: #fff8e6; padding: 4px 8px; }
img { max-width: 100%; }
"""


def _page(title: str, sections: Sequence[str]) -> str:
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        f"<title>{_e(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n"
        + "\n".join(sections)
        + "\n</body>\n</html>\n"
    )


def _section(title: str, anchor: str, *parts: str) -> str:
    return f'<section id="{_e(anchor)}">\n<h2>{_e(title)}</h2>\n' + "\n".join(parts) + "\n</section>"


def _note(text: str) -> str:
    return f'<p class="note">{_e(text)}</p>'


def _figure_html(fig: Figure, alt: str) -> str:
    """The figure as an embedded PNG <img>; the figure is released afterwards."""
    FigureCanvasAgg(fig)  # attach the Agg canvas explicitly: no backend selection, no pyplot
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, bbox_inches="tight", metadata={"Software": None})
    fig.clear()
    encoded = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f'<figure><img alt="{_e(alt)}" src="data:image/png;base64,{encoded}"></figure>'


def _sample_section(d: _ReportData) -> str:
    """Within-sample campaigns (SAS, XRD): the data, the best answer over it, its probability."""
    if d.config is None or d.config.sample is None:
        return ""
    from agent.report_sample import sample_figures

    try:
        figures = sample_figures(d.config, d.measurements, list(d.interpretations.values()))
    except Exception as exc:  # noqa: BLE001 — a figure that cannot be drawn must not hide the report
        return _section("Sample", "sample", _note(f"the sample figure could not be drawn: {_first_line(exc)}"))
    if not figures:
        return ""
    return _section("Sample: data and answer", "sample", *(_figure_html(f, alt) for f, alt in figures))


# -- 1. header -----------------------------------------------------------------------------------


def _header_section(d: _ReportData) -> str:
    c = d.campaign
    counts = Counter(a.state for a in d.attempts)
    states = [s for s in ATTEMPT_STATES if counts.get(s)] + sorted(set(counts) - set(ATTEMPT_STATES))
    description = d.config.description if d.config is not None else str(c.config.get("description", ""))
    wall = _seconds(c.wall_seconds) + (" (finished runs only)" if c.status == "running" else "")
    rows = [
        ("campaign id", c.id),
        ("name", c.name),
        ("description", description or "—"),
        ("status", c.status),
        ("stop reason", c.stop_reason or "—"),
        ("measurements", str(d.n_measurements)),
        ("instrument time", _seconds(d.instrument_seconds)),
        ("wall time", wall),
        ("runs", f"{c.runs} ({c.runs - 1} resume{'s' if c.runs != 2 else ''})"),
        ("attempts", ", ".join(f"{s}: {counts[s]}" for s in states) or "none"),
        ("created", _when(c.created_at)),
        ("finished", _when(c.finished_at)),
        ("seed", str(c.seed)),
        ("package versions", ", ".join(f"{k} {v}" for k, v in sorted(c.package_versions.items())) or "—"),
    ]
    if d.config is not None:
        rows.insert(3, ("objective", f"{d.config.objective.direction} {d.config.objective.estimate}"))
        rows.insert(4, ("policy", d.config.policy.name))
    body = "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in rows)
    parts = [f'<table class="summary">{body}</table>']
    if d.config_error:
        parts.append(_note(f"the stored configuration does not validate any more ({d.config_error}); "
                           "figures that need the design space are omitted"))
    return f"<h1>Campaign {_e(c.id)}</h1>\n" + "\n".join(parts)


# -- 2. measured points over the design space ----------------------------------------------------

#: kind → (legend label, marker, whether coloured by the estimate, face colour, edge colour)
POINT_STYLES: dict[str, tuple[str, str, bool, str, str]] = {
    "trained": ("valid (used by the model)", "o", True, "", "black"),
    "flagged": ("valid but flagged", "s", True, "", "black"),
    "invalid": ("invalid / no estimate", "X", False, "tab:red", "tab:red"),
    "failed": ("failed / outcome unknown", "D", False, "none", "tab:orange"),
    "refused": ("refused proposal", "v", False, "none", "dimgray"),
    "pending": ("not analysed yet", "o", False, "none", "darkgray"),
}


def _points(d: _ReportData) -> list[_Point]:
    out = []
    for a in d.attempts:
        interp = d.interpretations.get(a.id)
        value, sigma, _ = d.objective_estimate(a.id)
        if a.state == "refused":
            kind = "refused"
        elif a.state in ("failed", "unknown"):
            kind = "failed"
        elif interp is None:
            kind = "pending"
        elif not interp.valid or value is None:
            kind = "invalid"
        else:
            kind = "flagged" if interp.flags else "trained"
        out.append(_Point(a, kind, value, sigma, d.measurement_order.get(a.id)))
    return out


def _design_space_section(d: _ReportData) -> str:
    title = "Measured points over the design space"
    space = d.space
    if space is None:
        return _section(title, "design-space", _note("no design space: the stored configuration does not validate"))
    names = space.numeric_names[:2]
    if not names:
        return _section(title, "design-space", _note("the design space has no numeric parameter to plot"))
    points = _points(d)
    if not points:
        return _section(title, "design-space", _note("no attempts recorded yet"))
    objective = d.config.objective  # type: ignore[union-attr]
    units = _objective_units(d)
    fig = _design_space_figure(space, names, points, f"{objective.estimate}{_in_units(units)}")
    unplotted = sum(1 for p in points if not all(_is_number(p.attempt.params.get(n)) for n in names))
    parts = [
        _figure_html(fig, f"measured points over {', '.join(names)}"),
        f"<p>Every attempt at its requested point, numbered in measurement order (the “#” column of the "
        f"decision log); colour: {_e(objective.estimate)} ({_e(objective.direction)}).</p>",
    ]
    others = [n for n in space.names if n not in names]
    if others:
        parts.append(f"<p>Projection onto {_e(' × '.join(names))}; not shown: {_e(', '.join(others))}.</p>")
    if unplotted:
        parts.append(_note(f"{unplotted} attempt(s) have no numeric value for {' / '.join(names)} and are not drawn"))
    return _section(title, "design-space", *parts)


def _design_space_figure(space: DesignSpace, names: list[str], points: list[_Point], colour_label: str) -> Figure:
    one_d = len(names) == 1
    fig = Figure(figsize=(7.5, 5.5) if not one_d else (8, 4.5))
    ax = fig.add_subplot()
    values = [p.value for p in points if POINT_STYLES[p.kind][2] and p.value is not None]
    norm = _norm(values)
    mappable = None
    # Off-axis kinds in 1-d (no estimate to place them at) sit on a rug just above the x axis.
    rug = blended_transform_factory(ax.transData, ax.transAxes)
    for kind, (label, marker, coloured, face, edge) in POINT_STYLES.items():
        group = [p for p in points if p.kind == kind and all(_is_number(p.attempt.params.get(n)) for n in names)]
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
    _label_axis(ax, "x", space, names[0])
    if one_d:
        ax.set_ylabel(f"{colour_label}  (±2σ)")
    else:
        _label_axis(ax, "y", space, names[1])
        if mappable is not None:
            fig.colorbar(mappable, ax=ax, label=colour_label)
    ax.grid(True, alpha=0.3)
    ax.set_title("Measured points (numbers: measurement order)")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=3, fontsize=8, frameon=False)
    fig.tight_layout()
    return fig


# -- 3. model mean and standard deviation --------------------------------------------------------


def _model_section(d: _ReportData) -> str:
    title = "Model mean and standard deviation"
    space = d.space
    if space is None or d.config is None:
        return _section(title, "model", _note("skipped: no design space (the stored configuration does not validate)"))
    history = d.history()
    if len(history) < 2:
        return _section(title, "model", _note(f"skipped: {len(history)} valid observation(s) of "
                                                  f"{d.config.objective.estimate!r}; the model needs at least 2"))
    names = space.numeric_names[:2]
    if not names:
        return _section(title, "model", _note("skipped: the design space has no numeric parameter to grid"))
    direction = d.config.objective.direction
    with warnings.catch_warnings(record=True) as caught:
        # A report says what happened; numerical warnings go on the page, not to stderr.
        warnings.simplefilter("always")
        try:
            from policies.models import ModelCache  # torch/BoTorch: loaded only when there is a model to fit

            model = ModelCache().fit(space, history, direction)
            means, _ = model.predict([o.params for o in history])
            incumbent = history[int(np.argmax(means if direction == "maximize" else -means))]
            fig, how = _model_figure(space, names, model, history, incumbent, _objective_label(d))
        except Exception as exc:  # noqa: BLE001 — the rest of the report is still worth having
            return _section(title, "model", _note(f"skipped: the model could not be fitted or evaluated "
                                                      f"({type(exc).__name__}: {_first_line(exc)})"))
    parts = [
        _figure_html(fig, "model posterior mean and standard deviation"),
        f"<p>GP refitted from the store on {len(history)} valid observation(s) of "
        f"{_e(d.config.objective.estimate)} ({_e(model.noise_model)} noise). {_e(how)} "
        f"Incumbent (best posterior mean among observed points, {_e(direction)}): attempt "
        f"{_e(incumbent.attempt_id)} at {_e(_format_params(incumbent.params, space))}. "
        "Standard deviation is that of the latent objective (without observation noise).</p>",
    ]
    messages = list(dict.fromkeys([*model.fit_warnings, *(f"{w.category.__name__}: {w.message}" for w in caught)]))
    if messages:
        parts.append(_note("warnings while fitting: " + "; ".join(messages)))
    return _section(title, "model", *parts)


def _model_figure(
    space: DesignSpace, names: list[str], model: Any, history: list[Observation], incumbent: Observation, label: str
) -> tuple[Figure, str]:
    """The model figure and a sentence saying what slice of the space it shows."""
    fixed = _slice_description(space, names)
    if len(names) == 1:
        return _model_line(space, names[0], model, history, incumbent, label), f"Posterior along {names[0]}. {fixed}"
    xs = _axis_values(space.parameter(names[0]), GRID_POINTS_2D)
    ys = _axis_values(space.parameter(names[1]), GRID_POINTS_2D)
    grid = [_slice_point(space, incumbent.params, names, (xv, yv)) for yv in ys for xv in xs]
    mean, std, n_feasible = _predict_where_feasible(space, model, grid)
    if n_feasible >= MIN_FEASIBLE_CELLS:
        x_edges = _edges(xs, _is_log(space.parameter(names[0])))
        y_edges = _edges(ys, _is_log(space.parameter(names[1])))

        def cells(ax: Any, z: np.ndarray, cmap: str) -> Any:
            z = np.ma.masked_invalid(z.reshape(len(ys), len(xs)))
            return ax.pcolormesh(x_edges, y_edges, z, cmap=cmap, shading="flat")

        blank = " Infeasible cells are blank." if space.compositions or space.constraints else ""
        fig = _mean_std_figure(space, names, mean, std, cells, history, incumbent, label, "")
        return fig, f"Grid over {names[0]} × {names[1]}. {fixed}{blank}"
    # The slice through the incumbent is (nearly) empty: show the whole feasible space instead.
    from policies.baselines import space_filling_points

    sample = space_filling_points(space, 0, FALLBACK_SAMPLE_POINTS, seed=0)
    mean, std = model.predict(sample)
    x = np.array([float(p[names[0]]) for p in sample])
    y = np.array([float(p[names[1]]) for p in sample])

    def dots(ax: Any, z: np.ndarray, cmap: str) -> Any:
        return ax.scatter(x, y, c=z, cmap=cmap, s=9, linewidths=0)

    fig = _mean_std_figure(space, names, mean, std, dots, history, incumbent, label, " (feasible sample)")
    return fig, (f"The slice through the incumbent has almost no feasible point, so {len(sample)} space-filling "
                 f"feasible points of the whole space are shown, projected onto {names[0]} × {names[1]}.")


def _predict_where_feasible(
    space: DesignSpace, model: Any, grid: list[dict[str, ParamValue]]
) -> tuple[np.ndarray, np.ndarray, int]:
    """(mean, std, number of feasible points) over ``grid``; NaN where a point violates the space."""
    feasible = np.array([not space.violations(p) for p in grid], dtype=bool)
    mean = np.full(len(grid), np.nan)
    std = np.full(len(grid), np.nan)
    if feasible.any():
        mean[feasible], std[feasible] = model.predict([p for p, ok in zip(grid, feasible) if ok])
    return mean, std, int(feasible.sum())


def _slice_description(space: DesignSpace, names: list[str]) -> str:
    """How the parameters that are not gridded are set (see ``_slice_point``)."""
    partners = [n for g in space.compositions if set(g.parameters) & set(names) for n in g.parameters if n not in names]
    held = [n for n in space.names if n not in names and n not in partners]
    parts = []
    if held:
        parts.append(f"Fixed at the incumbent's values: {', '.join(held)}.")
    if partners:
        parts.append(f"Sharing the rest of their composition in the incumbent's proportions: {', '.join(partners)}.")
    return " ".join(parts)


def _axis_values(p: Any, n: int) -> np.ndarray:
    """Grid values of a numeric parameter: log-spaced when log-scaled, whole numbers for integers."""
    if isinstance(p, IntegerParameter):
        return np.unique(np.round(np.linspace(p.low, p.high, min(n, p.high - p.low + 1)))).astype(int)
    if isinstance(p, ContinuousParameter) and p.log_scale:
        return np.geomspace(p.low, p.high, n)
    return np.linspace(p.low, p.high, n)


def _edges(centres: np.ndarray, log: bool) -> np.ndarray:
    """Cell edges around sorted cell centres (geometric midpoints on a log axis)."""
    c = np.log(centres.astype(float)) if log else centres.astype(float)
    if len(c) == 1:
        e = np.array([c[0] - 0.5, c[0] + 0.5])
    else:
        mid = (c[1:] + c[:-1]) / 2
        e = np.concatenate([[c[0] - (mid[0] - c[0])], mid, [c[-1] + (c[-1] - mid[-1])]])
    return np.exp(e) if log else e


def _slice_point(
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


def _mean_std_figure(
    space: DesignSpace, names: list[str], mean: np.ndarray, std: np.ndarray, draw: Any,
    history: list[Observation], incumbent: Observation, label: str, subtitle: str,
) -> Figure:
    """Mean and std side by side; ``draw(ax, values, cmap)`` paints one panel and returns its mappable."""
    fig = Figure(figsize=(12, 4.8))
    for i, (z, what, cmap) in enumerate(((mean, "posterior mean", "viridis"), (std, "posterior std", "magma"))):
        ax = fig.add_subplot(1, 2, i + 1)
        fig.colorbar(draw(ax, z, cmap), ax=ax, label=f"{what} of {label}")
        _overlay_observations(ax, names, history, incumbent)
        _label_axis(ax, "x", space, names[0])
        _label_axis(ax, "y", space, names[1])
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


def _model_line(
    space: DesignSpace, name: str, model: Any, history: list[Observation], incumbent: Observation, label: str
) -> Figure:
    xs = _axis_values(space.parameter(name), GRID_POINTS_1D)
    mean, std, _ = _predict_where_feasible(space, model, [_slice_point(space, incumbent.params, [name], (x,)) for x in xs])
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
    _label_axis(ax, "x", space, name)
    ax.set_ylabel(label)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


# -- 4. target progress ---------------------------------------------------------------------------


def _targets_section(d: _ReportData) -> str:
    title = "Target progress vs instrument time"
    if not d.evaluations:
        return _section(title, "targets", _note("no target evaluations recorded yet"))
    names = list(dict.fromkeys(name for e in d.evaluations for name in e.results))
    if not names:
        return _section(title, "targets", _note("the recorded target evaluations name no target"))
    first_met = next((e for e in d.evaluations if e.all_met), None)
    fig = _targets_figure(names, d.evaluations, first_met)
    met_text = (
        f"All targets were first met after {first_met.n_measurements} measurement(s) and "
        f"{_seconds(first_met.instrument_seconds)} of instrument time (dashed line)."
        if first_met is not None else "The targets have not all been met together."
    )
    return _section(title, "targets", _figure_html(fig, "target values against instrument time"),
                    f"<p>Filled markers: target met at that evaluation. {_e(met_text)}</p>")


def _targets_figure(names: list[str], evaluations: list[TargetEvaluation], first_met: TargetEvaluation | None) -> Figure:
    scale, unit = _time_unit(max(e.instrument_seconds for e in evaluations))
    fig = Figure(figsize=(8, 2.6 * len(names) + 0.6))
    axes = fig.subplots(len(names), 1, sharex=True, squeeze=False)[:, 0]
    t = np.array([e.instrument_seconds for e in evaluations]) / scale
    for ax, name in zip(axes, names):
        results = [e.results.get(name) or {} for e in evaluations]
        value = np.array([_float_or_nan(r.get("value")) for r in results])
        met = np.array([bool(r.get("met")) for r in results])
        ax.plot(t, value, color="tab:blue", lw=1, zorder=2)
        if met.any():
            ax.scatter(t[met], value[met], color="tab:blue", s=22, zorder=3, label="met")
        unmet = ~met & np.isfinite(value)  # "not evaluated yet" has no value to draw
        if unmet.any():
            ax.scatter(t[unmet], value[unmet], facecolors="white", edgecolors="tab:blue", s=22, zorder=3, label="not met")
        goals = [g for g in (_float_or_nan(r.get("goal")) for r in results) if math.isfinite(g)]
        if goals:
            ax.axhline(goals[-1], color="tab:red", ls="-", lw=1, label=f"goal {goals[-1]:.4g}")
        if first_met is not None:
            ax.axvline(first_met.instrument_seconds / scale, color="tab:green", ls="--", lw=1, label="all targets met")
        ax.set_ylabel(name)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8, loc="best")
    axes[-1].set_xlabel(f"cumulative instrument time ({unit})")
    fig.tight_layout()
    return fig


# -- 5. decision log ------------------------------------------------------------------------------

_LOG_COLUMNS = ("seq", "#", "attempt", "state", "instrument", "params", "policy", "fallback", "why (policy's reason)",
                "refusal / failure", "reconciled", "estimate ± σ", "flags")


def _decision_log_section(d: _ReportData) -> str:
    title = "Decision log"
    if not d.attempts:
        return _section(title, "decisions", _note("no attempts recorded yet"))
    # reasons[i] of a decision belongs to its i-th attempt in seq order (how the loop records them).
    index_in_decision: dict[str, int] = {}
    for decision_id in {a.decision_id for a in d.attempts if a.decision_id is not None}:
        for i, a in enumerate(sorted((a for a in d.attempts if a.decision_id == decision_id), key=lambda a: a.seq)):
            index_in_decision[a.id] = i
    rows = [_log_row(d, a, index_in_decision.get(a.id)) for a in d.attempts]
    head = "".join(f"<th>{_e(c)}</th>" for c in _LOG_COLUMNS)
    return _section(
        title, "decisions",
        "<p>One row per attempt in sequence order; “#” is the measurement order used in the design-space figure. "
        "Hover over a reason to see everything the policy recorded.</p>",
        f'<table class="log">\n<thead><tr>{head}</tr></thead>\n<tbody>\n' + "\n".join(rows) + "\n</tbody>\n</table>",
    )


def _log_row(d: _ReportData, a: Attempt, index: int | None) -> str:
    decision = d.decisions.get(a.decision_id) if a.decision_id is not None else None
    reason: dict[str, Any] = {}
    if decision is not None and index is not None and index < len(decision.reasons):
        reason = decision.reasons[index] if isinstance(decision.reasons[index], dict) else {"reason": decision.reasons[index]}
    why = _reason_summary(reason)
    if decision is not None and decision.error and "error" not in reason:
        why.insert(0, f"decision error: {decision.error}")
    interp = d.interpretations.get(a.id)
    value, sigma, units = d.objective_estimate(a.id)
    estimate = "—"
    if value is not None:
        estimate = f"{value:.4g}" + (f" ± {sigma:.2g}" if sigma is not None else "") + (f" {units}" if units else "")
    reconciled = a.reconciled or ""
    if a.reruns:
        reconciled += f" ({a.reruns} re-run{'s' if a.reruns > 1 else ''})"
    css = a.state if a.state in ("refused", "failed", "unknown") else ""
    if interp is not None and not interp.valid:
        css = "invalid"
    order = d.measurement_order.get(a.id)
    cells = [
        _td(str(a.seq), num=True),
        _td("" if order is None else str(order), num=True),
        _td(a.id),
        _td(a.state),
        _td(a.instrument or ""),
        _td(_format_params(a.params, d.space)),
        _td(decision.policy if decision is not None else ""),
        _td("" if decision is None else ("yes" if decision.fallback else "no")),
        _td("; ".join(why), title=json.dumps(reason, sort_keys=True, default=str) if reason else None),
        _td(a.reason or ""),
        _td(reconciled.strip()),
        _td(estimate, num=True),
        _td(", ".join(interp.flags) if interp is not None else ""),
    ]
    opening = f'<tr class="{_e(css)}">' if css else "<tr>"
    return opening + "".join(cells) + "</tr>"


def _reason_summary(reason: Mapping[str, Any]) -> list[str]:
    """The parts of a free-form reason worth a column: acquisition, phase, error, hyperparameters."""
    out = [f"{key.replace('_', ' ')}: {_fmt(reason[key])}" for key in REASON_KEYS if reason.get(key) is not None]
    holders = [reason] + [reason[h] for h in HYPERPARAMETER_HOLDERS if isinstance(reason.get(h), Mapping)]
    for holder in holders:
        for key in HYPERPARAMETER_KEYS:
            if holder.get(key) is not None:
                out.append(f"{key}: {_fmt(holder[key])}")
    return out


def _td(text: str, *, num: bool = False, title: str | None = None) -> str:
    attrs = ' class="num"' if num else ""
    if title:
        attrs += f' title="{_e(title)}"'
    return f"<td{attrs}>{_e(text)}</td>"


# -- formatting ------------------------------------------------------------------------------------


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _fmt(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_fmt(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{k}: {_fmt(v)}" for k, v in value.items()) + "}"
    return str(value)


def _format_params(params: Mapping[str, Any], space: DesignSpace | None) -> str:
    parts = []
    for name, value in params.items():
        units = ""
        if space is not None and name in space.names:
            units = space.parameter(name).units
        parts.append(f"{name}={_fmt(value)}" + (f" {units}" if units else ""))
    return ", ".join(parts)


def _label_axis(ax: Any, axis: str, space: DesignSpace, name: str) -> None:
    p = space.parameter(name)
    label = f"{name}{_in_units(p.units)}"
    if axis == "x":
        ax.set_xlabel(label)
        if _is_log(p):
            ax.set_xscale("log")
    else:
        ax.set_ylabel(label)
        if _is_log(p):
            ax.set_yscale("log")


def _is_log(p: Any) -> bool:
    return isinstance(p, ContinuousParameter) and p.log_scale


def _in_units(units: str) -> str:
    return f" ({units})" if units else ""


def _objective_units(d: _ReportData) -> str:
    for a in d.attempts:
        value, _, units = d.objective_estimate(a.id)
        if units:
            return units
    return ""


def _objective_label(d: _ReportData) -> str:
    return f"{d.config.objective.estimate}{_in_units(_objective_units(d))}"  # type: ignore[union-attr]


def _norm(values: Sequence[float]) -> Normalize:
    if not values:
        return Normalize(0.0, 1.0)
    lo, hi = float(min(values)), float(max(values))
    if lo == hi:  # one value (or all equal): give the colour bar some width
        pad = abs(lo) * 0.05 or 0.5
        lo, hi = lo - pad, hi + pad
    return Normalize(lo, hi)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(float(value))


def _float_or_nan(value: Any) -> float:
    return float(value) if _is_number(value) else math.nan


def _time_unit(max_seconds: float) -> tuple[float, str]:
    if max_seconds >= 3 * 3600:
        return 3600.0, "h"
    if max_seconds >= 3 * 60:
        return 60.0, "min"
    return 1.0, "s"


def _seconds(seconds: float) -> str:
    scale, unit = _time_unit(seconds)
    if unit == "s":
        return f"{seconds:.3g} s"
    return f"{seconds:,.0f} s" + (f" ({seconds / scale:.3g} {unit})" if unit != "s" else "")


def _when(moment: datetime | None) -> str:
    return "—" if moment is None else moment.isoformat(timespec="seconds")


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


__all__ = ["write_report"]
