"""Counting noise that depends on the attempt, not on when it happens to run."""

from __future__ import annotations

import hashlib


def attempt_seed(seed: int, attempt_id: str) -> int:
    """A 64-bit seed for the noise of one attempt of an instrument seeded ``seed``.

    Noise depends on the attempt, not on the order attempts happen to finish in: a campaign that is
    killed and resumed, or replayed, draws the same counts for the same attempt.
    """
    digest = hashlib.sha256(f"{seed}:{attempt_id}".encode()).digest()
    return int.from_bytes(digest[:8], "little")
