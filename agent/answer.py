"""The campaign's answer: what a scientist wants to read first, computed from the store alone.

- **Measurement campaigns** (one sample measured again and again, or several samples): per sample, the
  newest valid interpretation's best model (SAS) with its probability and estimates ± σ with units, or
  best phase set (XRD) with its probability and weight fractions ± σ; or the estimates of any other
  analysis.
- **Campaigns over samples** (``sample_step``: samples made and characterised): the phase map first —
  each campaign-level target's newest value against its goal, with the map's most probable labels and
  their shares of the recipe space as the target read them —, then the samples' labels counted, then
  each sample's label; every sample's full answer stays in ``samples``.
- **Objective campaigns** (BO over samples): the incumbent — the observed point the model rates best,
  as the ``incumbent_near_optimum`` target recorded it, with that target's probability as its
  confidence; without such a target, the best observed value (and no confidence is claimed).

The answer is honest about what the analysis says: ``no answer yet`` while no valid interpretation
exists; ``not identified`` when the newest valid one carries a flag that makes it untrustworthy
(:data:`NOT_IDENTIFIED_FLAGS`). Flags are given in words (:mod:`agent.flag_sentences`); flags about
a rival candidate are notes, not warnings.

Nothing here runs an analysis, a model or a simulator: it reads interpretations, attempts and target
evaluations (cheap enough for ``labpilot status``, no BoTorch import).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from agent.flag_sentences import about_a_rival, is_informational, sentence
from agent.store import Store, TargetEvaluation
from analysis.protocol import Estimate, Interpretation
from instruments.types import ParamValue, Record

Status = Literal["answered", "not identified", "no answer yet", "target unreachable"]

#: Flags of an interpretation whose answer is not an identification: every flag of
#: ``agent.targets.UNTRUSTED_FLAGS`` (a test keeps them in step), and an XRD pattern with peaks no
#: candidate explains.
NOT_IDENTIFIED_FLAGS = frozenset({"poor-fit", "not-identified", "unexplained-peaks", "open-world: p halved"})

#: sasmodels' unit spellings → symbols (``Ang`` is how sasmodels writes ångström).
_UNIT_SYMBOLS = (("1e-6/Ang^2", "10⁻⁶/Å²"), ("Ang", "Å"), ("^2", "²"), ("^3", "³"))


class AnswerEstimate(Record):
    """One estimated quantity of the answer: value ± 1-σ standard error in ``units``."""

    name: str
    value: float
    sigma: float | None = None
    units: str = ""

    def text(self) -> str:
        return f"{self.name} = {value_pm(self.value, self.sigma)}" + (f" {self.units}" if self.units else "")


class SampleAnswer(Record):
    """The answer for one sample, read from its newest valid interpretation."""

    sample_id: str
    attempt_id: str | None = None  # the interpretation's attempt (None: no valid interpretation)
    n_analyses: int
    status: Status
    kind: Literal["model", "phase set", "estimates"]
    best: str | None = None  # the most probable model or phase set
    probability: float | None = None  # its posterior probability
    alternatives: dict[str, float] = {}  # rival models / phase sets → probability
    estimates: list[AnswerEstimate] = []
    flags: list[str] = []  # as the analysis wrote them
    warnings: list[str] = []  # flags that weaken the answer, in words
    notes: list[str] = []  # flags about rivals or the search, in words
    summary: str


class Incumbent(Record):
    """The best point of an objective campaign and how confident the model is in it."""

    attempt_id: str
    params: dict[str, ParamValue]
    estimate: AnswerEstimate
    basis: Literal["model", "best observed"]
    confidence: float | None = None  # p(incumbent within epsilon of the optimum), from the target
    confidence_target: str | None = None
    epsilon: float | None = None
    summary: str


class Answer(Record):
    campaign_id: str
    kind: Literal["measurement", "objective"]
    status: Status
    summary: str  # one paragraph in words
    samples: list[SampleAnswer] = []
    incumbent: Incumbent | None = None
    targets_met: bool | None = None  # at the newest target evaluation; None before any

    def lines(self) -> list[str]:
        """The answer as lines of text: the summary, then each sample's warnings and notes."""
        out = [f"answer: {self.summary}"]
        for s in self.samples:
            prefix = f"  {s.sample_id}: " if len(self.samples) > 1 else "  "
            out += [f"{prefix}{w}" for w in s.warnings] + [f"{prefix}(note) {n}" for n in s.notes]
        return out


