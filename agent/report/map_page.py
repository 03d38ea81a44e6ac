"""The report page of a campaign over samples (a self-driving lab's map campaign), the answer first:

1. the answer: the campaign-level targets (map known, boundaries located, best material) as the
   store last evaluated them, and what the map says (each label's share of the drawn slices);
2. the bookkeeping (status, budgets used, policies);
3. the phase map with its uncertainty (``map_figures``), refitted from the stored samples as the
   across-sample policy fits it (``map_data.fit_campaign_map``);
4. the targets' progress, one evaluation per sample;
5. the samples in order: recipe, synthesis, the sample's answer with its probability, why the policy
   chose the recipe, a link to its measurements;
6. each sample's within-sample measurements: its step campaign's planner decisions, data with the
   fit and residuals, probabilities (the measurement campaign's own sections, embedded).
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np

from agent.answer import probability_text
from agent.report.data import attempt_reason, reason_indices
from agent.report.figures import targets_figure
from agent.report.formatting import duration, first_line, fmt, format_params, when
from agent.report.html import escape, figure_html, note, section, summary_table, td
from agent.report.map_data import FittedMap, MapReportData, fit_campaign_map, load_map_report_data
from agent.report.map_figures import (
    CONFIDENT,
    DrawnSample,
    SliceMap,
    map_slices,
    phase_map_figure,
    ternary_grid,
    ternary_layout,
)
from agent.report.measurement import planner_section, sample_section
from agent.store import Attempt, Store
from agent.store.samples import Sample
from policies.protocol import SampleOutcome


def map_report_sections(store: Store, campaign_id: str) -> list[str]:
    """The page's sections, the answer first (raises ``UnknownCampaign`` before reading anything else)."""
    d = load_map_report_data(store, campaign_id)
    drawn, slices, map_html = _map_section(d, store)
    return [
        f"<h1>Campaign {escape(campaign_id)} (over samples)</h1>",
        _answer_section(d, drawn, slices),
        _header_section(d),
        map_html,
        _targets_section(d),
        _samples_section(d),
        *(_step_section(d, number, a) for number, a in _numbered(d)),
    ]


def _numbered(d: MapReportData) -> list[tuple[int, Attempt]]:
    """The synthesis attempts with their sample number (1-based, decision order; the figure's numbers)."""
    return list(enumerate(d.attempts, start=1))


def _outcome(sample: Sample | None) -> SampleOutcome | None:
    return SampleOutcome.model_validate(sample.outcome) if sample is not None and sample.outcome is not None else None


# -- 1. the answer ---------------------------------------------------------------------------------------


def _answer_section(d: MapReportData, drawn: FittedMap | None, slices: list[SliceMap]) -> str:
    latest = d.evaluations[-1] if d.evaluations else None
    if drawn is None:
        status, css = "no map yet", "no-answer-yet"
    elif latest is None or not latest.results:
        status, css = "map drawn, no target states its confidence", "not-identified"
    elif latest.all_met:
        status, css = "map known", ""
    else:
        status, css = "map not known yet", "not-identified"
    c = d.campaign
    parts = [f'<p class="answer-summary">{escape(_summary(d, drawn, slices))}</p>',
             f"<p>Campaign {escape(c.status)}{escape(': ' + c.stop_reason if c.stop_reason else '')}.</p>",
             _targets_table(d)]
    best = _best_material(d)
    if best:
        parts.append(best)
    parts.append(f"<p>{escape(_sample_counts(d))}</p>")
    return (f'<section id="answer" class="answer {escape(css)}">\n<h2>Answer: {escape(status)}</h2>\n'
            + "\n".join(p for p in parts if p) + "\n</section>")


def _summary(d: MapReportData, drawn: FittedMap | None, slices: list[SliceMap]) -> str:
    """What the map says: each label's share of the drawn slices, and where it is confident."""
    if drawn is None:
        return "no labelled sample yet: nothing to map"
    probabilities = np.concatenate([m.probabilities for m in slices]) if slices else np.zeros((0, 0))
    probabilities = probabilities[np.all(np.isfinite(probabilities), axis=1)] if probabilities.size else probabilities
    if not len(probabilities):
        return f"a map of {len(drawn.phase_map.labels)} labels (not drawn: no ternary composition)"
    labels = drawn.phase_map.labels
    best, top = probabilities.argmax(axis=1), probabilities.max(axis=1)
    shares = sorted(((float(np.mean(best == j)), label) for j, label in enumerate(labels)), reverse=True)
    regions = ", ".join(f"{label.replace('+', ' + ')} {share:.0%}" for share, label in shares if share > 0)
    return (f"most probable labels over the drawn slices: {regions}; p ≥ {CONFIDENT:g} on "
            f"{float(np.mean(top >= CONFIDENT)):.0%} of them")


