"""The store: SQLAlchemy tables and a small write-ahead API. SQLite embedded, PostgreSQL by URL."""

from agent.store.engine import StoreUnavailable
from agent.store.store import (
    Attempt,
    Campaign,
    Decision,
    Document,
    InvalidTransition,
    ProposedAttempt,
    Store,
    TargetEvaluation,
    UnknownCampaign,
    json_safe,
)

__all__ = [
    "Attempt",
    "Campaign",
    "Decision",
    "Document",
    "InvalidTransition",
    "ProposedAttempt",
    "Store",
    "StoreUnavailable",
    "TargetEvaluation",
    "UnknownCampaign",
    "json_safe",
]