# -- reading the store ------------------------------------------------------------------------------


def campaign_answer(store: Store, campaign_id: str) -> Answer:
    """The answer of ``campaign_id`` from what its store holds now (raises ``UnknownCampaign``)."""
    campaign = store.campaign(campaign_id)
    evaluations = store.target_evaluations(campaign_id)
    attempts = {a.id: a.params for a in store.attempts(campaign_id)}
    answer = answer_of(campaign_id, campaign.config, store.interpretations(campaign_id), attempts,
                       evaluations[-1] if evaluations else None)
    if campaign.status == "unreachable" and campaign.stop_reason:  # CampaignStatus.UNREACHABLE
        answer = unreachable_answer(answer, campaign.stop_reason)
    return answer


def answer_of(
    campaign_id: str, config: Mapping[str, Any], interpretations: Sequence[Interpretation],
    params: Mapping[str, dict[str, ParamValue]], evaluation: TargetEvaluation | None,
) -> Answer:
    """The answer from a campaign's stored configuration (as a dict), its interpretations (seq order),
    its attempts' params (attempt id → params) and its newest target evaluation."""
    met = evaluation.all_met if evaluation is not None else None
    if config.get("sample") is not None or config.get("sample_step") is not None:  # one sample, or many made
        samples = [sample_answer(group) for group in _by_sample(interpretations).values()]
        status = _overall(samples)
        if config.get("sample_step") is not None and samples:
            summary = over_samples_summary(campaign_id, samples, evaluation)
        else:
            summary = "; ".join((f"{s.sample_id}: " if len(samples) > 1 else "") + s.summary for s in samples)
        return Answer(campaign_id=campaign_id, kind="measurement", status=status,
                      summary=summary or "no answer yet: nothing has been analysed", samples=samples, targets_met=met)
    incumbent = _incumbent(config, interpretations, params, evaluation)
    samples = []
    if incumbent is not None:
        own = [i for i in interpretations if i.attempt_id == incumbent.attempt_id]
        if own and _kind(own[-1]) != "estimates":  # a SAS or XRD answer at the incumbent is worth giving
            samples = [sample_answer(own)]
    summary = incumbent.summary if incumbent is not None else (
        f"no answer yet: no valid estimate of {_objective(config)[0]!r}")
    return Answer(campaign_id=campaign_id, kind="objective", status="answered" if incumbent else "no answer yet",
                  summary=summary, samples=samples, incumbent=incumbent, targets_met=met)


def over_samples_summary(campaign_id: str, samples: Sequence[SampleAnswer], evaluation: TargetEvaluation | None) -> str:
    """The answer of a campaign over samples: its phase map as the campaign-level targets last read it
    (each target's value against its goal, with the map's most probable labels and their shares), then
    the samples by label (their estimates are in ``samples``, the report and ``--json``)."""
    parts = []
    for name, r in (evaluation.results if evaluation is not None else {}).items():
        value = r.get("value")
        shown = "—" if value is None else f"{value:.3g}"
        shares = next((p for p in str(r.get("detail", "")).split("; ") if p.startswith("most probable: ")), "")
        parts.append(f"{name} = {shown} (goal {r.get('goal'):g}, {'met' if r.get('met') else 'not met'})"
                     + (f"; {shares}" if shares else ""))
    by_label: dict[str, list[str]] = {}
    for s in samples:
        label = s.best if s.status == "answered" and s.best else s.status
        short = s.sample_id.removeprefix(f"{campaign_id}-").removesuffix("-sample")
        weak = label == s.best and s.probability is not None and s.probability < 0.95  # a weak label, said so
        by_label.setdefault(label, []).append(f"{short} at {probability_text(s.probability)}" if weak else short)  # type: ignore[arg-type]
    head = "phase map: " + "; ".join(parts) if parts else "phase map: not evaluated yet"
    tally = ", ".join(f"{len(ids)} {label} ({', '.join(ids)})"
                      for label, ids in sorted(by_label.items(), key=lambda item: -len(item[1])))
    return f"{head}. {len(samples)} samples characterised: {tally}"


