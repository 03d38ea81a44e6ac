"""What the live page shows of a campaign, read from the store alone (never from the actors): status,
targets, budgets, proposals awaiting approval, the decision log with reasons, and — once the
campaign ended — its answer. Plain JSON-ready dicts; the page renders them in the browser.

``change_mark`` is what the page's event stream watches: it changes whenever the store's outbox
grows (every record of the loop and every approval decision writes a document in its own
transaction) or the campaign's status changes (an interruption writes no document).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from agent.answer import campaign_answer
from agent.report.data import attempt_reason, reason_indices
from agent.report.formatting import fmt
from agent.store import Attempt, Campaign, Store
from instruments.types import json_safe

#: Log rows sent to the page (newest first): a long campaign's page stays light.
LOG_ROWS = 200
#: Reason keys worth a short "why" (the full reason is the row's tooltip).
WHY_KEYS = ("summary", "why", "reason", "acquisition", "acquisition_value", "phase", "error")


def change_mark(store: Store, campaign_id: str) -> tuple[Any, ...]:
    """A value that changes when anything the page shows of the campaign changes."""
    campaign = store.campaign(campaign_id)
    return (store.outbox_head(campaign_id), campaign.status.value, campaign.runs, len(store.awaiting_approval(campaign_id)))


def campaign_list(store: Store) -> list[dict[str, Any]]:
    """Every campaign, newest first, with its status and how many proposals await approval."""
    waiting: dict[str, int] = {}
    for a in store.awaiting_approval():
        waiting[a.campaign_id] = waiting.get(a.campaign_id, 0) + 1
    return [{"campaign_id": c.id, "name": c.name, "status": c.status.value, "stop_reason": c.stop_reason,
             "created_at": c.created_at.isoformat(), "awaiting_approval": waiting.get(c.id, 0)}
            for c in reversed(store.campaigns())]


def campaign_state(store: Store, campaign_id: str) -> dict[str, Any]:
    """Everything the campaign page shows, as JSON-ready data (raises ``UnknownCampaign``)."""
    campaign = store.campaign(campaign_id)
    attempts = store.attempts(campaign_id)
    evaluations = store.target_evaluations(campaign_id)
    latest = evaluations[-1] if evaluations else None
    n_measurements, instrument_seconds = store.totals(campaign_id)
    budgets = campaign.config.get("budgets", {})
    wall = latest.wall_seconds if latest is not None and campaign.finished_at is None else campaign.wall_seconds
    return json_safe({
        "campaign_id": campaign.id, "name": campaign.name, "status": campaign.status.value,
        "stop_reason": campaign.stop_reason, "runs": campaign.runs, "mark": list(change_mark(store, campaign_id)),
        "approval_mode": campaign.config.get("approval", {}).get("mode", "auto"),
        "targets": latest.results if latest is not None else {},
        "budgets": [
            {"name": "measurements", "used": n_measurements, "limit": budgets.get("max_measurements"), "units": ""},
            {"name": "instrument time", "used": instrument_seconds, "limit": budgets.get("max_instrument_seconds"), "units": "s"},
            {"name": "wall time", "used": wall, "limit": budgets.get("max_wall_seconds"), "units": "s"},
        ],
        "counts": _counts(attempts),
        "pending": [_pending(a, campaign) for a in attempts if a.state.value == "awaiting_approval"],
        "log": _log(store, campaign_id, attempts),
        "answer": page_answer(store, campaign),
    })


def _counts(attempts: list[Attempt]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for a in attempts:
        counts[a.state.value] = counts.get(a.state.value, 0) + 1
    return counts


def _pending(a: Attempt, campaign: Campaign) -> dict[str, Any]:
    """A waiting proposal with its parameters' bounds, so the page can offer an edit within the space."""
    parameters = []
    for p in campaign.config.get("design_space", {}).get("parameters", []):
        parameters.append({"name": p["name"], "type": p["type"], "units": p.get("units", ""), "low": p.get("low"),
                           "high": p.get("high"), "choices": p.get("choices"), "value": a.params.get(p["name"])})
    return {"attempt_id": a.id, "seq": a.seq, "params": a.params, "why": a.reason, "parameters": parameters}


def _log(store: Store, campaign_id: str, attempts: list[Attempt]) -> list[dict[str, Any]]:
    """The newest ``LOG_ROWS`` attempts: what was decided, why, what a person decided, what came of it."""
    decisions = {d.id: d for d in store.decisions(campaign_id)}
    approvals = {a.attempt_id: a for a in store.approvals(campaign_id)}
    interpretations = {i.attempt_id: i for i in store.interpretations(campaign_id)}
    indices = reason_indices(attempts)
    rows = []
    for a in reversed(attempts[-LOG_ROWS:]):
        decision = decisions.get(a.decision_id) if a.decision_id is not None else None
        reason = attempt_reason(decision, indices.get(a.id))
        approval = approvals.get(a.id)
        interpretation = interpretations.get(a.id)
        rows.append({
            "attempt_id": a.id, "seq": a.seq, "state": a.state.value, "instrument": a.instrument, "params": a.params,
            "policy": decision.policy if decision is not None else None, "why": why(reason), "reason": reason,
            "refusal": a.reason,
            "approval": None if approval is None else {"verdict": approval.verdict, "user": approval.user,
                                                       "reason": approval.reason, "proposed": approval.proposed_params},
            "estimates": {} if interpretation is None else {
                k: {"value": e.value, "sigma": e.sigma, "units": e.units} for k, e in interpretation.estimates.items()},
            "flags": [] if interpretation is None else interpretation.flags,
        })
    return rows


def why(reason: Mapping[str, Any]) -> str:
    """A short line from a policy's free-form reason: its named parts, else its first scalar entries."""
    named = [f"{k.replace('_', ' ')}: {fmt(reason[k])}" for k in WHY_KEYS if reason.get(k) is not None]
    if named:
        return "; ".join(named)
    scalars = [f"{k.replace('_', ' ')}: {fmt(v)}" for k, v in reason.items() if isinstance(v, (str, int, float, bool))]
    return "; ".join(scalars[:4])


def page_answer(store: Store, campaign: Campaign) -> dict[str, Any] | None:
    """The campaign's answer for the page (``agent/answer.py``, the same as ``run``, ``status`` and
    the report print): None while it runs; once it ended, its lines in words, the stop status and
    reason, and the estimates ± σ of the answer."""
    if campaign.finished_at is None or campaign.status.value == "running":
        return None
    answer = campaign_answer(store, campaign.id)
    estimates = {}
    for sample in answer.samples:
        estimates |= {e.name: {"value": e.value, "sigma": e.sigma, "units": e.units} for e in sample.estimates}
    if answer.incumbent is not None:
        e = answer.incumbent.estimate
        estimates[e.name] = {"value": e.value, "sigma": e.sigma, "units": e.units}
    return {
        "status": campaign.status.value, "stop_reason": campaign.stop_reason, "lines": answer.lines(),
        "attempt_id": next((smp.attempt_id for smp in answer.samples if smp.attempt_id), None)
        or (answer.incumbent.attempt_id if answer.incumbent else None),
        "estimates": estimates,
    }
