"""The store's API: every write is one short transaction, committed before the action it records.

Writes are idempotent on deterministic keys (attempt ids, (campaign, seq)), so a replay after a crash
is a no-op rather than a duplicate. Reads return detached snapshots (plain dataclasses / the
boundary records), never live ORM objects.
"""

from __future__ import annotations

import io
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
from sqlalchemy import bindparam, func, insert, select, update
from sqlalchemy import Connection
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from agent.store import lease, migrate
from agent.store.engine import StoreUnavailable, describe_url, make_engine, opening_lock, with_retry
from agent.store.raw import RawStatement
from agent.store.lifecycle import AttemptState, CampaignStatus, check_path, check_reanalysis, check_transition
from agent.store.samples import SampleRecords
from agent.store.schema import (
    ApprovalRow,
    ArrayRow,
    AttemptRow,
    CampaignRow,
    DecisionRow,
    DocumentRow,
    InstrumentRow,
    InterpretationRow,
    MeasurementRow,
    TargetEvaluationRow,
    TransitionRow,
    utcnow,
)
from analysis.protocol import Estimate, Interpretation
from instruments.types import Measurement, ParamValue, Timing, json_safe


class UnknownCampaign(KeyError):
    def __str__(self) -> str:
        return f"no campaign {self.args[0]!r} in this store"


@dataclass(frozen=True)
class Campaign:
    id: str
    name: str
    status: CampaignStatus
    stop_reason: str | None
    config: dict[str, Any]
    seed: int
    data_dir: str
    wall_seconds: float
    runs: int
    created_at: datetime
    finished_at: datetime | None
    package_versions: dict[str, str]


@dataclass(frozen=True)
class Attempt:
    id: str
    campaign_id: str
    seq: int
    decision_id: int | None
    state: AttemptState
    instrument: str | None
    sample_id: str | None
    params: dict[str, ParamValue]
    reason: str | None
    reconciled: str | None
    reruns: int
    instrument_seconds: float | None


@dataclass(frozen=True)
class InstrumentRecord:
    """An instrument as it described itself at the start of a run (see ``schema.InstrumentRow``)."""

    name: str
    kind: str
    model_kind: str | None
    model: dict[str, Any] | None
    data_keys: dict[str, Any]


@dataclass(frozen=True)
class Decision:
    id: int
    seq: int
    policy: str
    fallback: bool
    error: str | None
    seed: int
    n_history: int
    n_pending: int
    reasons: list[dict[str, Any]]
    decision_seconds: float
    created_at: datetime


@dataclass(frozen=True)
class TargetEvaluation:
    n_measurements: int
    instrument_seconds: float
    wall_seconds: float
    results: dict[str, dict[str, Any]]
    all_met: bool


@dataclass(frozen=True)
class Document:
    """One event-model document: its name (start, descriptor, event, stop), the document, its uid
    (the document's own ``uid``), and the stream it belongs to (descriptors and events)."""

    name: str
    doc: dict[str, Any]
    stream: str | None = None

    @property
    def uid(self) -> str:
        return str(self.doc["uid"])


@dataclass(frozen=True)
class Approval:
    """A person's decision on an attempt that awaited approval (see ``schema.ApprovalRow``)."""

    attempt_id: str
    campaign_id: str
    verdict: str  # approved | edited | rejected
    user: str
    reason: str | None
    proposed_params: dict[str, ParamValue]
    params: dict[str, ParamValue]
    decided_at: datetime


class NotAwaitingApproval(ValueError):
    """An approval for an attempt that does not await one (unknown, or already decided)."""


@dataclass(frozen=True)
class ProposedAttempt:
    """An attempt to create with its decision: its deterministic id, where, and on which instrument."""

    attempt_id: str
    seq: int
    params: dict[str, ParamValue]
    sample_id: str | None = None
    path: tuple[AttemptState, ...] = ()
    """States the attempt went through after ``proposed`` before this commit, e.g. ``("validated",
    "dispatched")`` or ``("refused",)``: the guard and the instrument's check are pure questions,
    so their verdicts — and the dispatch — are committed with the decision, before any action."""
    reason: str | None = None  # why it was refused, when it was
    instrument: str | None = None  # where it was dispatched, when it was


@dataclass(frozen=True)
class AnalysedRecord:
    """An interpretation to record (``analysed``) with the targets evaluated with it included and its
    documents: what ``record_interpretation`` writes, here carried by another record's transaction
    (``record_decision(analysed=...)``)."""

    interpretation: Interpretation
    evaluation: TargetEvaluation | None = None
    documents: Sequence[Document] = ()


# Hot-path statements are built once: constructing a statement per call (coercing every column)
# cost more than the database work itself. Those the loop runs per measurement run on the DBAPI
# cursor (``raw.py``: Core's per-call work cost more than the database's), the others through Core.
_ATTEMPT_STATE = RawStatement(select(AttemptRow.state).where(AttemptRow.id == bindparam("attempt_id")))
_DECISION_ID = select(DecisionRow.id).where(DecisionRow.campaign_id == bindparam("campaign_id"), DecisionRow.seq == bindparam("seq"))
# One look-up before a record moves its attempt: the attempt's state and whether the record exists already.
_STATE_AND_MEASUREMENT = RawStatement(select(AttemptRow.state, MeasurementRow.attempt_id).select_from(AttemptRow)
                          .outerjoin(MeasurementRow, MeasurementRow.attempt_id == AttemptRow.id)
                          .where(AttemptRow.id == bindparam("attempt_id")))