def unreachable_answer(answer: Answer, reason: str) -> Answer:
    """``answer`` of a campaign that ended ``unreachable``: the targets are out of reach (``reason``,
    the planner's forecast in words), and what is known so far is given with its uncertainty."""
    return answer.model_copy(update={"status": "target unreachable", "summary": f"{reason}. So far: {answer.summary}"})


def _by_sample(interpretations: Sequence[Interpretation]) -> dict[str, list[Interpretation]]:
    groups: dict[str, list[Interpretation]] = {}
    for i in interpretations:
        groups.setdefault(i.sample_id, []).append(i)
    return groups


def _overall(samples: Sequence[SampleAnswer]) -> Status:
    if not samples or all(s.status == "no answer yet" for s in samples):
        return "no answer yet"
    return "answered" if all(s.status == "answered" for s in samples) else "not identified"


# -- one sample -------------------------------------------------------------------------------------


def sample_answer(interpretations: Sequence[Interpretation]) -> SampleAnswer:
    """The answer of one sample from its interpretations (oldest first): the newest valid one's."""
    latest = interpretations[-1]
    valid = [i for i in interpretations if i.valid]
    if not valid:
        reasons = [sentence(f) for f in latest.flags] or ["the analysis found it invalid"]
        return SampleAnswer(
            sample_id=latest.sample_id, n_analyses=len(interpretations), status="no answer yet", kind=_kind(latest),
            flags=list(latest.flags), warnings=reasons,
            summary="no answer yet: no valid analysis (" + " ".join(reasons) + ")",
        )
    interp = valid[-1]
    kind = _kind(interp)
    best, probability, alternatives, estimates = _reading(interp, kind)
    warnings = [sentence(f) for f in interp.flags if not about_a_rival(f, best) and not is_informational(f)]
    notes = [_rival_note(sentence(f)) if about_a_rival(f, best) else sentence(f)
             for f in interp.flags if about_a_rival(f, best) or is_informational(f)]
    if interp is not latest:
        notes.append(f"The newest analysis ({latest.attempt_id}) is invalid; this answer is from {interp.attempt_id}.")
    untrusted = [f for f in interp.flags if f in NOT_IDENTIFIED_FLAGS]
    status: Status = "not identified" if untrusted or (kind != "estimates" and best is None) else "answered"
    summary = _summary(kind, best, probability, estimates)
    if status == "not identified":
        summary = "not identified (" + " ".join(sentence(f) for f in untrusted) + f"); best so far: {summary}"
    return SampleAnswer(
        sample_id=interp.sample_id, attempt_id=interp.attempt_id, n_analyses=len(interpretations), status=status,
        kind=kind, best=best, probability=probability, alternatives=alternatives, estimates=estimates,
        flags=list(interp.flags), warnings=warnings, notes=notes, summary=summary,
    )


def _rival_note(text: str) -> str:
    return "about a rival, not the answer: " + text[:1].lower() + text[1:]


def _kind(interp: Interpretation) -> Literal["model", "phase set", "estimates"]:
    if isinstance(interp.details.get("best_set"), str) or any(k.startswith("w:") for k in interp.estimates):
        return "phase set"
    if isinstance(interp.details.get("best_model"), str) or any(k.startswith("p(") and k != "p(best)" for k in interp.estimates):
        return "model"
    return "estimates"


