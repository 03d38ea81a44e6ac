"""Writing store rows that no single Store call writes on its own, for fixtures.

The engine logs a target evaluation only with the interpretation it includes
(``Store.record_interpretation``); fixtures that want a log of their own choosing write it here.
"""

from __future__ import annotations

from agent.store import Store, TargetEvaluation
from agent.store.store import _log_evaluation


def log_target_evaluation(store: Store, campaign_id: str, evaluation: TargetEvaluation) -> None:
    with store.engine.begin() as conn:
        _log_evaluation(conn, campaign_id, evaluation)