_STATE_AND_INTERPRETATION = RawStatement(select(AttemptRow.state, InterpretationRow.attempt_id).select_from(AttemptRow)
                             .outerjoin(InterpretationRow, InterpretationRow.attempt_id == AttemptRow.id)
                             .where(AttemptRow.id == bindparam("attempt_id")))
_UPDATE_ATTEMPT = RawStatement(update(AttemptRow).where(AttemptRow.id == bindparam("attempt_id_")))  # SET columns come from the params
# A decision is idempotent on (campaign, seq): inserted unless there, in one statement (both dialects
# spell ON CONFLICT DO NOTHING ... RETURNING alike; SQLite ≥ 3.35). No row back: it was there.
_INSERT_DECISION = {
    "sqlite": RawStatement(sqlite_insert(DecisionRow).on_conflict_do_nothing(index_elements=["campaign_id", "seq"])
                           .returning(DecisionRow.id)),
    "postgresql": RawStatement(pg_insert(DecisionRow).on_conflict_do_nothing(index_elements=["campaign_id", "seq"])
                               .returning(DecisionRow.id)),
}
_INSERT_ATTEMPT = RawStatement(insert(AttemptRow))
_INSERT_TRANSITION = RawStatement(insert(TransitionRow))
_INSERT_MEASUREMENT = RawStatement(insert(MeasurementRow))
_INSERT_ARRAY = RawStatement(insert(ArrayRow))
_INSERT_INTERPRETATION = RawStatement(insert(InterpretationRow))
_HAS_DOCUMENT = select(DocumentRow.uid).where(DocumentRow.uid == bindparam("uid"))
_INSERT_DOCUMENT = RawStatement(insert(DocumentRow))


def _insert_documents(conn: Connection, campaign_id: str, documents: Sequence[Document], *, new_record: bool = False) -> int:
    """Add documents to the outbox; returns how many were added. A uid already there is skipped —
    unless ``new_record``: the documents of a record this very transaction created cannot exist yet
    (their uids derive from the record's key), so the look-up is saved on the hot path."""
    rows = []
    for d in documents:
        if not new_record and conn.execute(_HAS_DOCUMENT, {"uid": d.uid}).scalar() is not None:
            continue
        rows.append({"uid": d.uid, "campaign_id": campaign_id, "name": d.name, "stream": d.stream,
                     "doc": json_safe(d.doc), "published": False, "created_at": utcnow()})
    if rows:
        _INSERT_DOCUMENT(conn, rows)
    return len(rows)
_INSERT_EVALUATION = RawStatement(insert(TargetEvaluationRow))
_ASYNC_COMMIT = "SET LOCAL synchronous_commit = off"


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.asarray(array), allow_pickle=False)
    return buffer.getvalue()


def _from_npy(payload: bytes) -> np.ndarray:
    return np.load(io.BytesIO(payload), allow_pickle=False)