def _reading(
    interp: Interpretation, kind: str
) -> tuple[str | None, float | None, dict[str, float], list[AnswerEstimate]]:
    """(best, its probability, rivals' probabilities, estimates) of a valid interpretation."""
    p_best = _value(interp.estimates.get("p(best)"))
    if kind == "model":
        best = interp.details.get("best_model")
        best = best if isinstance(best, str) else None
        rivals = {k[2:-1]: v for k, e in interp.estimates.items()
                  if k.startswith("p(") and k != "p(best)" and k != f"p({best})" and (v := _value(e)) is not None}
        return best, p_best, rivals, _answer_estimates(interp, lambda k: not k.startswith("p("))
    if kind == "phase set":
        label = interp.details.get("best_set")
        best = label if isinstance(label, str) else None
        phases = best.split("+") if best else []
        rivals = _rival_sets(interp.details, best)
        return best, p_best, rivals, _answer_estimates(interp, lambda k: k[2:] in phases and k.startswith("w:"))
    return None, None, {}, _answer_estimates(interp, lambda k: True)


def _rival_sets(details: Mapping[str, Any], best: str | None) -> dict[str, float]:
    """Phase sets other than ``best`` among the reported hypotheses (``hyp:<i>:set``, ``hyp:<i>:p``)."""
    out, i = {}, 0
    while isinstance(label := details.get(f"hyp:{i}:set"), str):
        p = details.get(f"hyp:{i}:p")
        if label != best and isinstance(p, (int, float)):
            out[label] = float(p)
        i += 1
    return out


def _answer_estimates(interp: Interpretation, keep: Any) -> list[AnswerEstimate]:
    return [
        AnswerEstimate(name=k, value=e.value, sigma=e.sigma, units=unit_symbols(e.units))
        for k, e in interp.estimates.items()
        if keep(k) and e.value is not None and math.isfinite(e.value)
    ]


def _summary(kind: str, best: str | None, probability: float | None, estimates: Sequence[AnswerEstimate]) -> str:
    if kind == "phase set":
        head = (best or "no phase set").replace("+", " + ")
        parts = [f"{e.name[2:]} {value_pm(e.value, e.sigma)}" for e in estimates]
        tail = "; weight fractions: " + ", ".join(parts) if parts else ""
    else:
        head = best or ""
        tail = ("; " if head else "") + ", ".join(e.text() for e in estimates)
    if probability is not None:
        head += f" ({probability_text(probability)})"
    return (head + tail).strip("; ") or "no estimate"


# -- the incumbent of an objective campaign -----------------------------------------------------------


def _objective(config: Mapping[str, Any]) -> tuple[str, str]:
    objective = config.get("objective") or {}
    return str(objective.get("estimate", "")), str(objective.get("direction", "maximize"))


def _incumbent(
    config: Mapping[str, Any], interpretations: Sequence[Interpretation],
    params: Mapping[str, dict[str, ParamValue]], evaluation: TargetEvaluation | None,
) -> Incumbent | None:
    name, direction = _objective(config)
    observed = {i.attempt_id: e for i in interpretations
                if i.valid and (e := i.estimates.get(name)) is not None and e.value is not None}
    if not observed:
        return None
    target, attempt_id = _model_incumbent(config, evaluation)
    basis: Literal["model", "best observed"] = "model"
    if attempt_id not in observed:
        sign = 1.0 if direction == "maximize" else -1.0
        attempt_id = max(observed, key=lambda a: sign * observed[a].value)  # type: ignore[operator]
        basis, target = "best observed", None
    e = observed[attempt_id]
    estimate = AnswerEstimate(name=name, value=e.value, sigma=e.sigma, units=unit_symbols(e.units))  # type: ignore[arg-type]
    where = _where(params.get(attempt_id, {}), config)
    confidence = epsilon = None
    summary = f"incumbent {attempt_id} ({where}): {estimate.text()}"
    if target is not None and evaluation is not None:
        confidence = evaluation.results[target["name"]].get("value")
        epsilon = float(target["epsilon"])
        summary += (f"; p(within {epsilon:g} of the optimum) = {confidence:.3f}" if confidence is not None else "")
    else:
        best = "maximum" if direction == "maximize" else "minimum"
        summary += f" (the best observed {best}; {_why_no_model_confidence(config, evaluation)})"
    return Incumbent(attempt_id=attempt_id, params=dict(params.get(attempt_id, {})), estimate=estimate, basis=basis,
                     confidence=confidence, confidence_target=None if target is None else target["name"],
                     epsilon=epsilon, summary=summary)


