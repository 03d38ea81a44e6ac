"""The report page: HTML assembly of the sections, and writing the file.

Sections: header (status, budgets used, attempt counts, versions); measured points over the design
space; the model's posterior mean and standard deviation; target progress against instrument time;
the sample's data and answer (within-sample campaigns); the decision log (one row per attempt, with
the policy's stated reasons). Each figure is embedded as a base64 PNG; the page has no external
assets. Every text that comes from the store is escaped here, once, as it is written.
"""

from __future__ import annotations

import json
import os
import re
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from agent.report.data import (
    ReportData,
    attempt_points,
    attempt_reason,
    load_report_data,
    reason_indices,
    state_counts,
)
from agent.report.html import escape as _e
from agent.report.html import figure_html as _figure_html
from agent.report.html import note as _note
from agent.report.html import summary_table
from agent.report.html import section as _section
from agent.report.html import td as _td
from agent.report.figures import design_space_figure, model_figure, targets_figure
from agent.report.formatting import (
    duration,
    first_line,
    fmt,
    format_params,
    in_units,
    is_number,
    when,
)
from agent.report.measurement import answer_section, is_measurement_campaign, planner_section, sample_section
from agent.report.map_data import is_map_campaign
from agent.report.model import describe_slice, fit_model, model_slice
from agent.report.planner import reason_in_words
from agent.answer import unit_symbols
from agent.flag_sentences import about_a_rival, sentence
from agent.report.sample import sample_figures
from agent.store import Attempt, Store
from analysis.protocol import Interpretation

#: Reason keys shown in the decision log, in this order (reasons are free-form dicts; the full
#: dict is always available as the cell's tooltip).
REASON_KEYS = ("acquisition", "acquisition_value", "phase", "error")
#: Hyperparameters shown when a reason carries them (top level, or under one of HYPERPARAMETER_HOLDERS).
HYPERPARAMETER_KEYS = ("lengthscales", "outputscale", "noise", "noise_model", "n_train")
HYPERPARAMETER_HOLDERS = ("hyperparameters", "model")


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
    if out is None:
        out = Path("reports") / f"{re.sub(r'[^A-Za-z0-9_.-]', '_', campaign_id)}.html"
    out = Path(out)
    if is_map_campaign(store.campaign(campaign_id).config):
        # A campaign over samples: its own page (agent/report/map_page.py), the answer first too.
        from agent.report.map_page import map_report_sections

        sections = map_report_sections(store, campaign_id)
    else:
        sections = _campaign_sections(load_report_data(store, campaign_id))
    out.parent.mkdir(parents=True, exist_ok=True)
    page = _page(f"labpilot report: {campaign_id}", sections)
    partial = out.with_name(out.name + ".partial")
    partial.write_text(page, encoding="utf-8")
    os.replace(partial, out)
    return out


def _campaign_sections(data: ReportData) -> list[str]:
    """The sections of a measurement or objective campaign's page."""
    if is_measurement_campaign(data):
        # A measurement campaign's story: what the planner chose and why, the data and the fit, the odds.
        story = [planner_section(data), sample_section(data), _targets_section(data)]
    else:
        story = [_design_space_section(data), _model_section(data), _targets_section(data), _sample_section(data)]
    # The answer first, right under the title; then the bookkeeping, then the story.
    return [f"<h1>Campaign {_e(data.campaign.id)}</h1>", answer_section(data.answer), _header_section(data), *story,
            _decision_log_section(data)]