def _targets_table(d: MapReportData) -> str:
    latest = d.evaluations[-1] if d.evaluations else None
    if latest is None or not latest.results:
        return note("no campaign-level target has been evaluated (none set, or no sample finished)")
    kinds = {t.name: t.kind for t in d.config.targets} if d.config is not None else {}
    rows = "".join(
        f"<tr>{td(name)}{td(kinds.get(name, ''))}{td(fmt(r.get('value')), num=True)}{td(fmt(r.get('goal')), num=True)}"
        f"{td('yes' if r.get('met') else 'no')}{td(str(r.get('detail') or ''))}</tr>"
        for name, r in latest.results.items())
    head = "".join(f"<th>{escape(h)}</th>" for h in ("target", "kind", "value", "goal", "met", "detail"))
    return (f"<p>Campaign-level targets after sample {latest.n_measurements} (the newest evaluation):</p>"
            f'<table class="targets"><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>')


def _best_material(d: MapReportData) -> str:
    """The best-material targets' newest values (``best_in_region``), in words."""
    if d.config is None or not d.evaluations:
        return ""
    out = []
    for t in d.config.targets:
        r = d.evaluations[-1].results.get(t.name)
        if t.kind == "best_in_region" and r is not None:
            out.append(f"best {escape(getattr(t, 'estimate', ''))} in region {escape(' | '.join(getattr(t, 'region', [])))}: "
                       f"P(known) = {escape(fmt(r.get('value')))} (goal {escape(fmt(r.get('goal')))}); "
                       f"{escape(str(r.get('detail') or ''))}")
    return "".join(f"<p>{line}</p>" for line in out)


def _sample_counts(d: MapReportData) -> str:
    statuses = [s.status for s in d.samples.values()]
    refused = sum(a.state == "refused" for a in d.attempts)
    counts = ", ".join(f"{status} {statuses.count(status)}" for status in dict.fromkeys(statuses))
    return (f"{len(d.samples)} sample(s) made or attempted ({counts or 'none'}); {refused} recipe(s) refused "
            "before synthesis.")


# -- 2. header -------------------------------------------------------------------------------------------


def _header_section(d: MapReportData) -> str:
    c, config = d.campaign, d.config
    rows = [
        ("campaign id", c.id), ("name", c.name),
        ("description", config.description if config is not None else str(c.config.get("description", ""))),
        ("status", c.status), ("stop reason", c.stop_reason or "—"),
        ("across-sample policy", config.policy.name if config is not None else "—"),
        ("synthesiser", f"{config.synthesiser.name} ({config.synthesiser.kind})" if config is not None else "—"),
        ("within-sample planner", config.sample_step.policy.name if config is not None else "—"),
        ("samples", str(len(d.samples))),
        ("synthesis time", duration(d.synthesis_seconds)),
        ("instrument time", duration(d.instrument_seconds) + " (characterisation, every sample step)"),
        ("wall time", duration(c.wall_seconds)),
        ("runs", f"{c.runs} ({c.runs - 1} resume{'s' if c.runs != 2 else ''})"),
        ("created", when(c.created_at)), ("finished", when(c.finished_at)), ("seed", str(c.seed)),
        ("package versions", ", ".join(f"{k} {v}" for k, v in sorted(c.package_versions.items())) or "—"),
    ]
    return summary_table(rows, d.config_error, "the map, which needs the design space, is omitted")


# -- 3. the phase map ------------------------------------------------------------------------------------


