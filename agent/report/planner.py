"""The planner's decisions of a measurement campaign (SAS, XRD): what it chose at each step, when, and
why — in words.

A step is one measurement, in measurement order, with the instrument time it started and took. The
reason a planner recorded (a free-form dict: the binding goal and the plan of a SAS planner, the
rule and the rivals of an XRD planner, the step of a fixed protocol) is turned into a sentence by
:func:`reason_in_words`; the full dict stays available to the page as a tooltip.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from agent.report.data import ReportData, attempt_reason, reason_indices
from agent.report.formatting import fmt, in_units, is_number, time_unit
from agent.report.layout import fixed_margins, plain_log_ticks
from agent.store import Attempt
from policies.space import DesignSpace


@dataclass(frozen=True)
class Step:
    """One measurement as the planner decided it."""

    order: int  # 1-based measurement order
    attempt: Attempt
    policy: str
    start_seconds: float  # cumulative instrument time when it started
    seconds: float  # instrument time it took
    reason: dict[str, Any]


def planner_steps(d: ReportData) -> list[Step]:
    """Every measurement in order, with its decision's reason and its place in instrument time."""
    attempts = {a.id: a for a in d.attempts}
    index = reason_indices(d.attempts)
    steps, elapsed = [], 0.0
    for order, m in enumerate(d.measurements, start=1):
        a = attempts.get(m.attempt_id)
        if a is None:
            continue
        decision = d.decisions.get(a.decision_id) if a.decision_id is not None else None
        seconds = float(m.timing.instrument_seconds)
        steps.append(Step(order, a, decision.policy if decision is not None else "", elapsed, seconds,
                          attempt_reason(decision, index.get(a.id))))
        elapsed += seconds
    return steps


# -- reasons in words ------------------------------------------------------------------------------


def reason_in_words(reason: Mapping[str, Any]) -> str:
    """The planner's reason as a sentence; empty when the reason is not a planner's (see the page's
    generic summary of acquisition reasons)."""
    if "binding" in reason or "plan_seconds" in reason:
        text = _sas_plan(reason)
    elif "rule" in reason:
        text = _xrd_rule(reason)
    elif "step" in reason:
        text = f"Preset protocol, step {int(reason['step']) + 1}" + (f" (pass {reason['pass']})" if "pass" in reason else "") + "."
    else:
        return ""
    if "batch_repeat" in reason:
        text += f" Repeated in the same batch ({reason['batch_repeat']})."
    return text


def _sas_plan(reason: Mapping[str, Any]) -> str:
    hypotheses = reason.get("hypotheses") or {}
    odds = ", ".join(f"{m} p = {float(p):.3f}" for m, p in hypotheses.items())
    basis = "Planned from the current fits" if reason.get("fitted") else "No fit yet: planned from the candidates' starting values"
    parts = [basis + (f" ({odds})." if odds else ".")]
    binding = str(reason.get("binding") or "")
    if binding:
        goal, _, model = binding.partition(" | ")
        parts.append(f"The goal that needs the most counting: {goal}" + (f", should {model} be the answer." if model else "."))
    plan = reason.get("plan_seconds") or {}
    if plan:
        cost = reason.get("plan_cost_seconds")
        parts.append("To meet every goal it plans " + ", ".join(f"{float(s):,.0f} s on {c}" for c, s in plan.items())
                     + (f" ({float(cost):,.0f} s with changes and overheads)." if is_number(cost) else "."))
    if reason.get("feasible") is False:
        parts.append("No plan meets every goal within the exposure limits: this is the best it can do.")
    cap = reason.get("exposure_cap_seconds")
    if is_number(cap):
        parts.append(f"This step counts at most {float(cap):,.0f} s, then re-plans from the new fit.")
    return " ".join(parts)


def _xrd_rule(reason: Mapping[str, Any]) -> str:
    rule = str(reason["rule"])
    if rule == "survey":
        return "Survey: a first scan over the standard range, to see which phases are there."
    if rule == "full scan":
        return f"Preset protocol: full scan {int(reason.get('step', 0)) + 1}."
    if rule == "discrimination per second":
        gains, needed = reason.get("expected_gain_nats") or {}, reason.get("needed_nats") or {}
        rivals = "; ".join(f"against {r}: {fmt(gains.get(r))} of the {fmt(needed.get(r))} nats needed"
                           for r in (reason.get("rivals") or {}))
        p_best = reason.get("p_best")
        best = f"{reason.get('best')}" + (f" (p = {float(p_best):.3f})" if is_number(p_best) else "")
        return (f"The window where the best phase set {best} and its rivals differ most per second of counting"
                + (f" — expected evidence {rivals}" if rivals else "") + ".")
    if rule == "rescan where the top two differ":
        sets = reason.get("sets") or []
        return "Rescan where the two most probable phase sets differ" + (f" ({' vs '.join(map(str, sets))})." if sets else ".")
    return rule[:1].upper() + rule[1:] + "."


