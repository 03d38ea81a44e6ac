"""The ledger: what the loop knows, rebuilt from the store exactly as the loop had it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from agent.ledger import CampaignLedger, Prefix
from agent.store import AttemptState, ProposedAttempt, Store
from analysis.protocol import Estimate, Interpretation
from instruments.types import Measurement, Timing
from policies.protocol import PlanningGoals

pytestmark = pytest.mark.timeout(60)

DISPATCHED = (AttemptState.VALIDATED, AttemptState.DISPATCHED)


def _measurement(attempt_id: str, x: float) -> Measurement:
    return Measurement(attempt_id=attempt_id, instrument="r", params={"x": x}, sample_id="s",
                       data={"y": np.array(2 * x)}, timing=Timing(exposure_seconds=10.0))


def _interpretation(attempt_id: str, value: float | None, valid: bool = True) -> Interpretation:
    return Interpretation(attempt_id=attempt_id, sample_id="s", analysis="scalar",
                          estimates={"y": Estimate(value=value, sigma=0.1)}, valid=valid)


@pytest.fixture
def store(tmp_path: Path) -> Store:
    """Campaign c: a0 analysed, a1 analysed but invalid, a2 measured, a3 dispatched, a4 refused, a5 failed."""
    s = Store(f"sqlite:///{tmp_path}/l.db")
    s.create_campaign("c", "c", {}, 0, str(tmp_path), {})
    s.record_decision("c", 0, policy="p", fallback=False, error=None, seed=0, n_history=0, n_pending=0, reasons=[{}] * 6,
                      decision_seconds=0.0, versions={}, attempts=[
                          *(ProposedAttempt(f"c-{i}", i, {"x": float(i)}, "s", DISPATCHED, instrument="r") for i in range(4)),
                          ProposedAttempt("c-4", 4, {"x": 4.0}, "s", (AttemptState.REFUSED,), reason="no"),
                          ProposedAttempt("c-5", 5, {"x": 5.0}, "s", DISPATCHED, instrument="r"),
                      ])
    for i in range(3):
        s.record_measurement("c", _measurement(f"c-{i}", float(i)))
    s.record_interpretation("c", _interpretation("c-0", 0.0))
    s.record_interpretation("c", _interpretation("c-1", None, valid=False))
    s.transition("c-5", AttemptState.FAILED, reason="instrument error")
    yield s
    s.close()


def test_load_rebuilds_history_pending_counts_and_sequence(store: Store) -> None:
    ledger = CampaignLedger(store, "c", objective="y", sample="s")
    open_attempts = ledger.load()
    assert [a.id for a in open_attempts] == ["c-2", "c-3"]
    assert [o.attempt_id for o in ledger.history] == ["c-0"]  # the invalid one is never trained on
    assert ledger.open == {"c-2": {"x": 2.0}, "c-3": {"x": 3.0}}
    assert (ledger.refused, ledger.failed, ledger.n_measurements, ledger.instrument_seconds) == (1, 1, 3, 30.0)
    assert (ledger.next_seq, ledger.next_decision) == (6, 1)


def test_planning_context_tells_pending_from_unmeasured(store: Store) -> None:
    ledger = CampaignLedger(store, "c", objective="y", sample="s")
    ledger.load()
    goals = PlanningGoals(best_probability=0.95)
    context = ledger.planning_context({"r": None}, goals)
    assert [m.attempt_id for m in context.measurements] == ["c-0", "c-1", "c-2"]
    assert list(context.pending) == [{"x": 2.0}, {"x": 3.0}]  # decided, not analysed: an objective policy's pending
    assert list(context.unmeasured) == [{"x": 3.0}]  # decided, not measured: beside the measurements
    assert context.goals is goals and dict(context.instrument_models) == {"r": None}


def test_what_the_loop_tells_it_keeps_it_in_step_with_the_store(store: Store) -> None:
    ledger = CampaignLedger(store, "c", objective="y", sample="s")
    ledger.load()
    ledger.measurements_of("s")  # loaded once; later measurements are appended, not re-read
    store.record_measurement("c", _measurement("c-3", 3.0))
    ledger.measured(_measurement("c-3", 3.0))
    ledger.ingest(_interpretation("c-2", 4.0), {"x": 2.0})
    assert [m.attempt_id for m in ledger.measurements_of("s")] == [m.attempt_id for m in store.measurements("c", "s")]
    assert ledger.pending() == [{"x": 3.0}] and [o.value for o in ledger.history] == [0.0, 4.0]
    ledger.decided("c-6", {"x": 6.0})
    ledger.ended("c-6", AttemptState.REFUSED)
    assert ledger.pending() == [{"x": 3.0}] and ledger.refused == 2


def test_a_planning_context_holds_the_history_as_it_was_when_taken() -> None:
    """The context's history and interpretations are O(1) views of the ledger's append-only lists
    (copies cost O(k) per decision): what is appended later is not in a view taken before."""
    items = [1, 2, 3]
    view = Prefix(items)
    items.append(4)
    assert len(view) == 3 and list(view) == [1, 2, 3] and view == [1, 2, 3] and view == (1, 2, 3) and view != [1, 2, 3, 4]
    assert view[-1] == 3 and view[0] == 1 and view[1:] == [2, 3] and list(reversed(view)) == [3, 2, 1]
    assert 4 not in view and 2 in view and view.index(3) == 2
    with pytest.raises(IndexError):
        view[3]
    with pytest.raises(IndexError):
        view[-4]
    assert [i for i in view if i > 1][-1:] == [3] and not Prefix([])
