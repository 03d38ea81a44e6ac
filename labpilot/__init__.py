"""labpilot: closed-loop lab campaigns from Python — ``from labpilot import Campaign``.

The public names of the Python API (``agent/api.py``), re-exported so that the distribution's name is
also its import name. Loaded on first use, so ``import labpilot`` is fast.
"""

from __future__ import annotations

from typing import Any

import agent

__all__ = list(agent.__all__)


def __getattr__(name: str) -> Any:
    if name in __all__:
        return getattr(agent, name)
    raise AttributeError(f"module 'labpilot' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
