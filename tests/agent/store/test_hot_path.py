"""The loop's hot-path writes (issue #15, loop overhead): an analysis carried by the next decision's
transaction, the measured record's commit not waiting for PostgreSQL's disk flush, and the rows the
DBAPI-cursor statements (``agent/store/raw.py``) write read back as Core's would."""

from __future__ import annotations

import uuid
from datetime import datetime

import numpy as np
import pytest
from sqlalchemy import event

from agent.store import AnalysedRecord, Document, ProposedAttempt, Store, TargetEvaluation
from analysis.protocol import Estimate, Interpretation
from instruments.types import Measurement, Timing

pytestmark = pytest.mark.timeout(60)


def _decide(store: Store, cid: str, seq: int, analysed: list[AnalysedRecord] | None = None) -> int:
    aid = f"{cid}-{seq:05d}"
    return store.record_decision(
        cid, seq, policy="sobol", fallback=False, error=None, seed=0, n_history=seq, n_pending=0,
        reasons=[{"phase": "space-filling"}], decision_seconds=0.001, versions={"numpy": np.__version__},
        attempts=[ProposedAttempt(aid, seq, {"x": 0.25}, path=("validated", "dispatched"), instrument="fast")],
        documents=[Document("event", {"uid": f"d-{aid}", "seq": seq}, "decisions")], analysed=analysed or [],
    )


def _measure(store: Store, cid: str, seq: int, *, synchronous: bool = True) -> bool:
    aid = f"{cid}-{seq:05d}"
    m = Measurement(attempt_id=aid, instrument="fast", params={"x": 0.25}, data={"y": np.array([1.0, np.nan])},
                    sigma={"y": np.array([0.1, 0.1])}, timing=Timing(exposure_seconds=1, motion_seconds=0, overhead_seconds=0))
    return store.record_measurement(cid, m, documents=[Document("event", {"uid": f"m-{aid}"}, "primary")],
                                    synchronous=synchronous)


def _analysed(cid: str, seq: int) -> AnalysedRecord:
    aid = f"{cid}-{seq:05d}"
    i = Interpretation(attempt_id=aid, sample_id=aid, analysis="scalar", estimates={"y": Estimate(value=0.5, sigma=0.1)},
                       flags=["low-signal"], valid=True, details={"n": 2})
    return AnalysedRecord(i, TargetEvaluation(seq + 1, 1.0, 2.0, {"t": {"value": 0.5, "goal": 0.1, "met": False}}, False),
                          [Document("event", {"uid": f"i-{aid}"}, "interpretations")])


def test_an_analysis_carried_by_the_next_decision_is_recorded_in_its_transaction_once(store_url: str) -> None:
    with Store(store_url) as store:
        cid = f"h-{uuid.uuid4().hex[:8]}"
        store.create_campaign(cid, "hot", {}, 0, "/tmp", {})
        _decide(store, cid, 0)
        assert _measure(store, cid, 0) and not _measure(store, cid, 0)  # a replay writes nothing
        _decide(store, cid, 1, [_analysed(cid, 0)])
        first = store.attempts(cid)[0]
        assert first.state == "analysed" and first.instrument == "fast" and first.instrument_seconds == 1.0
        assert [to for _, to, _ in store.transitions(first.id)] == ["proposed", "validated", "dispatched", "measured", "analysed"]
        (interpretation,) = store.interpretations(cid)
        assert interpretation.flags == ["low-signal"] and interpretation.details == {"n": 2}
        assert interpretation.estimates["y"].value == 0.5
        assert [e.n_measurements for e in store.target_evaluations(cid)] == [1]
        # The outbox in commit order: the analysis before the decision that carried it.
        assert [d.uid for _, d in store.documents(cid)] == [f"d-{cid}-00000", f"m-{cid}-00000", f"i-{cid}-00000", f"d-{cid}-00001"]
        # A replayed decision carrying the same analysis changes nothing.
        _decide(store, cid, 1, [_analysed(cid, 0)])
        assert len(store.documents(cid)) == 4 and len(store.target_evaluations(cid)) == 1 and len(store.decisions(cid)) == 2
        measured = store.measurement(first.id)
        assert measured is not None and np.isnan(measured.data["y"][1]) and isinstance(store.decisions(cid)[1].created_at, datetime)
        assert store.documents(cid)[0][1].doc == {"uid": f"d-{cid}-00000", "seq": 0}  # JSON, as Core stores it
        assert len(store.documents(cid, unpublished=True)) == 4  # booleans as Core stores them
        store.mark_published([f"m-{cid}-00000"])
        assert [d.uid for _, d in store.documents(cid, unpublished=True)] == [f"d-{cid}-00000", f"i-{cid}-00000", f"d-{cid}-00001"]


def test_only_the_measured_record_skips_postgresql_s_disk_flush(store_url: str) -> None:
    """``synchronous=False`` asks PostgreSQL not to wait for the WAL flush of that transaction only;
    SQLite, whose commits are ``synchronous=NORMAL`` already, is not asked anything."""
    with Store(store_url) as store:
        cid = f"h-{uuid.uuid4().hex[:8]}"
        store.create_campaign(cid, "hot", {}, 0, "/tmp", {})
        statements: list[str] = []
        event.listen(store.engine, "before_cursor_execute", lambda _c, _cur, sql, *_: statements.append(sql))
        _decide(store, cid, 0)
        decided = list(statements)
        _measure(store, cid, 0, synchronous=False)
        relaxed = [s for s in statements[len(decided):] if "synchronous_commit" in s]
        assert not any("synchronous_commit" in s for s in decided)
        assert relaxed == (["SET LOCAL synchronous_commit = off"] if store_url.startswith("postgresql") else [])
        with store.engine.connect() as conn:  # the setting was the transaction's, not the pooled connection's
            if store_url.startswith("postgresql"):
                assert conn.exec_driver_sql("SHOW synchronous_commit").scalar() == "on"
        assert store.attempts(cid)[0].state == "measured"
