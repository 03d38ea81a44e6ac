"""A campaign over samples (a self-driving lab): decide a recipe → guard → synthesise → characterise
the sample with the within-sample planner until its own target or budget → its outcome → next recipe.

Write-ahead at both levels, as everywhere:

- the across-sample decision, the guard's verdict on the recipe (design space, the synthesiser's
  ``check``) and the synthesis dispatch are one commit, before the synthesiser is asked;
- the synthesis is recorded (``measured``: the sample exists, its id from the synthesiser) before the
  sample is characterised; a failed synthesis is recorded ``failed`` and told to the policy;
- the sample step is a campaign of its own in the same store (``<synthesis attempt>-step``, run by
  ``CampaignRunner`` with the sample's id and recipe on every request), with its own attempts;
- its outcome (``SampleOutcome``) is stored with the sample, then recorded as the synthesis attempt's
  interpretation (``analysed``), which puts the sample into this campaign's documents.

On resume, open synthesis attempts are reconciled like measurements (adopted from the synthesiser's
journal, else re-made once), a sample step that was running is resumed (its own reconciliation), and
a sample whose step ended is finished from the store: no synthesis and no measurement is lost or repeated.
Up to ``sample_step.parallel`` samples are characterised at once (each step on its own instruments),
while the synthesiser makes the next one: the policy then decides with the samples in characterisation
counted as ``pending_recipes``. A synthesiser with a batch capacity N (its planning model's
``batch_capacity``) is filled from one decision: the policy is asked for up to N recipes at once
(within the sample budget; the recipes it chose before count as pending for the next ones), each
guarded alone, all recorded in one commit, and the dispatched ones made together in one synthesis
time; their steps then wait for a free characterisation slot (``parallel``). A batch member whose
synthesis outcome is unknown after a kill is adopted from the journal or re-made alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import ray

from agent.answer import Answer, campaign_answer
from agent.campaign import (
    REFUSALS_BEFORE_FALLBACK,
    REFUSALS_BEFORE_STOP,
    CampaignResult,
    CampaignRunner,
    Progress,
    _Decision,
    _Stop,
    how_it_ended,
)
from agent.errors import first_line
from agent.failpoints import failpoint
from agent.fleet import instrument_record
from agent.guard import Guard
from agent.kinds import ANALYSIS_KINDS, INSTRUMENT_KINDS, driver_factory
from agent.map_targets import evaluate_map_targets, goal_of_map_target
from agent.recorder import Recorder
from agent.runtime import LocalHandle, until_sigterm, wait_for_ray
from agent.sample_ledger import SampleLedger
from agent.sample_outcome import OUTCOME_ESTIMATES, failed_outcome, outcome_interpretation, sample_outcome
from agent.sample_step_config import SampleCampaignConfig
from agent.store import Attempt, AttemptState, CampaignStatus, ProposedAttempt, Store, StoreUnavailable, TargetEvaluation
from agent.store.lease import HEARTBEAT_SECONDS, new_owner
from agent.store.samples import Sample
from agent.targets import TargetResult
from agent.versions import package_versions
from instruments.actor import InstrumentActor, InstrumentService
from instruments.protocol import InstrumentUnreachable
from instruments.synthesis import sample_id_for
from instruments.types import Measurement, MeasurementRequest, ParamValue
from policies.baselines import fallback_proposals
from policies.protocol import PlanningGoals, SampleOutcome
from policies.registry import build_policy

#: Statuses of a sample step that a resume continues (it stopped before its own end).
_STEP_RESUMABLE = (CampaignStatus.RUNNING, CampaignStatus.INTERRUPTED)


def step_campaign_id(synthesis_attempt_id: str) -> str:
    """The campaign id of the sample step of the sample a synthesis attempt made."""
    return f"{synthesis_attempt_id}-step"


class SampleCampaignRunner:
    """Runs (or resumes) one campaign over samples. Ray must be initialised (unless ``in_process``)."""

    def __init__(self, config: SampleCampaignConfig, store: Store, campaign_id: str, *,
                 on_progress: Callable[[Progress], None] | None = None, in_process: bool = False) -> None:
        """``in_process``: the synthesiser and every sample step's services in this process (no actors)."""
        self.config, self.store, self.campaign_id = config, store, campaign_id
        self.on_progress, self.in_process = on_progress, in_process
        self.policy = build_policy(config.policy.name, config.design_space, direction="maximize", seed=config.seed,
                                   options=config.policy.options)
        self.ledger = SampleLedger(store, campaign_id)
        self.recorder = Recorder(store, campaign_id)
        self.synthesiser = config.synthesiser.name
        self.actor: Any = None
        self.model: Any = None
        self.guard: Guard | None = None
        self.owner = new_owner()
        self._lease_lost = False
        self._previous_wall = 0.0
        self._started = time.monotonic()
        self._answer: Answer | None = None
        self._steps: dict[asyncio.Task[None], str] = {}  # sample steps running → their synthesis attempt
        self._slots = asyncio.Semaphore(config.sample_step.parallel)  # characterisation slots
        self._targets: dict[str, TargetResult] = {  # campaign-level targets' latest results
            t.name: TargetResult(None, goal_of_map_target(t), False, "not evaluated") for t in config.targets}

    # -- public ---------------------------------------------------------------------------------
    async def run(self, *, resume: bool = False) -> CampaignResult:
        """Run (or resume) the campaign to its end; SIGTERM meanwhile ends it recorded as interrupted."""
        return await until_sigterm(self._run(resume))

    async def _run(self, resume: bool) -> CampaignResult:
        self._open_campaign(resume)
        status, reason = CampaignStatus.FAILED, "interrupted before the loop started"
        heartbeat = asyncio.get_running_loop().create_task(self._heartbeat())
        try:
            await self._start()
            if resume:
                await self._reconcile()
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
        while True:
            await asyncio.sleep(HEARTBEAT_SECONDS)
            with contextlib.suppress(StoreUnavailable):
                if not self.store.renew_lease(self.campaign_id, self.owner):
                    self._lease_lost = True
                    return

    async def _start(self) -> None:
        """The synthesiser up and described, the run's documents open, the ledger rebuilt."""
        synth = self.config.synthesiser
        data_dir = Path(self.store.campaign(self.campaign_id).data_dir) / self.campaign_id
        settings = INSTRUMENT_KINDS[synth.kind].complete(synth.settings, self.config.design_space,
                                                         data_dir / "instruments" / synth.name)
        factory = driver_factory(synth.kind, synth.name, settings)
        if not self.in_process:
            wait_for_ray()  # started in the background while the campaign was being set up (agent/runtime.py)
        self.actor = (LocalHandle(InstrumentService(factory)) if self.in_process
                      else InstrumentActor.options(num_cpus=0).remote(factory))
        await self.actor.health.remote()
        self.model = await self.actor.planning_model.remote()
        data_keys = await self.actor.describe.remote()
        self.guard = Guard(self.config.design_space, {self.synthesiser: self.actor})
        self.store.record_instruments(self.campaign_id, [instrument_record(synth.name, synth.kind, self.model, data_keys)])
        self.recorder.open_run(self.config, {self.synthesiser: data_keys}, self._estimate_units())  # type: ignore[arg-type]
        self.ledger.load()
        if self.config.targets and self.ledger.outcomes:  # a resume: where the targets stood, from the store
            self._evaluate_targets()

    def _estimate_units(self) -> dict[str, str]:
        """What a sample's record in this campaign's run carries: the outcome's and the step analysis' estimates."""
        analysis = self.config.sample_step.analysis
        kind = ANALYSIS_KINDS[analysis.kind]
        return {**kind.estimate_units(kind.settings_model().model_validate(analysis.settings)), **OUTCOME_ESTIMATES}

    # -- resume ---------------------------------------------------------------------------------
    async def _reconcile(self) -> None:
        """Finish what a killed run left open, oldest first, before anything new is decided."""
        for a in list(self.ledger.attempts.values()):
            if a.state == AttemptState.FAILED and a.id not in self.ledger.samples:
                self._record_failed_sample(a.id, a.params, 0.0)  # killed between the failure and its sample row
        for a in self.ledger.open_attempts():
            if a.state in (AttemptState.PROPOSED, AttemptState.VALIDATED):
                await self._guard_and_make(a)
            elif a.state == AttemptState.MEASURED:
                self._spawn_step(a.id, a.params, float(a.instrument_seconds or 0.0))
            elif a.state in (AttemptState.DISPATCHED, AttemptState.UNKNOWN):
                await self._reconcile_synthesis(a)

    async def _guard_and_make(self, a: Attempt) -> None:
        """A recipe decided but not dispatched when the run was killed: the same guard, then made."""
        assert self.guard is not None
        verdict = await self.guard.verdict(a.id, a.params, None, [self.synthesiser], state=a.state)
        for state in verdict.path:
            self.recorder.transition(a.id, state, reason=verdict.reason if state == AttemptState.REFUSED else None,
                                     instrument=verdict.instrument if state == AttemptState.DISPATCHED else None)
        self.ledger.refresh(a.id)
        if verdict.instrument is not None:
            await self._make_and_characterise(a.id, a.params)

    async def _reconcile_synthesis(self, a: Attempt) -> None:
        """A synthesis of unknown outcome: adopt the synthesiser's record, else make it once more."""
        if a.state == AttemptState.DISPATCHED:
            self.recorder.transition(a.id, AttemptState.UNKNOWN, note="outcome unknown after the campaign was interrupted")
        recovered: Measurement | None = await self.actor.recover.remote(a.id)
        if recovered is not None:
            self.recorder.measurement(recovered, reconciled="adopted")
            self.ledger.refresh(a.id)
            self._spawn_step(a.id, a.params, recovered.timing.instrument_seconds)
        elif a.reruns == 0:
            self.recorder.transition(a.id, AttemptState.DISPATCHED, reconciled="rerun", rerun=True,
                                     note="re-made once: no synthesis was recorded")
            await self._make_and_characterise(a.id, a.params)
        else:
            self.recorder.transition(a.id, AttemptState.FAILED, reason="outcome unknown again after a re-run; not repeated")
            self._record_failed_sample(a.id, a.params, 0.0)

    # -- the loop -------------------------------------------------------------------------------
    async def _loop(self) -> tuple[CampaignStatus, str]:
        """Make samples while fewer than ``parallel`` are being characterised; on a stop rule, let the
        samples in characterisation finish (their synthesis is spent), then stop."""
        while True:
            self._report()
            stop = self._check_stop()
            if stop is None and len(self._steps) < self.config.sample_step.parallel:
                await self._next_batch()
                continue
            if not self._steps:
                assert stop is not None
                return stop
            done, _ = await asyncio.wait(list(self._steps), return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                self._steps.pop(task)
                task.result()  # a step that must stop the campaign (``_Stop``, the store) stops it here

    def _check_stop(self) -> tuple[CampaignStatus, str] | None:
        b, ledger = self.config.budgets, self.ledger
        if b.max_samples is not None and ledger.n_samples >= b.max_samples:
            return CampaignStatus.BUDGET_EXHAUSTED, f"budget: max_samples ({b.max_samples}) reached"
        if b.max_synthesis_seconds is not None and ledger.synthesis_seconds >= b.max_synthesis_seconds:
            return CampaignStatus.BUDGET_EXHAUSTED, (f"budget: max_synthesis_seconds ({b.max_synthesis_seconds:g} s) "
                                                     f"reached ({ledger.synthesis_seconds:g} s)")
        if b.max_instrument_seconds is not None and ledger.instrument_seconds >= b.max_instrument_seconds:
            return CampaignStatus.BUDGET_EXHAUSTED, (f"budget: max_instrument_seconds ({b.max_instrument_seconds:g} s) "
                                                     f"reached ({ledger.instrument_seconds:g} s)")
        if b.max_wall_seconds is not None and self._wall_seconds() >= b.max_wall_seconds:
            return CampaignStatus.BUDGET_EXHAUSTED, f"budget: max_wall_seconds ({b.max_wall_seconds:g} s) reached"
        if ledger.refused_in_a_row >= REFUSALS_BEFORE_STOP:
            return CampaignStatus.FAILED, f"{ledger.refused_in_a_row} recipes in a row were refused; see the decision log"
        if self._lease_lost:
            return CampaignStatus.INTERRUPTED, "another process took the campaign over (this one's lease went stale)"
        if self.config.stop_on_targets and self._targets and all(r.met for r in self._targets.values()):
            return CampaignStatus.COMPLETED, "targets met: " + ", ".join(self._targets)
        return None

    def _batch_size(self) -> int:
        """Recipes to decide now: the synthesiser's batch capacity, within what the sample budget leaves."""
        size = int(getattr(self.model, "batch_capacity", 1) or 1)
        if self.config.budgets.max_samples is not None:
            size = min(size, self.config.budgets.max_samples - self.ledger.n_samples)
        return max(size, 1)

    def _decide(self, seq: int, n: int) -> _Decision:
        """The across-sample policy's next ``n`` recipes; space-filling ones, with the cause, if it fails
        or if its recipes keep being refused."""
        started = time.perf_counter()
        if self.ledger.refused_in_a_row >= REFUSALS_BEFORE_FALLBACK:
            error = f"{self.ledger.refused_in_a_row} recipes in a row were refused"
        else:
            try:
                context = self.ledger.planning_context({self.synthesiser: self.model}, PlanningGoals())
                proposals = self.policy.plan(context, n)
                if len(proposals) != n:
                    raise ValueError(f"policy returned {len(proposals)} proposals, asked for {n}")
                return _Decision(proposals, False, None, time.perf_counter() - started)
            except Exception as exc:  # noqa: BLE001 — any policy failure falls back, recorded with its cause
                error = f"{type(exc).__name__}: {exc}"
        proposals = fallback_proposals(self.config.design_space, n, self.config.seed, seq, error)
        return _Decision(proposals, True, error, time.perf_counter() - started)

    async def _next_batch(self) -> None:
        """Decide a batch of recipes (one, unless the synthesiser has a batch capacity), guard each, commit
        the decision with every attempt (refused, or dispatched to the synthesiser) at once, make them."""
        assert self.guard is not None
        seq, dseq = self.ledger.next_seq, self.ledger.next_decision
        decision = self._decide(seq, self._batch_size())
        attempts: list[ProposedAttempt] = []
        for i, proposal in enumerate(decision.proposals):
            attempt_id = f"{self.campaign_id}-{seq + i:05d}"
            verdict = await self.guard.verdict(attempt_id, proposal.params, None, [self.synthesiser])
            attempts.append(ProposedAttempt(attempt_id, seq + i, proposal.params, None, path=verdict.path,
                                            reason=verdict.reason, instrument=verdict.instrument))
        n_history = sum(bool(o.label_probabilities) for o in self.ledger.outcomes)
        self.recorder.decision(
            dseq, decision.proposals, attempts, policy=decision.proposals[0].policy, fallback=decision.fallback,
            error=decision.error, seed=self.config.seed, n_history=n_history,
            n_pending=len(self.ledger.attempts) - n_history, seconds=decision.seconds,
        )
        self.ledger.next_seq, self.ledger.next_decision = seq + len(attempts), dseq + 1
        for a in attempts:
            self.ledger.refresh(a.attempt_id)
        failpoint("after-propose")
        batch = {a.attempt_id: a.params for a in attempts if a.instrument is not None}
        # Refusals in a row: those after the batch's last dispatched recipe (all of them if none was).
        last = max((i for i, a in enumerate(attempts) if a.instrument is not None), default=None)
        self.ledger.refused_in_a_row = (self.ledger.refused_in_a_row + len(attempts) if last is None
                                        else len(attempts) - 1 - last)
        for attempt_id, recipe in batch.items():
            await self._make_and_characterise(attempt_id, recipe, batch if len(batch) > 1 else None)

    # -- synthesis ------------------------------------------------------------------------------
    async def _make_and_characterise(self, attempt_id: str, recipe: dict[str, ParamValue],
                                     batch: dict[str, dict[str, ParamValue]] | None = None) -> None:
        made = await self._synthesise(attempt_id, recipe, batch)
        if made is not None:
            self._spawn_step(attempt_id, recipe, made.timing.instrument_seconds)

    def _spawn_step(self, attempt_id: str, recipe: dict[str, ParamValue], synthesis_seconds: float) -> None:
        """Characterise the sample as a task of the loop: the next recipe is decided and made meanwhile."""
        task = asyncio.get_running_loop().create_task(self._characterise(attempt_id, recipe, synthesis_seconds))
        self._steps[task] = attempt_id

    async def _synthesise(self, attempt_id: str, recipe: dict[str, ParamValue],
                          batch: dict[str, dict[str, ParamValue]] | None = None) -> Measurement | None:
        """Make the sample (the attempt is ``dispatched``), alone or as a member of ``batch`` (attempt id
        → recipe of every member); its record, or None if the synthesis failed."""
        sequence = attempt_id.removeprefix(f"{self.campaign_id}-")
        request = MeasurementRequest(attempt_id=attempt_id, params=recipe, recipe=recipe,
                                     noise_key=f"{self.config.seed}:{sequence}:", batch=batch)
        pending = self.actor.measure.remote(request)
        failpoint("after-synthesis-dispatch")
        try:
            made: Measurement = await pending
        except ray.exceptions.RayActorError as exc:
            self.recorder.transition(attempt_id, AttemptState.UNKNOWN, note=f"synthesiser actor died: {first_line(exc)}")
            raise _Stop(CampaignStatus.FAILED, f"synthesiser died during {attempt_id}; resume to reconcile") from None
        except InstrumentUnreachable as exc:
            self.recorder.transition(attempt_id, AttemptState.UNKNOWN, note=f"synthesiser unreachable: {first_line(exc)}")
            raise _Stop(CampaignStatus.FAILED, f"synthesiser unreachable during {attempt_id}; resume to reconcile") from None
        except Exception as exc:  # noqa: BLE001 — a failed synthesis is information: recorded, the campaign goes on
            self.recorder.transition(attempt_id, AttemptState.FAILED, reason=f"synthesis failed: {first_line(exc)}")
            # Its share of the synthesis time (a batch's members share one): the expected time, as none is reported.
            expected = self.model.expected_seconds if self.model else 0.0
            self._record_failed_sample(attempt_id, recipe, expected / (len(batch) if batch else 1))
            return None
        failpoint("before-record-measurement")
        self.recorder.measurement(made)
        self.ledger.refresh(attempt_id)
        failpoint("after-synthesised")
        return made

    def _record_failed_sample(self, attempt_id: str, recipe: dict[str, ParamValue], seconds: float) -> None:
        """The policy is told of a failed synthesis through its outcome (status ``failed``, no label)."""
        outcome = failed_outcome(sample_id_for(attempt_id), recipe, seconds)
        self.store.record_sample(self.campaign_id, outcome.sample_id, attempt_id, recipe, step_campaign_id=None,
                                 status=outcome.status, outcome=outcome.model_dump(mode="json"), seconds=outcome.seconds)
        self.ledger.refresh(attempt_id)

    # -- the sample step ------------------------------------------------------------------------
    async def _characterise(self, attempt_id: str, recipe: dict[str, ParamValue], synthesis_seconds: float) -> None:
        """Run (or resume) the sample's step to its end, store its outcome, record it in this campaign."""
        sample_id, step_id = sample_id_for(attempt_id), step_campaign_id(attempt_id)
        self.store.record_sample(self.campaign_id, sample_id, attempt_id, recipe, step_campaign_id=step_id)
        self.ledger.refresh(attempt_id)
        sample = self.ledger.samples[attempt_id]
        if sample.outcome is None:
            async with self._slots:  # at most ``parallel`` steps measure at once (a batch may make more samples)
                await self._run_step(step_id, sample_id, recipe)
            outcome = sample_outcome(self.store, step_id, sample_id, recipe, synthesis_seconds)
            self.store.finish_sample(sample_id, outcome.status, outcome.model_dump(mode="json"), outcome.seconds)
            failpoint("after-sample-finished")
        else:
            outcome = SampleOutcome.model_validate(sample.outcome)
        self.ledger.step_instrument_seconds[step_id] = self.store.totals(step_id)[1]
        interpretation = outcome_interpretation(attempt_id, outcome, step_id, self.config.sample_step.analysis.kind)
        self.recorder.interpretation(interpretation, self._evaluation())
        self.ledger.refresh(attempt_id)

    async def _run_step(self, step_id: str, sample_id: str, recipe: dict[str, ParamValue]) -> None:
        """The within-sample loop: ``CampaignRunner`` on the step's campaign (resumed if a run began)."""
        try:
            status = self.store.campaign(step_id).status
        except KeyError:
            status = None
        if status is not None and status not in _STEP_RESUMABLE and not self._resumable_failure(step_id):
            return  # the step ended before the kill: only its outcome is missing
        config = self.config.step_config(f"{self.config.name}.step", sample_id, self.campaign_id)
        runner = CampaignRunner(config, self.store, step_id, in_process=self.in_process, recipe=recipe)
        runner.noise_root = self.campaign_id  # the same seed gives the same data, whatever the campaign id
        result = await runner.run(resume=status is not None)
        if result.status == CampaignStatus.INTERRUPTED or self._resumable_failure(step_id):
            raise _Stop(CampaignStatus(result.status), f"sample step {step_id} stopped: {result.stop_reason}")

    def _resumable_failure(self, step_id: str) -> bool:
        """A step that failed in a way a resume reconciles (a dead actor, an unreachable instrument, the store)."""
        step = self.store.campaign(step_id)
        return step.status == CampaignStatus.FAILED and "resume" in (step.stop_reason or "")

    def _evaluate_targets(self) -> dict[str, TargetResult]:
        """The campaign-level targets on the store's finished samples, in the order they were made
        (so a resume, or a reader of the store, computes the same values)."""
        if self.config.targets:
            outcomes = [SampleOutcome.model_validate(s.outcome) for s in self.store.samples(self.campaign_id)
                        if s.outcome is not None]
            self._targets = evaluate_map_targets(self.config.targets, self.config.design_space, outcomes,  # type: ignore[arg-type]
                                                 self.config.seed)
        return self._targets

    def _evaluation(self) -> TargetEvaluation:
        """The targets evaluated with the newest outcome included: logged in the commit that records it."""
        results = self._evaluate_targets()
        return TargetEvaluation(n_measurements=self.ledger.n_samples, instrument_seconds=self.ledger.instrument_seconds,
                                wall_seconds=self._wall_seconds(), results={k: v.as_dict() for k, v in results.items()},
                                all_met=bool(results) and all(r.met for r in results.values()))

    # -- progress, shutdown -----------------------------------------------------------------------
    def _wall_seconds(self) -> float:
        return self._previous_wall + time.monotonic() - self._started

    def _report(self) -> None:
        if self.on_progress is not None:
            self.on_progress(Progress(
                campaign_id=self.campaign_id, n_measurements=self.ledger.n_samples,
                instrument_seconds=self.ledger.instrument_seconds, wall_seconds=self._wall_seconds(), in_flight=0,
                refused=self.ledger.refused, failed=self.ledger.failed, targets=dict(self._targets),
            ))

    async def _shutdown(self, status: CampaignStatus, reason: str) -> None:
        for task in self._steps:  # a step cut short stays resumable (its own records say where it was)
            task.cancel()
        if self._steps:
            await asyncio.gather(*self._steps, return_exceptions=True)
        if self.actor is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.actor.stop.remote(status == CampaignStatus.COMPLETED), timeout=10)
            if not self.in_process:
                ray.kill(self.actor)
        with contextlib.suppress(StoreUnavailable):
            self._answer = campaign_answer(self.store, self.campaign_id)
        self.recorder.finish(status, reason, time.monotonic() - self._started, answer=self._answer)
        if not self._lease_lost:
            with contextlib.suppress(StoreUnavailable):
                self.store.release_lease(self.campaign_id, self.owner)
        self._report()

    def _result(self, status: CampaignStatus, reason: str) -> CampaignResult:
        counts: dict[str, int] = {}
        with contextlib.suppress(StoreUnavailable):
            for a in self.store.attempts(self.campaign_id):
                counts[a.state.value] = counts.get(a.state.value, 0) + 1
        return CampaignResult(
            campaign_id=self.campaign_id, status=status.value, stop_reason=reason,
            targets=dict(self._targets),
            n_measurements=self.ledger.n_samples, instrument_seconds=self.ledger.instrument_seconds,
            wall_seconds=self._wall_seconds(), counts=counts, answer=self._answer,
        )

    # -- reading ----------------------------------------------------------------------------------
    def samples(self) -> list[Sample]:
        return self.store.samples(self.campaign_id)


def run_sample_campaign(config: SampleCampaignConfig, store: Store, *, campaign_id: str,
                        on_progress: Callable[[Progress], None] | None = None, resume: bool = False,
                        in_process: bool = False) -> CampaignResult:
    """Run (or resume) a campaign over samples to its end (Ray must be initialised unless ``in_process``)."""
    runner = SampleCampaignRunner(config, store, campaign_id, on_progress=on_progress, in_process=in_process)
    return asyncio.run(runner.run(resume=resume))