def _map_section(d: MapReportData, store: Store) -> tuple[FittedMap | None, list[SliceMap], str]:
    """(the fitted map, its slices, the section): the map refitted from the store, drawn with its uncertainty."""
    title = "The phase map and its uncertainty"
    if d.config is None:
        return None, [], section(title, "map", note("no design space: the stored configuration does not validate"))
    space = d.config.design_space
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # numerical warnings of a refit do not belong on stderr
        try:
            fitted = fit_campaign_map(d, store)
            if fitted is None:
                return None, [], section(title, "map", note("no labelled sample yet: nothing to map"))
            layout = ternary_layout(space)
            if layout is None:
                return fitted, [], section(title, "map", note(
                    "the map is drawn over a composition group of three components; this design space has none"))
            tri, fractions = ternary_grid()
            slices = map_slices(space, layout, fitted.phase_map, fractions)
            samples = [DrawnSample(n, a.params, _outcome(d.samples.get(a.id))) for n, a in _numbered(d)
                       if a.state != "refused"]
            fig = phase_map_figure(space, layout, fitted.phase_map.labels, slices, tri, samples)
        except Exception as exc:  # noqa: BLE001 — the samples and their measurements are still worth having
            return None, [], section(title, "map", note(f"the map could not be fitted or drawn "
                                                        f"({type(exc).__name__}: {first_line(exc)})"))
    fixed = ", ".join(f"{k} = {fmt(v)}" for k, v in layout.fixed.items())
    text = (f"<p>The map is {escape(fitted.source)}: class probabilities (the expectation of the softmax over the "
            f"GP posterior) on {len(fractions)} points per slice. Top: the most probable label; bottom: its "
            "probability — the map's uncertainty (1/L is a coin toss between L labels). Samples are numbered as in "
            "the samples table, drawn on the slice whose range holds their " + escape(layout.slice_name or "recipe")
            + (f"; held fixed: {escape(fixed)}" if fixed else "") + ".</p>")
    return fitted, slices, section(title, "map", figure_html(fig, "phase map and its probability per slice", tight=False),
                                   text)


# -- 4. targets ------------------------------------------------------------------------------------------


def _targets_section(d: MapReportData) -> str:
    title = "Campaign-level targets after each sample"
    names = list(dict.fromkeys(name for e in d.evaluations for name in e.results))
    if not names:
        return section(title, "targets", note("no target evaluations recorded"))
    first_met = next((e for e in d.evaluations if e.all_met), None)
    fig = targets_figure(names, d.evaluations, first_met)
    return section(title, "targets", figure_html(fig, "campaign-level targets against instrument time", tight=False),
                   "<p>One evaluation per finished sample, in the commit that recorded its outcome; x: the "
                   "characterisation time of every sample so far. Filled markers: met.</p>")


# -- 5. the samples in order -----------------------------------------------------------------------------

_SAMPLE_COLUMNS = ("#", "sample", "recipe", "synthesis", "synthesis s", "sample status", "answer (probability)",
                   "measurements", "instrument s", "why this recipe (policy)")


def _samples_section(d: MapReportData) -> str:
    title = "The samples in order"
    if not d.attempts:
        return section(title, "samples", note("no recipe decided yet"))
    index = reason_indices(d.attempts)
    rows = [_sample_row(d, n, a, index.get(a.id)) for n, a in _numbered(d)]
    head = "".join(f"<th>{escape(c)}</th>" for c in _SAMPLE_COLUMNS)
    return section(title, "samples",
                   "<p>Every recipe the across-sample policy decided, in order; a refused recipe made no sample. "
                   "The answer is the sample's soft label as the policy was told it (rivals in the tooltip).</p>",
                   f'<table class="samples"><thead><tr>{head}</tr></thead><tbody>' + "".join(rows) + "</tbody></table>")


