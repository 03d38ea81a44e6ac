"""The closed loop: plan → guard → dispatch → measure → analyse → check targets, until done.

Every step is committed to the store *before* the action it describes (write-ahead), so the
process may be killed at any instant and ``resume`` continues without losing or repeating a
measurement:

- a decision is recorded with its attempts, the guard's verdicts and the dispatch, in one commit,
  before any instrument is asked to measure;
- a measurement is recorded (``measured``) before it is analysed; its analysis (``analysed``) is
  committed with the next decision, or at the end of the loop's turn if none follows — a crash
  before that commit leaves it ``measured``, and resume analyses it again;
- on resume, ``dispatched`` attempts without a result become ``unknown`` and are reconciled —
  adopted if the instrument reports the result, otherwise re-run once (and marked).

This module owns the loop, its stop rules, budgets and resume reconciliation. Its rooms:
``ledger.py`` (what the loop knows, rebuilt from the store), ``recorder.py`` (every write, with its
documents), ``guard.py`` (the verdict on a proposal), ``fleet.py`` (the actors) and ``targets.py``.
The policy's model is rebuilt from the store, never carried over in memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ray

from agent.answer import Answer, campaign_answer, unreachable_answer
from agent.approval import ApprovalWaiter
from agent.budget import BUDGET_REFUSAL, request_seconds
from agent.config import CampaignConfig
from agent.errors import first_line
from agent.failpoints import failpoint
from agent.faults import FAILURES_IN_A_ROW, MeasurementTimeout, failure_stop
from agent.fleet import Fleet, InstrumentNotBack, MissingClusterResources
from agent.futility import FutilityWatch
from agent.guard import Guard, Verdict
from agent.ids import new_campaign_id
from agent.ledger import CampaignLedger
from agent.pause import CampaignStopping, PauseGate
from agent.recorder import Recorder
from agent.runtime import sigterm_received, until_sigterm
from agent.store import Attempt, AttemptState, CampaignStatus, ProposedAttempt, Store, StoreUnavailable, TargetEvaluation
from agent.store.lease import HEARTBEAT_SECONDS, new_owner
from agent.targets import CampaignState, TargetBoard, TargetResult, planning_goals
from agent.versions import package_versions
from analysis.protocol import Estimate, Interpretation
from instruments.protocol import InstrumentUnreachable
from instruments.types import Measurement, MeasurementRequest, ParamValue
from policies.baselines import fallback_proposals
from policies.lazy_models import LazyModelCache
from policies.protocol import Proposal
from policies.registry import build_policy

logger = logging.getLogger("labpilot.campaign")

RECONNECT_SECONDS = 60.0
"""How long a campaign waits for an unreachable (remote) instrument before it stops to be resumed."""
#: After this many decisions in a row whose proposals were all refused, use space-filling points.
REFUSALS_BEFORE_FALLBACK = 3
#: After this many, stop: the policy and the guard disagree about the space, a human must look.
REFUSALS_BEFORE_STOP = 10
#: An instrument whose measurements failed this many times in a row stops the campaign (default of
#: ``faults.failures_in_a_row``; ``agent/faults.py`` holds the other fault settings).
FAILURES_BEFORE_STOP = FAILURES_IN_A_ROW


@dataclass(frozen=True)
class Progress:
    """A snapshot for live displays."""

    campaign_id: str
    n_measurements: int
    instrument_seconds: float
    wall_seconds: float
    in_flight: int
    refused: int
    failed: int
    targets: dict[str, TargetResult]


@dataclass
class CampaignResult:
    campaign_id: str
    status: str
    stop_reason: str
    targets: dict[str, TargetResult]
    n_measurements: int
    instrument_seconds: float
    wall_seconds: float
    counts: dict[str, int] = field(default_factory=dict)
    answer: Answer | None = None  # None only when the store could not be read at the end

    def as_json(self) -> dict[str, Any]:
        return {
            "campaign_id": self.campaign_id,
            "answer": None if self.answer is None else self.answer.model_dump(mode="json"),
            "status": self.status,
            "stop_reason": self.stop_reason,
            "targets": {k: v.as_dict() for k, v in self.targets.items()},
            "n_measurements": self.n_measurements,
            "instrument_seconds": self.instrument_seconds,
            "wall_seconds": self.wall_seconds,
            "attempts": self.counts,
        }


def measurements_through(measurements: list[Measurement], attempt_id: str) -> list[Measurement]:
    """``measurements`` (oldest first) up to and including ``attempt_id``'s; all of them if it is not there."""
    for i, m in enumerate(measurements):
        if m.attempt_id == attempt_id:
            return measurements[: i + 1]
    return measurements


class _Stop(Exception):
    """Raised inside the loop to end it with a status and a reason."""

    def __init__(self, status: CampaignStatus, reason: str) -> None:
        super().__init__(reason)
        self.status, self.reason = status, reason