def _where(params: Mapping[str, ParamValue], config: Mapping[str, Any]) -> str:
    """``name=value units, …``: numbers to 4 significant digits, units from the stored design space."""
    units = {p.get("name"): p.get("units") or "" for p in (config.get("design_space") or {}).get("parameters", [])}
    return ", ".join((f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}") + (f" {units[k]}" if units.get(k) else "")
                     for k, v in params.items())


def _why_no_model_confidence(config: Mapping[str, Any], evaluation: TargetEvaluation | None) -> str:
    """Why the answer names no model confidence: no target asks for one, or its newest evaluation's reason
    (e.g. "no structure seen yet: …" — the model has learned nothing about where the optimum is)."""
    for target in config.get("targets") or []:
        if target.get("kind") == "incumbent_near_optimum" and evaluation is not None:
            detail = str(evaluation.results.get(target.get("name"), {}).get("detail") or "")
            if detail:
                return f"the model's confidence: not yet — {detail}"
    return "no target states the model's confidence in it"


_INCUMBENT_ATTEMPT = re.compile(r"\(attempt ([^)\s]+)\)")


def _model_incumbent(config: Mapping[str, Any], evaluation: TargetEvaluation | None) -> tuple[dict[str, Any] | None, str | None]:
    """(the incumbent_near_optimum target, the attempt its newest evaluation named), or (None, None)."""
    for target in config.get("targets") or []:
        if target.get("kind") != "incumbent_near_optimum" or evaluation is None:
            continue
        result = evaluation.results.get(target.get("name"), {})
        found = _INCUMBENT_ATTEMPT.search(str(result.get("detail") or ""))
        if found:
            return target, found.group(1)
    return None, None


# -- formatting -------------------------------------------------------------------------------------


def _value(e: Estimate | None) -> float | None:
    return None if e is None or e.value is None or not math.isfinite(e.value) else float(e.value)


def unit_symbols(units: str) -> str:
    """Units as a reader writes them: sasmodels' ``Ang`` → ``Å``, ``^2`` → ``²``."""
    for spelled, symbol in _UNIT_SYMBOLS:
        units = units.replace(spelled, symbol)
    return units


def probability_text(p: float) -> str:
    """``p = 0.973``; above 0.999 ``p > 0.999`` (three decimals would claim certainty)."""
    return "p > 0.999" if p > 0.999 else f"p = {p:.3f}"


def value_pm(value: float, sigma: float | None) -> str:
    """``value ± sigma`` with σ to two significant digits and the value to the same decimal; very
    large or small values in scientific notation (``(2.012 ± 0.011)e-04``)."""
    if sigma is None or sigma <= 0 or not math.isfinite(sigma):
        return f"{value:.4g}"
    exponent = 0
    if value != 0 and (abs(value) >= 1e5 or abs(value) < 1e-2):
        exponent = math.floor(math.log10(abs(value)))
    v, s = value / 10**exponent, sigma / 10**exponent
    decimals = max(0, 1 - math.floor(math.log10(s))) if s > 0 else 3
    text = f"{v:.{decimals}f} ± {s:.{decimals}f}"
    return f"({text})e{exponent:+03d}" if exponent else text
