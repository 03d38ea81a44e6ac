"""The approval gate: ``auto`` (every cleared proposal runs), ``manual`` (every proposal waits for a
person), ``envelope`` (proposals inside a declared safe region run, the others wait).

Waiting proposals are store state, not memory: the guard moves an attempt ``validated →
awaiting_approval`` in the decision's own commit; a person's decision — approve, approve with edited
parameters (within the design space), reject with a reason — is one transaction of the store
(the approval row with who decided, the attempt moved, its ``approvals`` document), taken by any
process: ``labpilot approve/reject``, the web page (``agent/ui``), or a script. The campaign loop
only *looks* (``ApprovalWaiter`` polls the store), so a campaign killed while waiting resumes waiting,
and a decision taken while it was down is found on resume. Waiting charges no instrument time and
holds no instrument: the other instruments go on measuring.
"""

from __future__ import annotations

import asyncio
import getpass
import os
import time
from collections.abc import Mapping, Sequence
from typing import Any

from agent.config import ApprovalConfig, EnvelopeBound
from agent.store import Approval, Attempt, AttemptState, NotAwaitingApproval, Store
from instruments.types import ParamValue
from policies.space import CategoricalParameter, DesignSpace, IntegerParameter

Errors = list[tuple[str, str]]
"""(field path, message) pairs, as ``agent/validation.py``."""


class ApprovalRefused(ValueError):
    """A decision that cannot be taken (unknown or decided attempt, bad edit, no reason): nothing changed."""


# -- the campaign file's approval block ----------------------------------------------------------------
def envelope_errors(approval: ApprovalConfig, space: DesignSpace) -> Errors:
    """Every way the envelope disagrees with the design space, each naming its field."""
    parameters = {p.name: p for p in space.parameters}
    errors: Errors = []
    for name, bound in approval.envelope.items():
        field = f"approval.envelope.{name}"
        p = parameters.get(name)
        if p is None:
            errors.append((field, f"unknown parameter {name!r}; the design space has {sorted(parameters)}"))
        elif isinstance(p, CategoricalParameter):
            errors += _choice_errors(field, p, bound)
        elif bound.choices is not None:
            errors.append((field, f"{name} is a number: give low/high, not choices"))
        else:
            errors += [(f"{field}.{side}", f"{value} {p.units}".rstrip() + f" is outside the design space [{p.low}, {p.high}]")
                       for side, value in (("low", bound.low), ("high", bound.high))
                       if value is not None and not p.low <= value <= p.high]
    return errors


def _choice_errors(field: str, p: CategoricalParameter, bound: EnvelopeBound) -> Errors:
    if bound.choices is None:
        return [(field, f"{p.name} is categorical: give choices (a subset of {p.choices}), not low/high")]
    unknown = [c for c in bound.choices if c not in p.choices]
    return [(f"{field}.choices", f"{unknown} are not choices of {p.name} ({p.choices})")] if unknown else []


def outside_envelope(envelope: Mapping[str, EnvelopeBound], params: Mapping[str, ParamValue]) -> list[str]:
    """Why ``params`` lie outside the safe region (one reason per parameter); empty when inside."""
    reasons = []
    for name, bound in envelope.items():
        value = params.get(name)
        if bound.choices is not None:
            if value not in bound.choices:
                reasons.append(f"{name}={value!r} is not one of {bound.choices}")
        elif not isinstance(value, (int, float)) or isinstance(value, bool):
            reasons.append(f"{name}={value!r} is not a number")
        elif bound.low is not None and value < bound.low:
            reasons.append(f"{name}={value:g} is below {bound.low:g}")
        elif bound.high is not None and value > bound.high:
            reasons.append(f"{name}={value:g} is above {bound.high:g}")
    return reasons


def approval_needed(approval: ApprovalConfig, params: Mapping[str, ParamValue]) -> str | None:
    """Why a cleared proposal must wait for a person, or None when it may run."""
    if approval.mode == "manual":
        return "manual approval: every proposal waits for a person"
    if approval.mode == "envelope":
        outside = outside_envelope(approval.envelope, params)
        if outside:
            return "outside the safe envelope: " + "; ".join(outside)
    return None


# -- a person's decision ---------------------------------------------------------------------------------
def current_user(user: str | None = None) -> str:
    """Who decides: the name given (the request's), else ``$USER``, else the login name."""
    if user and user.strip():
        return user.strip()
    try:
        return os.environ.get("USER") or getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def parse_edits(items: Sequence[str]) -> dict[str, str]:
    """``["key=value", ...]`` (the CLI's ``--edit``) as a mapping; ``ApprovalRefused`` naming a bad item."""
    edits: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ApprovalRefused(f"--edit {item!r}: expected KEY=VALUE, e.g. --edit exposure_seconds=120")
        edits[key.strip()] = value.strip()
    return edits


