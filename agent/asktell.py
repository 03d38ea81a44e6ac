"""Ask/tell: the loop's own steps, driven by a lab whose instruments are run by its own code.

``ask(n)`` decides, guards and records proposals exactly as the loop does (``CampaignRunner``'s
``_decide_and_record``: same policy, guard, recorder, lifecycle — attempts end ``dispatched``); the
caller measures them; ``tell(attempt_id, measurement)`` records the measurement and runs the
campaign's analysis in this process (``LocalHandle`` services, as ``Fleet(in_process=True)``), then
the targets, as the loop's ``_analyse`` does. The campaign's instruments are built in this process
for what the guard and the planners ask of them (``check``, ``planning_model``, ``describe``); they
are never asked to measure.

Every call is one short ownership of the campaign: it takes the store's lease (a loop running the
campaign elsewhere refuses it), rebuilds the ledger from the store, acts, and lets the lease go. So
a process that dies between ``ask`` and ``tell`` loses nothing: the open proposals are store state,
and the next ``ask`` — from any process — gives them back first.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

from agent.campaign import CampaignRunner
from agent.config import CampaignConfig
from agent.ledger import CampaignLedger
from agent.store import Attempt, AttemptState, CampaignStatus, Store
from analysis.protocol import Interpretation
from instruments.types import Measurement, Timing

#: Attempts handed to the caller and not yet told: ``unknown`` ones come from a loop that was killed.
OPEN_PROPOSAL_STATES = (AttemptState.DISPATCHED, AttemptState.UNKNOWN)
#: A campaign in one of these statuses has ended for good: ask/tell writes nothing more to it.
ENDED = (CampaignStatus.COMPLETED, CampaignStatus.BUDGET_EXHAUSTED, CampaignStatus.UNREACHABLE)


class TellError(ValueError):
    """A ``tell`` that cannot be recorded (unknown or already told attempt, data not matching it);
    nothing was written."""


class AskTellRunner(CampaignRunner):
    """One campaign driven through ``ask`` and ``tell`` (see the module docstring)."""

    def __init__(self, config: CampaignConfig, store: Store, campaign_id: str, *, new: bool) -> None:
        """``new``: the campaign is created in the store at the first call (else it must exist)."""
        super().__init__(config, store, campaign_id, in_process=True)
        self._new, self._prepared, self._finished = new, False, False

    # -- ownership ---------------------------------------------------------------------------------
    @contextlib.contextmanager
    def _owned(self) -> Iterator[None]:
        """The campaign's lease for one call (created, or marked resumed, on this object's first call)."""
        if not self._prepared:
            self._open_campaign(resume=not self._new)
            self._new = False
        else:
            self.store.acquire_lease(self.campaign_id, self.owner)
        try:
            yield
        finally:
            self.store.release_lease(self.campaign_id, self.owner)

    async def _refresh(self) -> None:
        """The ledger rebuilt from the store (another process may have asked or told since), and
        measured-but-unanalysed attempts (a tell cut short) analysed."""
        if not self._prepared:
            await self._prepare()
            self._prepared = True
        self.ledger = CampaignLedger(self.store, self.campaign_id, objective=self.config.objective.estimate,
                                     sample=self.config.sample)
        for a in self.ledger.load():
            if a.state == AttemptState.MEASURED:
                await self._analyse(a.id, a.params, a.sample_id)
        self._evaluate_targets()

    @property
    def prepared(self) -> bool:
        """Whether a call has run (the in-memory view is the store's as of the last call)."""
        return self._prepared

    def ended(self) -> bool:
        """True if the store says this campaign has ended (completed or out of budget)."""
        return self._finished or self.store.campaign(self.campaign_id).status in ENDED

    # -- ask ---------------------------------------------------------------------------------------
    async def ask(self, n: int) -> list[Attempt]:
        """``n`` proposals to measure: the open ones first, then new decisions (none once a stop rule holds)."""
        if n < 1:
            raise ValueError(f"n: ask for at least one proposal, got {n}")
        if not self._new and self.ended():
            return []
        with self._owned():
            await self._refresh()
            proposals = self._open_proposals()[:n]
            # (an instrument that said "not now" to the guard's check holds further proposals back)
            while len(proposals) < n and self._check_stop() is None and not self.pause.active:
                room = self._room()
                if room <= 0:
                    break
                names = list(self.fleet.instruments) if self.fleet is not None else []
                # Any number of proposals per instrument: the caller's code decides how to measure them.
                free = [names[i % len(names)] for i in range(min(n - len(proposals), room))]
                await self._decide_and_record(len(free), free)
                proposals = self._open_proposals()[:n]
            await self._finish_if_stopped()
        return proposals

    def _open_proposals(self) -> list[Attempt]:
        return self.store.attempts(self.campaign_id, states=OPEN_PROPOSAL_STATES)

    def _room(self) -> int:
        """How many more proposals the measurement budget allows (what is open counts as spent)."""
        limit = self.config.budgets.max_measurements
        if limit is None:
            return 1 << 30
        return limit - self.ledger.n_measurements - len(self._open_proposals())

    # -- tell --------------------------------------------------------------------------------------
    async def tell(self, attempt_id: str, measurement: Measurement) -> Interpretation:
        """Record the measurement of an open proposal, analyse the sample, evaluate the targets."""
        with self._owned():
            await self._refresh()
            attempt = self._open_attempt(attempt_id)
            self._check_measurement(attempt, measurement)
            self.recorder.measurement(measurement)
            self.ledger.measured(measurement)
            await self._analyse(attempt.id, attempt.params, attempt.sample_id)
            await self._finish_if_stopped()
        return self.ledger.interpretations[-1]

    async def fail(self, attempt_id: str, reason: str) -> None:
        """The caller's instrument could not measure an open proposal: it ends ``failed``, with ``reason``."""
        with self._owned():
            await self._refresh()
            self._fail(self._open_attempt(attempt_id).id, f"instrument error: {reason}")
            await self._finish_if_stopped()

    def _open_attempt(self, attempt_id: str) -> Attempt:
        try:
            attempt = self.store.attempt(attempt_id)
        except KeyError:
            raise TellError(f"attempt_id: no attempt {attempt_id!r} in campaign {self.campaign_id}") from None
        if attempt.campaign_id != self.campaign_id:
            raise TellError(f"attempt_id: {attempt_id!r} belongs to campaign {attempt.campaign_id}, not {self.campaign_id}")
        if attempt.state not in OPEN_PROPOSAL_STATES:
            raise TellError(f"attempt_id: {attempt_id!r} is {attempt.state.value}, not an open proposal "
                            "(only a dispatched attempt is told, once)")
        return attempt

    def _check_measurement(self, attempt: Attempt, m: Measurement) -> None:
        """The measurement is of this attempt, as proposed, with the data keys its instrument declares."""
        expected = {"attempt_id": attempt.id, "instrument": attempt.instrument, "params": attempt.params,
                    "sample_id": attempt.sample_id}
        for field, value in expected.items():
            if getattr(m, field) != value:
                raise TellError(f"measurement.{field}: {getattr(m, field)!r} does not match the proposal's {value!r}")
        declared = set(self.fleet.data_keys.get(attempt.instrument or "", {})) if self.fleet is not None else set()
        if declared and set(m.data) != declared:
            raise TellError(f"measurement.data: keys {sorted(m.data)}; instrument {attempt.instrument} declares "
                            f"{sorted(declared)}")
        extra = set(m.sigma) - set(m.data)
        if extra:
            raise TellError(f"measurement.sigma: keys {sorted(extra)} have no data")

    # -- the end -----------------------------------------------------------------------------------
    async def _finish_if_stopped(self) -> None:
        """A stop rule holds and nothing is left open: the campaign ends, as the loop ends it."""
        stop = self._check_stop()
        if stop is None or self._open_proposals():
            return
        status, reason = stop
        if self.fleet is not None:
            await self.fleet.stop(status == CampaignStatus.COMPLETED)
        self.recorder.finish(status, reason, time.monotonic() - self._started)
        self._finished = True

    def stop_rule(self) -> tuple[CampaignStatus, str] | None:
        """The stop rule that holds now (targets met, a budget spent, refusals), from the last call's view."""
        return self._check_stop()


def measurement_for(attempt: Attempt, data: Mapping[str, Any], *, seconds: float,
                    sigma: Mapping[str, Any] | None = None) -> Measurement:
    """A ``Measurement`` of ``attempt`` from plain arrays: ``data`` and ``sigma`` (1-σ, same units) by
    data key, ``seconds`` of instrument time charged to it (the budgets count them)."""
    return Measurement(
        attempt_id=attempt.id, instrument=attempt.instrument or "", params=attempt.params, sample_id=attempt.sample_id,
        data={k: np.asarray(v, dtype=np.float64) for k, v in data.items()},
        sigma={k: np.asarray(v, dtype=np.float64) for k, v in (sigma or {}).items()},
        timing=Timing(exposure_seconds=seconds),
    )