def how_it_ended(exc: BaseException) -> tuple[CampaignStatus, str]:
    """The status and reason a campaign (of measurements or of samples) records when ``exc`` ends its run."""
    if isinstance(exc, _Stop):
        return exc.status, exc.reason
    if isinstance(exc, StoreUnavailable):
        return CampaignStatus.FAILED, f"store unavailable: {exc}"
    # SIGTERM (agent/runtime.py turns it into sys.exit): resumable, not a failure. Its SystemExit may
    # arrive here as the main task's cancellation, so the signal itself is asked for.
    if isinstance(exc, SystemExit) or (isinstance(exc, asyncio.CancelledError) and sigterm_received()):
        return CampaignStatus.INTERRUPTED, "terminated (SIGTERM)"
    if isinstance(exc, (KeyboardInterrupt, asyncio.CancelledError)):
        return CampaignStatus.INTERRUPTED, "interrupted by the user"
    # Whatever went wrong is the campaign's recorded reason (not "interrupted before the loop").
    return CampaignStatus.FAILED, f"unexpected error: {type(exc).__name__}: {first_line(exc)}"


@dataclass(frozen=True)
class _Decision:
    """What the policy (or the fallback) proposed, and how the decision went."""

    proposals: list[Proposal]
    fallback: bool
    error: str | None
    seconds: float