class Store(SampleRecords):
    """All persistence of labpilot. Open with a SQLAlchemy URL (sqlite:/// or postgresql://)."""

    def __init__(self, url: str, *, retry_attempts: int = 5, existing: bool = False, upgrade: bool = True) -> None:
        """``existing``: open a store that must already exist (a SQLite file is never created).
        ``upgrade``: a database at an older schema revision is upgraded (with a line on stderr);
        False (read-only commands) refuses it with ``StoreOutdated``. A newer one: ``StoreTooNew``."""
        self.url = url
        self.database = describe_url(url)
        self.retry_attempts = retry_attempts
        with opening_lock(url, existing=existing):  # a second opener of a new SQLite file waits for its creator
            self.engine = make_engine(url, existing=existing)
            self._session = sessionmaker(self.engine, expire_on_commit=False)
            try:
                upgraded = with_retry(lambda: migrate.open_schema(self.engine, database=self.database, upgrade=upgrade),
                                      what="open the schema", database=self.database, attempts=retry_attempts)
            except StoreUnavailable:
                self.engine.dispose()
                raise
        if upgraded:
            print(f"labpilot: store upgraded from {upgraded} to {migrate.HEAD} ({self.database})", file=sys.stderr, flush=True)

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- transactions ---------------------------------------------------------------------------
    def _write(self, what: str, action: Any) -> Any:
        def run() -> Any:
            with self._session.begin() as session:
                return action(session)

        return with_retry(run, what=what, database=self.database, attempts=self.retry_attempts)

    def _write_core(self, what: str, action: Any, *, synchronous: bool = True) -> Any:
        """Like ``_write`` but on a bare connection: no ORM session to build, for the hot path.

        ``synchronous=False``: on PostgreSQL the commit returns before its WAL is flushed to disk
        (``SET LOCAL synchronous_commit = off``, this transaction only). It is as safe as the others
        against a killed *campaign* process (the server has it); a crash of the database *server* or
        its machine within ~0.6 s (3 × ``wal_writer_delay``) may lose it — unless a later synchronous
        commit (the next decision) flushed it first: the WAL is one sequence. SQLite in WAL mode with
        ``synchronous=NORMAL`` (``engine.py``) makes that trade for every commit already."""

        def run() -> Any:
            with self.engine.begin() as conn:
                if not synchronous and conn.dialect.name == "postgresql":
                    conn.exec_driver_sql(_ASYNC_COMMIT)
                return action(conn)

        return with_retry(run, what=what, database=self.database, attempts=self.retry_attempts)

    def _read(self, action: Any) -> Any:
        return self._write("read", action)

    # -- campaigns ------------------------------------------------------------------------------
    def create_campaign(
        self, campaign_id: str, name: str, config: dict[str, Any], seed: int, data_dir: str, versions: dict[str, str]
    ) -> None:
        def act(s: Session) -> None:
            if s.get(CampaignRow, campaign_id) is None:
                s.add(
                    CampaignRow(
                        id=campaign_id, name=name, config=json_safe(config), seed=seed, data_dir=data_dir,
                        package_versions=versions, status=CampaignStatus.RUNNING.value,
                    )
                )

        self._write("create the campaign", act)

    def campaign(self, campaign_id: str) -> Campaign:
        def act(s: Session) -> Campaign:
            row = s.get(CampaignRow, campaign_id)
            if row is None:
                raise UnknownCampaign(campaign_id)
            return _campaign(row)

        return self._read(act)

    def campaigns(self) -> list[Campaign]:
        return self._read(lambda s: [_campaign(r) for r in s.scalars(select(CampaignRow).order_by(CampaignRow.created_at))])

    def campaign_number(self, campaign_id: str) -> int:
        """The campaign's ordinal in this store (1 for the first created): its bluesky ``scan_id``.
        Derived from the stored rows, so the same on every resume (rows are never deleted)."""

        def act(s: Session) -> int:
            row = s.get(CampaignRow, campaign_id)
            if row is None:
                raise UnknownCampaign(campaign_id)
            # Ties in created_at (same microsecond) are broken by id, so two campaigns never share it.
            earlier = (CampaignRow.created_at < row.created_at) | (
                (CampaignRow.created_at == row.created_at) & (CampaignRow.id <= row.id))
            return int(s.scalar(select(func.count()).select_from(CampaignRow).where(earlier)) or 0)

        return self._read(act)

    def mark_resumed(self, campaign_id: str) -> None:
        def act(s: Session) -> None:
            row = s.get(CampaignRow, campaign_id)
            row.status, row.stop_reason, row.finished_at = CampaignStatus.RUNNING.value, None, None
            row.runs += 1
            row.updated_at = utcnow()

        self._write("mark the campaign resumed", act)

    def set_status(self, campaign_id: str, status: CampaignStatus | str, reason: str | None,
                   documents: Sequence[Document] = ()) -> None:
        """A live campaign's status (running ⇄ paused) with its reason, and the change's documents."""
        def act(s: Session) -> None:
            row = s.get(CampaignRow, campaign_id)
            row.status, row.stop_reason = CampaignStatus(status).value, reason
            row.updated_at = utcnow()
            _insert_documents(s.connection(), campaign_id, documents)

        self._write("record the campaign's status", act)

    def finish_campaign(
        self, campaign_id: str, status: CampaignStatus | str, stop_reason: str, run_wall_seconds: float,
        documents: Sequence[Document] = (),
    ) -> None:
        def act(s: Session) -> None:
            row = s.get(CampaignRow, campaign_id)
            row.status, row.stop_reason = CampaignStatus(status).value, stop_reason
            row.wall_seconds += run_wall_seconds
            row.finished_at = row.updated_at = utcnow()
            _insert_documents(s.connection(), campaign_id, documents)

        self._write("record the campaign's end", act)

    # -- the lease: one owner per campaign ---------------------------------------------------------
    def acquire_lease(self, campaign_id: str, owner: str, stale_after: float = lease.STALE_AFTER_SECONDS) -> None:
        """Own the campaign, or raise ``CampaignOwned`` naming the live owner (see ``agent/store/lease.py``)."""
        what = f"take the lease of {campaign_id}"
        try:
            self._write_core(what, lambda conn: lease.acquire(conn, campaign_id, owner, stale_after))
        except StoreUnavailable as exc:
            if not isinstance(exc.__cause__, IntegrityError):
                raise
            # Two processes found no lease and both inserted one: the other won; look again.
            self._write_core(what, lambda conn: lease.acquire(conn, campaign_id, owner, stale_after))

    def renew_lease(self, campaign_id: str, owner: str) -> bool:
        return bool(self._write_core(f"renew the lease of {campaign_id}", lambda conn: lease.renew(conn, campaign_id, owner)))

    def release_lease(self, campaign_id: str, owner: str) -> None:
        self._write_core(f"release the lease of {campaign_id}", lambda conn: lease.release(conn, campaign_id, owner))

    # -- instruments ----------------------------------------------------------------------------
    def record_instruments(self, campaign_id: str, instruments: Sequence[InstrumentRecord]) -> None:
        """Record (or, on a resume, refresh) what each instrument says about itself."""

        def act(s: Session) -> None:
            existing = {r.name: r for r in s.scalars(select(InstrumentRow).where(InstrumentRow.campaign_id == campaign_id))}
            for i in instruments:
                row = existing.get(i.name) or InstrumentRow(campaign_id=campaign_id, name=i.name)
                row.kind, row.model_kind, row.model = i.kind, i.model_kind, json_safe(i.model)
                row.data_keys, row.updated_at = json_safe(i.data_keys), utcnow()
                s.add(row)

        self._write("record the instruments", act)

    def instruments(self, campaign_id: str) -> dict[str, InstrumentRecord]:
        """Instrument name → what it said about itself (empty for a campaign recorded before this existed)."""
        return self._read(lambda s: {
            r.name: InstrumentRecord(r.name, r.kind, r.model_kind, r.model, r.data_keys)
            for r in s.scalars(select(InstrumentRow).where(InstrumentRow.campaign_id == campaign_id).order_by(InstrumentRow.id))
        })

    # -- decisions and attempts -----------------------------------------------------------------
    def next_seq(self, campaign_id: str) -> tuple[int, int]:
        """(next attempt seq, next decision seq) for ``campaign_id``."""

        def act(s: Session) -> tuple[int, int]:
            a = s.scalar(select(func.max(AttemptRow.seq)).where(AttemptRow.campaign_id == campaign_id))
            d = s.scalar(select(func.max(DecisionRow.seq)).where(DecisionRow.campaign_id == campaign_id))
            return (0 if a is None else a + 1, 0 if d is None else d + 1)

        return self._read(act)

    def record_decision(
        self,
        campaign_id: str,
        seq: int,
        *,
        policy: str,
        fallback: bool,
        error: str | None,
        seed: int,
        n_history: int,
        n_pending: int,
        reasons: Sequence[dict[str, Any]],
        decision_seconds: float,
        versions: dict[str, str],
        attempts: Sequence[ProposedAttempt],
        documents: Sequence[Document] = (),
        analysed: Sequence[AnalysedRecord] = (),
    ) -> int:
        """Record a decision and its proposed attempts in one transaction; idempotent on (campaign, seq).

        ``analysed``: interpretations recorded first in the same transaction (each idempotent on its
        attempt id, as ``record_interpretation``): the loop folds the analysis it just made into the
        decision that follows it — one commit fewer per measurement, and write-ahead still holds (a
        measurement whose analysis was not committed is analysed again on resume)."""

        now = utcnow()
        attempt_rows, transition_rows = _attempt_rows(campaign_id, attempts, now)
        rows = [_interpretation_row(campaign_id, r.interpretation) for r in analysed]

        def act(conn: Connection) -> int:
            for record, row in zip(analysed, rows):
                _write_interpretation(conn, campaign_id, record, row)
            inserted = _INSERT_DECISION[conn.dialect.name].first(conn, {
                "campaign_id": campaign_id, "seq": seq, "policy": policy, "fallback": fallback, "error": error,
                "seed": seed, "n_history": n_history, "n_pending": n_pending, "reasons": json_safe(list(reasons)),
                "decision_seconds": decision_seconds, "package_versions": versions, "created_at": now,
            })
            decision_id = None if inserted is None else inserted[0]
            if decision_id is None:  # recorded already (a replay): nothing else is written
                return int(conn.execute(_DECISION_ID, {"campaign_id": campaign_id, "seq": seq}).scalar_one())
            if attempt_rows:
                _INSERT_ATTEMPT(conn, [{**r, "decision_id": decision_id} for r in attempt_rows])
                _INSERT_TRANSITION(conn, transition_rows)
            _insert_documents(conn, campaign_id, documents, new_record=True)
            return int(decision_id)

        return self._write_core("record a decision", act)

    def transition(
        self,
        attempt_id: str,
        to_state: str,
        *,
        note: str | None = None,
        reason: str | None = None,
        instrument: str | None = None,
        reconciled: str | None = None,
        rerun: bool = False,
    ) -> bool:
        """Move an attempt to ``to_state``. Returns False (no-op) if it is already there; raises on a
        transition the lifecycle does not allow."""

        values: dict[str, Any] = {}
        if reason is not None:
            values["reason"] = reason
        if instrument is not None:
            values["instrument"] = instrument
        if reconciled is not None:
            values["reconciled"] = reconciled

        # Core statements, not the ORM unit of work: this runs several times per measurement.
        def act(conn: Connection) -> bool:
            return _move_attempt(conn, attempt_id, to_state, note=note or reason, values=values, rerun=rerun) is not None

        return self._write_core(f"move attempt {attempt_id} to {to_state}", act)

    def attempt(self, attempt_id: str) -> Attempt:
        def act(s: Session) -> Attempt:
            row = s.get(AttemptRow, attempt_id)
            if row is None:
                raise KeyError(f"no attempt {attempt_id!r}")
            return _attempt(row)

        return self._read(act)

    def attempts(self, campaign_id: str, states: Iterable[str] | None = None) -> list[Attempt]:
        def act(s: Session) -> list[Attempt]:
            q = select(AttemptRow).where(AttemptRow.campaign_id == campaign_id)
            if states is not None:
                q = q.where(AttemptRow.state.in_([AttemptState(x).value for x in states]))
            return [_attempt(r) for r in s.scalars(q.order_by(AttemptRow.seq))]

        return self._read(act)

    def transitions(self, attempt_id: str) -> list[tuple[str | None, str, str | None]]:
        return self._read(
            lambda s: [
                (r.from_state, r.to_state, r.note)
                for r in s.scalars(select(TransitionRow).where(TransitionRow.attempt_id == attempt_id).order_by(TransitionRow.id))
            ]
        )

    def decisions(self, campaign_id: str) -> list[Decision]:
        return self._read(
            lambda s: [
                Decision(
                    id=r.id, seq=r.seq, policy=r.policy, fallback=r.fallback, error=r.error, seed=r.seed,
                    n_history=r.n_history, n_pending=r.n_pending, reasons=r.reasons,
                    decision_seconds=r.decision_seconds, created_at=r.created_at,
                )
                for r in s.scalars(select(DecisionRow).where(DecisionRow.campaign_id == campaign_id).order_by(DecisionRow.seq))
            ]
        )

    # -- approvals ------------------------------------------------------------------------------
    def record_approval(
        self, attempt_id: str, verdict: str, *, user: str, reason: str | None, params: dict[str, ParamValue],
        documents: Sequence[Document] = (),
    ) -> Approval:
        """A person's decision on an attempt awaiting approval, in one transaction: the approval row,
        the attempt moved (``validated`` with ``params`` when approved or edited, ``refused`` with
        ``reason`` when rejected) and its documents. Raises ``NotAwaitingApproval`` — nothing written —
        if the attempt is unknown or does not await approval (decided already, by someone else too)."""

        def act(conn: Connection) -> Approval:
            # FOR UPDATE (PostgreSQL; SQLite's write transactions are exclusive already): two people
            # deciding at once are serialised, and the second one finds the attempt decided.
            row = conn.execute(select(AttemptRow.state, AttemptRow.campaign_id, AttemptRow.params)
                               .where(AttemptRow.id == attempt_id).with_for_update()).one_or_none()
            if row is None:
                raise NotAwaitingApproval(f"no attempt {attempt_id!r} in this store")
            if row.state != AttemptState.AWAITING_APPROVAL:
                decided = conn.execute(select(ApprovalRow.verdict, ApprovalRow.user)
                                       .where(ApprovalRow.attempt_id == attempt_id)).one_or_none()
                by = f" ({decided.verdict} by {decided.user})" if decided is not None else ""
                raise NotAwaitingApproval(f"attempt {attempt_id} does not await approval: it is {row.state}{by}")
            approval = Approval(attempt_id, row.campaign_id, verdict, user, reason, dict(row.params), dict(params), utcnow())
            rejected = verdict == "rejected"
            note = f"{verdict} by {user}" + (f": {reason}" if reason else "")
            # Approved: the attempt's reason (why it waited) is cleared, its params are the approved ones.
            values: dict[str, Any] = {"reason": note} if rejected else {"params": json_safe(params), "reason": None}
            _move_attempt(conn, attempt_id, AttemptState.REFUSED if rejected else AttemptState.VALIDATED, note=note, values=values)
            conn.execute(insert(ApprovalRow).values(
                attempt_id=attempt_id, campaign_id=row.campaign_id, verdict=verdict, user=user, reason=reason,
                proposed_params=json_safe(row.params), params=json_safe(params), decided_at=approval.decided_at))
            _insert_documents(conn, row.campaign_id, documents)
            return approval

        return self._write_core(f"record the approval decision on {attempt_id}", act)

    def approvals(self, campaign_id: str) -> list[Approval]:
        """Every approval decision of the campaign, oldest first."""
        return self._read(lambda s: [_approval(r) for r in s.scalars(
            select(ApprovalRow).where(ApprovalRow.campaign_id == campaign_id).order_by(ApprovalRow.decided_at))])

    def approval(self, attempt_id: str) -> Approval | None:
        return self._read(lambda s: (lambda r: None if r is None else _approval(r))(s.get(ApprovalRow, attempt_id)))

    def awaiting_approval(self, campaign_id: str | None = None) -> list[Attempt]:
        """Attempts awaiting a person's approval, of one campaign or of all, oldest first."""

        def act(s: Session) -> list[Attempt]:
            q = select(AttemptRow).where(AttemptRow.state == AttemptState.AWAITING_APPROVAL.value)
            if campaign_id is not None:
                q = q.where(AttemptRow.campaign_id == campaign_id)
            return [_attempt(r) for r in s.scalars(q.order_by(AttemptRow.created_at, AttemptRow.seq))]

        return self._read(act)

    # -- measurements ---------------------------------------------------------------------------
    def record_measurement(
        self, campaign_id: str, measurement: Measurement, *, reconciled: str | None = None, documents: Sequence[Document] = (),
        synchronous: bool = True,
    ) -> bool:
        """Store raw data and move the attempt to ``measured`` in one transaction.

        Idempotent: a second record of the same attempt id changes nothing and returns False.
        Non-finite data is stored as measured (bit-exact) and marked ``finite=False``.
        ``synchronous=False``: see ``_write_core`` (the loop's choice: a measured record that a
        database-server crash took is reconciled on resume as a killed process's is — adopted from
        the driver's records, else re-run once).
        """

        attempt_id = measurement.attempt_id
        arrays = [("data", k, v) for k, v in measurement.data.items()] + [("sigma", k, v) for k, v in measurement.sigma.items()]
        finite = all(bool(np.all(np.isfinite(v))) for _, _, v in arrays)
        seconds = measurement.timing.instrument_seconds
        array_rows = [
            {"attempt_id": attempt_id, "role": role, "key": key, "dtype": str(np.asarray(v).dtype),
             "shape": list(np.asarray(v).shape), "payload": _npy(v)}
            for role, key, v in arrays
        ]
        measurement_row = {
            "attempt_id": attempt_id, "campaign_id": campaign_id, "instrument": measurement.instrument,
            "sample_id": measurement.sample_id or attempt_id, "params": json_safe(measurement.params),
            "timing": measurement.timing.model_dump(mode="json"), "instrument_seconds": seconds, "finite": finite,
            "recovered": measurement.recovered,
        }

        values: dict[str, Any] = {"instrument": measurement.instrument, "instrument_seconds": seconds}
        if reconciled is not None:
            values["reconciled"] = reconciled
        note = "adopted from the instrument's records" if reconciled == "adopted" else None

        def act(conn: Connection) -> bool:
            state, existing = _STATE_AND_MEASUREMENT.first(conn, {"attempt_id": attempt_id}) or (None, None)
            if existing is not None:
                return False
            # Moved first: the lifecycle check must pass before any row of the measurement is written.
            _move_attempt(conn, attempt_id, AttemptState.MEASURED, note=note, values=values, state=state)
            _INSERT_MEASUREMENT(conn, {**measurement_row, "created_at": utcnow()})
            if array_rows:
                _INSERT_ARRAY(conn, array_rows)
            _insert_documents(conn, campaign_id, documents, new_record=True)
            return True

        return self._write_core(f"record the measurement of {measurement.attempt_id}", act, synchronous=synchronous)

    def measurement(self, attempt_id: str) -> Measurement | None:
        return self._read(lambda s: _measurement(s, s.get(MeasurementRow, attempt_id)))

    def measurements(self, campaign_id: str, sample_id: str | None = None) -> list[Measurement]:
        def act(s: Session) -> list[Measurement]:
            q = select(MeasurementRow).where(MeasurementRow.campaign_id == campaign_id)
            if sample_id is not None:
                q = q.where(MeasurementRow.sample_id == sample_id)
            return [_measurement(s, r) for r in s.scalars(q.order_by(MeasurementRow.created_at))]

        return self._read(act)

    def totals(self, campaign_id: str) -> tuple[int, float]:
        """(number of measurements, instrument seconds) recorded for the campaign."""

        def act(s: Session) -> tuple[int, float]:
            n, seconds = s.execute(
                select(func.count(MeasurementRow.attempt_id), func.coalesce(func.sum(MeasurementRow.instrument_seconds), 0.0)).where(
                    MeasurementRow.campaign_id == campaign_id
                )
            ).one()
            return int(n), float(seconds)

        return self._read(act)

    # -- interpretations ------------------------------------------------------------------------
    def record_interpretation(
        self, campaign_id: str, interpretation: Interpretation, evaluation: TargetEvaluation | None = None,
        documents: Sequence[Document] = (),
    ) -> bool:
        """Store an interpretation and move its attempt to ``analysed``; idempotent on the attempt id.

        ``evaluation``, the targets evaluated with this interpretation included, is logged in the
        same transaction."""

        record = AnalysedRecord(interpretation, evaluation, documents)
        row = _interpretation_row(campaign_id, interpretation)
        return self._write_core(f"record the interpretation of {interpretation.attempt_id}",
                                lambda conn: _write_interpretation(conn, campaign_id, record, row))

    def record_analysed(self, campaign_id: str, records: Sequence[AnalysedRecord], *, synchronous: bool = True) -> list[bool]:
        """Several interpretations (``record_interpretation`` each) in one transaction: which were new.
        ``synchronous``: see ``_write_core``."""
        rows = [_interpretation_row(campaign_id, r.interpretation) for r in records]
        return list(self._write_core(f"record {len(records)} interpretation(s)", lambda conn: [
            _write_interpretation(conn, campaign_id, record, row) for record, row in zip(records, rows)],
            synchronous=synchronous))

    def record_reanalysis(
        self, campaign_id: str, interpretation: Interpretation, evaluation: TargetEvaluation, documents: Sequence[Document] = (),
    ) -> None:
        """Replace the interpretation of an attempt whose analysis failed (``lifecycle.check_reanalysis``)
        with a new one, logging the re-analysis and the targets, in one transaction."""
        attempt_id = interpretation.attempt_id

        def act(conn: Connection) -> None:
            state = (_ATTEMPT_STATE.first(conn, {"attempt_id": attempt_id}) or (None,))[0]
            flags = conn.execute(select(InterpretationRow.flags).where(InterpretationRow.attempt_id == attempt_id)).scalar()
            check_reanalysis(attempt_id, state or "missing", flags or [])
            conn.execute(update(InterpretationRow).where(InterpretationRow.attempt_id == attempt_id).values(
                estimates={k: v.model_dump(mode="json") for k, v in interpretation.estimates.items()},
                flags=list(interpretation.flags), valid=interpretation.valid, details=json_safe(interpretation.details),
                created_at=utcnow(),
            ))
            _log_transition(conn, attempt_id, state, AttemptState.ANALYSED.value,
                            "re-analysed: " + (",".join(interpretation.flags) or "the earlier analysis had failed"))
            _log_evaluation(conn, campaign_id, evaluation)
            _insert_documents(conn, campaign_id, documents)

        self._write_core(f"record the re-analysis of {attempt_id}", act)

    def interpretations(self, campaign_id: str) -> list[Interpretation]:
        def act(s: Session) -> list[Interpretation]:
            rows = s.scalars(
                select(InterpretationRow)
                .join(AttemptRow, AttemptRow.id == InterpretationRow.attempt_id)
                .where(InterpretationRow.campaign_id == campaign_id)
                .order_by(AttemptRow.seq)
            )
            return [
                Interpretation(
                    attempt_id=r.attempt_id, sample_id=r.sample_id, analysis=r.analysis,
                    estimates={k: Estimate.model_validate(v) for k, v in r.estimates.items()},
                    flags=r.flags, valid=r.valid, details=r.details,
                )
                for r in rows
            ]

        return self._read(act)

    # -- documents (the outbox) ------------------------------------------------------------------
    def add_documents(self, campaign_id: str, documents: Sequence[Document]) -> int:
        """Add documents to the outbox on their own (start, descriptors); returns how many were new."""
        return int(self._write_core("record documents", lambda conn: _insert_documents(conn, campaign_id, documents)))

    def documents(self, campaign_id: str, *, unpublished: bool = False) -> list[tuple[int, Document]]:
        """(outbox id, document) of the campaign in publication order; only unpublished ones if asked."""

        def act(s: Session) -> list[tuple[int, Document]]:
            q = select(DocumentRow).where(DocumentRow.campaign_id == campaign_id)
            if unpublished:
                q = q.where(DocumentRow.published.is_(False))
            return [(r.id, Document(r.name, r.doc, r.stream)) for r in s.scalars(q.order_by(DocumentRow.id))]

        return self._read(act)

    def outbox_head(self, campaign_id: str) -> int:
        """The id of the campaign's newest document (0 if none): it grows with every record written
        (what the live page watches)."""
        return int(self._read(lambda s: s.scalar(
            select(func.coalesce(func.max(DocumentRow.id), 0)).where(DocumentRow.campaign_id == campaign_id))))

    def mark_published(self, uids: Sequence[str]) -> None:
        if uids:
            self._write_core("mark documents published", lambda conn: conn.execute(
                update(DocumentRow).where(DocumentRow.uid.in_(list(uids))).values(published=True)))

    # -- targets --------------------------------------------------------------------------------
    def target_evaluations(self, campaign_id: str) -> list[TargetEvaluation]:
        return self._read(
            lambda s: [
                TargetEvaluation(r.n_measurements, r.instrument_seconds, r.wall_seconds, r.results, r.all_met)
                for r in s.scalars(
                    select(TargetEvaluationRow).where(TargetEvaluationRow.campaign_id == campaign_id).order_by(TargetEvaluationRow.id)
                )
            ]
        )


