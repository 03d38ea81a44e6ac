"""What a campaign over samples knows: its synthesis attempts, its samples and their outcomes, what
they cost — rebuilt from the store when a run starts (the store is the truth), then kept in step by
the loop. Writes nothing (``agent/recorder.py`` and the store's sample records do).
"""

from __future__ import annotations

from collections.abc import Mapping

from agent.store import Attempt, AttemptState, Store, UnknownCampaign
from agent.store.samples import Sample
from instruments.types import ParamValue
from policies.protocol import Observation, PlanningContext, PlanningGoals, SampleOutcome


class SampleLedger:
    """The loop's memory of one campaign over samples."""

    def __init__(self, store: Store, campaign_id: str) -> None:
        self.store, self.campaign_id = store, campaign_id
        self.attempts: dict[str, Attempt] = {}  # synthesis attempts by id, in decision order
        self.samples: dict[str, Sample] = {}  # by synthesis attempt id
        self.outcomes: list[SampleOutcome] = []  # finished samples (failed syntheses included), in order
        self.step_instrument_seconds: dict[str, float] = {}  # step campaign → its instrument seconds
        self.next_seq = 0
        self.next_decision = 0
        self.refused_in_a_row = 0

    def load(self) -> None:
        """Rebuild everything from the store."""
        self.attempts = {a.id: a for a in self.store.attempts(self.campaign_id)}
        self.samples = {s.synthesis_attempt_id: s for s in self.store.samples(self.campaign_id)}
        self.outcomes = [SampleOutcome.model_validate(s.outcome) for s in self.samples.values() if s.outcome is not None]
        self.step_instrument_seconds = {
            s.step_campaign_id: self.store.totals(s.step_campaign_id)[1]
            for s in self.samples.values() if s.step_campaign_id is not None and self._step_exists(s.step_campaign_id)}
        self.next_seq, self.next_decision = self.store.next_seq(self.campaign_id)

    def _step_exists(self, step_campaign_id: str) -> bool:
        try:
            self.store.campaign(step_campaign_id)
        except UnknownCampaign:
            return False
        return True

    def refresh(self, attempt_id: str) -> None:
        """Re-read one synthesis attempt and its sample after the loop wrote them."""
        self.attempts[attempt_id] = self.store.attempt(attempt_id)
        for s in self.store.samples(self.campaign_id):
            if s.synthesis_attempt_id == attempt_id:
                self.samples[attempt_id] = s
                if s.outcome is not None and all(o.sample_id != s.sample_id for o in self.outcomes):
                    self.outcomes.append(SampleOutcome.model_validate(s.outcome))

    # -- counts ---------------------------------------------------------------------------------------
    @property
    def n_samples(self) -> int:
        """Synthesis attempts that reached the synthesiser (refused recipes are no samples)."""
        return sum(a.state not in (AttemptState.REFUSED, AttemptState.PROPOSED, AttemptState.VALIDATED)
                   for a in self.attempts.values())

    @property
    def synthesis_seconds(self) -> float:
        """Synthesis time spent, s: the recorded syntheses', and the failed ones' as their samples say
        (the synthesiser's expected time: a failed synthesis reports none)."""
        failed = sum(s.seconds for s in self.samples.values() if s.step_campaign_id is None)
        return failed + sum(a.instrument_seconds or 0.0 for a in self.attempts.values())

    @property
    def instrument_seconds(self) -> float:
        """Characterisation time over every sample step, s."""
        return sum(self.step_instrument_seconds.values())

    @property
    def refused(self) -> int:
        return sum(a.state == AttemptState.REFUSED for a in self.attempts.values())

    @property
    def failed(self) -> int:
        return sum(a.state == AttemptState.FAILED for a in self.attempts.values())

    def open_attempts(self) -> list[Attempt]:
        """Synthesis attempts not ended: decided, being made, made but not fully characterised."""
        ended = (AttemptState.ANALYSED, AttemptState.REFUSED, AttemptState.FAILED)
        return [a for a in self.attempts.values() if a.state not in ended]

    # -- what the across-sample policy sees --------------------------------------------------------------
    def planning_context(self, instrument_models: Mapping[str, object], goals: PlanningGoals) -> PlanningContext:
        """``samples``: the finished samples' outcomes; ``pending_recipes``: recipes decided and not
        finished. For objective policies (Sobol, random, BO) ``history`` holds one observation per
        sample with a label — the probability of its most probable label — and ``pending`` every
        other decided recipe (failed, refused, in flight), so space-filling sequences move on."""
        finished = {o.sample_id: o for o in self.outcomes}
        history: list[Observation] = []
        pending: list[dict[str, ParamValue]] = []
        pending_recipes: list[dict[str, ParamValue]] = []
        for a in self.attempts.values():
            sample = self.samples.get(a.id)
            outcome = finished.get(sample.sample_id) if sample is not None else None
            if outcome is not None and outcome.label_probabilities:
                history.append(Observation(params=a.params, value=max(outcome.label_probabilities.values()),
                                           attempt_id=a.id))
                continue
            pending.append(a.params)
            if outcome is None and a.state not in (AttemptState.REFUSED, AttemptState.FAILED):
                pending_recipes.append(a.params)
        return PlanningContext(history=history, pending=pending, instrument_models=dict(instrument_models),
                               goals=goals, samples=list(self.outcomes), pending_recipes=pending_recipes)
