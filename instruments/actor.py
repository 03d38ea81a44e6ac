"""One generic Ray async actor around any driver.

Ray is the transport, not the device: ``InstrumentService`` is a plain asyncio class (testable
without Ray) and ``InstrumentActor`` is the same class made a Ray actor. The driver is built *inside*
the actor process from a factory, so device handles never cross processes.

Guarantees:
- one measurement at a time per driver (a lock), because a physical instrument does one thing;
- a repeated attempt id is answered with the result already produced, never measured twice — also
  after the actor's process was restarted: the driver's own records (``recover``) are asked first;
  such replays are counted (``health()["duplicates"]``);
- ``check`` runs before every ``measure``, whoever sends it: a request outside the instrument's
  limits is refused here (``InstrumentLimitError``, logged) and never reaches the driver's ``measure``;
- ``recover`` asks the driver's own records for an attempt finished before a crash.
"""

from __future__ import annotations

import asyncio
import logging
import pickle
import time
from collections.abc import Callable
from typing import Any, TypeVar

import ray

from instruments.protocol import Driver, DurationDriver, InstrumentLimitError, PlanningModelDriver, RecoverableDriver
from instruments.types import DataKey, Measurement, MeasurementRequest

T = TypeVar("T")

log = logging.getLogger("instruments.actor")


class DriverError(RuntimeError):
    """A driver's exception that could not cross a process boundary as itself, kept as plain data:
    the exception's class name and message (so the campaign records the driver's own words)."""

    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(f"{error_type}: {message}")
        self.error_type, self.message = error_type, message

    def __reduce__(self) -> tuple[type, tuple[str, str]]:
        return (type(self), (self.error_type, self.message))


def crossable(exc: BaseException) -> BaseException:
    """``exc`` itself if it survives pickling (how Ray sends it to the campaign), else a ``DriverError``
    carrying its class name and message: Ray would otherwise deliver "Failed to deserialize exception"."""
    try:
        pickle.loads(pickle.dumps(exc))
    except Exception:  # noqa: BLE001 — any failure to round-trip means it cannot cross
        return DriverError(type(exc).__name__, str(exc))
    return exc