# -- the document ----------------------------------------------------------------------------------

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
section.answer { border: 2px solid #2a7a2a; background: #f3faf3; padding: 0.2em 1em 0.8em; }
section.answer.not-identified { border-color: #b07000; background: #fffaf0; }
section.answer.no-answer-yet { border-color: #999; background: #f7f7f7; }
section.answer h2 { margin-top: 0.5em; border: none; }
details > summary { cursor: pointer; color: #225; margin: 0.5em 0; }
p.answer-summary { font-size: 1.15em; font-weight: 600; }
ul.warnings li { color: #7a4b00; }
"""


def _page(title: str, sections: Sequence[str]) -> str:
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        f"<title>{_e(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n"
        + "\n".join(sections)
        + "\n</body>\n</html>\n"
    )


# -- 1. header -----------------------------------------------------------------------------------


def _header_section(d: ReportData) -> str:
    c = d.campaign
    counts = state_counts(d.attempts)
    description = d.config.description if d.config is not None else str(c.config.get("description", ""))
    wall = duration(c.wall_seconds) + (" (finished runs only)" if c.status == "running" else "")
    rows = [
        ("campaign id", c.id),
        ("name", c.name),
        ("description", description or "—"),
        ("status", c.status),
        ("stop reason", c.stop_reason or "—"),
        ("measurements", str(d.n_measurements)),
        ("instrument time", duration(d.instrument_seconds)),
        ("wall time", wall),
        ("runs", f"{c.runs} ({c.runs - 1} resume{'s' if c.runs != 2 else ''})"),
        ("attempts", ", ".join(f"{s}: {n}" for s, n in counts) or "none"),
        ("created", when(c.created_at)),
        ("finished", when(c.finished_at)),
        ("seed", str(c.seed)),
        ("package versions", ", ".join(f"{k} {v}" for k, v in sorted(c.package_versions.items())) or "—"),
    ]
    if d.config is not None and is_measurement_campaign(d):
        rows.insert(3, ("sample", str(d.config.sample)))
        rows.insert(4, ("planner", d.config.policy.name))
    elif d.config is not None:
        rows.insert(3, ("objective", f"{d.config.objective.direction} {d.config.objective.estimate}"))
        rows.insert(4, ("policy", d.config.policy.name))
    return summary_table(rows, d.config_error, "figures that need the design space are omitted")


# -- 2. measured points over the design space ----------------------------------------------------


def _design_space_section(d: ReportData) -> str:
    title = "Measured points over the design space"
    space = d.space
    if space is None:
        return _section(title, "design-space", _note("no design space: the stored configuration does not validate"))
    names = space.numeric_names[:2]
    if not names:
        return _section(title, "design-space", _note("the design space has no numeric parameter to plot"))
    points = attempt_points(d)
    if not points:
        return _section(title, "design-space", _note("no attempts recorded yet"))
    objective = d.config.objective  # type: ignore[union-attr]
    units = d.objective_units()
    fig = design_space_figure(space, names, points, f"{objective.estimate}{in_units(units)}")
    unplotted = sum(1 for p in points if not all(is_number(p.attempt.params.get(n)) for n in names))
    parts = [
        _figure_html(fig, f"measured points over {', '.join(names)}"),
        (f"<p>Every attempt at its requested point, numbered in measurement order (the “#” column of the "
         f"decision log); colour: {_e(objective.estimate)} ({_e(objective.direction)}).</p>"),
    ]
    others = [n for n in space.names if n not in names]
    if others:
        parts.append(f"<p>Projection onto {_e(' × '.join(names))}; not shown: {_e(', '.join(others))}.</p>")
    if unplotted:
        parts.append(_note(f"{unplotted} attempt(s) have no numeric value for {' / '.join(names)} and are not drawn"))
    return _section(title, "design-space", *parts)


# -- 3. model mean and standard deviation --------------------------------------------------------


def _model_section(d: ReportData) -> str:
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
            model, incumbent = fit_model(space, history, direction)
            view = model_slice(space, names, model, incumbent)
            fig = model_figure(space, view, history, incumbent, _objective_label(d))
            how = describe_slice(space, view)
        except Exception as exc:  # noqa: BLE001 — the rest of the report is still worth having
            return _section(title, "model", _note(f"skipped: the model could not be fitted or evaluated "
                                                      f"({type(exc).__name__}: {first_line(exc)})"))
    parts = [
        _figure_html(fig, "model posterior mean and standard deviation"),
        (f"<p>GP refitted from the store on {len(history)} valid observation(s) of "
         f"{_e(d.config.objective.estimate)} ({_e(model.noise_model)} noise). {_e(how)} "
         f"Incumbent (best posterior mean among observed points, {_e(direction)}): attempt "
         f"{_e(incumbent.attempt_id)} at {_e(format_params(incumbent.params, space))}. "
         "Standard deviation is that of the latent objective (without observation noise).</p>"),
    ]
    messages = list(dict.fromkeys([*model.fit_warnings, *(f"{w.category.__name__}: {w.message}" for w in caught)]))
    if messages:
        parts.append(_note("warnings while fitting: " + "; ".join(messages)))
    return _section(title, "model", *parts)


def _objective_label(d: ReportData) -> str:
    return f"{d.config.objective.estimate}{in_units(d.objective_units())}"  # type: ignore[union-attr]


# -- 4. target progress ---------------------------------------------------------------------------


def _targets_section(d: ReportData) -> str:
    title = "Target progress vs instrument time"
    if not d.evaluations:
        return _section(title, "targets", _note("no target evaluations recorded yet"))
    names = list(dict.fromkeys(name for e in d.evaluations for name in e.results))
    if not names:
        return _section(title, "targets", _note("the recorded target evaluations name no target"))
    first_met = next((e for e in d.evaluations if e.all_met), None)
    fig = targets_figure(names, d.evaluations, first_met)
    met_text = (
        f"All targets were first met after {first_met.n_measurements} measurement(s) and "
        f"{duration(first_met.instrument_seconds)} of instrument time (dashed line)."
        if first_met is not None else "The targets have not all been met together."
    )
    return _section(title, "targets", _figure_html(fig, "target values against instrument time", tight=False),
                    f"<p>Filled markers: target met at that evaluation. {_e(met_text)}</p>")


# -- 5. the sample (within-sample campaigns) ------------------------------------------------------


def _sample_section(d: ReportData) -> str:
    """Within-sample campaigns (SAS, XRD): the data, the best answer over it, its probability."""
    if d.config is None or d.config.sample is None:
        return ""
    try:
        figures = sample_figures(d.config, d.measurements, list(d.interpretations.values()))
    except Exception as exc:  # noqa: BLE001 — a figure that cannot be drawn must not hide the report
        return _section("Sample", "sample", _note(f"the sample figure could not be drawn: {first_line(exc)}"))
    if not figures:
        return ""
    return _section("Sample: data and answer", "sample", *(_figure_html(f, alt) for f, alt in figures))


# -- 6. decision log ------------------------------------------------------------------------------

_LOG_COLUMNS = ("seq", "#", "attempt", "state", "instrument", "params", "policy", "fallback", "why (policy's reason)",
                "refusal / failure", "reconciled", "estimate ± σ", "flags")


def _decision_log_section(d: ReportData) -> str:
    title = "Decision log"
    if not d.attempts:
        return _section(title, "decisions", _note("no attempts recorded yet"))
    index_in_decision = reason_indices(d.attempts)
    rows = [_log_row(d, a, index_in_decision.get(a.id)) for a in d.attempts]
    head = "".join(f"<th>{_e(c)}</th>" for c in _LOG_COLUMNS)
    return _section(
        title, "decisions",
        "<p>One row per attempt in sequence order; “#” is the measurement order used in the design-space figure. "
        "Hover over a reason to see everything the policy recorded.</p>",
        f'<table class="log">\n<thead><tr>{head}</tr></thead>\n<tbody>\n' + "\n".join(rows) + "\n</tbody>\n</table>",
    )


def _log_row(d: ReportData, a: Attempt, index: int | None) -> str:
    """One ``<tr>`` of the decision log; ``index`` is the attempt's place in its decision's reasons."""
    decision = d.decisions.get(a.decision_id) if a.decision_id is not None else None
    reason = attempt_reason(decision, index)
    words = reason_in_words(reason)
    why = [words] if words else _reason_summary(reason)
    if decision is not None and decision.error and "error" not in reason:
        why.insert(0, f"decision error: {decision.error}")
    interp = d.interpretations.get(a.id)
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
        _td(format_params(a.params, d.space)),
        _td(decision.policy if decision is not None else ""),
        _td("" if decision is None else ("yes" if decision.fallback else "no")),
        _td("; ".join(why), title=json.dumps(reason, sort_keys=True, default=str) if reason else None),
        _td(a.reason or ""),
        _td(_reconciled(a)),
        _td(_estimate(d, a), num=True),
        _flags_cell(d, interp),
    ]
    opening = f'<tr class="{_e(css)}">' if css else "<tr>"
    return opening + "".join(cells) + "</tr>"


def _flags_cell(d: ReportData, interp: Interpretation | None) -> str:
    """The flags of a measurement campaign's analysis in words (the raw flags as the tooltip; flags
    about a rival model or phase set counted apart); an objective campaign's as they are."""
    if interp is None:
        return _td("")
    if not is_measurement_campaign(d):
        return _td(", ".join(interp.flags))
    best = interp.details.get("best_model") or interp.details.get("best_set")
    rivals = [f for f in interp.flags if about_a_rival(f, best if isinstance(best, str) else None)]
    words = [sentence(f) for f in interp.flags if f not in rivals]
    if rivals:
        words.append(f"({len(rivals)} note(s) about rival candidates)")
    return _td(" ".join(words), title=", ".join(interp.flags) or None)


def _estimate(d: ReportData, a: Attempt) -> str:
    """``value ± sigma units`` of the attempt's objective estimate, a dash when it has none."""
    value, sigma, units = d.objective_estimate(a.id)
    if value is None:
        return "—"
    units = unit_symbols(units)
    return f"{value:.4g}" + (f" ± {sigma:.2g}" if sigma is not None else "") + (f" {units}" if units else "")


def _reconciled(a: Attempt) -> str:
    """How a resume reconciled the attempt, and how often it was re-run."""
    reconciled = a.reconciled or ""
    if a.reruns:
        reconciled += f" ({a.reruns} re-run{'s' if a.reruns > 1 else ''})"
    return reconciled.strip()


def _reason_summary(reason: Mapping[str, Any]) -> list[str]:
    """The parts of a free-form reason worth a column: acquisition, phase, error, hyperparameters."""
    out = [f"{key.replace('_', ' ')}: {fmt(reason[key])}" for key in REASON_KEYS if reason.get(key) is not None]
    holders = [reason] + [reason[h] for h in HYPERPARAMETER_HOLDERS if isinstance(reason.get(h), Mapping)]
    for holder in holders:
        for key in HYPERPARAMETER_KEYS:
            if holder.get(key) is not None:
                out.append(f"{key}: {fmt(holder[key])}")
    return out
