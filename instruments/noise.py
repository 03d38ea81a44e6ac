"""The seed of one attempt's random draws (counting noise, thinning), shared by every simulated or
replayed instrument so they all follow one rule."""

from __future__ import annotations

import hashlib

from instruments.types import MeasurementRequest


def attempt_seed(seed: int, request: MeasurementRequest) -> int:
    """A 64-bit seed for the draws of ``request`` on an instrument seeded ``seed``.

    Draws depend on the attempt, not on the order attempts happen to finish in: a campaign that is
    killed and resumed, or replayed, draws the same counts for the same attempt. They are keyed on the
    request's ``noise_key`` (the campaign's seed, the attempt's sequence number and sample), not on
    its attempt id, which holds the random campaign id: two campaigns run with the same seed draw the
    same data. A request without one (sent by other code) falls back to its attempt id.
    """
    key = request.noise_key if request.noise_key is not None else request.attempt_id
    return int.from_bytes(hashlib.sha256(f"{seed}:{key}".encode()).digest()[:8], "little")
