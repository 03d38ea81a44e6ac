"""The store against SQLite and PostgreSQL: lifecycle, idempotency, raw data, failures."""

from __future__ import annotations

import sqlite3
import threading
import time
import uuid

import numpy as np
import pytest

from agent.store import (
    InvalidTransition,
    ProposedAttempt,
    Store,
    StoreUnavailable,
    TargetEvaluation,
    UnknownCampaign,
)
from analysis.protocol import Estimate, Interpretation
from instruments.types import Measurement, Timing
from tests.agent.store.rows import log_target_evaluation

pytestmark = pytest.mark.timeout(60)


def _campaign(store: Store, n: int = 2) -> tuple[str, list[str]]:
    cid = f"c-{uuid.uuid4().hex[:8]}"  # the PostgreSQL database is shared by the session
    store.create_campaign(cid, "test", {"name": "test"}, 3, "/tmp/data", {"numpy": np.__version__})
    attempts = [ProposedAttempt(f"{cid}-{i:05d}", i, {"x": 0.1 * i, "kind": "a"}) for i in range(n)]
    store.record_decision(
        cid, 0, policy="sobol", fallback=False, error=None, seed=3, n_history=0, n_pending=0,
        reasons=[{"acquisition_value": float("nan"), "phase": "initial"}] * n, decision_seconds=0.01,
        versions={}, attempts=attempts,
    )
    return cid, [a.attempt_id for a in attempts]


def _measurement(attempt_id: str, value: float, sigma: float = 0.1) -> Measurement:
    return Measurement(
        attempt_id=attempt_id, instrument="inst", params={"x": 0.1, "kind": "a"},
        data={"y": np.array(value), "curve": np.array([1.0, np.inf, -np.inf, np.nan])},
        sigma={"y": np.array(sigma)}, timing=Timing(exposure_seconds=10, motion_seconds=2, overhead_seconds=1),
    )


def test_lifecycle_is_recorded_in_order_and_idempotent(store_url: str) -> None:
    with Store(store_url) as store:
        c1, (a, b) = _campaign(store)
        assert store.transition(a, "validated") is True
        assert store.transition(a, "validated") is False  # replay: no-op
        store.transition(a, "dispatched", instrument="inst")
        assert store.record_measurement(c1, _measurement(a, 0.5)) is True
        assert store.record_measurement(c1, _measurement(a, 0.7)) is False  # a replay never overwrites
        interp = Interpretation(
            attempt_id=a, sample_id=a, analysis="scalar", estimates={"y": Estimate(value=0.5, sigma=0.1)}, valid=True
        )
        assert store.record_interpretation(c1, interp) is True
        assert store.record_interpretation(c1, interp) is False
        store.transition(b, "refused", reason="x=9 is outside [0, 1]")

        assert [s for _, s, _ in store.transitions(a)] == ["proposed", "validated", "dispatched", "measured", "analysed"]
        states = {x.id: x.state for x in store.attempts(c1)}
        assert states == {a: "analysed", b: "refused"}
        assert store.attempt(b).reason == "x=9 is outside [0, 1]"
        assert store.totals(c1) == (1, 13.0)
        assert store.measurement(a).scalar("y") == 0.5  # type: ignore[union-attr]
        assert store.interpretations(c1)[0].estimates["y"].value == 0.5
        # NaN in a decision reason is stored as null, not rejected.
        assert store.decisions(c1)[0].reasons[0]["acquisition_value"] is None


def test_raw_arrays_are_kept_bit_exact_including_non_finite(store_url: str) -> None:
    with Store(store_url) as store:
        c1, (a, _) = _campaign(store)
        store.transition(a, "validated")
        store.transition(a, "dispatched")
        store.record_measurement(c1, _measurement(a, float("nan")))
        m = store.measurement(a)
        assert m is not None
        assert np.isnan(m.data["y"])
        np.testing.assert_array_equal(m.data["curve"], np.array([1.0, np.inf, -np.inf, np.nan]))


def test_lifecycle_edges_are_enforced(store_url: str) -> None:
    with Store(store_url) as store:
        c1, (a, _) = _campaign(store)
        with pytest.raises(InvalidTransition, match="proposed → measured"):
            store.record_measurement(c1, _measurement(a, 1.0))
        with pytest.raises(InvalidTransition):
            store.transition(a, "analysed")
        store.transition(a, "refused", reason="no")
        with pytest.raises(InvalidTransition):
            store.transition(a, "validated")


def test_decisions_are_idempotent_on_their_sequence_number(store_url: str) -> None:
    with Store(store_url) as store:
        c1, _ = _campaign(store)
        again = store.record_decision(
            c1, 0, policy="sobol", fallback=False, error=None, seed=3, n_history=0, n_pending=0, reasons=[],
            decision_seconds=0.0, versions={}, attempts=[ProposedAttempt(f"{c1}-00000", 0, {"x": 9.0})],
        )
        assert again == store.decisions(c1)[0].id
        assert len(store.attempts(c1)) == 2
        assert store.next_seq(c1) == (2, 1)


