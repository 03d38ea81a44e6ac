"""The ophyd instrument kind against real ophyd.sim devices and a real bluesky RunEngine.

Two sets of hardware: ophyd.sim's own module-level motors and 2-D Gaussian detector (what a
campaign file names out of the box), and a small bench built by ``counting_bench`` below — a
SoftPositioner with its own limits, a Poisson counter with its σ, an array and a text signal, a
slow axis — to reach the paths ophyd.sim's defaults do not (device limits, σ, dtypes, timeouts).
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from pydantic import ValidationError

from instruments.actor import InstrumentService
from instruments.ophyd_adapter import OphydDriver, OphydSettings
from instruments.protocol import InstrumentLimitError
from instruments.types import MeasurementRequest

pytestmark = pytest.mark.timeout(60)

SIM_SETTINGS = {
    "movables": {
        "x": {"object": "ophyd.sim:motor1", "limits": [-5.0, 5.0]},
        "y": {"object": "ophyd.sim:motor2", "limits": [-5.0, 5.0]},
    },
    "detectors": ["ophyd.sim:det4"],
}
BENCH = "tests.instruments.test_ophyd_adapter:counting_bench"


BENCHES: dict[str, SimpleNamespace] = {}
"""The benches built under a ``tag``, so a test can reach its devices."""


def counting_bench(seed: int = 0, slow_delay_seconds: float = 1.0, tag: str | None = None) -> SimpleNamespace:
    """Fresh ophyd devices, wired together (a factory for ``DeviceSpec.factory``)."""
    from ophyd import Signal
    from ophyd.positioner import SoftPositioner
    from ophyd.sim import SynAxis, SynSignal

    rng = np.random.default_rng(seed)
    th = SoftPositioner(name="th", limits=(-1.0, 1.0), init_pos=0.0, egu="deg")
    counts = SynSignal(func=lambda: int(rng.poisson(1000.0 * (1.5 + float(th.position)))), name="counts")
    # Triggered after `counts` (bluesky triggers in the order given), so it is the σ of this reading.
    counts_sigma = SynSignal(func=lambda: math.sqrt(max(float(counts.get()), 1.0)), name="counts_sigma")
    profile = SynSignal(func=lambda: np.arange(5.0) * float(th.position), name="profile")
    label = Signal(value="bench-1", name="label")
    slow = SynAxis(name="slow", delay=slow_delay_seconds)
    bench = SimpleNamespace(th=th, counts=counts, counts_sigma=counts_sigma, profile=profile, label=label, slow=slow)
    if tag is not None:
        BENCHES[tag] = bench
    return bench


@pytest.fixture
def drivers() -> Iterator[list[OphydDriver]]:
    """Drivers built by a test; their RunEngine threads are ended afterwards."""
    built: list[OphydDriver] = []
    yield built
    for driver in built:
        driver.close()


@pytest.fixture
def sim_motors() -> Iterator[Any]:
    """ophyd.sim's module-level devices, put back at their start positions afterwards."""
    import ophyd.sim

    before = (ophyd.sim.motor1.position, ophyd.sim.motor2.position)
    yield ophyd.sim
    ophyd.sim.motor1.set(before[0]).wait(5)
    ophyd.sim.motor2.set(before[1]).wait(5)


def _driver(drivers: list[OphydDriver], settings: dict[str, Any], name: str = "beamline") -> OphydDriver:
    driver = OphydDriver(name, OphydSettings.model_validate(settings))
    drivers.append(driver)
    return driver


def _request(attempt_id: str, **params: Any) -> MeasurementRequest:
    return MeasurementRequest(attempt_id=attempt_id, params=params)


def _measure_as_the_actor_does(driver: OphydDriver, request: MeasurementRequest) -> Any:
    # The real transport minus Ray: InstrumentService calls measure() from a worker thread.
    service = InstrumentService(lambda: driver)
    return asyncio.run(service.measure(request))


def test_describe_maps_the_detectors_data_keys(drivers: list[OphydDriver], sim_motors: Any) -> None:
    keys = _driver(drivers, SIM_SETTINGS).describe()
    assert set(keys) == {"det4"}
    assert keys["det4"].dtype == "number" and keys["det4"].shape == [] and keys["det4"].units == "a.u."

    bench = _driver(drivers, {
        "movables": {"angle": {"factory": BENCH, "attribute": "th"}},
        "detectors": [{"factory": BENCH, "attribute": a} for a in ("counts", "counts_sigma", "profile", "label")],
        "units": {"counts": "counts", "counts_sigma": "counts"},
    }).describe()
    assert {k: (v.dtype, v.shape, v.units) for k, v in bench.items()} == {
        "counts": ("integer", [], "counts"),
        "counts_sigma": ("number", [], "counts"),
        "profile": ("array", [5], "a.u."),
        "label": ("string", [], "a.u."),
    }
    assert "not carried" in bench["label"].description


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"x": 6.0, "y": 0.0}, "x=6.0 is outside the limits [-5.0, 5.0] of motor1"),
        ({"x": 0.0, "y": -5.5}, "y=-5.5 is outside the limits [-5.0, 5.0] of motor2"),
        ({"x": 1.0}, "request lacks axis 'y'"),
        ({"x": 1.0, "y": 1.0, "z": 0.0}, "unknown parameters ['z']"),
        ({"x": "far", "y": 1.0}, "x='far' is not a finite number"),
    ],
)
def test_a_refused_request_moves_nothing(
    drivers: list[OphydDriver], sim_motors: Any, params: dict[str, Any], message: str
) -> None:
    driver = _driver(drivers, SIM_SETTINGS)
    sim_motors.motor1.set(1.25).wait(5)
    sim_motors.motor2.set(-0.75).wait(5)
    request = _request("refused-1", **params)
    with pytest.raises(InstrumentLimitError) as refused:
        driver.check(request)
    assert message in str(refused.value)
    # measure() checks first too: a request that reaches it anyway is refused before any move.
    with pytest.raises(InstrumentLimitError):
        _measure_as_the_actor_does(driver, request)
    assert (sim_motors.motor1.position, sim_motors.motor2.position) == (1.25, -0.75)


