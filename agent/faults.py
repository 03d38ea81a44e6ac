"""How a campaign meets faults of its instruments (campaign file: ``faults``): per-request timeouts,
restarts of a dead instrument actor, failure budgets, and pausing while an instrument is not ready.

The loop (``agent/campaign.py``) applies them; the fleet (``agent/fleet.py``) restarts actors and
computes a request's timeout; ``agent/pause.py`` holds the campaign while an instrument says "not now".
"""

from __future__ import annotations

from pydantic import Field

from instruments.types import Record

#: Default of ``failures_in_a_row``: an instrument whose measurements failed this many times in a row stops the campaign.
FAILURES_IN_A_ROW = 5


class FaultsConfig(Record):
    """Fault handling of a campaign. A timeout is ``timeout_factor`` × the request's expected duration
    (``expected_seconds`` of drivers that can say) + ``timeout_margin_seconds``; for drivers that
    cannot say, ``timeout_seconds`` (None: no per-request timeout for them; ``budgets.max_wall_seconds``
    still ends the campaign)."""

    timeout_factor: float = Field(default=3.0, ge=1, description="× the request's expected duration (real seconds)")
    timeout_margin_seconds: float = Field(default=60.0, gt=0, description="added to factor × expected duration, s")
    timeout_seconds: float | None = Field(default=None, gt=0, description="timeout for drivers that state no "
                                                                           "expected duration, real seconds")
    max_restarts: int = Field(default=2, ge=0, description="restarts of each instrument actor whose process died "
                                                           "or hung, per run; one more stops the campaign")
    restart_wait_seconds: float = Field(default=300.0, gt=0, description="how long a restarted instrument actor may "
                                        "take to answer (its node may be down: the instrument PC rebooting), real "
                                        "seconds; then the campaign stops failed, to be resumed")
    failures_in_a_row: int = Field(default=FAILURES_IN_A_ROW, ge=1, description="failed measurements in a row on "
                                                                               "one instrument that stop the campaign")
    max_failed_attempts: int | None = Field(default=None, ge=1, description="failed attempts in all (this run and "
                                                                            "before) that stop the campaign")
    pause_poll_seconds: float = Field(default=5.0, gt=0, le=600, description="how often a paused campaign asks "
                                                                             "a not-ready instrument again")


def request_timeout(config: FaultsConfig, expected_seconds: float | None, remaining_wall: float | None) -> float | None:
    """Real seconds to wait for one measurement: from its expected duration (or the fixed
    ``timeout_seconds``), never beyond the wall budget left (so ``max_wall_seconds`` ends a hung
    campaign too); None: wait without limit."""
    limit = config.timeout_seconds if expected_seconds is None else (
        config.timeout_factor * expected_seconds + config.timeout_margin_seconds)
    if remaining_wall is not None:
        limit = max(remaining_wall, 0.01) if limit is None else min(limit, max(remaining_wall, 0.01))
    return limit


def failure_stop(config: FaultsConfig, instrument: str, in_a_row: int, failed_total: int, error: str) -> str | None:
    """Why the campaign must stop after a failed measurement, or None: a failure budget is spent."""
    if in_a_row >= config.failures_in_a_row:
        return f"instrument {instrument} failed {in_a_row} measurements in a row; last error: {error}"
    if config.max_failed_attempts is not None and failed_total >= config.max_failed_attempts:
        return (f"failure budget: faults.max_failed_attempts ({config.max_failed_attempts}) reached; "
                f"last error on {instrument}: {error}")
    return None


class MeasurementTimeout(Exception):
    """An instrument did not answer a measurement within its per-request timeout: it hung."""
