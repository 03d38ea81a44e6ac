"""Injected faults of the simulated instruments: keyed by attempt number, once per attempt where a
real device would show them once, remembered across processes (marker files)."""

from __future__ import annotations

from pathlib import Path

import pytest

from instruments.protocol import InstrumentNotReady
from instruments.types import MeasurementRequest
from simulators.faults import FaultInjector, SimulatedFaults, attempt_number

pytestmark = pytest.mark.timeout(30)


def _request(n: int) -> MeasurementRequest:
    return MeasurementRequest(attempt_id=f"camp-1a2b-{n:05d}", params={"x": 0.5})


def test_attempt_numbers_are_read_from_the_end_of_the_id() -> None:
    assert attempt_number("quickstart-1a2b3c4d-00012") == 12
    assert attempt_number("probe") is None and attempt_number("a-b") is None


def test_a_hang_happens_once_per_attempt_even_in_a_new_process(tmp_path: Path) -> None:
    faults = SimulatedFaults(hang_on=[2], hang_seconds=0.2)
    injector = FaultInjector(faults, tmp_path)
    import time

    started = time.monotonic()
    injector.before_measure("r", _request(2))
    assert time.monotonic() - started >= 0.2
    started = time.monotonic()
    FaultInjector(faults, tmp_path).before_measure("r", _request(2))  # a restarted driver: the marker remains
    FaultInjector(faults, tmp_path).before_measure("r", _request(3))
    assert time.monotonic() - started < 0.15


def test_a_hang_after_the_journal_happens_once_per_attempt(tmp_path: Path) -> None:
    import time

    faults = SimulatedFaults(hang_after_on=[2], hang_seconds=0.2)
    started = time.monotonic()
    FaultInjector(faults, tmp_path).after_measure(_request(2))
    assert time.monotonic() - started >= 0.2 and (tmp_path / "faults" / "hang-after-camp-1a2b-00002").exists()
    started = time.monotonic()
    FaultInjector(faults, tmp_path).after_measure(_request(2))  # a restarted driver: the marker remains
    FaultInjector(faults, tmp_path).after_measure(_request(3))
    assert time.monotonic() - started < 0.15


def test_check_errors_and_the_interlock(tmp_path: Path) -> None:
    interlock = tmp_path / "interlock"
    injector = FaultInjector(SimulatedFaults(check_error_on=[1], interlock_file=str(interlock)), tmp_path)
    injector.before_check("r", _request(0))
    with pytest.raises(RuntimeError, match="check crashed on attempt camp-1a2b-00001"):
        injector.before_check("r", _request(1))
    interlock.touch()
    for call in (injector.before_check, injector.before_measure):
        with pytest.raises(InstrumentNotReady, match="interlock open"):
            call("r", _request(0))
    interlock.unlink()
    injector.before_measure("r", _request(0))


def test_unknown_fault_options_are_refused() -> None:
    with pytest.raises(ValueError, match="hang_onn"):
        SimulatedFaults.model_validate({"hang_onn": [1]})
