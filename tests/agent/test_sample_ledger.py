"""What the across-sample policy is told, rebuilt from the store: finished samples with their soft
labels (failed ones too), recipes in flight as pending, and for space-filling policies a count of
every recipe decided so the sequence moves on."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.sample_ledger import SampleLedger
from agent.store import AttemptState, ProposedAttempt, Store
from policies.baselines import SobolPolicy
from policies.protocol import PlanningGoals, SampleOutcome
from policies.space import DesignSpace

pytestmark = pytest.mark.timeout(60)


def test_the_policy_sees_outcomes_pending_recipes_and_a_moving_sequence(tmp_path: Path) -> None:
    with Store(f"sqlite:///{tmp_path / 's.db'}") as store:
        store.create_campaign("c", "sdl", {"name": "sdl"}, 1, str(tmp_path), {})
        paths = [(AttemptState.VALIDATED, AttemptState.DISPATCHED)] * 3 + [(AttemptState.REFUSED,)]
        store.record_decision("c", 0, policy="sobol", fallback=False, error=None, seed=1, n_history=0, n_pending=0,
                              reasons=[{}] * 4, decision_seconds=0.0, versions={}, attempts=[
                                  ProposedAttempt(f"c-{i}", i, {"x": 0.1 * i}, path=p, instrument="furnace" if i < 3 else None)
                                  for i, p in enumerate(paths)])
        answered = SampleOutcome(sample_id="c-0-sample", recipe={"x": 0.0}, label_probabilities={"a": 0.7, "b": 0.2})
        failed = SampleOutcome(sample_id="c-1-sample", recipe={"x": 0.1}, status="failed")
        for i, outcome in enumerate((answered, failed)):
            store.record_sample("c", outcome.sample_id, f"c-{i}", outcome.recipe, step_campaign_id=None,
                                status=outcome.status, outcome=outcome.model_dump(mode="json"))
        ledger = SampleLedger(store, "c")
        ledger.load()
        context = ledger.planning_context({}, PlanningGoals())
        assert list(context.samples) == [answered, failed]
        assert list(context.pending_recipes) == [{"x": 0.2}]  # in flight; the refused one is no sample
        assert [o.value for o in context.history] == [0.7]  # the most probable label's probability
        assert len(context.history) + len(context.pending) == 4  # every decided recipe moves a sequence on
        assert (ledger.n_samples, ledger.refused) == (3, 1)
        space = DesignSpace.model_validate({"parameters": [{"name": "x", "type": "continuous", "low": 0, "high": 1}]})
        policy = SobolPolicy(space, seed=1)
        assert policy.plan(context, 1)[0].reason["index"] == 4