def _attempt_rows(campaign_id: str, attempts: Sequence[ProposedAttempt], now: datetime) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """A decision's attempt rows (without their decision id) and their transitions' rows."""
    attempt_rows: list[dict[str, Any]] = []
    transition_rows: list[dict[str, Any]] = []
    for a in attempts:
        states = check_path(a.attempt_id, AttemptState.PROPOSED, a.path)
        attempt_rows.append({
            "id": a.attempt_id, "campaign_id": campaign_id, "seq": a.seq, "state": states[-1].value,
            "params": json_safe(a.params), "sample_id": a.sample_id, "reason": a.reason, "instrument": a.instrument,
            "reconciled": None, "reruns": 0, "instrument_seconds": None, "created_at": now, "updated_at": now,
        })
        transition_rows += [
            {"attempt_id": a.attempt_id, "from_state": None if before is None else before.value, "to_state": after.value,
             "note": a.reason if after in (AttemptState.REFUSED, AttemptState.AWAITING_APPROVAL) else None, "at": now}
            for before, after in zip((None, *states), states)
        ]
    return attempt_rows, transition_rows


def _interpretation_row(campaign_id: str, i: Interpretation) -> dict[str, Any]:
    return {
        "attempt_id": i.attempt_id, "campaign_id": campaign_id, "sample_id": i.sample_id, "analysis": i.analysis,
        "estimates": {k: v.model_dump(mode="json") for k, v in i.estimates.items()},
        "flags": list(i.flags), "valid": i.valid, "details": json_safe(i.details),
    }


