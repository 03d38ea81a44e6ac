"""The orchestration layer: campaign files, the closed loop, guard, targets, store, CLI, reports.

The Python API (``agent/api.py``) is exported here, loaded on first use: ``import agent`` (and so every
CLI command) stays light, and pays for the loop's imports (Ray, BoTorch) only when a campaign is used.
"""

from __future__ import annotations

import importlib
from typing import Any

#: Public name → the module that defines it.
_API = {
    name: "agent.api"
    for name in ("AskTellStatus", "Campaign", "CampaignError", "CampaignOutcome", "ProgressEvent", "Proposal", "TargetState")
} | {"TellError": "agent.asktell", "CampaignFileError": "agent.config", "AttemptResult": "agent.results",
      "Measurement": "instruments.types", "Timing": "instruments.types"}

__all__ = sorted(_API)


def __getattr__(name: str) -> Any:
    if name in _API:
        return getattr(importlib.import_module(_API[name]), name)
    raise AttributeError(f"module 'agent' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
