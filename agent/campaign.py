"""The closed loop: propose → guard → dispatch → measure → analyse → check targets, until done.

Every step is committed to the store *before* the action it describes (write-ahead), so the
process may be killed at any instant and ``resume`` continues without losing or repeating a
measurement:

- proposals are recorded (``proposed``) with their decision before they are validated;
- ``dispatched`` is committed before the instrument is asked to measure;
- a measurement is recorded (``measured``) before it is analysed;
- on resume, ``dispatched`` attempts without a result become ``unknown`` and are reconciled —
  adopted if the instrument reports the result, otherwise re-run once (and marked).

The policy's model is rebuilt from the store, never carried over in memory.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ray

from agent.config import CampaignConfig
from agent.documents import DocumentPublisher, RunComposer, composer_for
from agent.failpoints import failpoint
from agent.guard import design_space_refusal
from agent.kinds import ANALYSIS_KINDS, INSTRUMENT_KINDS, analysis_factory, driver_factory
from agent.runtime import LocalHandle
from agent.store import Attempt, Document, ProposedAttempt, Store, StoreUnavailable, TargetEvaluation
from agent.targets import CampaignState, TargetResult, build_targets, planning_goals
from agent.versions import package_versions
from analysis.actor import AnalysisActor, AnalysisService
from analysis.protocol import Estimate, Interpretation
from instruments.actor import InstrumentActor, InstrumentService
from instruments.protocol import InstrumentUnreachable
from instruments.types import Measurement, MeasurementRequest, ParamValue
from policies.baselines import fallback_proposals
from policies.models import ModelCache
from policies.protocol import ObjectivePolicy, Observation, PlanningContext, Proposal
from policies.registry import build_policy

RECONNECT_SECONDS = 60.0
"""How long a campaign waits for an unreachable (remote) instrument before it stops to be resumed."""
#: After this many decisions in a row whose proposals were all refused, use space-filling points.
REFUSALS_BEFORE_FALLBACK = 3
#: After this many, stop: the policy and the guard disagree about the space, a human must look.
REFUSALS_BEFORE_STOP = 10


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

    def as_json(self) -> dict[str, Any]:
        return {
            "campaign_id": self.campaign_id,
            "status": self.status,
            "stop_reason": self.stop_reason,
            "targets": {k: v.as_dict() for k, v in self.targets.items()},
            "n_measurements": self.n_measurements,
            "instrument_seconds": self.instrument_seconds,
            "wall_seconds": self.wall_seconds,
            "attempts": self.counts,
        }


def new_campaign_id(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:8]}"


class _Stop(Exception):
    """Raised inside the loop to end it with a status and a reason."""

    def __init__(self, status: str, reason: str) -> None:
        super().__init__(reason)
        self.status, self.reason = status, reason


class CampaignRunner:
    """Runs (or resumes) one campaign. Ray must be initialised by the caller."""

    def __init__(
        self,
        config: CampaignConfig,
        store: Store,
        campaign_id: str,
        *,
        on_progress: Callable[[Progress], None] | None = None,
        in_process: bool = False,
    ) -> None:
        """``in_process``: run the instrument drivers and the analysis in this process (same services,
        no actor processes) — for benchmarks that run many campaigns as Ray tasks."""
        self.config = config
        self.in_process = in_process
        self.store = store
        self.campaign_id = campaign_id
        self.on_progress = on_progress
        self.space = config.design_space
        self.direction = config.objective.direction
        self.models = ModelCache()
        self.goals = planning_goals(config.targets)  # the policy's and every planning context's
        self.policy = build_policy(
            config.policy.name, self.space, direction=self.direction, seed=config.seed,
            options=config.policy.options, cache=self.models, analysis=config.analysis.model_dump(mode="json"),
            goals=self.goals,
        )
        self.targets = build_targets(config.targets)
        self.target_results: dict[str, TargetResult] = {
            t.name: TargetResult(None, _goal(c), False, "not evaluated") for t, c in zip(self.targets, config.targets)
        }
        self._actors: dict[str, Any] = {}
        self._instrument_models: dict[str, Any] = {}
        self._data_keys: dict[str, Any] = {}
        self._composer: RunComposer | None = None
        self._publisher: DocumentPublisher | None = None
        self._busy: dict[str, str] = {}  # actor name → attempt id
        self._tasks: dict[asyncio.Task[None], str] = {}
        self._backlog: list[Attempt] = []  # proposed/validated attempts found on resume
        # Decided but not yet analysed (or ended): the policy's pending points. Kept in memory so
        # the hot path never reads the store; rebuilt from the store on start.
        self._open: dict[str, dict[str, ParamValue]] = {}
        self._samples: dict[str, list[Measurement]] = {}  # measurements per sample, newest last
        self._analysing: set[str] = set()  # measured, analysis not yet recorded
        self._next_seq = 0
        self._next_decision = 0
        self._history: list[Observation] = []
        self._interpretations: list[Interpretation] = []
        self._refused_in_a_row = 0
        self._counts = {"refused": 0, "failed": 0}
        self._n_measurements = 0
        self._instrument_seconds = 0.0
        self._previous_wall = 0.0
        self._started = time.monotonic()

    # -- public ---------------------------------------------------------------------------------
    async def run(self, *, resume: bool = False) -> CampaignResult:
        if resume:
            self._previous_wall = self.store.campaign(self.campaign_id).wall_seconds
            self.store.mark_resumed(self.campaign_id)
        else:
            self.store.create_campaign(
                self.campaign_id, self.config.name, self.config.model_dump(mode="json"), self.config.seed,
                str(Path(self.config.data_dir).resolve()), package_versions(),
            )
        status, reason = "failed", "interrupted before the loop started"
        try:
            self._start_actors()
            await self._actors_ready()
            self._open_documents()
            self._load_from_store()
            if resume:
                await self._reconcile()
            self._evaluate_targets()
            status, reason = await self._loop()
        except _Stop as stop:
            status, reason = stop.status, stop.reason
        except StoreUnavailable as exc:
            status, reason = "failed", f"store unavailable: {exc}"
        except (KeyboardInterrupt, asyncio.CancelledError):
            status, reason = "interrupted", "interrupted by the user"
            raise
        finally:
            await self._shutdown(status, reason)
        return self._result(status, reason)

    # -- set-up ---------------------------------------------------------------------------------
    def _actor_names(self) -> list[tuple[str, Any]]:
        out = []
        for inst in self.config.instruments:
            for i in range(inst.count):
                out.append((inst.name if inst.count == 1 else f"{inst.name}-{i + 1}", inst))
        return out

    def _start_actors(self) -> None:
        data_dir = Path(self.store.campaign(self.campaign_id).data_dir) / self.campaign_id
        for name, inst in self._actor_names():
            spec = INSTRUMENT_KINDS[inst.kind]
            settings = spec.complete(inst.settings, self.space, data_dir / "instruments" / name)
            factory = driver_factory(inst.kind, name, settings)
            self._actors[name] = (
                LocalHandle(InstrumentService(factory)) if self.in_process
                else InstrumentActor.options(num_cpus=0).remote(factory)
            )
        factory = analysis_factory(self.config.analysis.kind, self.config.analysis.settings)
        self._analysis = (
            LocalHandle(AnalysisService(factory)) if self.in_process else AnalysisActor.options(num_cpus=0).remote(factory)
        )

    async def _actors_ready(self) -> None:
        """Wait until every actor's process is up, so the loop's clock starts with working parts;
        ask each instrument what it tells planners about itself."""
        await asyncio.gather(*(a.health.remote() for a in self._actors.values()), self._analysis.health.remote())
        models = await asyncio.gather(*(a.planning_model.remote() for a in self._actors.values()))
        self._instrument_models = dict(zip(self._actors, models))
        keys = await asyncio.gather(*(a.describe.remote() for a in self._actors.values()))
        self._data_keys = dict(zip(self._actors, keys))

    # -- documents ------------------------------------------------------------------------------
    def _open_documents(self) -> None:
        """This run's start and descriptors (once), and whatever the outbox still holds unpublished."""
        campaign = self.store.campaign(self.campaign_id)
        self._composer, previous = composer_for(self.store, self.campaign_id)
        analysis = ANALYSIS_KINDS[self.config.analysis.kind]
        estimates = analysis.estimates(analysis.settings_model.model_validate(self.config.analysis.settings))
        opened = self._composer.open(
            config=self.config.model_dump(mode="json"), started=campaign.created_at.timestamp() if previous is None else time.time(),
            data_keys=self._data_keys, estimates=estimates, previous_start=previous,
        )
        self.store.add_documents(self.campaign_id, opened)
        self._publisher = DocumentPublisher(
            self.store, self.campaign_id, self.config.documents, Path(campaign.data_dir) / self.campaign_id
        )
        self._publisher.backlog()

    def _published(self, recorded: bool, documents: list[Document]) -> None:
        """After a commit that carried ``documents``: count and publish them if it was a new record."""
        if not recorded or self._composer is None or self._publisher is None:
            return
        for d in documents:
            self._composer.committed(d)
        try:
            self._publisher.publish(documents)
        except Exception:  # noqa: BLE001 — the outbox keeps them; resume publishes the backlog
            pass

    def _load_from_store(self) -> None:
        """Rebuild everything the loop knows from the store (the truth)."""
        self._n_measurements, self._instrument_seconds = self.store.totals(self.campaign_id)
        self._next_seq, self._next_decision = self.store.next_seq(self.campaign_id)
        attempts = {a.id: a for a in self.store.attempts(self.campaign_id)}
        self._open = {
            a.id: a.params for a in attempts.values() if a.state in ("proposed", "validated", "dispatched", "unknown", "measured")
        }
        self._counts["refused"] = sum(a.state == "refused" for a in attempts.values())
        self._counts["failed"] = sum(a.state == "failed" for a in attempts.values())
        self._history, self._interpretations = [], []
        for interp in self.store.interpretations(self.campaign_id):
            self._ingest(interp, attempts[interp.attempt_id].params)

    def _ingest(self, interp: Interpretation, params: dict[str, ParamValue]) -> None:
        self._interpretations.append(interp)
        self._open.pop(interp.attempt_id, None)
        est = interp.estimates.get(self.config.objective.estimate)
        if interp.valid and est is not None and est.value is not None:
            self._history.append(Observation(params=params, value=est.value, sigma=est.sigma, attempt_id=interp.attempt_id))

    # -- resume ---------------------------------------------------------------------------------
    async def _reconcile(self) -> None:
        for a in self.store.attempts(self.campaign_id, states=["proposed", "validated", "dispatched", "unknown", "measured"]):
            if a.state in ("proposed", "validated"):
                self._backlog.append(a)
            elif a.state == "measured":
                self._start(a.id, None, self._analyse(a.id, a.params, a.sample_id))
            else:
                await self._reconcile_unrecorded(a)

    async def _reconcile_unrecorded(self, a: Attempt) -> None:
        if a.state == "dispatched":
            self.store.transition(a.id, "unknown", note="outcome unknown after the campaign was interrupted")
        actor = self._actors.get(a.instrument or "")
        recovered: Measurement | None = await actor.recover.remote(a.id) if actor is not None else None
        if recovered is not None:
            docs = [self._composer.measurement(recovered)] if self._composer is not None else []
            self._published(self.store.record_measurement(self.campaign_id, recovered, reconciled="adopted", documents=docs), docs)
            self._count_measurement(recovered)
            self._start(a.id, None, self._analyse(a.id, a.params, a.sample_id))
        elif a.reruns == 0 and actor is not None:
            self.store.transition(a.id, "dispatched", reconciled="rerun", rerun=True, note="re-run once: no result was recorded")
            self._dispatch(a.id, a.instrument, a.params, a.sample_id)  # type: ignore[arg-type]
        else:
            self._fail(a.id, "outcome unknown again after a re-run; not repeated")

    # -- the loop -------------------------------------------------------------------------------
    async def _loop(self) -> tuple[str, str]:
        while True:
            # Re-checked every turn: if targets held but measurements still in flight then undo
            # that, the campaign goes on (its final answer includes every measurement it made).
            stop = self._check_stop()
            if stop is None:
                await self._fill_free_instruments()
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

    def _check_stop(self) -> tuple[str, str] | None:
        if self.config.stop_on_targets and self.target_results and all(r.met for r in self.target_results.values()):
            return "completed", "targets met: " + ", ".join(self.target_results)
        b = self.config.budgets
        if b.max_measurements is not None and self._n_measurements >= b.max_measurements:
            return "budget_exhausted", f"budget: max_measurements ({b.max_measurements}) reached"
        if b.max_instrument_seconds is not None and self._instrument_seconds >= b.max_instrument_seconds:
            return "budget_exhausted", (
                f"budget: max_instrument_seconds ({b.max_instrument_seconds:g} s) reached ({self._instrument_seconds:g} s)"
            )
        remaining = self._remaining_wall()
        if remaining is not None and remaining <= 0:
            return "budget_exhausted", f"budget: max_wall_seconds ({b.max_wall_seconds:g} s) reached"
        if self._refused_in_a_row >= REFUSALS_BEFORE_STOP:
            return "failed", f"{self._refused_in_a_row} decisions in a row were refused entirely; see the decision log"
        return None

    def _remaining_wall(self) -> float | None:
        limit = self.config.budgets.max_wall_seconds
        return None if limit is None else limit - self._wall_seconds()

    def _wall_seconds(self) -> float:
        return self._previous_wall + time.monotonic() - self._started

    async def _fill_free_instruments(self) -> None:
        free = [name for name in self._actors if name not in self._busy]
        # Measuring may run ahead of analysis by one measurement per instrument, no more: a fast
        # instrument must not spend the budget on points chosen without the data already taken.
        if not free or len(self._analysing) >= len(self._actors):
            return
        # Work found on resume goes first: it was decided already.
        while self._backlog and free:
            a = self._backlog.pop(0)
            if a.state == "proposed":
                refusal = design_space_refusal(self.space, a.params)
                if refusal is not None:
                    self._refuse(a.id, f"outside the design space: {refusal}")
                    continue
                self.store.transition(a.id, "validated")
            await self._dispatch_to_free(a.id, a.params, a.sample_id, free)
        room = self._measurement_room()
        n = min(len(free), room)
        if n <= 0:
            return
        seq, dseq = self._next_seq, self._next_decision
        pending = list(self._open.values())
        proposals, fallback, error, seconds = self._decide(n, seq)
        # The guard and the instruments' checks only ask questions, so their verdicts — and the
        # dispatch itself — are committed in one transaction with the decision, before any
        # measurement is requested: write-ahead, at one commit instead of four.
        attempts = [
            await self._verdict(f"{self.campaign_id}-{seq + i:05d}", seq + i, p.params, free)
            for i, p in enumerate(proposals)
        ]
        policy = proposals[0].policy if proposals else self.policy.name
        docs = [self._composer.decision(dseq, policy, fallback, [p.params for p in proposals], [p.reason for p in proposals],
                                        seconds, time.time())] if self._composer is not None else []
        self.store.record_decision(
            self.campaign_id, dseq, policy=policy, fallback=fallback,
            error=error, seed=self.config.seed, n_history=len(self._history), n_pending=len(pending),
            reasons=[p.reason for p in proposals], decision_seconds=seconds, versions=package_versions(),
            attempts=attempts, documents=docs,
        )
        self._published(True, docs)
        self._next_seq, self._next_decision = seq + len(attempts), dseq + 1
        failpoint("after-propose")
        dispatched = 0
        for a in attempts:
            if a.instrument is None:
                self._counts["refused"] += 1
                continue
            self._open[a.attempt_id] = a.params
            self._dispatch(a.attempt_id, a.instrument, a.params, a.sample_id)
            failpoint("after-dispatch")
            dispatched += 1
        self._refused_in_a_row = 0 if dispatched else self._refused_in_a_row + 1

    async def _verdict(self, attempt_id: str, seq: int, params: dict[str, ParamValue], free: list[str]) -> ProposedAttempt:
        """Guard a proposal, then ask a free instrument's ``check``; take the instrument if it accepts."""
        sample = self.config.sample
        refusal = design_space_refusal(self.space, params)
        if refusal is not None:
            return ProposedAttempt(attempt_id, seq, params, sample, path=("refused",), reason=f"outside the design space: {refusal}")
        name = free[0]
        refusal = await self._actors[name].check.remote(MeasurementRequest(attempt_id=attempt_id, params=params, sample_id=sample))
        if refusal is not None:
            return ProposedAttempt(
                attempt_id, seq, params, sample, path=("validated", "refused"), reason=f"instrument limits: {refusal}"
            )
        free.pop(0)
        return ProposedAttempt(attempt_id, seq, params, sample, path=("validated", "dispatched"), instrument=name)

    def _measurement_room(self) -> int:
        limit = self.config.budgets.max_measurements
        if limit is None:
            return len(self._actors)
        return limit - self._n_measurements - len(self._busy) - len(self._backlog)

    def _decide(self, n: int, seq: int) -> tuple[list[Proposal], bool, str | None, float]:
        started = time.perf_counter()
        error: str | None = None
        if self._refused_in_a_row >= REFUSALS_BEFORE_FALLBACK:
            error = f"{self._refused_in_a_row} decisions in a row were refused"
        else:
            try:
                proposals = self.policy.plan(self._planning_context(), n)
                if len(proposals) != n:
                    raise ValueError(f"policy returned {len(proposals)} proposals, asked for {n}")
                return proposals, False, None, time.perf_counter() - started
            except Exception as exc:  # noqa: BLE001 — any policy failure falls back, recorded with its cause
                error = f"{type(exc).__name__}: {exc}"
        # The campaign's own seed and the attempt count: fallbacks continue one space-filling sequence.
        proposals = fallback_proposals(self.space, n, self.config.seed, seq, error)
        return proposals, True, error, time.perf_counter() - started

    def _planning_context(self) -> PlanningContext:
        # An objective policy reads history and pending only: its pending points are every decided,
        # unanalysed one, and the sample's measurements are not loaded for it. A measurement planner
        # finds the measured points among the sample's measurements, so they are not pending.
        sample = None if isinstance(self.policy, ObjectivePolicy) else self.config.sample
        if sample is not None and sample not in self._samples:
            self._samples[sample] = self.store.measurements(self.campaign_id, sample_id=sample)
        measurements = list(self._samples.get(sample, [])) if sample is not None else []
        measured = {m.attempt_id for m in measurements}
        return PlanningContext(
            history=list(self._history),
            pending=[p for a, p in self._open.items() if a not in measured],
            measurements=measurements,
            interpretations=list(self._interpretations),
            instrument_models=dict(self._instrument_models),
            goals=self.goals,
        )

    async def _dispatch_to_free(
        self, attempt_id: str, params: dict[str, ParamValue], sample_id: str | None, free: list[str]
    ) -> int:
        """Resume path: check an already validated attempt on a free instrument and dispatch it."""
        name = free[0]
        request = MeasurementRequest(attempt_id=attempt_id, params=params, sample_id=sample_id)
        refusal = await self._actors[name].check.remote(request)
        if refusal is not None:
            return self._refuse(attempt_id, f"instrument limits: {refusal}")
        free.pop(0)
        self.store.transition(attempt_id, "dispatched", instrument=name)
        self._dispatch(attempt_id, name, params, sample_id)
        failpoint("after-dispatch")
        return 1

    def _refuse(self, attempt_id: str, reason: str) -> int:
        self.store.transition(attempt_id, "refused", reason=reason)
        self._counts["refused"] += 1
        self._open.pop(attempt_id, None)
        return 0

    def _fail(self, attempt_id: str, reason: str) -> None:
        self.store.transition(attempt_id, "failed", reason=reason)
        self._counts["failed"] += 1
        self._open.pop(attempt_id, None)

    def _dispatch(self, attempt_id: str, actor_name: str, params: dict[str, ParamValue], sample_id: str | None) -> None:
        request = MeasurementRequest(attempt_id=attempt_id, params=params, sample_id=sample_id)
        self._start(attempt_id, actor_name, self._execute(attempt_id, actor_name, request))

    def _start(self, attempt_id: str, actor_name: str | None, work: Any) -> None:
        if actor_name is not None:
            self._busy[actor_name] = attempt_id
        task = asyncio.get_running_loop().create_task(work)
        self._tasks[task] = attempt_id

    async def _execute(self, attempt_id: str, actor_name: str, request: MeasurementRequest) -> None:
        try:
            measurement: Measurement = await self._actors[actor_name].measure.remote(request)
        except ray.exceptions.RayActorError as exc:
            # The instrument process died: the outcome is unknown, resume will reconcile it.
            self.store.transition(attempt_id, "unknown", note=f"instrument actor died: {_first_line(exc)}")
            self._busy.pop(actor_name, None)
            raise _Stop("failed", f"instrument {actor_name} died during {attempt_id}; resume to reconcile") from None
        except InstrumentUnreachable as exc:  # through Ray too: its task errors subclass the cause
            # A remote instrument stopped answering: it may have measured. Unknown until it is back;
            # then its own records decide (adopt), else one re-run — as a resume would.
            self.store.transition(attempt_id, "unknown", note=f"instrument unreachable: {_first_line(exc)}")
            await self._await_instrument(actor_name, attempt_id)
            self._busy.pop(actor_name, None)
            await self._reconcile_unrecorded(self.store.attempt(attempt_id))
            return
        except Exception as exc:  # noqa: BLE001 — instrument faults are recorded, the loop goes on
            self._fail(attempt_id, f"instrument error: {_first_line(exc)}")
            self._busy.pop(actor_name, None)
            return
        failpoint("before-record-measurement")
        docs = [self._composer.measurement(measurement)] if self._composer is not None else []
        self._published(self.store.record_measurement(self.campaign_id, measurement, documents=docs), docs)
        self._count_measurement(measurement)
        # The instrument is free as soon as its data is safe: analysis runs as its own task on the
        # analysis actor, so the next measurement is decided and dispatched meanwhile (an idle
        # instrument is the costliest thing in a lab); the unanalysed point counts as pending.
        self._busy.pop(actor_name, None)
        failpoint("after-measured")
        self._start(attempt_id, None, self._analyse(attempt_id, request.params, request.sample_id))

    async def _await_instrument(self, actor_name: str, attempt_id: str) -> None:
        """Wait (up to ``RECONNECT_SECONDS``) for an unreachable instrument to answer again."""
        deadline = time.monotonic() + RECONNECT_SECONDS
        while time.monotonic() < deadline:
            try:
                health = await self._actors[actor_name].health.remote()
                if health.get("reachable", True):
                    return
            except Exception:  # noqa: BLE001,S110 — still unreachable; keep waiting
                pass
            await asyncio.sleep(1.0)
        self._busy.pop(actor_name, None)
        raise _Stop("failed", f"instrument {actor_name} unreachable for {RECONNECT_SECONDS:.0f} s during {attempt_id}; "
                              "resume to reconcile")

    def _count_measurement(self, m: Measurement) -> None:
        self._n_measurements += 1
        self._instrument_seconds += m.timing.instrument_seconds
        sample = m.sample_id or m.attempt_id
        if sample in self._samples:
            self._samples[sample].append(m)
        # else: loaded from the store (which now holds m too) when the sample is first analysed

    async def _analyse(self, attempt_id: str, params: dict[str, ParamValue], sample_id: str | None) -> None:
        self._analysing.add(attempt_id)
        sample = sample_id or attempt_id
        if sample not in self._samples:
            self._samples[sample] = self.store.measurements(self.campaign_id, sample_id=sample)
        measurements = self._samples[sample]
        try:
            interp: Interpretation = await self._analysis.interpret.remote(measurements)
        except Exception as exc:  # noqa: BLE001 — a failed analysis is a flagged interpretation, not a crash
            interp = Interpretation(
                attempt_id=attempt_id, sample_id=sample, analysis=self.config.analysis.kind,
                estimates={self.config.objective.estimate: Estimate(value=None)},
                flags=[f"analysis-error: {_first_line(exc)}"], valid=False,
            )
        self._ingest(interp, params)
        # Targets are evaluated with this interpretation included and logged in the same commit.
        docs = [self._composer.interpretation(interp, time.time())] if self._composer is not None else []
        self._published(self.store.record_interpretation(self.campaign_id, interp, self._evaluate_targets(), documents=docs), docs)
        self._analysing.discard(attempt_id)
        failpoint("after-analysed")

    # -- targets and progress ---------------------------------------------------------------------
    def _evaluate_targets(self) -> TargetEvaluation:
        state = CampaignState(
            space=self.space, direction=self.direction, history=self._history,
            interpretations=self._interpretations, models=self.models, seed=self.config.seed,
        )
        for target in self.targets:
            try:
                self.target_results[target.name] = target.evaluate(state)
            except Exception as exc:  # noqa: BLE001 — a target that cannot be evaluated is simply not met
                old = self.target_results[target.name]
                self.target_results[target.name] = TargetResult(None, old.goal, False, f"error: {_first_line(exc)}")
        return TargetEvaluation(
            n_measurements=self._n_measurements, instrument_seconds=self._instrument_seconds,
            wall_seconds=self._wall_seconds(), results={k: v.as_dict() for k, v in self.target_results.items()},
            all_met=all(r.met for r in self.target_results.values()),
        )

    def _report(self) -> None:
        if self.on_progress is not None:
            self.on_progress(
                Progress(
                    campaign_id=self.campaign_id, n_measurements=self._n_measurements,
                    instrument_seconds=self._instrument_seconds, wall_seconds=self._wall_seconds(),
                    in_flight=len(self._busy), refused=self._counts["refused"], failed=self._counts["failed"],
                    targets=dict(self.target_results),
                )
            )

    # -- shutdown -------------------------------------------------------------------------------
    async def _shutdown(self, status: str, reason: str) -> None:
        for task in self._tasks:
            task.cancel()
        for actor in self._actors.values():
            try:
                await asyncio.wait_for(actor.stop.remote(status == "completed"), timeout=10)
            except Exception:  # noqa: BLE001,S110 — a dead instrument cannot be stopped; the status says why
                pass
            if not self.in_process:
                ray.kill(actor)
        if getattr(self, "_analysis", None) is not None and not self.in_process:
            ray.kill(self._analysis)
        stop = self._composer.stop(status, reason, time.time()) if self._composer is not None else None
        docs = [stop] if stop is not None else []
        try:
            self.store.finish_campaign(self.campaign_id, status, reason, time.monotonic() - self._started, documents=docs)
            self._published(True, docs)
            if self._publisher is not None:
                self._publisher.close()
        except StoreUnavailable:
            # The campaign stays "running" in the store; resume picks it (and its documents) up.
            if self._publisher is not None:
                self._publisher.close(mark=False)
        self._report()

    def _result(self, status: str, reason: str) -> CampaignResult:
        counts: dict[str, int] = {}
        try:
            for a in self.store.attempts(self.campaign_id):
                counts[a.state] = counts.get(a.state, 0) + 1
        except StoreUnavailable:
            pass  # the reason already says the store is unreachable; report what the loop knows
        return CampaignResult(
            campaign_id=self.campaign_id, status=status, stop_reason=reason, targets=dict(self.target_results),
            n_measurements=self._n_measurements, instrument_seconds=self._instrument_seconds,
            wall_seconds=self._wall_seconds(), counts=counts,
        )


