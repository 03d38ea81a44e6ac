"""A virtual clock: simulated instruments charge instrument seconds without spending them.

``realtime_factor`` maps virtual seconds to real sleeping (0 = as fast as possible), so fault tests
can kill a campaign *during* a measurement and demos can look like a slow instrument.
"""

from __future__ import annotations

import time


class VirtualClock:
    """Accumulates instrument time (seconds) and optionally sleeps a fraction of it in real time."""

    def __init__(self, realtime_factor: float = 0.0) -> None:
        if realtime_factor < 0:
            raise ValueError(f"realtime_factor must be >= 0, got {realtime_factor}")
        self.realtime_factor = realtime_factor
        self.elapsed_seconds = 0.0

    def advance(self, seconds: float) -> None:
        """Charge ``seconds`` of instrument time; sleep ``seconds * realtime_factor`` of real time."""
        if seconds < 0:
            raise ValueError(f"cannot advance the clock by a negative time ({seconds} s)")
        self.elapsed_seconds += seconds
        if self.realtime_factor > 0:
            time.sleep(seconds * self.realtime_factor)