def _write_interpretation(conn: Connection, campaign_id: str, record: AnalysedRecord, row: dict[str, Any]) -> bool:
    """An interpretation, its attempt moved to ``analysed``, its target log and documents, in the
    caller's transaction; False (nothing written) if the attempt has its interpretation already."""
    i = record.interpretation
    state, existing = _STATE_AND_INTERPRETATION.first(conn, {"attempt_id": i.attempt_id}) or (None, None)
    if existing is not None:
        return False
    _move_attempt(conn, i.attempt_id, AttemptState.ANALYSED, note=",".join(i.flags) or None, values={}, state=state)
    _INSERT_INTERPRETATION(conn, {**row, "created_at": utcnow()})
    if record.evaluation is not None:
        _log_evaluation(conn, campaign_id, record.evaluation)
    _insert_documents(conn, campaign_id, record.documents, new_record=True)
    return True


def _log_evaluation(conn: Connection, campaign_id: str, e: TargetEvaluation) -> None:
    _INSERT_EVALUATION(conn, {
        "campaign_id": campaign_id, "n_measurements": e.n_measurements, "instrument_seconds": e.instrument_seconds,
        "wall_seconds": e.wall_seconds, "results": json_safe(e.results), "all_met": e.all_met, "created_at": utcnow(),
    })


