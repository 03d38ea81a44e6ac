"""The report's sample figures for measurement campaigns: the data as measured with the most probable
answer's prediction over it and the normalised residuals, and how the candidates' probabilities
changed after each analysis — for SAS (I(Q) per exposure, the most probable model's resolution-
smeared fit, (I − fit)/σ) and powder XRD (each 2θ window's count rate, the most probable phase set's
pattern and each phase's share of it, (counts − μ)/√μ). Figures only need the store and the campaign file.

The analysis packages are imported when a figure of their kind is drawn: a report does not load the
analysis code of a kind it does not draw."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from agent.answer import probability_text
from agent.config import CampaignConfig
from agent.report.layout import fixed_margins, plain_log_ticks
from analysis.protocol import Interpretation
from instruments.types import Measurement

#: A candidate drawn in the probability figure once its probability passed this at some analysis.
SHOWN_PROBABILITY = 0.01


def sample_figures(config: CampaignConfig, measurements: Sequence[Measurement], interpretations: Sequence[Interpretation],
                   order: Mapping[str, int] | None = None) -> list[tuple[Figure, str]]:
    """(figure, alt text) pairs for the analysis kind of ``config``; empty when it has none.
    ``order``: attempt id → measurement number (the probability figure's x axis)."""
    draw: dict[str, Callable[..., list[tuple[Figure, str]]]] = {"xrd": _xrd, "sas": _sas}
    valid = [i for i in interpretations if i.valid]
    if config.analysis.kind not in draw or not measurements or not valid:
        return []
    figures = draw[config.analysis.kind](config, measurements, valid)
    series = _sas_probabilities(valid) if config.analysis.kind == "sas" else _set_probabilities(valid)
    what = "candidate model" if config.analysis.kind == "sas" else "phase set"
    x = [(order or {}).get(i.attempt_id, k + 1) for k, i in enumerate(valid)]
    figures.append((probability_figure(x, series, _goal(config), what), f"probability of each {what} after each analysis"))
    return figures


# -- probabilities after each analysis -------------------------------------------------------------------


def _sas_probabilities(interpretations: Sequence[Interpretation]) -> dict[str, list[float]]:
    names = sorted({k[2:-1] for i in interpretations for k in i.estimates if k.startswith("p(") and k != "p(best)"})
    return {m: [float(i.estimates[f"p({m})"].value or 0.0) if f"p({m})" in i.estimates else 0.0 for i in interpretations]
            for m in names}


def _set_probabilities(interpretations: Sequence[Interpretation]) -> dict[str, list[float]]:
    """Phase set → its probability at each analysis (0 where it was not among the reported hypotheses)."""
    per: list[dict[str, float]] = []
    for interp in interpretations:
        sets, i = {}, 0
        while isinstance(label := interp.details.get(f"hyp:{i}:set"), str):
            sets[label.replace("+", " + ")] = float(interp.details.get(f"hyp:{i}:p") or 0.0)  # type: ignore[arg-type]
            i += 1
        per.append(sets)
    names = sorted({n for sets in per for n in sets})
    return {n: [sets.get(n, 0.0) for sets in per] for n in names}


def probability_figure(x: Sequence[int], series: Mapping[str, Sequence[float]], goal: float | None, what: str) -> Figure:
    """One line per candidate that ever passed :data:`SHOWN_PROBABILITY` against the measurement after
    which it was computed (x: integers, one tick per analysis); a single analysis is a bar chart."""
    shown = {n: v for n, v in series.items() if max(v, default=0.0) > SHOWN_PROBABILITY}
    if len(x) == 1:
        # One analysis: its most probable candidates as bars, the tiny ones too, each with its number.
        shown = dict(sorted(series.items(), key=lambda kv: kv[1][0])[-6:])
    fig = Figure(figsize=(8, 3.2 + 0.15 * len(shown)))
    ax = fig.add_subplot()
    if len(x) == 1:
        names = list(shown)
        ax.barh(range(len(names)), [shown[n][0] for n in names], color="tab:blue", alpha=0.7)
        for row, name in enumerate(names):
            ax.annotate(probability_text(shown[name][0]).removeprefix("p = ") if shown[name][0] >= 1e-3
                        else f"{shown[name][0]:.1e}", (0.01, row), va="center", fontsize=7)
        ax.set_yticks(range(len(names)), names, fontsize=8)
        ax.set_xlim(0, 1.02)
        ax.set_xlabel("probability")
        if goal is not None:
            ax.axvline(goal, color="0.5", ls="--", lw=1, label=f"target {goal:g}")
            ax.legend(fontsize=7, loc="lower right")
        ax.set_title(f"{what} probabilities after the only analysis (measurement #{x[0]})", fontsize=10)
    else:
        for name, values in shown.items():
            ax.plot(x, values, marker="o", label=name)
        if goal is not None:
            ax.axhline(goal, color="0.5", ls="--", lw=1, label=f"target {goal:g}")
        ax.set_ylim(-0.02, 1.02)
        ax.set_xlim(min(x) - 0.5, max(x) + 0.5)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("analysis after measurement #")
        ax.set_ylabel("probability")
        ax.legend(fontsize=7, loc="best")
        ax.set_title(f"probability of each {what} after each analysis")
    ax.grid(True, alpha=0.3)
    # Room on the left for the bar chart's candidate names (about 0.07 in per character at 8 pt).
    fixed_margins(fig, left=0.8 if len(x) > 1 else 0.3 + 0.055 * max((len(n) for n in shown), default=4))
    return fig


def _goal(config: CampaignConfig) -> float | None:
    """The campaign's p(best) goal (a probability), drawn as the probability plot's target line."""
    goals = [t.at_least for t in config.targets if getattr(t, "estimate", None) == "p(best)" and getattr(t, "at_least", None)]
    return float(goals[0]) if goals else None  # type: ignore[arg-type]


def _residual_axes(ax: Any, label: str) -> None:
    ax.axhline(0, color="k", lw=0.6)
    for level in (-2, 2):
        ax.axhline(level, color="0.6", lw=0.6, ls="--")
    ax.set_ylabel(label)
    ax.grid(True, alpha=0.3)


# -- XRD ---------------------------------------------------------------------------------------------------


def _xrd(config: CampaignConfig, measurements: Sequence[Measurement], interpretations: Sequence[Interpretation]) -> list[tuple[Figure, str]]:
    """Count rate (counts/s) per 2θ window (degrees) with the newest most probable phase set's pattern
    and each phase's share of it; below, (counts − μ)/√μ of every window."""
    from analysis.xrd import XRDPhaseIDSettings, hypotheses_of, predict_rate

    settings = XRDPhaseIDSettings.model_validate(config.analysis.settings)
    hypotheses = hypotheses_of(interpretations[-1].details)
    fig = Figure(figsize=(9, 6.5))
    top, bottom = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    for k, m in enumerate(measurements):
        dwell = float(m.params.get(settings.dwell_parameter, 1.0))  # type: ignore[arg-type]
        two_theta, counts = np.asarray(m.data["two_theta"], float), np.asarray(m.data["counts"], float)
        top.plot(two_theta, counts / dwell, ".", ms=2, color=f"C{k % 10}", alpha=0.6,
                 label=f"#{k + 1}: {two_theta[0]:.1f}–{two_theta[-1]:.1f}°, {dwell:g} s/step")
        if hypotheses:
            mu = np.maximum(predict_rate(settings, hypotheses[0], two_theta) * dwell, 1.0)
            bottom.plot(two_theta, (counts - mu) / np.sqrt(mu), ".", ms=2, color=f"C{k % 10}")
    if hypotheses:
        best = hypotheses[0]
        lo = min(float(np.min(m.data["two_theta"])) for m in measurements)
        hi = max(float(np.max(m.data["two_theta"])) for m in measurements)
        grid = np.arange(lo, hi, 0.01)
        top.plot(grid, predict_rate(settings, best, grid), color="k", lw=0.8, label=f"{best.label}: {probability_text(best.probability)}")
        # The same hypothesis with every phase scaled to zero: its background alone.
        base = predict_rate(settings, replace(best, scales=tuple(0.0 for _ in best.scales)), grid)
        for j, phase in enumerate(best.phases):
            scales = [s if i == j else 0.0 for i, s in enumerate(best.scales)]
            top.fill_between(grid, base, predict_rate(settings, best, grid, scales), alpha=0.25, label=phase)
    top.set_yscale("symlog", linthresh=10)
    plain_log_ticks(top.yaxis)
    top.set_ylabel("count rate, counts/s")
    top.set_title(f"measured windows and the most probable phase set (after {len(measurements)} windows)")
    top.legend(fontsize=6, ncol=2, loc="upper right")
    _residual_axes(bottom, "(counts − μ)/√μ")
    bottom.set_xlabel("2θ, degrees")
    fixed_margins(fig)
    return [(fig, "XRD windows with the most probable phase set's pattern and the normalised residuals")]


# -- SAS ---------------------------------------------------------------------------------------------------


def _sas_curves(candidate: Mapping[str, Any], values: Mapping[str, float], measurements: Sequence[Measurement]) -> list[np.ndarray | None]:
    """``candidate``'s (the campaign file's entry) resolution-smeared I(Q) (1/cm) at ``values`` on every
    exposure's own Q points (pinhole ``dq`` or slit widths), in one kernel call; None for an exposure
    without Q and resolution.

    The fit's own evaluator (``analysis.sas.evaluator``) is not imported: loading ``analysis.sas``
    costs a second (scipy.stats) — more than the figure. This is the same evaluation from
    ``physics.sas``: sasmodels' defaults, the candidate's fixed values, the fitted values, the
    background added after smearing, the whole polydispersity mesh (cutoff 0)."""
    from physics.sas import SmearedEvaluator, kernel_defaults, resolution_block

    usable = [m for m in measurements if "q" in m.data and ("dq" in m.data or "dq_slit_length" in m.data)]
    if not usable:
        return [None] * len(measurements)
    qs = [np.asarray(m.data["q"], float).reshape(-1) for m in usable]
    blocks = [resolution_block(q, dq=np.asarray(m.data["dq"], float).reshape(-1)) if "dq" in m.data else
              resolution_block(q, slit_length=np.asarray(m.data["dq_slit_length"], float).reshape(-1),
                               slit_width=np.asarray(m.data.get("dq_slit_width", 0.0), float).reshape(-1))
              for m, q in zip(usable, qs)]
    model = str(candidate["model"])
    pars: dict[str, Any] = {**kernel_defaults(model), **(candidate.get("fixed") or {}), **values}
    pars.update({k: int(v) for k, v in pars.items() if k.endswith("_pd_n")})  # sasmodels wants a count
    background = float(pars.pop("background", 0.0))
    ev = SmearedEvaluator(model, blocks)
    try:
        with np.errstate(all="ignore"):
            curve = ev({**pars, "background": 0.0}, cutoff=0.0) + background
    finally:
        ev.release()
    pieces = np.split(curve, np.cumsum([q.size for q in qs])[:-1])
    by_id = {m.attempt_id: piece for m, piece in zip(usable, pieces)}
    return [by_id.get(m.attempt_id) for m in measurements]


def _sas(config: CampaignConfig, measurements: Sequence[Measurement], interpretations: Sequence[Interpretation]) -> list[tuple[Figure, str]]:
    """I(Q) (1/cm against 1/Å) of each exposure with the newest most probable model's resolution-smeared
    fit; below, (I − fit)/σ of every exposure."""
    latest = interpretations[-1]
    best = latest.details.get("best_model")
    fig = Figure(figsize=(9, 6.5))
    top, bottom = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    curves: list[np.ndarray | None] = [None] * len(measurements)
    if isinstance(best, str):
        candidate = next((c for c in config.analysis.settings.get("candidates", []) if c.get("name") == best), None)
        values = {p: latest.details.get(f"fit:{best}:{p}") for p in (candidate or {}).get("parameters", {})}
        if candidate is not None and values and all(isinstance(v, float) for v in values.values()):
            curves = _sas_curves(candidate, values, measurements)  # type: ignore[arg-type]
    for k, (m, curve) in enumerate(zip(measurements, curves)):
        if "q" not in m.data or "intensity" not in m.data:
            continue
        q, i, s = m.data["q"], m.data["intensity"], m.sigma.get("intensity")
        label = f"#{k + 1}: {m.params.get('configuration', '')} {m.params.get('exposure_seconds', '')} s"
        top.errorbar(q, i, yerr=s, fmt=".", ms=2, lw=0.5, color=f"C{k % 10}", alpha=0.6, label=label)
        if curve is not None:
            top.plot(q, curve, color="k", lw=0.8)
            if s is not None:
                bottom.plot(q, (i - curve) / s, ".", ms=2, color=f"C{k % 10}")
    if any(c is not None for c in curves):
        top.plot([], [], color="k", lw=0.8, label=f"{best} fit: {probability_text(latest.estimates['p(best)'].value or 0.0)}")
    top.set_xscale("log")
    top.set_yscale("log")
    for axis in (top.xaxis, top.yaxis):
        plain_log_ticks(axis)
    top.set_ylabel("I(Q), 1/cm")
    top.set_title(f"exposures and the most probable model's resolution-smeared fit (after {len(measurements)})")
    top.legend(fontsize=6, ncol=2)
    _residual_axes(bottom, "(I − fit)/σ")
    bottom.set_xlabel("Q, 1/Å")
    fixed_margins(fig)
    return [(fig, "SAS exposures with the most probable model's fit and the normalised residuals")]
