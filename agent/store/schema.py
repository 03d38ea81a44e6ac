"""Tables of the store. The store is the truth: model state is derived from it, never the reverse.

Attempt states and campaign statuses, and which transitions are allowed, are ``agent/store/lifecycle.py``.
"""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

SCHEMA_VERSION = 1

def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class Base(DeclarativeBase):
    pass


class CampaignRow(Base):
    __tablename__ = "campaigns"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(20), default="running")  # a lifecycle.CampaignStatus value
    stop_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    config: Mapped[dict] = mapped_column(JSON)
    seed: Mapped[int] = mapped_column(Integer)
    data_dir: Mapped[str] = mapped_column(Text)
    package_versions: Mapped[dict] = mapped_column(JSON)
    wall_seconds: Mapped[float] = mapped_column(Float, default=0.0)  # finished runs only
    runs: Mapped[int] = mapped_column(Integer, default=1)
    schema_version: Mapped[int] = mapped_column(Integer, default=SCHEMA_VERSION)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class InstrumentRow(Base):
    """What each instrument of a campaign told the loop about itself when the run started: its
    planning model (no ground truth: configurations, wavelengths, costs) and its data keys. Exports
    and reports take instrument facts from here, never from a simulator."""

    __tablename__ = "instruments"
    __table_args__ = (UniqueConstraint("campaign_id", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    campaign_id: Mapped[str] = mapped_column(ForeignKey("campaigns.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))  # the actor's name ("saxs", or "reactor-2" of a count > 1)
    kind: Mapped[str] = mapped_column(String(100))  # the campaign file's instrument kind
    model_kind: Mapped[str | None] = mapped_column(String(20), nullable=True)  # "sas" | "xrd": instruments.protocol.planning_model_kind
    model: Mapped[dict | None] = mapped_column(JSON, nullable=True)  # planning_model(), JSON; None if it has none
    data_keys: Mapped[dict] = mapped_column(JSON)  # describe(): key → DataKey as JSON
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class LeaseRow(Base):
    """Which process owns a running campaign: one owner at a time, kept alive by its heartbeat."""

    __tablename__ = "leases"

    campaign_id: Mapped[str] = mapped_column(ForeignKey("campaigns.id"), primary_key=True)
    owner: Mapped[str] = mapped_column(String(200))  # "host:pid:token" of the owning process
    acquired_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    heartbeat_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class DecisionRow(Base):
    __tablename__ = "decisions"
    __table_args__ = (UniqueConstraint("campaign_id", "seq"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    campaign_id: Mapped[str] = mapped_column(ForeignKey("campaigns.id"), index=True)
    seq: Mapped[int] = mapped_column(Integer)
    policy: Mapped[str] = mapped_column(String(100))
    fallback: Mapped[bool] = mapped_column(Boolean, default=False)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    seed: Mapped[int] = mapped_column(Integer)
    n_history: Mapped[int] = mapped_column(Integer)
    n_pending: Mapped[int] = mapped_column(Integer)
    reasons: Mapped[list] = mapped_column(JSON)  # one reason dict per proposal
    package_versions: Mapped[dict] = mapped_column(JSON)
    decision_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class AttemptRow(Base):
    __tablename__ = "attempts"
    __table_args__ = (UniqueConstraint("campaign_id", "seq"),)

    id: Mapped[str] = mapped_column(String(100), primary_key=True)  # "<campaign id>-<seq>"
    campaign_id: Mapped[str] = mapped_column(ForeignKey("campaigns.id"), index=True)
    seq: Mapped[int] = mapped_column(Integer)
    decision_id: Mapped[int | None] = mapped_column(ForeignKey("decisions.id"), nullable=True)
    state: Mapped[str] = mapped_column(String(20), index=True)  # a lifecycle.AttemptState value
    instrument: Mapped[str | None] = mapped_column(String(100), nullable=True)
    sample_id: Mapped[str | None] = mapped_column(String(100), nullable=True)
    params: Mapped[dict] = mapped_column(JSON)
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)  # refusal / failure reason
    reconciled: Mapped[str | None] = mapped_column(String(20), nullable=True)  # adopted | rerun
    reruns: Mapped[int] = mapped_column(Integer, default=0)
    instrument_seconds: Mapped[float | None] = mapped_column(Float, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class TransitionRow(Base):
    """Audit log: every state change of every attempt, in order."""

    __tablename__ = "transitions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    attempt_id: Mapped[str] = mapped_column(ForeignKey("attempts.id"), index=True)
    from_state: Mapped[str | None] = mapped_column(String(20), nullable=True)
    to_state: Mapped[str] = mapped_column(String(20))
    note: Mapped[str | None] = mapped_column(Text, nullable=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ApprovalRow(Base):
    """A person's decision on an attempt that awaited approval (``agent/approval.py``): approved as
    proposed, approved with edited parameters, or rejected with a reason; who decided and when."""

    __tablename__ = "approvals"

    attempt_id: Mapped[str] = mapped_column(ForeignKey("attempts.id"), primary_key=True)  # one decision per attempt
    campaign_id: Mapped[str] = mapped_column(ForeignKey("campaigns.id"), index=True)
    verdict: Mapped[str] = mapped_column(String(20))  # approved | edited | rejected
    user: Mapped[str] = mapped_column(String(200))
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    proposed_params: Mapped[dict] = mapped_column(JSON)  # as the policy proposed them
    params: Mapped[dict] = mapped_column(JSON)  # as approved (edited or not); the proposal's for a rejection
    decided_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class MeasurementRow(Base):
    __tablename__ = "measurements"

    attempt_id: Mapped[str] = mapped_column(ForeignKey("attempts.id"), primary_key=True)
    campaign_id: Mapped[str] = mapped_column(ForeignKey("campaigns.id"), index=True)
    instrument: Mapped[str] = mapped_column(String(100))
    sample_id: Mapped[str | None] = mapped_column(String(100), nullable=True, index=True)
    params: Mapped[dict] = mapped_column(JSON)
    timing: Mapped[dict] = mapped_column(JSON)
    instrument_seconds: Mapped[float] = mapped_column(Float)
    finite: Mapped[bool] = mapped_column(Boolean)  # every data and σ value finite
    recovered: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ArrayRow(Base):
    """Raw arrays, bit-exact (NaN and inf included), as .npy bytes."""

    __tablename__ = "arrays"
    __table_args__ = (UniqueConstraint("attempt_id", "role", "key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    attempt_id: Mapped[str] = mapped_column(ForeignKey("measurements.attempt_id"), index=True)
    role: Mapped[str] = mapped_column(String(10))  # data | sigma
    key: Mapped[str] = mapped_column(String(100))
    dtype: Mapped[str] = mapped_column(String(20))
    shape: Mapped[list] = mapped_column(JSON)
    payload: Mapped[bytes] = mapped_column(LargeBinary)


class InterpretationRow(Base):
    __tablename__ = "interpretations"

    attempt_id: Mapped[str] = mapped_column(ForeignKey("attempts.id"), primary_key=True)
    campaign_id: Mapped[str] = mapped_column(ForeignKey("campaigns.id"), index=True)
    sample_id: Mapped[str] = mapped_column(String(100))
    analysis: Mapped[str] = mapped_column(String(100))
    estimates: Mapped[dict] = mapped_column(JSON)
    flags: Mapped[list] = mapped_column(JSON)
    valid: Mapped[bool] = mapped_column(Boolean)
    details: Mapped[dict] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class TargetEvaluationRow(Base):
    __tablename__ = "target_evaluations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    campaign_id: Mapped[str] = mapped_column(ForeignKey("campaigns.id"), index=True)
    n_measurements: Mapped[int] = mapped_column(Integer)
    instrument_seconds: Mapped[float] = mapped_column(Float)
    wall_seconds: Mapped[float] = mapped_column(Float)
    results: Mapped[dict] = mapped_column(JSON)  # name → {value, goal, met}
    all_met: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class DocumentRow(Base):
    """The outbox of bluesky event-model documents: written in the transaction of the record they
    describe, published (JSON lines, ZMQ) afterwards and marked so; a restart publishes the rest."""

    __tablename__ = "documents"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)  # publication order
    uid: Mapped[str] = mapped_column(String(64), unique=True)  # deterministic: replays are no-ops
    campaign_id: Mapped[str] = mapped_column(ForeignKey("campaigns.id"), index=True)
    name: Mapped[str] = mapped_column(String(20))  # start | descriptor | event | stop
    stream: Mapped[str | None] = mapped_column(String(100), nullable=True)
    doc: Mapped[dict] = mapped_column(JSON)
    published: Mapped[bool] = mapped_column(Boolean, default=False, index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class SampleRow(Base):
    """A sample of a campaign over samples (self-driving lab): the recipe it was made from, the
    synthesis attempt that made it, the sample step that characterised it (a campaign of its own in
    this store, ``step_campaign_id``), and its outcome (``policies.protocol.SampleOutcome`` as JSON)
    once the step ended. ``status``: ``characterising`` until then, else the outcome's status."""

    __tablename__ = "samples"

    sample_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    campaign_id: Mapped[str] = mapped_column(ForeignKey("campaigns.id"), index=True)
    synthesis_attempt_id: Mapped[str] = mapped_column(ForeignKey("attempts.id"), unique=True)
    step_campaign_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    recipe: Mapped[dict] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(20))
    outcome: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    seconds: Mapped[float] = mapped_column(Float, default=0.0)  # synthesis + instrument seconds, s
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
