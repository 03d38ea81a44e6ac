"""The report's sections that tell a measurement campaign's story (and the answer box every report
opens with): the answer; the planner's decisions over instrument time with its reasons in words; the
data with the fit and normalised residuals; the candidates' probabilities after each analysis.

A measurement campaign measures one sample again and again (``sample`` in the campaign file): its
planner chooses a configuration or window and an exposure or dwell, not a point of a response
surface, so the design-space and model figures of an objective (BO) campaign do not apply.
"""

from __future__ import annotations

import json

from agent.answer import Answer, SampleAnswer, probability_text, value_pm
from agent.report.data import ReportData
from agent.report.formatting import first_line, format_params
from agent.report.html import bullets, escape, figure_html, note, section, td
from agent.report.planner import decisions_figure, planner_steps, reason_in_words
from agent.report.sample import sample_figures


def is_measurement_campaign(d: ReportData) -> bool:
    return d.config is not None and d.config.sample is not None


# -- the answer box -----------------------------------------------------------------------------------


def answer_section(answer: Answer) -> str:
    """The answer first: its summary, each sample's estimates ± σ, rivals, warnings and notes in words."""
    met = {True: "All targets are met.", False: "The targets are not all met yet.", None: "No target has been evaluated yet."}
    parts = [f'<p class="answer-summary">{escape(answer.summary)}</p>', f"<p>{escape(met[answer.targets_met])}</p>"]
    if answer.incumbent is not None and answer.incumbent.confidence is None:
        parts.append(note("the incumbent is the best observed value: no target states the model's confidence in it"))
    for s in answer.samples:
        parts.append(_sample_box(s, len(answer.samples) > 1))
    return (f'<section id="answer" class="answer {escape(answer.status.replace(" ", "-"))}">\n'
            f"<h2>Answer: {escape(answer.status)}</h2>\n" + "\n".join(parts) + "\n</section>")


def _sample_box(s: SampleAnswer, named: bool) -> str:
    parts = [f"<h3>{escape(s.sample_id)}</h3>"] if named else []
    if s.best is not None:
        what = "most probable model" if s.kind == "model" else "most probable phase set"
        p = f", {probability_text(s.probability)}" if s.probability is not None else ""
        parts.append(f"<p>{escape(what)}: <strong>{escape(s.best.replace('+', ' + '))}</strong>{escape(p)} "
                     f"(from {s.n_analyses} analysis(es), the newest valid of {escape(s.attempt_id or '—')})</p>")
    if s.estimates:
        rows = "".join(f"<tr>{td(e.name)}{td(value_pm(e.value, e.sigma), num=True)}{td(e.units)}</tr>" for e in s.estimates)
        parts.append('<table class="estimates"><thead><tr><th>estimate</th><th>value ± 1σ</th><th>units</th></tr></thead>'
                     f"<tbody>{rows}</tbody></table>")
    rivals = sorted(s.alternatives.items(), key=lambda kv: -kv[1])[:5]
    if rivals:
        parts.append("<p>rivals: " + escape(", ".join(f"{r.replace('+', ' + ')} (p = {p:.2g})" for r, p in rivals)) + "</p>")
    parts.append(bullets(s.warnings, "warnings"))
    if s.notes:
        parts.append(f"<details><summary>{len(s.notes)} note(s)</summary>{bullets(s.notes)}</details>")
    return "\n".join(p for p in parts if p)


# -- the planner's decisions ------------------------------------------------------------------------------


def planner_section(d: ReportData, anchor: str = "planner") -> str:
    """The planner's configuration: its choices over instrument time (figure) and a table with its reasons
    (``anchor``: the section's id, unique on a page that shows several campaigns' planners)."""
    title = "The planner's decisions"
    steps = planner_steps(d)
    if d.config is None or not steps:
        return section(title, anchor, note("no measurement yet"))
    policy = d.config.policy
    options = json.dumps(policy.options, sort_keys=True) if policy.options else "defaults"
    parts = [f"<p>Planner <strong>{escape(policy.name)}</strong> (options: {escape(options)}). It chose what to "
             "measure next from the newest analysis; each row says why, in its own terms.</p>"]
    try:
        parts.append(figure_html(decisions_figure(d.config.design_space, steps), "the planner's choices over instrument time",
                                 tight=False))
    except Exception as exc:  # noqa: BLE001 — the table below still tells the story
        parts.append(note(f"the decisions figure could not be drawn: {first_line(exc)}"))
    head = "".join(f"<th>{escape(c)}</th>" for c in ("#", "setting", "instrument s", "cumulative s", "why"))
    rows = [
        f"<tr>{td(str(s.order), num=True)}{td(format_params(s.attempt.params, d.space))}"
        f"{td(f'{s.seconds:,.0f}', num=True)}{td(f'{s.start_seconds + s.seconds:,.0f}', num=True)}"
        f"{td(reason_in_words(s.reason) or '—', title=json.dumps(s.reason, sort_keys=True, default=str))}</tr>"
        for s in steps
    ]
    parts.append(f'<table class="planner"><thead><tr>{head}</tr></thead><tbody>' + "".join(rows) + "</tbody></table>")
    return section(title, anchor, *parts)


# -- the data, the fit, the probabilities ------------------------------------------------------------------


def sample_section(d: ReportData, anchor: str = "sample") -> str:
    """The sample's data with the most probable answer's fit and residuals, and the probabilities
    (``anchor``: the section's id)."""
    if d.config is None or d.config.sample is None:
        return ""
    try:
        figures = sample_figures(d.config, d.measurements, list(d.interpretations.values()), d.measurement_order)
    except Exception as exc:  # noqa: BLE001 — a figure that cannot be drawn must not hide the report
        return section("Sample", anchor, note(f"the sample figure could not be drawn: {first_line(exc)}"))
    if not figures:
        return section("Sample: data and answer", anchor, note("no valid analysis yet: nothing to draw"))
    text = ("<p>Residuals are normalised by each point's 1-σ uncertainty: points scatter within ±2 where the "
            "answer describes the data. Probabilities are those of each analysis, which fits every measurement "
            "of the sample so far.</p>")
    return section("Sample: data and answer", anchor, *(figure_html(f, alt, tight=False) for f, alt in figures), text)