def _sample_row(d: MapReportData, number: int, a: Attempt, reason_index: int | None) -> str:
    sample = d.samples.get(a.id)
    outcome = _outcome(sample)
    step = d.steps.get(sample.step_campaign_id) if sample is not None and sample.step_campaign_id else None
    decision = d.decisions.get(a.decision_id) if a.decision_id is not None else None
    reason = attempt_reason(decision, reason_index)
    link = (f'<td><a href="#sample-{escape(sample.sample_id)}">{escape(sample.sample_id)}</a></td>'
            if step is not None else td(sample.sample_id if sample is not None else "—"))
    synthesis = a.state.value + (f": {a.reason}" if a.reason else "")
    batch = sum(other.decision_id == a.decision_id for other in d.attempts if other.instrument is not None)
    if a.instrument is not None and batch > 1:
        synthesis += f" (in a batch of {batch}: s = its share of the batch's time)"
    answer, rivals = _answer_text(outcome)
    cells = [
        td(str(number), num=True), link, td(format_params(a.params, d.config.design_space if d.config else None)),
        td(synthesis), td(f"{a.instrument_seconds:,.0f}" if a.instrument_seconds else "—", num=True),
        td(outcome.status if outcome is not None else (sample.status if sample is not None else "—")),
        td(answer, title=rivals or None),
        td(str(step.n_measurements) if step is not None else "—", num=True),
        td(f"{step.instrument_seconds:,.0f}" if step is not None else "—", num=True),
        td(_reason_words(reason, decision.error if decision is not None else None),
           title=json.dumps(reason, sort_keys=True, default=str) if reason else None),
    ]
    css = a.state.value if a.state.value in ("refused", "failed", "unknown") else ""
    return (f'<tr class="{escape(css)}">' if css else "<tr>") + "".join(cells) + "</tr>"


def _answer_text(outcome: SampleOutcome | None) -> tuple[str, str]:
    """(the sample's most probable label with its probability, its rivals) from its outcome."""
    if outcome is None:
        return "not finished", ""
    if not outcome.label_probabilities:
        return "no label (" + {"failed": "nothing made", "unreachable": "instrument unreachable"}.get(
            outcome.status, "not identified: maximal uncertainty") + ")", ""
    ranked = sorted(outcome.label_probabilities.items(), key=lambda kv: -kv[1])
    best, p = ranked[0]
    rivals = ", ".join(f"{label.replace('+', ' + ')} (p = {q:.2g})" for label, q in ranked[1:5])
    return f"{best.replace('+', ' + ')} ({probability_text(p)})", rivals


def _reason_words(reason: Mapping[str, Any], error: str | None) -> str:
    """The across-sample policy's reason for a recipe, in words."""
    phase = reason.get("phase")
    if reason.get("fallback") or error:
        return f"fallback (space-filling): {error or reason.get('error') or 'the policy failed'}"
    if phase == "space-filling":
        return f"space-filling design, point {reason.get('index', '?')} (before the map is used)"
    if phase == "map-uncertainty":
        labels = reason.get("label_probabilities") or {}
        top = max(labels.items(), key=lambda kv: kv[1]) if labels else None
        return (f"largest expected fall of the map's entropy per second: {fmt(reason.get('acquisition'))} "
                f"{reason.get('acquisition_units', '')} ({fmt(reason.get('entropy_reduction'))} nats over "
                f"{fmt(reason.get('expected_seconds'))} s)"
                + (f"; the map gave it {top[0].replace('+', ' + ')} p = {float(top[1]):.2f}" if top else ""))
    return "; ".join(f"{k.replace('_', ' ')}: {fmt(v)}" for k, v in reason.items() if not isinstance(v, (dict, list)))


# -- 6. each sample's measurements -----------------------------------------------------------------------


def _step_section(d: MapReportData, number: int, a: Attempt) -> str:
    """The sample step's own story (planner decisions, data with fit, probabilities), collapsed under a summary."""
    sample = d.samples.get(a.id)
    if sample is None or sample.step_campaign_id is None:
        return ""
    anchor = f"sample-{sample.sample_id}"
    title = f"Sample #{number}: {sample.sample_id} — its measurements"
    step = d.steps.get(sample.step_campaign_id)
    if step is None:
        return section(title, anchor, note(f"{sample.step_campaign_id}: {d.step_errors.get(sample.step_campaign_id, 'not read')}"))
    c = step.campaign
    facts = (f"<p>Recipe {escape(format_params(a.params, d.config.design_space if d.config else None))}. "
             f"Sample step <code>{escape(c.id)}</code>: {escape(c.status)}"
             f"{escape(' (' + c.stop_reason + ')' if c.stop_reason else '')}, {step.n_measurements} measurement(s), "
             f"{escape(duration(step.instrument_seconds))} of instrument time.</p>"
             f'<p class="answer-summary">{escape(step.answer.summary)}</p>')
    story = planner_section(step, anchor=f"{anchor}-planner") + sample_section(step, anchor=f"{anchor}-data")
    return section(title, anchor, facts, f"<details><summary>the planner's decisions, the data with the fit and "
                                         f"residuals, the probabilities after each analysis</summary>{story}</details>")
