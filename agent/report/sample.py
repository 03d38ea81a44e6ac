"""The report's "sample" section for within-sample campaigns: the data as measured, the best answer's
prediction over it, and how the answer's probability grew — for SAS (I(Q) per exposure, the most
probable model's smeared fit) and powder XRD (each 2θ window's count rate, the most probable phase
set's pattern and each phase's share of it). Figures only need the store and the campaign file.

The analysis packages are imported when a figure of their kind is drawn: a report does not load the
analysis code of a kind it does not draw."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from agent.config import CampaignConfig
from analysis.protocol import Interpretation
from instruments.types import Measurement


def sample_figures(config: CampaignConfig, measurements: Sequence[Measurement],
                   interpretations: Sequence[Interpretation]) -> list[tuple[Figure, str]]:
    """(figure, alt text) pairs for the analysis kind of ``config``; empty when it has none."""
    draw: dict[str, Callable[..., list[tuple[Figure, str]]]] = {"xrd": _xrd, "sas": _sas}
    valid = [i for i in interpretations if i.valid]
    if config.analysis.kind not in draw or not measurements or not valid:
        return []
    return draw[config.analysis.kind](config, measurements, valid)


def _probabilities(ax: Any, interpretations: Sequence[Interpretation], prefix: str, goal: float | None) -> None:
    """Each candidate's probability after each analysis (those that ever passed 1 %)."""
    names = sorted({k for i in interpretations for k, e in i.estimates.items()
                    if k.startswith(prefix) and k != "p(best)" and e.value is not None and e.value > 0.01})
    x = np.arange(1, len(interpretations) + 1)
    for name in names:
        ax.plot(x, [i.estimates[name].value if name in i.estimates else 0.0 for i in interpretations], marker="o",
                label=name[len(prefix):].rstrip(")"))
    if goal is not None:
        ax.axhline(goal, color="0.5", ls="--", lw=1, label=f"target {goal:g}")
    ax.set_ylim(-0.02, 1.02)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("analysis after measurement #")
    ax.set_ylabel("probability")
    ax.legend(fontsize=7, loc="lower right")


def _goal(config: CampaignConfig) -> float | None:
    """The campaign's p(best) goal (a probability), drawn as the probability plot's target line."""
    goals = [t.at_least for t in config.targets if getattr(t, "estimate", None) == "p(best)" and getattr(t, "at_least", None)]
    return float(goals[0]) if goals else None  # type: ignore[arg-type]


def _xrd(config: CampaignConfig, measurements: Sequence[Measurement], interpretations: Sequence[Interpretation]) -> list[tuple[Figure, str]]:
    """Count rate (counts/s) per 2θ window (degrees) with the latest most probable phase set's pattern
    and each phase's share of it; below, each phase's marginal probability after each analysis."""
    from analysis.xrd import XRDPhaseIDSettings, hypotheses_of, predict_rate

    settings = XRDPhaseIDSettings.model_validate(config.analysis.settings)
    latest = interpretations[-1]
    hypotheses = hypotheses_of(latest.details)
    fig = Figure(figsize=(9, 6.5))
    top, bottom = fig.add_subplot(2, 1, 1), fig.add_subplot(2, 1, 2)
    lo = min(float(np.min(m.data["two_theta"])) for m in measurements)
    hi = max(float(np.max(m.data["two_theta"])) for m in measurements)
    for k, m in enumerate(measurements):
        dwell = float(m.params.get(settings.dwell_parameter, 1.0))  # type: ignore[arg-type]
        top.plot(m.data["two_theta"], m.data["counts"] / dwell, ".", ms=2, color=f"C{k % 10}", alpha=0.6,
                 label=f"#{k + 1}: {m.data['two_theta'][0]:.1f}–{m.data['two_theta'][-1]:.1f}°, {dwell:g} s/step")
    if hypotheses:
        best = hypotheses[0]
        grid = np.arange(lo, hi, 0.01)
        top.plot(grid, predict_rate(settings, best, grid), color="k", lw=0.8, label=f"{best.label}: p = {best.probability:.3f}")
        # The same hypothesis with every phase scaled to zero: its background alone.
        background = replace(best, scales=tuple(0.0 for _ in best.scales))
        base = predict_rate(settings, background, grid)
        for j, phase in enumerate(best.phases):
            scales = [s if i == j else 0.0 for i, s in enumerate(best.scales)]
            top.fill_between(grid, base, predict_rate(settings, best, grid, scales), alpha=0.25, label=phase)
    top.set_yscale("symlog", linthresh=10)
    top.set_xlabel("2θ, degrees")
    top.set_ylabel("count rate, counts/s")
    top.set_title(f"measured windows and the most probable phase set (after {len(measurements)} windows)")
    top.legend(fontsize=6, ncol=2, loc="upper right")
    _probabilities(bottom, interpretations, "p:", _goal(config))
    bottom.set_title("marginal probability of each phase")
    fig.tight_layout()
    return [(fig, "XRD windows with the most probable phase set's pattern, and phase probabilities")]


def _sas(config: CampaignConfig, measurements: Sequence[Measurement], interpretations: Sequence[Interpretation]) -> list[tuple[Figure, str]]:
    """I(Q) (1/cm against 1/Å) of each exposure with the latest most probable model's resolution-smeared
    fit; below, each candidate model's probability after each analysis."""
    from analysis.sas import SASFitSettings, predict_with_jacobian

    settings = SASFitSettings.model_validate(config.analysis.settings)
    latest = interpretations[-1]
    best = latest.details.get("best_model")
    fig = Figure(figsize=(9, 6.5))
    top, bottom = fig.add_subplot(2, 1, 1), fig.add_subplot(2, 1, 2)
    for k, m in enumerate(measurements):
        if "q" not in m.data or "intensity" not in m.data:
            continue
        q, i, s = m.data["q"], m.data["intensity"], m.sigma.get("intensity")
        label = f"#{k + 1}: {m.params.get('configuration', '')} {m.params.get('exposure_seconds', '')} s"
        top.errorbar(q, i, yerr=s, fmt=".", ms=2, lw=0.5, color=f"C{k % 10}", alpha=0.6, label=label)
    if isinstance(best, str):
        candidate = settings.candidate(best)
        values = {p: latest.details.get(f"fit:{best}:{p}") for p in candidate.parameters}
        if all(isinstance(v, float) for v in values.values()):
            for m in measurements:
                if "q" in m.data and "dq" in m.data:
                    curve, _, _ = predict_with_jacobian(settings, best, values, m.data["q"], m.data["dq"])  # type: ignore[arg-type]
                    top.plot(m.data["q"], curve, color="k", lw=0.8)
            top.plot([], [], color="k", lw=0.8, label=f"{best} fit: p = {latest.estimates['p(best)'].value:.3f}")
    top.set_xscale("log")
    top.set_yscale("log")
    top.set_xlabel("Q, 1/Å")
    top.set_ylabel("I(Q), 1/cm")
    top.set_title(f"exposures and the most probable model's resolution-smeared fit (after {len(measurements)})")
    top.legend(fontsize=6, ncol=2)
    _probabilities(bottom, interpretations, "p(", _goal(config))
    bottom.set_title("probability of each candidate model")
    fig.tight_layout()
    return [(fig, "SAS exposures with the most probable model's fit, and model probabilities")]
