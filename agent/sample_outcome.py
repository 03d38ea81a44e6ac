"""A sample's answer as the across-sample policy sees it: a ``SampleOutcome`` built from its sample
step's records (the store alone), never an argmax.

- ``label_probabilities``: the sample answer's best label (XRD: phase set; SAS: model) with its
  probability and the rival hypotheses' probabilities (``agent/answer.py:sample_answer``), capped
  to sum ≤ 1. A sample whose answer is "not identified" or has no valid analysis has **no** label
  mass: maximal uncertainty, never a confident wrong label.
- ``estimates``: the answer's estimates that carry a σ (value, 1-σ).
- ``status``: from how the step ended — targets met (``answered``), a budget spent first (``budget``),
  the characterisation instrument unreachable (``unreachable``), anything else that failed
  (``failed``); ``not_identified`` overrides the first two when the analysis could not say.
"""

from __future__ import annotations

from agent.answer import sample_answer
from agent.store import CampaignStatus, Store
from analysis.protocol import Estimate, Interpretation
from instruments.types import ParamValue
from policies.protocol import SampleOutcome

OUTCOME_ESTIMATES = {"p(best)": "probability", "sample_seconds": "s"}
"""Estimates every sample's record in the campaign's own run carries (beside the step analysis')."""


def label_probabilities(interpretations: list[Interpretation]) -> dict[str, float]:
    """The sample's soft label from its interpretations (oldest first); empty when not identified."""
    if not interpretations:
        return {}
    answer = sample_answer(interpretations)
    if answer.status != "answered" or answer.best is None or answer.probability is None:
        return {}
    labels = {answer.best: float(answer.probability), **{k: float(v) for k, v in answer.alternatives.items()}}
    total = sum(labels.values())
    return labels if total <= 1.0 else {k: v / total for k, v in labels.items()}


def step_status(status: CampaignStatus, reason: str, labels: dict[str, float]) -> str:
    """A ``SampleOutcome.status`` from how the sample step ended and whether it has labels."""
    if status == CampaignStatus.COMPLETED:
        return "answered" if labels else "not_identified"
    if status == CampaignStatus.BUDGET_EXHAUSTED:
        return "budget" if labels else "not_identified"
    return "unreachable" if "unreachable" in reason else "failed"


def sample_outcome(store: Store, step_campaign_id: str, sample_id: str, recipe: dict[str, ParamValue],
                   synthesis_seconds: float) -> SampleOutcome:
    """The outcome of a sample whose step (campaign ``step_campaign_id``) has ended."""
    step = store.campaign(step_campaign_id)
    interpretations = [i for i in store.interpretations(step_campaign_id) if i.sample_id == sample_id]
    labels = label_probabilities(interpretations)
    estimates: dict[str, tuple[float, float]] = {}
    if labels:
        answer = sample_answer(interpretations)
        estimates = {e.name: (e.value, e.sigma) for e in answer.estimates if e.sigma is not None}
    _, instrument_seconds = store.totals(step_campaign_id)
    return SampleOutcome(
        sample_id=sample_id, recipe=recipe, label_probabilities=labels, estimates=estimates,
        status=step_status(step.status, step.stop_reason or "", labels),  # type: ignore[arg-type]
        seconds=synthesis_seconds + instrument_seconds,
    )


def failed_outcome(sample_id: str, recipe: dict[str, ParamValue], synthesis_seconds: float) -> SampleOutcome:
    """A synthesis that failed: information for the policy (here nothing was made), no label."""
    return SampleOutcome(sample_id=sample_id, recipe=recipe, status="failed", seconds=synthesis_seconds)


#: How the step's analysis kind names its best label in an interpretation's details (``agent/answer.py`` reads them).
LABEL_DETAIL = {"xrd": "best_set", "sas": "best_model"}


def outcome_interpretation(attempt_id: str, outcome: SampleOutcome, step_campaign_id: str | None,
                           analysis_kind: str) -> Interpretation:
    """The outcome as the interpretation of its synthesis attempt (the campaign's own record and
    document of the sample): ``p(best)`` the most probable label's probability (None: no label);
    the labels as the step's analysis reports its hypotheses (best, then ``hyp:<i>:set``/``hyp:<i>:p``)."""
    ranked = sorted(outcome.label_probabilities.items(), key=lambda kv: -kv[1])
    best = ranked[0] if ranked else None
    details: dict[str, float | str | bool | None] = {
        "status": outcome.status, LABEL_DETAIL.get(analysis_kind, "best"): None if best is None else best[0],
        "step_campaign_id": step_campaign_id}
    for i, (label, p) in enumerate(ranked):
        details |= {f"hyp:{i}:set": label, f"hyp:{i}:p": p}
    estimates = {
        "p(best)": Estimate(value=None if best is None else best[1], units="probability"),
        "sample_seconds": Estimate(value=outcome.seconds, units="s"),
        **{k: Estimate(value=v, sigma=s) for k, (v, s) in outcome.estimates.items()},
    }
    return Interpretation(
        attempt_id=attempt_id, sample_id=outcome.sample_id, analysis="sample_step", estimates=estimates,
        flags=[] if outcome.status == "answered" else [f"sample-{outcome.status}"],
        valid=best is not None, details=details,
    )
