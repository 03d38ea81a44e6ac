"""Campaign ids, in a module of their own: the command line names a campaign before it imports the loop."""

from __future__ import annotations

import uuid


def new_campaign_id(name: str) -> str:
    """``name`` and 8 random hex digits: unique in any store, readable in a listing."""
    return f"{name}-{uuid.uuid4().hex[:8]}"