def test_measure_moves_the_motors_and_returns_what_the_detector_reads_there(
    drivers: list[OphydDriver], sim_motors: Any
) -> None:
    driver = _driver(drivers, SIM_SETTINGS)
    documents: list[tuple[str, dict[str, Any]]] = []
    driver.subscribe(lambda name, doc: documents.append((name, doc)))
    before = datetime.now(timezone.utc)
    measurement = _measure_as_the_actor_does(driver, _request("m-1", x=0.7, y=-0.4))

    assert (sim_motors.motor1.position, sim_motors.motor2.position) == (0.7, -0.4)
    sim_motors.det4.trigger().wait(5)
    read_now = sim_motors.det4.read()["det4"]["value"]
    assert measurement.data["det4"].shape == (1,)
    assert measurement.scalar("det4") == read_now
    # ophyd.sim's det4: exp(−(x² + y²) / 2), centre (0, 0), σ = 1, Imax = 1, no noise.
    assert measurement.scalar("det4") == pytest.approx(math.exp(-(0.7**2 + 0.4**2) / 2), rel=1e-12)
    assert measurement.sigma == {}  # det4 offers no uncertainty: none is invented
    assert measurement.params == {"x": 0.7, "y": -0.4} and measurement.instrument == "beamline"

    # It was one bluesky run: start, the motion and primary streams, stop — as a beamline records it.
    names = [n for n, _ in documents]
    assert names[0] == "start" and names[-1] == "stop" and names.count("event") == 2
    start = documents[0][1]
    assert start["labpilot_attempt_id"] == "m-1" and start["motors"] == ["motor1", "motor2"]
    assert documents[-1][1]["exit_status"] == "success"
    descriptors = {d["uid"]: d["name"] for n, d in documents if n == "descriptor"}
    events = {descriptors[d["descriptor"]]: d for n, d in documents if n == "event"}
    assert events["primary"]["data"]["det4"] == measurement.scalar("det4")
    assert events["motion"]["data"] == {"motor1": 0.7, "motor1_setpoint": 0.7, "motor2": -0.4, "motor2_setpoint": -0.4}
    # Timing is the documents' own: the run's span, split into motion, exposure and overhead.
    timing = measurement.timing
    assert timing.started_at == datetime.fromtimestamp(start["time"], timezone.utc)
    assert before - timedelta(seconds=1) <= timing.started_at <= datetime.now(timezone.utc)
    assert timing.instrument_seconds == pytest.approx(documents[-1][1]["time"] - start["time"], abs=1e-6)
    assert timing.motion_seconds == pytest.approx(events["motion"]["time"] - start["time"], abs=1e-9)

    # The same RunEngine serves the next measurement.
    second = _measure_as_the_actor_does(driver, _request("m-2", x=-0.2, y=0.1))
    assert second.scalar("det4") == pytest.approx(math.exp(-(0.2**2 + 0.1**2) / 2), rel=1e-12)
    assert [d["scan_id"] for n, d in documents if n == "start"] == [1, 2]


def test_device_limits_sigma_arrays_and_text_through_a_factory(drivers: list[OphydDriver]) -> None:
    driver = _driver(drivers, {
        # The settings narrow the SoftPositioner's own limits (−1, 1) on one side only.
        "movables": {"angle": {"factory": BENCH, "kwargs": {"seed": 4}, "attribute": "th", "limits": [-2.0, 0.5]}},
        "detectors": [
            {"factory": BENCH, "kwargs": {"seed": 4}, "attribute": a} for a in ("counts", "counts_sigma", "profile", "label")
        ],
        "sigma": {"counts": "counts_sigma"},
        "settle_seconds": 0.05,
    })
    assert driver.limits("angle") == (-1.0, 0.5)
    with pytest.raises(InstrumentLimitError, match=r"angle=-1.5 is outside the limits \[-1.0, 0.5\] of th"):
        driver.check(_request("b-0", angle=-1.5))
    with pytest.raises(InstrumentLimitError, match=r"angle=0.8 is outside the limits \[-1.0, 0.5\] of th"):
        driver.check(_request("b-0", angle=0.8))

    m = _measure_as_the_actor_does(driver, _request("b-1", angle=0.25))
    assert set(m.data) == {"counts", "counts_sigma", "profile"}  # text is described, not carried
    np.testing.assert_array_equal(m.data["profile"], np.arange(5.0) * 0.25)
    assert m.sigma["counts"][0] == pytest.approx(math.sqrt(m.data["counts"][0]))
    assert 1000 * 1.75 - 5 * math.sqrt(1750) < m.data["counts"][0] < 1000 * 1.75 + 5 * math.sqrt(1750)
    assert m.timing.overhead_seconds >= 0.05  # the settle is dead time, not exposure
    # One factory call (same kwargs) built all five: the detectors read the positioner that moved.
    assert m.data["profile"][1] == 0.25


