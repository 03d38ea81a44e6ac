"""Faults a simulated instrument can be told to have, for the fault-injection tests and benchmarks.

Each fault is keyed by the attempt's sequence number (the number at the end of its id,
``<campaign>-00003`` → 3), so a test names exactly which request misbehaves whatever the campaign id.
A fault that a real device shows once (a hang, a crash) happens once per attempt: a marker file in
``state_dir`` remembers it, so the re-run after a restart behaves — as the real instrument would after
its operator cleared the fault. ``crash_always`` is the device that keeps dying.

- ``hang_on``: ``measure`` blocks for ``hang_seconds`` (the driver thread hangs, as on a stuck motor);
- ``crash_on``: the process exits before acquiring (nothing in the journal: re-run);
- ``crash_after_on``: the process exits after the journal is written (the data exist: adopt);
- ``hang_after_on``: ``measure`` blocks for ``hang_seconds`` after the journal is written (the data
  exist but the answer is late: what a node lost in that window leaves behind — adopt);
- ``check_error_on``: ``check`` raises an unexpected ``RuntimeError`` (a driver bug, not a limit);
- ``interlock_file``: while this file exists, ``check`` and ``measure`` raise ``InstrumentNotReady``
  (an interlock or the beam down: the request is fine, only not now).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from pydantic import Field

from instruments.protocol import InstrumentNotReady
from instruments.types import MeasurementRequest, Record


class SimulatedFaults(Record):
    """Fault options of a simulated instrument (campaign file: ``instruments[].settings.faults``)."""

    hang_on: list[int] = Field(default_factory=list, description="attempt numbers whose first measure hangs")
    hang_seconds: float = Field(default=3600.0, gt=0, description="how long a hang lasts, real seconds")
    crash_on: list[int] = Field(default_factory=list, description="attempt numbers whose first measure kills the "
                                                                   "process before acquiring")
    crash_after_on: list[int] = Field(default_factory=list, description="attempt numbers whose first measure kills "
                                                                         "the process after writing the journal")
    hang_after_on: list[int] = Field(default_factory=list, description="attempt numbers whose first measure hangs "
                                                                        "after writing the journal")
    crash_always: bool = Field(default=False, description="every measure kills the process before acquiring")
    check_error_on: list[int] = Field(default_factory=list, description="attempt numbers whose check raises "
                                                                         "an unexpected error")
    interlock_file: str | None = Field(default=None, description="while this file exists the instrument is "
                                                                 "not ready (check and measure raise InstrumentNotReady)")


def attempt_number(attempt_id: str) -> int | None:
    """The sequence number at the end of an attempt id, or None for an id without one."""
    tail = attempt_id.rsplit("-", 1)[-1]
    return int(tail) if tail.isdigit() else None


class FaultInjector:
    """Applies ``SimulatedFaults`` around a driver's ``check`` and ``measure``."""

    def __init__(self, faults: SimulatedFaults, state_dir: str | os.PathLike[str] | None) -> None:
        self.faults = faults
        self.state_dir = Path(state_dir) / "faults" if state_dir is not None else None

    def _first_time(self, kind: str, attempt_id: str) -> bool:
        """True the first time ``kind`` happens to ``attempt_id`` (remembered across processes)."""
        if self.state_dir is None:
            return True
        self.state_dir.mkdir(parents=True, exist_ok=True)
        marker = self.state_dir / f"{kind}-{attempt_id}"
        if marker.exists():
            return False
        marker.touch()
        return True

    def _interlock(self, what: str) -> None:
        if self.faults.interlock_file is not None and Path(self.faults.interlock_file).exists():
            raise InstrumentNotReady(f"{what}: interlock open ({self.faults.interlock_file} exists)")

    def before_check(self, name: str, request: MeasurementRequest) -> None:
        self._interlock(name)
        if attempt_number(request.attempt_id) in self.faults.check_error_on:
            raise RuntimeError(f"{name}: check crashed on attempt {request.attempt_id} (simulated driver bug)")

    def before_measure(self, name: str, request: MeasurementRequest) -> None:
        self._interlock(name)
        n, f = attempt_number(request.attempt_id), self.faults
        if f.crash_always or (n in f.crash_on and self._first_time("crash", request.attempt_id)):
            os._exit(70)  # the process dies as a segfaulting vendor library would: no cleanup, no reply
        if n in f.hang_on and self._first_time("hang", request.attempt_id):
            time.sleep(f.hang_seconds)

    def after_measure(self, request: MeasurementRequest) -> None:
        n = attempt_number(request.attempt_id)
        if n in self.faults.crash_after_on and self._first_time("crash-after", request.attempt_id):
            os._exit(70)
        if n in self.faults.hang_after_on and self._first_time("hang-after", request.attempt_id):
            time.sleep(self.faults.hang_seconds)
