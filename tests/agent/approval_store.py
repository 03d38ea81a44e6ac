"""A store holding a manual-approval campaign whose proposals await a person (no Ray, no loop)."""

from __future__ import annotations

import time
from pathlib import Path

from agent.config import parse_campaign
from agent.documents import composer_for
from agent.store import AttemptState, ProposedAttempt, Store
from tests.agent.campaign_files import quickstart

WAITING = (AttemptState.VALIDATED, AttemptState.AWAITING_APPROVAL)


def waiting_campaign(store: Store, tmp_path: Path, n: int = 3) -> str:
    """Create the campaign (run open, as the loop leaves it) with ``n`` attempts awaiting approval; its id."""
    config = parse_campaign(quickstart(tmp_path, approval={"mode": "manual"}))
    cid = f"gate-{time.monotonic_ns()}"
    store.create_campaign(cid, config.name, config.stored_form(), config.seed, str(tmp_path), {})
    composer, _ = composer_for(store, cid)
    store.add_documents(cid, composer.open(config=config.stored_form(), started=time.time(), data_keys={},
                                           estimates={"yield": ""}, previous_start=None,
                                           scan_id=store.campaign_number(cid)))
    attempts = [ProposedAttempt(f"{cid}-{i:05d}", i, {"temperature": 400.0 + i, "time": 10.0}, path=WAITING,
                                reason="manual approval: every proposal waits for a person") for i in range(n)]
    store.record_decision(cid, 0, policy="sobol", fallback=False, error=None, seed=0, n_history=0, n_pending=0,
                          reasons=[{"acquisition": "sobol"}] * n, decision_seconds=0.0, versions={}, attempts=attempts)
    return cid