def test_a_move_that_does_not_arrive_fails_the_measurement_and_the_driver_goes_on(drivers: list[OphydDriver]) -> None:
    bench = {"factory": BENCH, "kwargs": {"slow_delay_seconds": 1.0, "tag": "timeout"}}
    driver = _driver(drivers, {
        "movables": {"z": {**bench, "attribute": "slow", "limits": [0, 10]}},
        "detectors": [{**bench, "attribute": "counts"}],
        "move_timeout_seconds": 0.2,
    })
    with pytest.raises(RuntimeError, match=r"beamline: attempt t-1: the run failed: .*Timeout"):
        _measure_as_the_actor_does(driver, _request("t-1", z=5.0))
    driver.stop(success=False)
    assert driver.stopped is False
    slow = BENCHES.pop("timeout").slow
    # ophyd.sim's SynAxis ignores stop(): let the late move land before its RunEngine goes away.
    deadline = time.monotonic() + 5
    while slow.position != 5.0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert slow.position == 5.0
    # The same driver and RunEngine measure again once the axis is quick enough.
    slow.delay = 0.0
    assert _measure_as_the_actor_does(driver, _request("t-2", z=1.0)).data["counts"].shape == (1,)
    assert slow.position == 1.0


def test_settings_and_construction_errors_name_the_field(drivers: list[OphydDriver]) -> None:
    def errors(settings: dict[str, Any]) -> str:
        with pytest.raises(ValidationError) as bad:
            OphydSettings.model_validate(settings)
        return str(bad.value)

    det = ["ophyd.sim:det4"]
    assert "movables.x" in errors({"movables": {"x": "ophyd.sim.motor1"}, "detectors": det})
    assert "no module 'ophyd.simulated'" in errors({"movables": {"x": "ophyd.simulated:motor1"}, "detectors": det})
    assert "low (1.0) must be below high (0.0)" in errors(
        {"movables": {"x": {"object": "ophyd.sim:motor1", "limits": [1, 0]}}, "detectors": det}
    )
    assert "exactly one of object" in errors(
        {"movables": {"x": {"object": "ophyd.sim:motor1", "factory": "ophyd.sim:hw"}}, "detectors": det}
    )
    assert "detectors" in errors({"movables": {"x": "ophyd.sim:motor1"}, "detectors": []})

    # Named objects are looked up when the settings are validated (`labpilot validate`), not at the first move.
    assert "movables.x: ophyd.sim:motor1 reports no limits; set movables.x.limits to its travel range" in errors(
        {"movables": {"x": "ophyd.sim:motor1"}, "detectors": det}
    )
    assert "movables.x: 'ophyd.sim:motor9' has no attribute 'motor9'" in errors(
        {"movables": {"x": "ophyd.sim:motor9"}, "detectors": det}
    )
    assert "movables.x: ophyd.sim:det4 is not movable" in errors(
        {"movables": {"x": {"object": "ophyd.sim:det4", "limits": [0, 1]}}, "detectors": det}
    )
    assert "detectors[0]: ophyd.sim:hw is not readable" in errors({**SIM_SETTINGS, "detectors": ["ophyd.sim:hw"]})

    # What only the built devices can tell is refused when the driver is built.
    def refused(settings: dict[str, Any]) -> str:
        with pytest.raises(ValueError) as bad:
            _driver(drivers, settings)
        return str(bad.value)

    assert refused({"movables": {"z": {"factory": BENCH, "attribute": "slow"}}, "detectors": det}) == (
        f"movables.z: {BENCH}(...).slow reports no limits; set movables.z.limits to its travel range (low, high)"
    )
    assert "movables.z: the result of" in refused({"movables": {"z": {"factory": BENCH, "attribute": "nothing"}}, "detectors": det})
    assert refused({**SIM_SETTINGS, "sigma": {"det4": "det4_err"}}).startswith(
        "sigma.det4: the detectors have no data key 'det4_err'"
    )


def test_close_ends_the_run_engine_thread(sim_motors: Any) -> None:
    before = {t.ident for t in threading.enumerate()}
    driver = OphydDriver("beamline", OphydSettings.model_validate(SIM_SETTINGS))
    assert len({t.ident for t in threading.enumerate()} - before) == 1
    driver.close()
    assert {t.ident for t in threading.enumerate()} - before == set()