class InstrumentService:
    """Serves one driver: describe, check, measure (idempotent per attempt id), recover, stop."""

    def __init__(self, factory: Callable[[], Driver], *, inline: bool = False) -> None:
        """``inline``: call the driver directly on the caller's event loop (no worker thread) — the
        campaign's in-process fast path, for drivers whose calls return quickly (a thread hop costs a
        context switch each way, milliseconds on a loaded machine)."""
        self._driver = factory()
        self._inline = inline
        self._lock = asyncio.Lock()
        self._results: dict[str, Measurement] = {}
        self._in_flight: dict[str, asyncio.Future[Measurement]] = {}
        self._measured = 0
        self._duplicates = 0  # requests for an attempt already measured, answered without measuring
        self._refused = 0  # measure requests that failed the instrument's own check

    @property
    def name(self) -> str:
        return self._driver.name

    async def _call(self, method: Callable[..., T], *args: Any) -> T:
        """A blocking driver call: in a worker thread (the event loop stays responsive), or inline."""
        if self._inline:
            return method(*args)
        return await asyncio.to_thread(method, *args)

    async def describe(self) -> dict[str, DataKey]:
        return self._driver.describe()

    async def planning_model(self) -> Any:
        """What the driver tells planners about itself (e.g. a SAS instrument model), or None."""
        if isinstance(self._driver, PlanningModelDriver):
            return self._driver.planning_model()
        return None

    async def check(self, request: MeasurementRequest) -> str | None:
        """None if the instrument accepts ``request``, else the refusal reason (names the field)."""
        try:
            # A remote driver's check is a network round trip: keep the actor's loop responsive.
            await self._call(self._driver.check, request)
        except InstrumentLimitError as exc:
            return str(exc)
        return None

    async def states_duration(self) -> bool:
        """Whether the driver says how long a request takes (``expected_seconds``)."""
        return isinstance(self._driver, DurationDriver)

    async def expected_seconds(self, request: MeasurementRequest) -> float | None:
        """How long ``request`` should take in real seconds, if the driver can say (``DurationDriver``)."""
        if isinstance(self._driver, DurationDriver):
            return float(self._driver.expected_seconds(request))
        return None

    async def measure(self, request: MeasurementRequest) -> Measurement:
        done = self._results.get(request.attempt_id)
        if done is not None:
            self._duplicates += 1
            return done
        running = self._in_flight.get(request.attempt_id)
        if running is not None:
            return await asyncio.shield(running)
        future: asyncio.Future[Measurement] = asyncio.get_running_loop().create_future()
        self._in_flight[request.attempt_id] = future
        try:
            async with self._lock:
                measurement = await self._measure_once(request)
            self._results[request.attempt_id] = measurement
            future.set_result(measurement)
            return measurement
        except Exception as exc:
            error = crossable(exc)
            future.set_exception(error)
            future.exception()  # mark retrieved: the caller gets it through the raise below
            if error is exc:
                raise
            raise error from None
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()
            raise
        finally:
            del self._in_flight[request.attempt_id]

    async def _measure_once(self, request: MeasurementRequest) -> Measurement:
        """The driver's own records first (a replay after a restart is not measured again), then its
        ``check`` (the limits are enforced where the hardware is), then the measurement — unless the
        driver's far end does both itself (``guards_measure``: a served instrument)."""
        if getattr(self._driver, "guards_measure", False):
            return await self._timed(request)
        if isinstance(self._driver, RecoverableDriver):
            recorded = await self._call(self._driver.recover, request.attempt_id)
            if recorded is not None:
                self._duplicates += 1
                log.info("%s: attempt %s was measured already; answering from its records", self.name, request.attempt_id)
                return recorded
        try:
            await self._call(self._driver.check, request)
        except InstrumentLimitError as exc:
            self._refused += 1
            log.warning("%s: refused to measure %s: %s", self.name, request.attempt_id, exc)
            raise
        return await self._timed(request)

    async def _timed(self, request: MeasurementRequest) -> Measurement:
        started = time.perf_counter()
        # The driver blocks (it waits on hardware); keep the actor's event loop responsive.
        measurement = await self._call(self._driver.measure, request)
        self._measured += 1
        timing = measurement.timing.model_copy(update={"wall_seconds": time.perf_counter() - started})
        return measurement.model_copy(update={"timing": timing})

    async def recover(self, attempt_id: str) -> Measurement | None:
        """The result of ``attempt_id`` if this instrument finished it (now or before a crash)."""
        if attempt_id in self._results:
            return self._results[attempt_id].model_copy(update={"recovered": True})
        if isinstance(self._driver, RecoverableDriver):
            return await self._call(self._driver.recover, attempt_id)
        return None

    async def stop(self, success: bool) -> None:
        await self._call(self._driver.stop, success)

    async def health(self) -> dict[str, Any]:
        """The service's state; with a driver that can report its own health (a remote one), also
        ``reachable``: whether the instrument answers."""
        out: dict[str, Any] = {"name": self.name, "busy": self._lock.locked(), "measured": self._measured,
                               "duplicates": self._duplicates, "refused": self._refused}
        probe = getattr(self._driver, "health", None)
        if callable(probe):
            try:
                out["instrument"] = await self._call(probe)
                out["reachable"] = True
            except Exception as exc:  # noqa: BLE001 — unreachable is an answer here, not an error
                out["reachable"], out["error"] = False, str(exc)
        return out


InstrumentActor = ray.remote(InstrumentService)
"""``InstrumentService`` as a Ray actor: ``InstrumentActor.options(num_cpus=0).remote(factory)``."""
