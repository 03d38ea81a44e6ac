"""The guard between a policy and the hardware: nothing reaches an instrument unless it is a point of
the design space and the instrument's own ``check`` accepts it. Refusals are recorded with reasons.
A proposal the approval gate (``agent/approval.py``) holds waits for a person (``awaiting_approval``),
before any instrument is asked: an approved one comes back ``validated`` and is asked then.

One verdict path for new attempts (committed with their decision) and for attempts found decided
but not dispatched on resume (each step committed as it is taken). The guard only asks questions:
it writes nothing and takes an instrument only by removing it from the caller's ``free`` list.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from agent.approval import approval_needed
from agent.budget import BUDGET_REFUSAL, fit_to_budget
from agent.config import ApprovalConfig
from agent.errors import first_line
from agent.store import AttemptState
from instruments.protocol import InstrumentNotReady
from instruments.types import MeasurementRequest, ParamValue
from policies.space import DesignSpace


def design_space_refusal(space: DesignSpace, params: Mapping[str, ParamValue]) -> str | None:
    """None if ``params`` is a feasible point of ``space``, else every reason it is not."""
    problems = space.violations(params)
    return "; ".join(problems) if problems else None


@dataclass(frozen=True)
class Verdict:
    """Where an attempt goes from its current state: the states it passes through (``path``), why it
    was refused or waits for approval (``reason``) or on which instrument it was dispatched (``instrument``)."""

    path: tuple[AttemptState, ...]
    reason: str | None = None
    instrument: str | None = None
    not_ready: tuple[str, str] | None = None
    """(instrument, its words) when the instrument said "not now" (``InstrumentNotReady``): the attempt
    stays ``validated`` and the campaign pauses (``agent/pause.py``)."""
    params: dict[str, ParamValue] | None = None
    """The parameters as cleared, when the guard changed them (clipped to the budget left); None: unchanged."""


class Guard:
    """Design space first, then a free instrument's ``check`` (a question to the instrument actor)."""

    def __init__(
        self, space: DesignSpace, instruments: Mapping[str, Any], approval: ApprovalConfig | None = None,
        models: Mapping[str, Any] | None = None, recipe: Mapping[str, ParamValue] | None = None,
    ) -> None:
        """``instruments``: actor name → actor handle (``Fleet.instruments``); ``approval``: the gate (default: auto);
        ``models``: actor name → planning model (``Fleet.instrument_models``), for a request's duration; ``recipe``:
        how the sample was made, in a sample step (the instrument checks the request it will get)."""
        self.space, self.instruments = space, instruments
        self.approval = approval or ApprovalConfig()
        self.models = dict(models or {})
        self.recipe = dict(recipe) if recipe is not None else None

    async def verdict(
        self, attempt_id: str, params: dict[str, ParamValue], sample_id: str | None, free: list[str],
        *, state: AttemptState = AttemptState.PROPOSED, approved: bool = False, left: float | None = None,
    ) -> Verdict:
        """The verdict on an attempt in ``state`` (proposed: new, or proposed/validated on resume).

        A proposed attempt is checked against the design space (a validated one passed already),
        then against the approval gate (unless a person ``approved`` it: it waits, no instrument is
        taken), then asked of ``free[0]``; if that instrument accepts, it is taken (popped from ``free``).
        ``left``: instrument seconds left in the budget (None: none) — a new request that would overshoot
        it is clipped to fit (the verdict's ``params``), or refused when nothing of it fits."""
        path: tuple[AttemptState, ...] = ()
        changed: dict[str, ParamValue] | None = None
        if state == AttemptState.PROPOSED:
            fit = fit_to_budget(self.models.get(free[0]), params, left)
            if fit.refusal is not None:
                return Verdict((AttemptState.REFUSED,), reason=fit.refusal)
            if fit.params is not params:
                changed = params = fit.params
            refusal = design_space_refusal(self.space, params)
            if refusal is not None:
                return Verdict((AttemptState.REFUSED,), reason=_budget_said(changed, f"outside the design space: {refusal}"))
            path = (AttemptState.VALIDATED,)
        held = None if approved else approval_needed(self.approval, params)
        if held is not None:
            return Verdict((*path, AttemptState.AWAITING_APPROVAL), reason=held, params=changed)
        name = free[0]
        request = MeasurementRequest(attempt_id=attempt_id, params=params, sample_id=sample_id, recipe=self.recipe)
        try:
            refusal = await self.instruments[name].check.remote(request)
        except InstrumentNotReady as exc:  # through Ray too: its task errors subclass the cause
            return Verdict(path, not_ready=(name, first_line(exc)))
        except Exception as exc:  # noqa: BLE001 — a check that breaks refuses the request, with its reason
            return Verdict((*path, AttemptState.REFUSED), reason=f"instrument check failed on {name}: {first_line(exc)}",
                           params=changed)
        if refusal is not None:
            return Verdict((*path, AttemptState.REFUSED), reason=_budget_said(changed, f"instrument limits: {refusal}"),
                           params=changed)
        free.pop(0)
        return Verdict((*path, AttemptState.DISPATCHED), instrument=name, params=changed)


def _budget_said(clipped: dict[str, ParamValue] | None, refusal: str) -> str:
    """A refusal of a request clipped to the budget left is the budget's: the time left cannot hold
    a request the space and the instrument accept (the loop stops on it, rather than asking again)."""
    return refusal if clipped is None else f"{BUDGET_REFUSAL} the time left holds only {clipped}, refused: {refusal}"