# -- the figure ---------------------------------------------------------------------------------------


def _window(space: DesignSpace) -> tuple[str, str] | None:
    """A (start, stop) pair of the space's parameters (``two_theta_start`` / ``two_theta_stop``), if any."""
    for name in space.names:
        if name.endswith("_start") and (stop := name[: -len("_start")] + "_stop") in space.names:
            return name, stop
    return None


def decisions_figure(space: DesignSpace, steps: Sequence[Step]) -> Figure:
    """One panel per decided setting against cumulative instrument time: a window as a box over the
    time it took, a configuration (categorical) as a bar on its row, a number (exposure, dwell, step)
    as a bar at its value; each labelled with its measurement number."""
    window = _window(space)
    names = [n for n in space.names if window is None or n not in window]
    panels: list[Any] = ([window] if window else []) + names
    total = max((s.start_seconds + s.seconds for s in steps), default=1.0)
    scale, unit = time_unit(total)
    fig = Figure(figsize=(8, 1.9 * len(panels) + 0.8))
    axes = fig.subplots(len(panels), 1, sharex=True, squeeze=False)[:, 0]
    for ax, panel in zip(axes, panels):
        if isinstance(panel, tuple):
            _window_panel(ax, space, panel, steps, scale)
        elif space.parameter(panel).type == "categorical":
            _category_panel(ax, space, panel, steps, scale)
        else:
            _number_panel(ax, space, panel, steps, scale)
        ax.grid(True, alpha=0.3)
    axes[-1].set_xlabel(f"cumulative instrument time ({unit})")
    axes[0].set_title("What the planner chose, over instrument time (numbers: measurement order)")
    fixed_margins(fig, left=1.1, hspace=0.15)
    return fig


def _window_panel(ax: Any, space: DesignSpace, names: tuple[str, str], steps: Sequence[Step], scale: float) -> None:
    for s in steps:
        lo, hi = (s.attempt.params.get(n) for n in names)
        if is_number(lo) and is_number(hi):
            ax.bar(s.start_seconds / scale, float(hi) - float(lo), width=s.seconds / scale, bottom=float(lo),
                   align="edge", color=f"C{(s.order - 1) % 10}", alpha=0.6, edgecolor="k", lw=0.5)
            ax.annotate(str(s.order), (s.start_seconds / scale, float(hi)), fontsize=7, xytext=(2, 2), textcoords="offset points")
    units = space.parameter(names[0]).units
    ax.set_ylabel(f"{names[0].removesuffix('_start')} window{in_units(units)}")


def _category_panel(ax: Any, space: DesignSpace, name: str, steps: Sequence[Step], scale: float) -> None:
    choices = [str(c) for c in space.parameter(name).choices or []]
    for s in steps:
        value = str(s.attempt.params.get(name))
        row = choices.index(value) if value in choices else len(choices)
        ax.barh(row, s.seconds / scale, left=s.start_seconds / scale, height=0.6, color=f"C{row % 10}", alpha=0.7,
                edgecolor="k", lw=0.5)
        ax.annotate(str(s.order), (s.start_seconds / scale, row + 0.3), fontsize=7, xytext=(1, 1), textcoords="offset points")
    ax.set_yticks(range(len(choices)), choices)
    ax.set_ylim(-0.6, len(choices) - 0.4)
    ax.set_ylabel(name)


def _number_panel(ax: Any, space: DesignSpace, name: str, steps: Sequence[Step], scale: float) -> None:
    points = [(s, float(s.attempt.params[name])) for s in steps if is_number(s.attempt.params.get(name))]
    for s, value in points:
        ax.hlines(value, s.start_seconds / scale, (s.start_seconds + s.seconds) / scale, color="tab:blue", lw=2)
        ax.annotate(str(s.order), (s.start_seconds / scale, value), fontsize=7, xytext=(1, 2), textcoords="offset points")
    values = np.array([v for _, v in points])
    if values.size and values.min() > 0 and values.max() / values.min() > 20:
        ax.set_yscale("log")
        plain_log_ticks(ax.yaxis)
    else:
        ax.yaxis.set_major_locator(MaxNLocator(5))
    ax.set_ylabel(f"{name}{in_units(space.parameter(name).units)}")