def _move_attempt(
    conn: Connection, attempt_id: str, to_state: AttemptState | str, *, note: str | None, values: dict[str, Any],
    rerun: bool = False, state: str | None = None,
) -> AttemptState | None:
    """Move an attempt to ``to_state`` inside the caller's transaction: the one path every writer
    takes. Checks the edge (``lifecycle.check_transition``), logs it, sets ``values`` on the row.
    Returns the state it left, or None (no-op) when it is already there and this is no re-run.
    ``state``: the attempt's state if the caller has just read it in this transaction (else looked up)."""
    if state is None:
        state = (_ATTEMPT_STATE.first(conn, {"attempt_id": attempt_id}) or (None,))[0]
    if state is None:
        raise KeyError(f"no attempt {attempt_id!r}")
    if state == to_state and not rerun:
        return None
    check_transition(attempt_id, state, to_state, rerun=rerun)
    to = AttemptState(to_state).value  # the plain value: drivers adapt str, not every str subclass
    _log_transition(conn, attempt_id, state, to, note)
    if rerun:
        conn.execute(update(AttemptRow).where(AttemptRow.id == attempt_id).values(reruns=AttemptRow.reruns + 1))
    _UPDATE_ATTEMPT(conn, {"attempt_id_": attempt_id, **values, "state": to, "updated_at": utcnow()})
    return AttemptState(state)