def _goal(config: Any) -> float:
    for attribute in ("goal", "probability", "at_least", "at_most"):
        value = getattr(config, attribute, None)
        if value is not None:
            return float(value)
    raise AssertionError(f"target {config.name!r} has no goal")


def _first_line(exc: BaseException) -> str:
    """The first line of what went wrong, from the remote exception when Ray wrapped one."""
    cause = getattr(exc, "cause", None) if isinstance(exc, ray.exceptions.RayTaskError) else None
    if isinstance(cause, BaseException):
        exc = cause
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def run_campaign(
    config: CampaignConfig, store: Store, *, campaign_id: str | None = None, on_progress: Callable[[Progress], None] | None = None
) -> CampaignResult:
    """Start a new campaign and run it to the end (Ray must be initialised)."""
    runner = CampaignRunner(config, store, campaign_id or new_campaign_id(config.name), on_progress=on_progress)
    return asyncio.run(runner.run())


def resume_campaign(
    store: Store, campaign_id: str, *, on_progress: Callable[[Progress], None] | None = None
) -> CampaignResult:
    """Continue a campaign from what its store holds (after a kill, a crash or a budget raise)."""
    from agent.config import parse_campaign

    stored = store.campaign(campaign_id)
    config = parse_campaign(stored.config, f"campaign {campaign_id} (stored configuration)")
    runner = CampaignRunner(config, store, campaign_id, on_progress=on_progress)
    return asyncio.run(runner.run(resume=True))
