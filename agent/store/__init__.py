"""The store: SQLAlchemy tables and a small write-ahead API. SQLite embedded, PostgreSQL by URL."""

from agent.store.engine import StoreUnavailable
from agent.store.lease import CampaignOwned
from agent.store.lifecycle import AttemptState, CampaignStatus, InvalidTransition
from agent.store.store import (
    AnalysedRecord,
    Approval,
    Attempt,
    Campaign,
    Decision,
    Document,
    InstrumentRecord,
    NotAwaitingApproval,
    ProposedAttempt,
    Store,
    TargetEvaluation,
    UnknownCampaign,
    json_safe,
)

__all__ = [
    "AnalysedRecord",
    "Approval",
    "Attempt",
    "AttemptState",
    "Campaign",
    "CampaignOwned",
    "CampaignStatus",
    "Decision",
    "Document",
    "InstrumentRecord",
    "InvalidTransition",
    "NotAwaitingApproval",
    "ProposedAttempt",
    "Store",
    "StoreUnavailable",
    "TargetEvaluation",
    "UnknownCampaign",
    "json_safe",
]
