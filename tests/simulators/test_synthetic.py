"""The synthetic instrument: known optimum, honest noise, limits, faults, its own data files."""

from __future__ import annotations

import numpy as np
import pytest

from instruments import Driver, InstrumentLimitError, MeasurementRequest, RecoverableDriver
from simulators.clock import VirtualClock
from simulators.synthetic import SyntheticPropertyDriver, SyntheticSettings

pytestmark = pytest.mark.timeout(60)
INPUTS = {"temperature": (300.0, 500.0), "time": (1.0, 60.0)}


def _driver(**settings) -> SyntheticPropertyDriver:  # type: ignore[no-untyped-def]
    return SyntheticPropertyDriver("reactor", SyntheticSettings(inputs=INPUTS, **settings))


def test_satisfies_the_driver_protocols(tmp_path) -> None:  # type: ignore[no-untyped-def]
    driver = _driver(journal_dir=str(tmp_path))
    assert isinstance(driver, Driver) and isinstance(driver, RecoverableDriver)
    keys = driver.describe()
    assert keys["yield"].dtype == "number" and keys["yield"].shape == []


def test_known_optimum_and_noise_level() -> None:
    driver = _driver(noise_sd=0.05)
    params, value = driver.true_optimum()
    assert value == pytest.approx(1.0, abs=1e-3)
    assert 300 <= params["temperature"] <= 500
    values = [driver.measure(MeasurementRequest(attempt_id=f"a{i}", params=params)).scalar("yield") for i in range(400)]
    assert np.mean(values) == pytest.approx(value, abs=4 * 0.05 / np.sqrt(400))
    assert np.std(values, ddof=1) == pytest.approx(0.05, rel=0.15)
    # Noise is a function of the attempt: the same attempt gives the same number (replays agree).
    again = driver.measure(MeasurementRequest(attempt_id="a0", params=params)).scalar("yield")
    assert again == values[0]


def test_branin_minimum() -> None:
    driver = SyntheticPropertyDriver("b", SyntheticSettings(function="branin", inputs={"a": (0, 1), "b": (0, 1)}))
    assert driver.direction == "minimize"
    assert driver.true_optimum()[1] == pytest.approx(0.397887, abs=1e-4)


def test_virtual_clock_charges_instrument_time_not_wall_time() -> None:
    driver = _driver(synthesis_seconds=3600, motion_seconds=60, overhead_seconds=10)
    m = driver.measure(MeasurementRequest(attempt_id="a", params={"temperature": 400, "time": 10}))
    assert m.timing.instrument_seconds == 3670
    assert driver.clock.elapsed_seconds == 3670
    with pytest.raises(ValueError, match="negative"):
        VirtualClock().advance(-1)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"temperature": 600, "time": 10}, "temperature=600 is outside the limits"),
        ({"temperature": 400}, "lacks input 'time'"),
        ({"temperature": 400, "time": 10, "pressure": 1}, "unknown inputs \\['pressure'\\]"),
        ({"temperature": "hot", "time": 10}, "not a finite number"),
    ],
)
def test_check_refuses_requests_outside_limits(params, message) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InstrumentLimitError, match=message):
        _driver().check(MeasurementRequest(attempt_id="a", params=params))


def test_fault_injection_nan_and_failure() -> None:
    nan = _driver(nan_probability=1.0).measure(MeasurementRequest(attempt_id="a", params={"temperature": 400, "time": 10}))
    assert np.isnan(nan.scalar("yield"))
    with pytest.raises(RuntimeError, match="simulated instrument fault"):
        _driver(failure_probability=1.0).measure(MeasurementRequest(attempt_id="a", params={"temperature": 400, "time": 10}))


def test_journal_lets_a_finished_attempt_be_recovered(tmp_path) -> None:  # type: ignore[no-untyped-def]
    first = _driver(journal_dir=str(tmp_path))
    measured = first.measure(MeasurementRequest(attempt_id="camp-00001", params={"temperature": 400, "time": 10}))
    reborn = _driver(journal_dir=str(tmp_path))  # a new process after a crash
    recovered = reborn.recover("camp-00001")
    assert recovered is not None and recovered.recovered
    assert recovered.scalar("yield") == measured.scalar("yield")
    assert reborn.recover("camp-00002") is None


def test_settings_are_validated() -> None:
    with pytest.raises(ValueError, match="inputs.t: low"):
        SyntheticSettings(inputs={"t": (5, 1)})
    with pytest.raises(ValueError, match="branin"):
        SyntheticSettings(function="branin", inputs={"a": (0, 1)})
    with pytest.raises(ValueError, match="inputs is empty"):
        SyntheticPropertyDriver("x", SyntheticSettings())