class CampaignRunner:
    """Runs (or resumes) one campaign. Ray must be initialised by the caller (unless ``in_process``)."""

    def __init__(
        self,
        config: CampaignConfig,
        store: Store,
        campaign_id: str,
        *,
        on_progress: Callable[[Progress], None] | None = None,
        in_process: bool = False,
        recipe: dict[str, ParamValue] | None = None,
    ) -> None:
        """``in_process``: run the instrument drivers and the analysis in this process (same services,
        no actor processes) — for benchmarks that run many campaigns as Ray tasks. ``recipe``: how the
        campaign's sample was made (a sample step of a campaign over samples, ``agent/sample_campaign.py``);
        every measurement request carries it."""
        self.config, self.store, self.campaign_id = config, store, campaign_id
        self.recipe = recipe
        self.noise_root = campaign_id  # a sample step's: its campaign's (sample ids hold that random id)
        self.on_progress, self.in_process = on_progress, in_process
        self.space = config.design_space
        self.models: Any = LazyModelCache()  # a ModelCache, made (torch imported) when a GP is first fitted
        self.goals = planning_goals(config.targets)
        self.policy = build_policy(
            config.policy.name, self.space, direction=config.objective.direction, seed=config.seed,
            options=config.policy.options, cache=self.models, analysis=config.analysis.model_dump(mode="json"),
            goals=self.goals,
        )
        self.targets = TargetBoard(config.targets)
        self.ledger = CampaignLedger(store, campaign_id, objective=config.objective.estimate, sample=config.sample)
        self.recorder = Recorder(store, campaign_id)
        self.approvals = ApprovalWaiter(store, config.approval.poll_seconds)
        self.pause = PauseGate(self.recorder, config.faults.pause_poll_seconds)
        self._pause_turn: asyncio.Task[None] | None = None
        self.fleet: Fleet | None = None
        self.guard: Guard | None = None
        self._tasks: dict[asyncio.Task[None], str] = {}
        self._backlog: list[Attempt] = []  # proposed/validated attempts found on resume
        self._refused_in_a_row = 0
        self._failures_in_a_row: dict[str, int] = {}  # instrument → measurements failed in a row
        self.owner = new_owner()
        self._lease_lost = False
        self._previous_wall = 0.0
        self._started = time.monotonic()
        self._answer: Answer | None = None
        self._target_unreachable: str | None = None  # why the planner's forecast ended the sample (stop_when_unreachable)
        self._futility = FutilityWatch()
        self._budget_full: str | None = None  # why the budget left cannot hold another request

    # -- public ---------------------------------------------------------------------------------
    async def run(self, *, resume: bool = False) -> CampaignResult:
        """Run (or resume) the campaign to its end; SIGTERM meanwhile ends it recorded as interrupted."""
        return await until_sigterm(self._run(resume))

    async def _run(self, resume: bool) -> CampaignResult:
        self._open_campaign(resume)
        status, reason = CampaignStatus.FAILED, "interrupted before the loop started"
        heartbeat = asyncio.get_running_loop().create_task(self._heartbeat())
        try:
            await self._start(resume)
            status, reason = await self._loop()
        except BaseException as exc:  # noqa: BLE001 - every ending is recorded; all but a stop are raised again
            status, reason = how_it_ended(exc)
            if not isinstance(exc, (_Stop, StoreUnavailable)):
                raise
        finally:
            heartbeat.cancel()
            await self._shutdown(status, reason)
        return self._result(status, reason)

    # -- set-up ---------------------------------------------------------------------------------
    def _open_campaign(self, resume: bool) -> None:
        """Create (or mark resumed) the campaign, owning its lease first: a campaign another live
        process runs is refused (``CampaignOwned``) before anything is written."""
        if resume:
            self.store.acquire_lease(self.campaign_id, self.owner)
            self._previous_wall = self.store.campaign(self.campaign_id).wall_seconds
            self.store.mark_resumed(self.campaign_id)
        else:
            self.store.create_campaign(
                self.campaign_id, self.config.name, self.config.stored_form(), self.config.seed,
                str(Path(self.config.data_dir).resolve()), package_versions(),
            )
            self.store.acquire_lease(self.campaign_id, self.owner)

    async def _heartbeat(self) -> None:
        """Keep the lease alive; if another process took it over (ours went stale), stop."""
        while True:
            await asyncio.sleep(HEARTBEAT_SECONDS)
            try:
                if not self.store.renew_lease(self.campaign_id, self.owner):
                    self._lease_lost = True
                    return
            except StoreUnavailable:
                pass  # the loop meets the store's outage at its next write and stops there

    async def _start(self, resume: bool) -> None:
        """Actors up and described, the run's documents open, the ledger rebuilt, resume reconciled."""
        open_attempts = await self._prepare()
        if resume:
            await self._reconcile(open_attempts)
            revision = self.store.campaign(self.campaign_id).runs  # one new document per resume
            for a in self.ledger.failed_analyses:  # the analysis may work now (fixed, or only crashed)
                self._spawn(a.id, None, self._analyse(a.id, a.params, a.sample_id, revision=revision))
        self._evaluate_targets()

    async def _prepare(self) -> list[Attempt]:
        """Actors up and described, the run's documents open, the ledger rebuilt: the open attempts.
        (Shared with ask/tell, ``agent/asktell.py``, which reconciles open attempts its own way.)"""
        data_dir = Path(self.store.campaign(self.campaign_id).data_dir) / self.campaign_id
        # The campaign file's ``in_process``: the fast path, every call inline on this loop (no actor, no thread).
        self.fleet = Fleet(self.config, data_dir, in_process=self.in_process or self.config.in_process,
                           inline=self.config.in_process)
        try:
            self.fleet.start()
        except MissingClusterResources as exc:  # a node that is not up: a clear stop, not a crash
            raise _Stop(CampaignStatus.FAILED, str(exc)) from exc
        await self.fleet.ready()
        self.guard = Guard(self.space, self.fleet.instruments, self.config.approval, self.fleet.instrument_models,
                           recipe=self.recipe)
        self.store.record_instruments(self.campaign_id, self.fleet.records())
        self.recorder.open_run(self.config, self.fleet.data_keys, self.fleet.estimates())
        return self.ledger.load()

    # -- resume ---------------------------------------------------------------------------------
    async def _reconcile(self, open_attempts: list[Attempt]) -> None:
        for a in open_attempts:
            if a.state in (AttemptState.PROPOSED, AttemptState.VALIDATED):
                self._backlog.append(a)
            elif a.state == AttemptState.AWAITING_APPROVAL:  # killed while waiting: wait again
                self._wait_for_approval(a.id)
            elif a.state == AttemptState.MEASURED:
                # Counted as analysing now, not when its task first runs: the loop's first turn must
                # see it, or it decides a measurement more than measuring may run ahead of analysis.
                self.ledger.analysing.add(a.id)
                self._spawn(a.id, None, self._analyse(a.id, a.params, a.sample_id))
            else:
                await self._reconcile_unrecorded(a)

    async def _reconcile_unrecorded(self, a: Attempt) -> None:
        """An attempt whose outcome is unknown: adopt the instrument's result, else re-run it once."""
        assert self.fleet is not None
        if a.state == AttemptState.DISPATCHED:
            self.recorder.transition(a.id, AttemptState.UNKNOWN, note="outcome unknown after the campaign was interrupted")
        actor = self.fleet.instruments.get(a.instrument or "")
        recovered: Measurement | None = await actor.recover.remote(a.id) if actor is not None else None
        if recovered is not None:
            self.recorder.measurement(recovered, reconciled="adopted")
            self.ledger.measured(recovered)
            self.ledger.analysing.add(a.id)
            self._spawn(a.id, None, self._analyse(a.id, a.params, a.sample_id))
        elif a.reruns == 0 and actor is not None:
            self.recorder.transition(a.id, AttemptState.DISPATCHED, reconciled="rerun", rerun=True,
                                     note="re-run once: no result was recorded")
            self._dispatch(a.id, a.instrument, a.params, a.sample_id)  # type: ignore[arg-type]
        else:
            self._fail(a.id, "outcome unknown again after a re-run; not repeated")

    async def _dispatch_backlog(self, free: list[str]) -> None:
        """Work found on resume goes first: it was decided already. Same guard as a new attempt;
        each step of its verdict is committed before the next action."""
        assert self.guard is not None
        while self._backlog and free:
            a = self._backlog.pop(0)
            # An attempt a person approved (then the campaign was killed) is not held again.
            approved = a.state == AttemptState.VALIDATED and self.store.approval(a.id) is not None
            verdict = await self.guard.verdict(a.id, a.params, a.sample_id, free, state=a.state, approved=approved)
            if verdict.not_ready is not None:  # "not now": it waits, first in line, while the campaign pauses
                for state in verdict.path:
                    self.recorder.transition(a.id, state)
                self._backlog.insert(0, self.store.attempt(a.id) if verdict.path else a)
                self.pause.hold("check", *verdict.not_ready)
                break
            self.pause.release_checks()
            for state in verdict.path:
                self.recorder.transition(a.id, state, reason=verdict.reason if state == AttemptState.REFUSED else None,
                                         instrument=verdict.instrument if state == AttemptState.DISPATCHED else None)
            if verdict.path[-1] == AttemptState.AWAITING_APPROVAL:
                self._wait_for_approval(a.id)
                continue
            if verdict.instrument is None:
                self.ledger.ended(a.id, AttemptState.REFUSED)
                continue
            self._dispatch(a.id, verdict.instrument, a.params, a.sample_id)
            failpoint("after-dispatch")

    # -- the loop -------------------------------------------------------------------------------
    async def _loop(self) -> tuple[CampaignStatus, str]:
        while True:
            # Re-checked every turn: if targets held but measurements still in flight then undo
            # that, the campaign goes on (its final answer includes every measurement it made).
            stop = self._check_stop()
            self.pause.stopping = stop is not None
            if stop is None:
                await self._fill_free_instruments()
            elif set(self._tasks.values()) <= self.approvals.waiting:
                self._withdraw_waiting(stop[1])  # nothing else in flight: no proposal is left waiting
            _analyses_committed(self.recorder.flush())  # analyses no decision carried this turn
            self._report()
            if not self._tasks:
                if stop is not None:
                    return stop
                continue
            remaining = self._remaining_wall()
            done, _ = await asyncio.wait(
                list(self._tasks), timeout=None if stop is not None or remaining is None else max(remaining, 0.01),
                return_when=asyncio.FIRST_COMPLETED,
            )
            for task in done:
                self._tasks.pop(task)
                task.result()  # re-raise store failures; everything else is handled inside the task

    def _check_stop(self) -> tuple[CampaignStatus, str] | None:
        """The first stop rule that holds: targets met, a budget spent, or refusals without end."""
        if self.config.stop_on_targets and self.targets.all_met:
            return CampaignStatus.COMPLETED, "targets met: " + ", ".join(self.targets.results)
        if self._target_unreachable is not None:
            return CampaignStatus.UNREACHABLE, self._target_unreachable
        if self._budget_full is not None:
            return CampaignStatus.BUDGET_EXHAUSTED, self._budget_full
        b, ledger = self.config.budgets, self.ledger
        if b.max_measurements is not None and ledger.n_measurements >= b.max_measurements:
            return CampaignStatus.BUDGET_EXHAUSTED, f"budget: max_measurements ({b.max_measurements}) reached"
        if b.max_instrument_seconds is not None and ledger.instrument_seconds >= b.max_instrument_seconds:
            return CampaignStatus.BUDGET_EXHAUSTED, (
                f"budget: max_instrument_seconds ({b.max_instrument_seconds:g} s) reached ({ledger.instrument_seconds:g} s)"
            )
        remaining = self._remaining_wall()
        if remaining is not None and remaining <= 0:
            return CampaignStatus.BUDGET_EXHAUSTED, f"budget: max_wall_seconds ({b.max_wall_seconds:g} s) reached"
        if self._refused_in_a_row >= REFUSALS_BEFORE_STOP:
            return CampaignStatus.FAILED, f"{self._refused_in_a_row} decisions in a row were refused entirely; see the decision log"
        if self._lease_lost:
            return CampaignStatus.INTERRUPTED, "another process took the campaign over (this one's lease went stale)"
        return None

    def _instrument_seconds_left(self, in_flight: bool = True) -> float | None:
        """The instrument budget less the measured time and (``in_flight``) the time the requests now
        measuring will take, s; None without an instrument-time budget."""
        limit = self.config.budgets.max_instrument_seconds
        if limit is None:
            return None
        left = limit - self.ledger.instrument_seconds
        if in_flight and self.fleet is not None:
            for actor, attempt_id in self.fleet.busy.items():
                params = self.ledger.open.get(attempt_id)
                seconds = None if params is None else request_seconds(self.fleet.instrument_models.get(actor), params)
                left -= seconds or 0.0
        return left

    def _remaining_wall(self) -> float | None:
        limit = self.config.budgets.max_wall_seconds
        return None if limit is None else limit - self._wall_seconds()

    def _wall_seconds(self) -> float:
        return self._previous_wall + time.monotonic() - self._started

    def _measurement_room(self) -> int:
        """How many more measurements may be decided now (the measurement budget less what is in flight)."""
        assert self.fleet is not None
        limit = self.config.budgets.max_measurements
        if limit is None:
            return len(self.fleet.instruments)
        return limit - self.ledger.n_measurements - len(self.fleet.busy) - len(self._backlog) - len(self.approvals.waiting)

    async def _fill_free_instruments(self) -> None:
        assert self.fleet is not None
        free = self.fleet.free()
        # Measuring may run ahead of analysis by one measurement per instrument, no more: a fast
        # instrument must not spend the budget on points chosen without the data already taken.
        if not free or len(self.ledger.analysing) >= len(self.fleet.instruments):
            return
        await self._dispatch_backlog(free)
        if self.pause.active:  # an instrument said "not now": decide nothing new, look again in a while
            if self._pause_turn is None or self._pause_turn.done():
                self._pause_turn = asyncio.get_running_loop().create_task(self.pause.wait())
                self._tasks[self._pause_turn] = "pause"
            return
        # A proposal waiting for a person holds a place of a free instrument (not the instrument):
        # the others go on measuring, but no pile of unapproved proposals grows meanwhile.
        n = min(len(free) - len(self.approvals.waiting), self._measurement_room())
        if n > 0:
            await self._decide_and_dispatch(n, free)

    async def _decide_and_dispatch(self, n: int, free: list[str]) -> None:
        """Ask the policy for ``n`` points, guard them, commit all of it in one decision, then dispatch."""
        for a in await self._decide_and_record(n, free):
            if a.instrument is None or a.path[-1] == AttemptState.AWAITING_APPROVAL:
                continue
            self._dispatch(a.attempt_id, a.instrument, a.params, a.sample_id)
            failpoint("after-dispatch")

    async def _decide_and_record(self, n: int, free: list[str]) -> list[ProposedAttempt]:
        """Ask the policy for ``n`` points, guard each against ``free[0]`` (taken when it accepts),
        and commit the decision with its attempts — refused, or validated and dispatched — before
        anything is measured. Returns the attempts; the caller sends the dispatched ones (the loop to
        its instruments, ask/tell to the caller's own code)."""
        assert self.guard is not None
        seq, dseq = self.ledger.next_seq, self.ledger.next_decision
        pending = self.ledger.pending()
        decision = self._decide(n, seq)
        if self.config.stop_when_unreachable and not decision.fallback:
            self._target_unreachable = self._futility.observe(decision.proposals, len(self.ledger.interpretations))
            if self._target_unreachable is not None:
                return []  # nothing is measured: the loop ends the sample as unreachable
        # The guard and the instruments' checks only ask questions, so their verdicts — and the
        # dispatch itself — are committed in one transaction with the decision, before any
        # measurement is requested: write-ahead, at one commit instead of four.
        attempts, not_ready = [], {}
        left = self._instrument_seconds_left()
        for i, p in enumerate(decision.proposals):
            attempt_id = f"{self.campaign_id}-{seq + i:05d}"
            instrument = free[0] if free else None
            verdict = await self.guard.verdict(attempt_id, p.params, self.config.sample, free, left=left)
            params = verdict.params if verdict.params is not None else p.params
            if left is not None and instrument is not None:
                left -= request_seconds(self.fleet.instrument_models.get(instrument) if self.fleet else None, params) or 0.0
            if verdict.reason is not None and verdict.reason.startswith(BUDGET_REFUSAL):
                self._budget_full = f"budget: max_instrument_seconds cannot hold another request ({verdict.reason})"
            attempts.append(_proposed(attempt_id, seq + i, params, self.config.sample, verdict))
            if verdict.not_ready is not None:
                not_ready[attempt_id] = verdict.not_ready
        carried = self.recorder.decision(  # with the analyses made since the last commit (recorder.py)
            dseq, decision.proposals, attempts,
            policy=decision.proposals[0].policy if decision.proposals else self.policy.name,
            fallback=decision.fallback, error=decision.error, seed=self.config.seed,
            n_history=len(self.ledger.history), n_pending=len(pending), seconds=decision.seconds,
        )
        self.ledger.next_seq, self.ledger.next_decision = seq + len(attempts), dseq + 1
        _analyses_committed(carried)
        failpoint("after-propose")
        dispatched = waiting = 0
        for a in attempts:
            if a.attempt_id in not_ready:  # validated; waits for the instrument, first in line
                self.ledger.decided(a.attempt_id, a.params)
                self._backlog.append(self.store.attempt(a.attempt_id))
                self.pause.hold("check", *not_ready[a.attempt_id])
                waiting += 1
                continue
            if a.path[-1] == AttemptState.AWAITING_APPROVAL:
                self.ledger.decided(a.attempt_id, a.params)  # pending for the policy while it waits
                self._wait_for_approval(a.attempt_id)
                waiting += 1  # not refused (yet): a person decides, and the decision counts then
                continue
            if a.instrument is None:
                self.ledger.refused += 1
                continue
            self.ledger.decided(a.attempt_id, a.params)
            dispatched += 1
        if dispatched or not waiting:
            self._refused_in_a_row = 0 if dispatched else self._refused_in_a_row + 1
        return attempts

    def _decide(self, n: int, seq: int) -> _Decision:
        """The policy's ``n`` proposals; space-filling fallback points, with the cause, if it fails
        or if its proposals keep being refused."""
        assert self.fleet is not None
        started = time.perf_counter()
        if self._refused_in_a_row >= REFUSALS_BEFORE_FALLBACK:
            error = f"{self._refused_in_a_row} decisions in a row were refused"
        else:
            try:
                context = self.ledger.planning_context(
                    self.fleet.instrument_models, self.goals, self._instrument_seconds_left(in_flight=False))
                proposals = self.policy.plan(context, n)
                if len(proposals) != n:
                    raise ValueError(f"policy returned {len(proposals)} proposals, asked for {n}")
                return _Decision(proposals, False, None, time.perf_counter() - started)
            except Exception as exc:  # noqa: BLE001 — any policy failure falls back, recorded with its cause
                error = f"{type(exc).__name__}: {exc}"
        # The campaign's own seed and the attempt count: fallbacks continue one space-filling sequence.
        proposals = fallback_proposals(self.space, n, self.config.seed, seq, error)
        return _Decision(proposals, True, error, time.perf_counter() - started)

    # -- waiting for a person ----------------------------------------------------------------------
    def _wait_for_approval(self, attempt_id: str) -> None:
        self.approvals.waiting.add(attempt_id)  # counted at once, before the task first runs
        # A person must act: say so where the campaign's owner looks (stderr, even when not a TTY).
        logger.warning("%s awaits approval: labpilot approve %s [--edit KEY=VALUE] | labpilot reject %s --reason TEXT",
                       attempt_id, attempt_id, attempt_id)
        self._spawn(attempt_id, None, self._approval_decided(attempt_id))

    async def _approval_decided(self, attempt_id: str) -> None:
        """Wait (store polling, no instrument held) for a person's decision on the attempt; approved:
        it joins the backlog (guarded again, instrument check included); rejected: it is refused."""
        decided = await self.approvals.decision(attempt_id)
        self.recorder.publish_outbox()  # the decision's documents, written by the deciding process
        if decided.state == AttemptState.VALIDATED:
            self.ledger.decided(attempt_id, decided.params)  # the approved (maybe edited) parameters
            self._backlog.append(decided)
            self._refused_in_a_row = 0
        else:
            # A rejection is a refusal: a policy whose proposals keep being rejected falls back to
            # space-filling points, then stops, as it does when the guard refuses them.
            self.ledger.ended(attempt_id, decided.state)
            self._refused_in_a_row += 1

    def _withdraw_waiting(self, reason: str) -> None:
        """The campaign stops: proposals still waiting are refused (a person can no longer run them)."""
        for task, attempt_id in list(self._tasks.items()):
            if attempt_id in self.approvals.waiting:
                task.cancel()
                self._tasks.pop(task)
                self.recorder.transition(attempt_id, AttemptState.REFUSED, reason=f"not decided before the campaign stopped ({reason})")
                self.ledger.ended(attempt_id, AttemptState.REFUSED)
        self.approvals.waiting.clear()

    # -- measuring and analysing ------------------------------------------------------------------
    def _fail(self, attempt_id: str, reason: str) -> None:
        self.recorder.transition(attempt_id, AttemptState.FAILED, reason=reason)
        self.ledger.ended(attempt_id, AttemptState.FAILED)

    def _dispatch(self, attempt_id: str, actor_name: str, params: dict[str, ParamValue], sample_id: str | None) -> None:
        request = MeasurementRequest(attempt_id=attempt_id, params=params, sample_id=sample_id, recipe=self.recipe,
                                     noise_key=self._noise_key(attempt_id, sample_id))
        self._spawn(attempt_id, actor_name, self._execute(attempt_id, actor_name, request))

    def _noise_key(self, attempt_id: str, sample_id: str | None) -> str:
        """The key simulated instruments draw this attempt's noise by: the campaign's seed, the attempt's
        sequence number (its id without the random campaign id) and sample — so the same ``--seed`` gives
        the same data, and a resumed or re-run attempt the same data as before."""
        sequence = attempt_id.removeprefix(f"{self.campaign_id}-")
        return f"{self.config.seed}:{sequence}:{(sample_id or '').replace(self.noise_root, '')}"

    def _spawn(self, attempt_id: str, actor_name: str | None, work: Any) -> None:
        """Run ``work`` as a task of the loop; ``actor_name``: the instrument it keeps busy."""
        if actor_name is not None:
            assert self.fleet is not None
            self.fleet.take(actor_name, attempt_id)
        task = asyncio.get_running_loop().create_task(work)
        self._tasks[task] = attempt_id

    async def _execute(self, attempt_id: str, actor_name: str, request: MeasurementRequest) -> None:
        assert self.fleet is not None
        try:
            measurement: Measurement = await self.pause.measure_when_ready(
                actor_name, lambda: self._measure_within_timeout(actor_name, request))
        except (ray.exceptions.RayActorError, MeasurementTimeout) as exc:
            # The instrument process died or hung: the outcome is unknown; restart and reconcile it.
            await self._instrument_lost(attempt_id, actor_name, exc)
            return
        except CampaignStopping as exc:  # stopped while the instrument was not ready: it never measured
            self._fail(attempt_id, f"not measured: the instrument was not ready when the campaign stopped ({exc})")
            self.fleet.release(actor_name)
            return
        except InstrumentUnreachable as exc:  # through Ray too: its task errors subclass the cause
            await self._unreachable(attempt_id, actor_name, exc)
            return
        except Exception as exc:  # noqa: BLE001 — instrument faults are recorded, the loop goes on
            self._fail(attempt_id, f"instrument error: {first_line(exc)}")
            self.fleet.release(actor_name)
            self._count_failure(actor_name, first_line(exc))
            return
        self._failures_in_a_row.pop(actor_name, None)
        failpoint("before-record-measurement")
        # Committed without waiting for PostgreSQL's disk flush: the next decision's commit flushes it,
        # and a database crash before then is a killed process's case (reconciled on resume).
        self.recorder.measurement(measurement, synchronous=False)
        self.ledger.measured(measurement)
        # The instrument is free as soon as its data is safe: analysis runs as its own task on the
        # analysis actor, so the next measurement is decided and dispatched meanwhile (an idle
        # instrument is the costliest thing in a lab); the unanalysed point counts as pending.
        self.fleet.release(actor_name)
        failpoint("after-measured")
        # Its record waits for the next decision's commit (or the end of this turn of the loop).
        self._spawn(attempt_id, None, self._analyse(attempt_id, request.params, request.sample_id, defer=True))

    def _count_failure(self, actor_name: str, error: str) -> None:
        """An instrument that fails every request must stop the campaign, not spin it (and the budget)."""
        n = self._failures_in_a_row[actor_name] = self._failures_in_a_row.get(actor_name, 0) + 1
        reason = failure_stop(self.config.faults, actor_name, n, self.ledger.failed, error)
        if reason is not None:
            raise _Stop(CampaignStatus.FAILED, reason)

    async def _measure_within_timeout(self, actor_name: str, request: MeasurementRequest) -> Measurement:
        """The measurement, or ``MeasurementTimeout`` after the request's timeout (``agent/faults.py``)."""
        assert self.fleet is not None
        started = time.monotonic()
        # Sent first; its timeout is asked meanwhile (no round trip added to the measurement's latency).
        pending = self.fleet.instruments[actor_name].measure.remote(request)
        timeout = await self.fleet.measure_timeout(actor_name, request, self._remaining_wall())
        left = None if timeout is None else max(timeout - (time.monotonic() - started), 0.01)
        try:
            return await asyncio.wait_for(pending, left)  # type: ignore[no-any-return]
        except TimeoutError as exc:
            if isinstance(exc, ray.exceptions.RayTaskError):  # the driver's own TimeoutError: a failure
                raise
            raise MeasurementTimeout(f"no answer within {timeout:g} s") from None

    async def _instrument_lost(self, attempt_id: str, actor_name: str, exc: Exception) -> None:
        """The instrument's process died or hung: the attempt is unknown; the actor is restarted
        (within ``faults.max_restarts``) and the attempt reconciled — adopted from the driver's
        records, else re-run once. Past the budget, or with the wall budget spent, the campaign stops."""
        assert self.fleet is not None
        what = "hung" if isinstance(exc, MeasurementTimeout) else "died"
        self.recorder.transition(attempt_id, AttemptState.UNKNOWN, note=f"instrument {what}: {first_line(exc)}")
        remaining = self._remaining_wall()
        if remaining is not None and remaining <= 0:  # max_wall_seconds spent: no restart; resume reconciles it
            self.fleet.release(actor_name)
            return
        try:
            restarted = await self.fleet.restart(actor_name)
        except InstrumentNotBack as exc:  # its node is down: the attempt stays unknown until a resume
            self.fleet.release(actor_name)
            raise _Stop(CampaignStatus.FAILED, f"instrument {actor_name} {what} during {attempt_id} and {exc}; "
                                               "resume to reconcile") from None
        self.fleet.release(actor_name)
        if not restarted:
            raise _Stop(CampaignStatus.FAILED, f"instrument {actor_name} {what} during {attempt_id} after "
                                               f"{self.config.faults.max_restarts} restarts (faults.max_restarts); "
                                               "resume to reconcile")
        await self._reconcile_unrecorded(self.store.attempt(attempt_id))

    async def _unreachable(self, attempt_id: str, actor_name: str, exc: Exception) -> None:
        """A remote instrument stopped answering: it may have measured. Unknown until it is back;
        then its own records decide (adopt), else one re-run — as a resume would."""
        assert self.fleet is not None
        self.recorder.transition(attempt_id, AttemptState.UNKNOWN, note=f"instrument unreachable: {first_line(exc)}")
        back = await self.fleet.wait_until_reachable(actor_name, RECONNECT_SECONDS)
        self.fleet.release(actor_name)
        if not back:
            raise _Stop(CampaignStatus.FAILED, f"instrument {actor_name} unreachable for {RECONNECT_SECONDS:.0f} s "
                                               f"during {attempt_id}; resume to reconcile")
        await self._reconcile_unrecorded(self.store.attempt(attempt_id))

    async def _analyse(self, attempt_id: str, params: dict[str, ParamValue], sample_id: str | None,
                       *, revision: int = 0, defer: bool = False) -> None:
        """Analyse every measurement of the attempt's sample; ``revision`` > 0: a re-analysis of an
        attempt whose analysis had failed (its interpretation is replaced). ``defer``: the record is
        committed with the loop's next decision (``Recorder.interpretation``), not on its own."""
        assert self.fleet is not None
        self.ledger.analysing.add(attempt_id)
        sample = sample_id or attempt_id
        # The sample's measurements up to and including this attempt's: an analysis is labelled with its
        # newest measurement, so one that also saw later measurements (two analyses started together on
        # resume) would be recorded for another attempt, and this one would stay unanalysed for ever.
        measurements = measurements_through(self.ledger.measurements_of(sample), attempt_id)
        try:
            interpretation: Interpretation = await self.fleet.analysis.interpret.remote(measurements)
        except ray.exceptions.RayActorError as exc:
            # The analysis process is gone (after its restarts): analysing blind would spend the budget
            # on nothing. The measurement stays `measured`, and resume analyses it.
            raise _Stop(CampaignStatus.FAILED, f"the analysis died during {attempt_id} ({first_line(exc)}); "
                                               "resume to analyse what was measured") from None
        except Exception as exc:  # noqa: BLE001 — a failed analysis is a flagged interpretation, not a crash
            interpretation = Interpretation(
                attempt_id=attempt_id, sample_id=sample, analysis=self.config.analysis.kind,
                estimates={self.config.objective.estimate: Estimate(value=None)},
                flags=[f"analysis-error: {first_line(exc)}"], valid=False,
            )
        if revision:
            self.ledger.replace(interpretation, params)
            self.recorder.reanalysis(interpretation, self._evaluate_targets(), revision)
        else:
            self.ledger.ingest(interpretation, params)
            # Targets are evaluated with this interpretation included and logged in the same commit.
            self.recorder.interpretation(interpretation, self._evaluate_targets(), defer=defer)
        self.ledger.analysing.discard(attempt_id)
        failpoint("before-record-analysed" if defer else "after-analysed")

    # -- targets and progress ---------------------------------------------------------------------
    def _evaluate_targets(self) -> TargetEvaluation:
        ledger = self.ledger
        state = CampaignState(
            space=self.space, direction=self.config.objective.direction, history=ledger.history,
            interpretations=ledger.interpretations, models=self.models, seed=self.config.seed,
        )
        results = self.targets.evaluate(state)
        return TargetEvaluation(
            n_measurements=ledger.n_measurements, instrument_seconds=ledger.instrument_seconds,
            wall_seconds=self._wall_seconds(), results={k: v.as_dict() for k, v in results.items()},
            all_met=all(r.met for r in results.values()),
        )

    def _report(self) -> None:
        if self.on_progress is not None:
            self.on_progress(
                Progress(
                    campaign_id=self.campaign_id, n_measurements=self.ledger.n_measurements,
                    instrument_seconds=self.ledger.instrument_seconds, wall_seconds=self._wall_seconds(),
                    in_flight=len(self.fleet.busy) if self.fleet is not None else 0,
                    refused=self.ledger.refused, failed=self.ledger.failed, targets=dict(self.targets.results),
                )
            )

    # -- shutdown -------------------------------------------------------------------------------
    async def _shutdown(self, status: CampaignStatus, reason: str) -> None:
        for task in self._tasks:
            task.cancel()
        with contextlib.suppress(StoreUnavailable):  # else resume analyses them again
            _analyses_committed(self.recorder.flush())  # before the answer is read from the store
        if self.fleet is not None:
            await self.fleet.stop(status == CampaignStatus.COMPLETED)
        with contextlib.suppress(StoreUnavailable):  # the reason then says the store is gone
            self._answer = campaign_answer(self.store, self.campaign_id)
            if status == CampaignStatus.UNREACHABLE:
                self._answer = unreachable_answer(self._answer, reason)
        self.recorder.finish(status, reason, time.monotonic() - self._started, answer=self._answer)
        if not self._lease_lost:
            with contextlib.suppress(StoreUnavailable):  # a stale lease is taken over on resume anyway
                self.store.release_lease(self.campaign_id, self.owner)
        self._report()

    def _result(self, status: CampaignStatus, reason: str) -> CampaignResult:
        counts: dict[str, int] = {}
        try:
            for a in self.store.attempts(self.campaign_id):
                counts[a.state.value] = counts.get(a.state.value, 0) + 1
        except StoreUnavailable:
            pass  # the reason already says the store is unreachable; report what the loop knows
        return CampaignResult(
            campaign_id=self.campaign_id, status=status.value, stop_reason=reason, targets=dict(self.targets.results),
            n_measurements=self.ledger.n_measurements, instrument_seconds=self.ledger.instrument_seconds,
            wall_seconds=self._wall_seconds(), counts=counts, answer=self._answer,
        )