def edited_params(space: DesignSpace, params: Mapping[str, ParamValue], edits: Mapping[str, Any]) -> dict[str, ParamValue]:
    """``params`` with ``edits`` (text or values) applied as values of their parameters' types;
    ``ApprovalRefused`` if a name is unknown, a value is not of its type, or the result is outside the space."""
    parameters = {p.name: p for p in space.parameters}
    out: dict[str, ParamValue] = dict(params)
    for name, raw in edits.items():
        p = parameters.get(name)
        if p is None:
            raise ApprovalRefused(f"edit {name}: unknown parameter; the design space has {sorted(parameters)}")
        out[name] = _coerce(p, name, raw)
    problems = space.violations(out)
    if problems:
        raise ApprovalRefused("the edited proposal is outside the design space: " + "; ".join(problems))
    return out


def _coerce(p: Any, name: str, raw: Any) -> ParamValue:
    if isinstance(p, CategoricalParameter):
        return str(raw)
    try:
        number = float(raw)
    except (TypeError, ValueError):
        raise ApprovalRefused(f"edit {name}={raw!r}: not a number") from None
    if isinstance(p, IntegerParameter):
        if number != round(number):
            raise ApprovalRefused(f"edit {name}={raw!r}: not an integer")
        return int(round(number))
    return number


def approve(store: Store, attempt_id: str, *, edits: Mapping[str, Any] | None = None, user: str | None = None) -> Approval:
    """Approve an attempt awaiting approval, with ``edits`` (parameter → value) if given; recorded
    with who decided. ``ApprovalRefused`` (nothing changed) for an unknown or decided attempt or a bad edit."""
    attempt = awaiting_attempt(store, attempt_id)
    params = dict(attempt.params)
    if edits:
        params = edited_params(design_space_of(store, attempt.campaign_id), attempt.params, edits)
    verdict = "approved" if params == attempt.params else "edited"
    return _record(store, attempt, verdict, current_user(user), None, params)


def reject(store: Store, attempt_id: str, *, reason: str, user: str | None = None) -> Approval:
    """Reject an attempt awaiting approval, with the reason (required); the attempt is refused."""
    if not reason or not reason.strip():
        raise ApprovalRefused(f"rejecting {attempt_id} needs a reason (--reason TEXT)")
    attempt = awaiting_attempt(store, attempt_id)
    return _record(store, attempt, "rejected", current_user(user), reason.strip(), dict(attempt.params))


def awaiting_attempt(store: Store, attempt_id: str) -> Attempt:
    """The attempt, if it awaits approval; else ``ApprovalRefused`` saying what it is."""
    try:
        attempt = store.attempt(attempt_id)
    except KeyError:
        raise ApprovalRefused(f"no attempt {attempt_id!r} in {store.database} (labpilot pending lists the waiting ones)") from None
    if attempt.state != AttemptState.AWAITING_APPROVAL:
        decided = store.approval(attempt_id)
        by = f", {decided.verdict} by {decided.user}" if decided is not None else ""
        raise ApprovalRefused(f"attempt {attempt_id} does not await approval (it is {attempt.state.value}{by})")
    return attempt


def design_space_of(store: Store, campaign_id: str) -> DesignSpace:
    """The campaign's design space, as stored with it."""
    return DesignSpace.model_validate(store.campaign(campaign_id).config["design_space"])


def _record(store: Store, attempt: Attempt, verdict: str, user: str, reason: str | None,
            params: dict[str, ParamValue]) -> Approval:
    """The decision and its documents, one transaction; a race lost to another person is refused."""
    from agent.documents import composer_for  # event_model: only when a decision is taken

    composer, _ = composer_for(store, attempt.campaign_id)
    documents = composer.approval(attempt.id, verdict, user, reason, attempt.params, params, time.time())
    try:
        return store.record_approval(attempt.id, verdict, user=user, reason=reason, params=params, documents=documents)
    except NotAwaitingApproval as exc:
        raise ApprovalRefused(str(exc)) from None


# -- the campaign's side: waiting ---------------------------------------------------------------------------
class ApprovalWaiter:
    """The attempts a running campaign waits on, and the wait itself: the store is polled every
    ``poll_seconds`` (any process may decide; nothing but the store is shared)."""

    def __init__(self, store: Store, poll_seconds: float) -> None:
        self.store, self.poll_seconds = store, poll_seconds
        self.waiting: set[str] = set()

    async def decision(self, attempt_id: str) -> Attempt:
        """The attempt once a person decided it (``validated``, params as approved, or ``refused``)."""
        self.waiting.add(attempt_id)
        try:
            while True:
                attempt = self.store.attempt(attempt_id)
                if attempt.state != AttemptState.AWAITING_APPROVAL:
                    return attempt
                await asyncio.sleep(self.poll_seconds)
        finally:
            self.waiting.discard(attempt_id)