def test_campaign_lifecycle_and_target_log(store_url: str) -> None:
    with Store(store_url) as store:
        c2, _ = _campaign(store)
        log_target_evaluation(store, c2, TargetEvaluation(1, 10.0, 0.5, {"t": {"value": float("inf"), "goal": 1, "met": False}}, False))
        store.finish_campaign(c2, "budget_exhausted", "budget: max_measurements (1) reached", 1.5)
        store.mark_resumed(c2)
        c = store.campaign(c2)
        assert (c.status, c.runs, c.wall_seconds) == ("running", 2, 1.5)
        assert store.target_evaluations(c2)[0].results["t"]["value"] is None
        with pytest.raises(UnknownCampaign, match="no campaign 'nope'"):
            store.campaign("nope")


def test_unreachable_postgres_names_the_server() -> None:
    with pytest.raises(StoreUnavailable, match=r"cannot connect to postgresql://nobody@127.0.0.1:1/x: .*Connection refused"):
        Store("postgresql://nobody@127.0.0.1:1/x")


def test_bad_urls_are_named() -> None:
    with pytest.raises(StoreUnavailable, match="invalid database URL"):
        Store("not a url")
    with pytest.raises(StoreUnavailable, match="unsupported database"):
        Store("mysql://root@127.0.0.1/test")


def _hold_write_lock(path: str, seconds: float, started: threading.Event) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("BEGIN EXCLUSIVE")
    started.set()
    time.sleep(seconds)
    conn.execute("COMMIT")
    conn.close()


def test_locked_sqlite_is_retried_then_reported(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = f"{tmp_path}/locked.db"
    with Store(f"sqlite:///{path}", retry_attempts=3) as store:
        c1, (a, b) = _campaign(store)
        # A lock shorter than the retry budget: the write waits and succeeds.
        started = threading.Event()
        holder = threading.Thread(target=_hold_write_lock, args=(path, 2.5, started))
        holder.start()
        started.wait()
        assert store.transition(a, "validated") is True
        holder.join()
        # A lock longer than the budget: a clear error naming the action and the database.
        started = threading.Event()
        holder = threading.Thread(target=_hold_write_lock, args=(path, 12.0, started))
        holder.start()
        started.wait()
        with pytest.raises(StoreUnavailable, match=r"could not move attempt c-\w+-00001 to validated in sqlite:///.*locked.db"):
            store.transition(b, "validated")
        holder.join()
        assert store.attempt(b).state == "proposed"  # nothing half-written


def test_instruments_are_recorded_and_refreshed_on_resume(store_url: str) -> None:
    from agent.store import InstrumentRecord

    with Store(store_url) as store:
        c1, _ = _campaign(store)
        assert store.instruments(c1) == {}
        first = InstrumentRecord("xrd", "xrd", "xrd", {"lines": [[1.54, 1.0]], "weird": float("nan")},
                                 {"counts": {"dtype": "array", "shape": [10], "units": "counts", "description": ""}})
        store.record_instruments(c1, [first])
        stored = store.instruments(c1)["xrd"]
        assert stored.model == {"lines": [[1.54, 1.0]], "weird": None}  # JSON has no NaN
        assert stored.data_keys["counts"]["units"] == "counts"
        # A resumed run refreshes what the instrument says about itself; it is never duplicated.
        store.record_instruments(c1, [InstrumentRecord("xrd", "xrd", None, None, {})])
        assert store.instruments(c1) == {"xrd": InstrumentRecord("xrd", "xrd", None, None, {})}


def test_states_read_back_as_lifecycle_enums(store_url: str) -> None:
    from agent.store import AttemptState, CampaignStatus

    with Store(store_url) as store:
        c1, (a, _) = _campaign(store)
        store.transition(a, AttemptState.VALIDATED)
        assert store.attempt(a).state is AttemptState.VALIDATED
        assert store.campaign(c1).status is CampaignStatus.RUNNING
        assert [x.id for x in store.attempts(c1, states=[AttemptState.VALIDATED])] == [a]


def test_campaign_numbers_follow_creation_and_never_change(store_url: str) -> None:
    """A campaign's number (its documents' bluesky ``scan_id``) is its place in the store: distinct,
    increasing with creation, and the same when read again after more campaigns arrive."""
    with Store(store_url) as store:
        ids = [f"n-{uuid.uuid4().hex[:8]}" for _ in range(3)]
        numbers = []
        for cid in ids:
            store.create_campaign(cid, "numbered", {"name": "numbered"}, 0, "/tmp/data", {})
            numbers.append(store.campaign_number(cid))
        assert numbers == sorted(set(numbers)) and numbers[0] >= 1
        assert [store.campaign_number(cid) for cid in ids] == numbers
        with pytest.raises(UnknownCampaign):
            store.campaign_number("no-such-campaign")
