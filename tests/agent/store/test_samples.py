"""The samples of a campaign over samples in the store, on SQLite and PostgreSQL: written once per
sample (a replay is a no-op), finished with the outcome, read in the order they were made."""

from __future__ import annotations

import uuid

import pytest

from agent.store import AttemptState, ProposedAttempt, Store
from agent.store.samples import CHARACTERISING

pytestmark = pytest.mark.timeout(60)


def _campaign(store: Store, n: int) -> tuple[str, list[str]]:
    cid = f"s-{uuid.uuid4().hex[:8]}"  # the PostgreSQL database is shared by the session
    store.create_campaign(cid, "sdl", {"name": "sdl", "sample_step": {}}, 1, "/tmp/data", {})
    attempts = [ProposedAttempt(f"{cid}-{i:05d}", i, {"ti": 1.0, "anneal_c": 500.0 + i}, path=(AttemptState.VALIDATED,))
                for i in range(n)]
    store.record_decision(cid, 0, policy="sobol", fallback=False, error=None, seed=1, n_history=0, n_pending=0,
                          reasons=[{}] * n, decision_seconds=0.0, versions={}, attempts=attempts)
    return cid, [a.attempt_id for a in attempts]


def test_a_sample_is_recorded_once_and_finished_with_its_outcome(store_url: str) -> None:
    with Store(store_url) as store:
        cid, (first, second, third) = _campaign(store, 3)
        # Made out of order on purpose: read back in the order of their synthesis attempts.
        assert store.record_sample(cid, f"{third}-sample", third, {"ti": 1.0}, step_campaign_id=f"{third}-step")
        assert store.record_sample(cid, f"{first}-sample", first, {"ti": 1.0, "anneal_c": 500.0}, step_campaign_id=None,
                                   status="failed", outcome={"status": "failed"}, seconds=3600.0)
        assert not store.record_sample(cid, f"{third}-sample", third, {"ti": 0.5}, step_campaign_id=None)  # replay: no-op
        samples = store.samples(cid)
        assert [s.synthesis_attempt_id for s in samples] == [first, third]
        assert samples[0].finished and samples[0].seconds == 3600.0 and samples[0].outcome == {"status": "failed"}
        assert samples[1].status == CHARACTERISING and not samples[1].finished and samples[1].recipe == {"ti": 1.0}
        store.finish_sample(f"{third}-sample", "answered", {"status": "answered", "label_probabilities": {"a": 0.9}}, 5000.0)
        done = store.samples(cid)[1]
        assert done.finished and done.status == "answered" and done.outcome["label_probabilities"] == {"a": 0.9}  # type: ignore[index]
        with pytest.raises(KeyError, match="no sample"):
            store.finish_sample(f"{second}-sample", "answered", {}, 0.0)
