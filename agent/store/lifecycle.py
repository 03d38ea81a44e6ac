"""What may happen to an attempt, and how a campaign can end: the one place that says so.

Attempt lifecycle (every state is committed before the action it describes)::

    proposed → validated → dispatched → measured → analysed
        └──────────┴→ refused        ├→ failed     (instrument raised; terminal)
                                     └→ unknown    (outcome not known after a crash/disconnect)
    unknown → measured (adopted from the instrument's records) | dispatched (re-run once) | failed
    analysed → analysed (re-analysed on resume: only an interpretation whose analysis failed)
    validated → awaiting_approval → validated (approved, possibly edited) | refused (rejected)

States and statuses are ``StrEnum``s: they are stored and published as their plain values, and
compare equal to them, so records written before the enums existed read back unchanged. Every
writer of ``agent/store/store.py`` moves an attempt through :func:`check_transition`; the loop
(``agent/campaign.py``) decides *when* an attempt moves, this module *what* may happen.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum


class AttemptState(StrEnum):
    PROPOSED = "proposed"
    VALIDATED = "validated"
    DISPATCHED = "dispatched"
    MEASURED = "measured"
    ANALYSED = "analysed"
    REFUSED = "refused"
    FAILED = "failed"
    UNKNOWN = "unknown"
    AWAITING_APPROVAL = "awaiting_approval"


class CampaignStatus(StrEnum):
    RUNNING = "running"
    PAUSED = "paused"  # live, waiting for an instrument that said "not now" (agent/pause.py)
    COMPLETED = "completed"
    BUDGET_EXHAUSTED = "budget_exhausted"
    FAILED = "failed"
    INTERRUPTED = "interrupted"
    #: The planner forecast, with high probability, that the targets cannot be reached in the budget left
    #: (``stop_when_unreachable``); the answer so far is reported with its uncertainty.
    UNREACHABLE = "unreachable"


#: Allowed transitions: state → states it may move to.
TRANSITIONS: dict[AttemptState, frozenset[AttemptState]] = {
    AttemptState.PROPOSED: frozenset({AttemptState.VALIDATED, AttemptState.REFUSED}),
    AttemptState.VALIDATED: frozenset({AttemptState.DISPATCHED, AttemptState.REFUSED, AttemptState.AWAITING_APPROVAL}),
    # A person's decision (agent/approval.py): approved (params possibly edited) or rejected.
    AttemptState.AWAITING_APPROVAL: frozenset({AttemptState.VALIDATED, AttemptState.REFUSED}),
    AttemptState.DISPATCHED: frozenset({AttemptState.MEASURED, AttemptState.FAILED, AttemptState.UNKNOWN}),
    AttemptState.UNKNOWN: frozenset({AttemptState.MEASURED, AttemptState.DISPATCHED, AttemptState.FAILED}),
    AttemptState.MEASURED: frozenset({AttemptState.ANALYSED}),
    AttemptState.ANALYSED: frozenset(),
    AttemptState.REFUSED: frozenset(),
    AttemptState.FAILED: frozenset(),
}

#: Decided and not yet ended: the policy's pending points, and what ``resume`` must reconcile.
OPEN_STATES: frozenset[AttemptState] = frozenset(
    {AttemptState.PROPOSED, AttemptState.VALIDATED, AttemptState.AWAITING_APPROVAL, AttemptState.DISPATCHED,
     AttemptState.UNKNOWN, AttemptState.MEASURED}
)
#: Decided but not yet checked against the design space and an instrument (work found on resume).
UNDISPATCHED_STATES: frozenset[AttemptState] = frozenset({AttemptState.PROPOSED, AttemptState.VALIDATED})


class InvalidTransition(RuntimeError):
    """An attempt was asked to move along an edge the lifecycle does not have."""


def check_transition(attempt_id: str, before: str, after: str, *, rerun: bool = False) -> None:
    """Raise ``InvalidTransition`` unless ``before → after`` is an edge of the lifecycle.

    ``rerun``: the one self-loop the lifecycle knows, ``dispatched → dispatched`` when an attempt of
    unknown outcome is measured again (its ``reruns`` counter says so)."""
    if rerun and before == after:
        return
    if AttemptState(after) not in TRANSITIONS[AttemptState(before)]:
        raise InvalidTransition(f"attempt {attempt_id}: {before} → {after} is not allowed")


ANALYSIS_ERROR = "analysis-error"
"""Flag prefix of an interpretation recorded because the analysis itself failed (not the data)."""


def check_reanalysis(attempt_id: str, state: str, flags: Iterable[str]) -> None:
    """Raise ``InvalidTransition`` unless the attempt is analysed and its analysis failed: the one
    interpretation that may be replaced (on resume, when the analysis may work again)."""
    if state != AttemptState.ANALYSED or not any(f.startswith(ANALYSIS_ERROR) for f in flags):
        raise InvalidTransition(f"attempt {attempt_id}: only an analysed attempt whose analysis failed is re-analysed "
                                f"(it is {state}, flags {list(flags)})")


def check_path(attempt_id: str, start: str, path: Iterable[str]) -> list[AttemptState]:
    """The states ``start`` then ``path`` (each step checked), e.g. ``proposed, validated, dispatched``."""
    states = [AttemptState(start)]
    for after in path:
        check_transition(attempt_id, states[-1], after)
        states.append(AttemptState(after))
    return states