def _log_transition(conn: Connection, attempt_id: str, from_state: str | None, to_state: str, note: str | None) -> None:
    _INSERT_TRANSITION(conn, {"attempt_id": attempt_id, "from_state": from_state, "to_state": to_state, "note": note, "at": utcnow()})


def _campaign(r: CampaignRow) -> Campaign:
    return Campaign(
        id=r.id, name=r.name, status=CampaignStatus(r.status), stop_reason=r.stop_reason, config=r.config, seed=r.seed,
        data_dir=r.data_dir, wall_seconds=r.wall_seconds, runs=r.runs, created_at=r.created_at,
        finished_at=r.finished_at, package_versions=r.package_versions,
    )


def _attempt(r: AttemptRow) -> Attempt:
    return Attempt(
        id=r.id, campaign_id=r.campaign_id, seq=r.seq, decision_id=r.decision_id, state=AttemptState(r.state),
        instrument=r.instrument, sample_id=r.sample_id, params=r.params, reason=r.reason,
        reconciled=r.reconciled, reruns=r.reruns, instrument_seconds=r.instrument_seconds,
    )


def _approval(r: ApprovalRow) -> Approval:
    return Approval(r.attempt_id, r.campaign_id, r.verdict, r.user, r.reason, r.proposed_params, r.params, r.decided_at)


def _measurement(s: Session, row: MeasurementRow | None) -> Measurement | None:
    if row is None:
        return None
    data: dict[str, np.ndarray] = {}
    sigma: dict[str, np.ndarray] = {}
    for a in s.scalars(select(ArrayRow).where(ArrayRow.attempt_id == row.attempt_id).order_by(ArrayRow.id)):
        (data if a.role == "data" else sigma)[a.key] = _from_npy(a.payload)
    return Measurement(
        attempt_id=row.attempt_id, instrument=row.instrument, params=row.params, sample_id=row.sample_id,
        data=data, sigma=sigma, timing=Timing.model_validate(row.timing), recovered=row.recovered,
    )