def _analyses_committed(n: int) -> None:
    """``n`` analyses were just committed (carried by a decision, or flushed): the crash point after each."""
    for _ in range(n):
        failpoint("after-analysed")


def _proposed(attempt_id: str, seq: int, params: dict[str, ParamValue], sample_id: str | None, verdict: Verdict) -> ProposedAttempt:
    return ProposedAttempt(attempt_id, seq, params, sample_id, path=verdict.path, reason=verdict.reason,
                           instrument=verdict.instrument)


def run_campaign(
    config: CampaignConfig, store: Store, *, campaign_id: str | None = None, on_progress: Callable[[Progress], None] | None = None
) -> CampaignResult:
    """Start a new campaign and run it to the end (Ray must be initialised)."""
    if not isinstance(config, CampaignConfig):  # a campaign over samples (agent/sample_campaign.py)
        from agent.sample_campaign import run_sample_campaign

        return run_sample_campaign(config, store, campaign_id=campaign_id or new_campaign_id(config.name),
                                   on_progress=on_progress)
    runner = CampaignRunner(config, store, campaign_id or new_campaign_id(config.name), on_progress=on_progress)
    return asyncio.run(runner.run())


def resume_campaign(
    store: Store, campaign_id: str, *, on_progress: Callable[[Progress], None] | None = None,
    allowed: Sequence[str] | None = None,
) -> CampaignResult:
    """Continue a campaign from what its store holds (after a kill, a crash or a budget raise).

    ``allowed``: the code references the stored configuration may name (``agent/trust.py``; default
    the installed kinds' and ``LABPILOT_ALLOWED_IMPORTS``) — checked before anything is imported.
    """
    from agent.trust import allowed_patterns, check_references

    stored = store.campaign(campaign_id)
    source = f"campaign {campaign_id} (stored configuration)"
    check_references(stored.config, allowed_patterns() if allowed is None else allowed, source)
    config = _stored_config(stored.config, stored.package_versions, source)
    if not isinstance(config, CampaignConfig):  # a campaign over samples (agent/sample_campaign.py)
        from agent.sample_campaign import run_sample_campaign

        return run_sample_campaign(config, store, campaign_id=campaign_id, on_progress=on_progress, resume=True)
    runner = CampaignRunner(config, store, campaign_id, on_progress=on_progress)
    return asyncio.run(runner.run(resume=True))


def _stored_config(data: dict[str, Any], versions: dict[str, str], source: str) -> Any:
    """A stored configuration, validated for a resume: in full (schema and semantics, as ``labpilot
    validate``) — unless the installed packages are those the campaign was created with, which
    validated it in full then: the schema is checked again, not the semantics (they import every
    instrument's and the analysis' modules into this process to check their settings: 1–2 s of CPU at
    every resume; the actors and the policy, built from the same settings, still refuse what is wrong)."""
    from agent.config import parse_campaign
    from agent.sample_step_config import is_sample_campaign

    if versions == package_versions() and not is_sample_campaign(data):
        try:
            return CampaignConfig.model_validate(data)
        except ValueError:  # pydantic's ValidationError: the full parse below names every field
            pass
    return parse_campaign(data, source)  # other code, a campaign over samples, or an invalid document
