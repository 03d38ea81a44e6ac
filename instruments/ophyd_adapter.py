"""An instrument made of ophyd devices, acquiring through a bluesky RunEngine.

Movables (motors, temperature controllers: anything with ``set``) become design-space axes: the
request's parameter ``x`` is the position of the movable named ``x`` in the settings, in the
device's own units. Readables become the detectors: their ``describe()`` is the driver's data keys
and their readings are the measurement's data. A measurement is one bluesky run, executed by a
RunEngine exactly as a beamline would run it, and the measurement is built from the run's event
documents (collected by a callback), so what labpilot stores is what a document-based data
pipeline would have seen.

Devices are named by reference, so ``ophyd.sim`` works out of the box::

    movables:
      x: {object: "ophyd.sim:motor1", limits: [-5, 5]}       # or just "ophyd.sim:motor1" if the device has limits
    detectors: ["ophyd.sim:det4"]
    # or a factory, called once per driver with its kwargs (devices of one call stay wired together):
    detectors: [{factory: "ophyd.sim:hw", kwargs: {}, attribute: "det4"}]

The run ("count" plan), inside one start/stop pair::

    bps.mv(axis_1, x_1, axis_2, x_2, ...)        all axes together; stream "motion" = the axes as reached
    bps.sleep(settle_seconds)
    bps.trigger_and_read(detectors)              stream "primary" = the measurement's data

Timing comes from the documents' timestamps (wall-clock seconds): motion = start → "motion" event,
exposure = trigger and read (settle excluded), overhead = settle + closing the run.

bluesky and ophyd are imported lazily: the rest of labpilot (and campaigns without this kind)
must not need them at import time.
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
import inspect
import math
import re
import time
from datetime import datetime, timezone
from typing import Any, Literal

import numpy as np
from pydantic import Field, field_validator, model_validator

from instruments.protocol import InstrumentLimitError
from instruments.types import DataKey, Measurement, MeasurementRequest, Record, Timing

_REFERENCE = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")

# ophyd/event-model dtypes → labpilot's DataKey dtypes. A boolean is carried as 0/1.
_DTYPES: dict[str, Literal["number", "integer", "array", "string"]] = {
    "number": "number",
    "integer": "integer",
    "array": "array",
    "string": "string",
    "boolean": "integer",
}

DEFAULT_UNITS = "a.u."
"""Units of a data key that neither the device nor the settings name."""


def _check_reference(value: str, what: str) -> str:
    if not _REFERENCE.match(value):
        raise ValueError(f"{what} {value!r} must look like 'module:attribute', e.g. 'ophyd.sim:motor1'")
    module = value.split(":", 1)[0]
    try:
        # find_spec does not execute the module itself (only its parent packages), so a typo is
        # reported by `labpilot validate` without connecting to any hardware.
        found = importlib.util.find_spec(module)
    except (ImportError, ValueError) as exc:
        raise ValueError(f"{what} {value!r}: cannot find module {module!r} ({exc})") from None
    if found is None:
        raise ValueError(f"{what} {value!r}: no module {module!r} is installed")
    return value


def code_references(settings: Any) -> list[tuple[str, str]]:
    """Every ``module:attribute`` these (unvalidated) settings would import or call, with its field path.

    Read from plain data, importing nothing: a stored configuration is checked against an allow-list
    (``agent/trust.py``) *before* it is validated, because validating imports the modules it names."""
    if not isinstance(settings, dict):
        return []
    specs: list[tuple[str, Any]] = []
    movables = settings.get("movables")
    if isinstance(movables, dict):
        specs += [(f"movables.{axis}", spec) for axis, spec in movables.items()]
    detectors = settings.get("detectors")
    if isinstance(detectors, list):
        specs += [(f"detectors[{i}]", spec) for i, spec in enumerate(detectors)]
    out = []
    for path, spec in specs:
        if isinstance(spec, str):
            out.append((path, spec))
        elif isinstance(spec, dict):
            out += [(f"{path}.{key}", str(spec[key])) for key in ("object", "factory") if spec.get(key) is not None]
    return out


class DeviceSpec(Record):
    """Where a device comes from: an existing object, or a factory called with keyword arguments.

    A plain string is shorthand for ``{object: STRING}``.
    """

    object: str | None = Field(
        default=None, description="'module:attribute' of an existing device, e.g. 'ophyd.sim:motor1' (dotted attributes allowed)"
    )
    factory: str | None = Field(
        default=None, description="'module:callable' that builds the device (or an object holding it, see `attribute`)"
    )
    kwargs: dict[str, Any] = Field(default_factory=dict, description="keyword arguments of the factory")
    attribute: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z_][\w.]*$",
        description="dotted attribute of the factory's result that is the device, e.g. 'det4' of 'ophyd.sim:hw'",
    )

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        return {"object": data} if isinstance(data, str) else data

    @field_validator("object")
    @classmethod
    def _object_reference(cls, value: str | None) -> str | None:
        return None if value is None else _check_reference(value, "object")

    @field_validator("factory")
    @classmethod
    def _factory_reference(cls, value: str | None) -> str | None:
        return None if value is None else _check_reference(value, "factory")

    @model_validator(mode="after")
    def _one_source(self) -> DeviceSpec:
        if (self.object is None) == (self.factory is None):
            raise ValueError("give exactly one of object ('module:attribute') or factory ('module:callable')")
        if self.object is not None and (self.kwargs or self.attribute is not None):
            raise ValueError("kwargs and attribute apply to a factory only")
        return self

    def label(self) -> str:
        if self.object is not None:
            return self.object
        return f"{self.factory}(...)" + (f".{self.attribute}" if self.attribute else "")


class MovableSpec(DeviceSpec):
    """A movable device that is one design-space axis."""

    limits: tuple[float, float] | None = Field(
        default=None,
        description="[low, high] allowed positions in the device's units (the design parameter's units). "
        "Combined with the device's own `limits` when it reports any (the narrower wins); required when it "
        "does not (ophyd.sim's SynAxis reports none)",
    )

    @field_validator("limits")
    @classmethod
    def _ordered(cls, value: tuple[float, float] | None) -> tuple[float, float] | None:
        if value is not None and not value[0] < value[1]:
            raise ValueError(f"low ({value[0]}) must be below high ({value[1]})")
        return value


class OphydSettings(Record):
    """Settings of an ophyd instrument (campaign file: ``instruments[].settings`` of kind ``ophyd``)."""

    movables: dict[str, MovableSpec] = Field(
        min_length=1, description="design-space parameter name → the movable device that realises it"
    )
    detectors: list[DeviceSpec] = Field(min_length=1, description="readable devices; their readings are the data")
    plan: Literal["count"] = Field(
        default="count",
        description="'count': move every axis with bps.mv, settle, then one bps.trigger_and_read of the detectors",
    )
    settle_seconds: float = Field(default=0.0, ge=0, description="wait after the move before triggering, s")
    move_timeout_seconds: float | None = Field(
        default=None, gt=0, description="fail the measurement if the axes have not arrived after this many seconds"
    )
    units: dict[str, str] = Field(
        default_factory=dict,
        description=f"data key → units, for keys whose device reports none (ophyd.sim's report none); default {DEFAULT_UNITS!r}",
    )
    sigma: dict[str, str] = Field(
        default_factory=dict,
        description="data key → another data key holding its 1-σ uncertainty in the same units. Without an "
        "entry a key has no σ (never guessed: a key named like '*_sigma' may be a peak width)",
    )

    @model_validator(mode="after")
    def _devices_exist(self) -> OphydSettings:
        # Campaign files are validated completely before anything starts, so named objects are looked
        # up now (importing their modules, as a beamline profile does). Factories are not called and
        # no property is read (inspect.getattr_static): that could touch hardware.
        for axis, spec in self.movables.items():
            if spec.object is None:
                continue
            device = _Resolver.lookup(spec.object, f"movables.{axis}")
            if not callable(inspect.getattr_static(device, "set", None)):
                raise ValueError(f"movables.{axis}: {spec.object} is not movable (it has no set())")
            if spec.limits is None and inspect.getattr_static(device, "limits", None) is None:
                raise ValueError(
                    f"movables.{axis}: {spec.object} reports no limits; set movables.{axis}.limits to its travel range (low, high)"
                )
        for i, spec in enumerate(self.detectors):
            if spec.object is None:
                continue
            device = _Resolver.lookup(spec.object, f"detectors[{i}]")
            if not all(callable(inspect.getattr_static(device, m, None)) for m in ("read", "describe")):
                raise ValueError(f"detectors[{i}]: {spec.object} is not readable (it needs read() and describe())")
        return self


class _Resolver:
    """Turns device specs into devices; each distinct factory call is made once per driver."""

    def __init__(self) -> None:
        self._built: dict[str, Any] = {}

    @staticmethod
    def lookup(reference: str, field: str) -> Any:
        """The object ``reference`` ('module:attr.attr') names; ValueError naming ``field`` if there is none."""
        module_name, _, path = reference.partition(":")
        try:
            target: Any = importlib.import_module(module_name)
        except ImportError as exc:
            raise ValueError(f"{field}: cannot import {module_name!r}: {exc}") from exc
        for part in path.split("."):
            if not hasattr(target, part):
                raise ValueError(f"{field}: {reference!r} has no attribute {part!r}")
            target = getattr(target, part)
        return target

    def device(self, spec: DeviceSpec, field: str) -> Any:
        if spec.object is not None:
            return self.lookup(spec.object, field)
        assert spec.factory is not None
        key = repr((spec.factory, sorted(spec.kwargs.items())))
        if key not in self._built:
            factory = self.lookup(spec.factory, field)
            if not callable(factory):
                raise ValueError(f"{field}: factory {spec.factory!r} is not callable")
            self._built[key] = factory(**spec.kwargs)
        result = self._built[key]
        for part in (spec.attribute or "").split(".") if spec.attribute else []:
            if not hasattr(result, part):
                raise ValueError(f"{field}: the result of {spec.factory!r} has no attribute {part!r}")
            result = getattr(result, part)
        return result


def _device_limits(device: Any) -> tuple[float, float] | None:
    """The device's own limits, or None if it reports none (ophyd's convention: low ≥ high = unlimited)."""
    limits = getattr(device, "limits", None)
    try:
        low, high = (float(v) for v in limits)  # type: ignore[union-attr]
    except (TypeError, ValueError):
        return None
    if not (math.isfinite(low) and math.isfinite(high)) or low >= high:
        return None
    return low, high


class OphydDriver:
    """Driver of an instrument made of ophyd devices. Plain class; Ray wraps it in ``InstrumentActor``.

    One RunEngine per driver, created with ``context_managers=[]`` (its SIGINT handler may only be
    installed from the main thread, and the engine calls ``measure`` from a worker thread of a Ray
    actor) and on its own event loop, which bluesky runs in a background thread. Calls to
    ``measure`` must not overlap (``InstrumentService`` serialises them).
    """

    def __init__(self, name: str, settings: OphydSettings) -> None:
        from bluesky import RunEngine
        from bluesky.utils import DuringTask

        self.name = name
        self.settings = settings
        resolver = _Resolver()
        self._movables: dict[str, Any] = {}
        for axis, spec in settings.movables.items():
            device = resolver.device(spec, f"movables.{axis}")
            if not callable(getattr(device, "set", None)):
                raise ValueError(f"movables.{axis}: {spec.label()} is not movable (it has no set())")
            if spec.limits is None and _device_limits(device) is None:
                raise ValueError(
                    f"movables.{axis}: {spec.label()} reports no limits; set movables.{axis}.limits to its travel range (low, high)"
                )
            self._movables[axis] = device
        self._detectors: list[Any] = []
        for i, spec in enumerate(settings.detectors):
            device = resolver.device(spec, f"detectors[{i}]")
            if not (callable(getattr(device, "read", None)) and callable(getattr(device, "describe", None))):
                raise ValueError(f"detectors[{i}]: {spec.label()} is not readable (it needs read() and describe())")
            self._detectors.append(device)
        keys = self.describe()
        for field, mapping in (("units", settings.units), ("sigma", settings.sigma)):
            for key in mapping:
                if key not in keys:
                    raise ValueError(f"{field}.{key}: the detectors have no data key {key!r}; they have {sorted(keys)}")
        for key, sigma_key in settings.sigma.items():
            if sigma_key not in keys:
                raise ValueError(f"sigma.{key}: the detectors have no data key {sigma_key!r}; they have {sorted(keys)}")
        self.stopped: bool | None = None
        # DuringTask() only waits on the run: the default one may try to drive a Qt event loop, which
        # must never happen off the main thread.
        self._loop = asyncio.new_event_loop()
        self._run_engine = RunEngine({}, loop=self._loop, context_managers=[], during_task=DuringTask())

    # -- the driver protocol ---------------------------------------------------------------------
    def describe(self) -> dict[str, DataKey]:
        """The detectors' data keys. String keys are described but not carried in measurements
        (a measurement's data are numeric arrays)."""
        out: dict[str, DataKey] = {}
        for device in self._detectors:
            for key, info in device.describe().items():
                dtype = _DTYPES.get(str(info.get("dtype")), "array")
                shape = [int(n) for n in info.get("shape") or [] if n is not None]
                units = self.settings.units.get(key) or info.get("units") or DEFAULT_UNITS
                source = info.get("source", "")
                note = " (text: not carried in measurements)" if dtype == "string" else ""
                out[key] = DataKey(
                    dtype=dtype, shape=shape, units=str(units),
                    description=f"{getattr(device, 'name', key)} via ophyd{f', {source}' if source else ''}{note}",
                )
        return out

    def limits(self, axis: str) -> tuple[float, float]:
        """The allowed [low, high] of ``axis`` now: the settings' limits ∩ the device's own (read live)."""
        spec, device = self.settings.movables[axis], self._movables[axis]
        try:
            own = _device_limits(device)
        except Exception as exc:  # noqa: BLE001 — e.g. a disconnected controller: refuse, never guess
            raise InstrumentLimitError(
                f"{self.name}: cannot read the limits of {getattr(device, 'name', axis)} for {axis}: {exc}"
            ) from None
        bounds = [b for b in (spec.limits, own) if b is not None]
        return max(b[0] for b in bounds), min(b[1] for b in bounds)

    def check(self, request: MeasurementRequest) -> None:
        params = request.params
        unknown = sorted(set(params) - set(self._movables))
        if unknown:
            raise InstrumentLimitError(f"{self.name}: unknown parameters {unknown}; movable axes: {sorted(self._movables)}")
        for axis, device in self._movables.items():
            if axis not in params:
                raise InstrumentLimitError(f"{self.name}: request lacks axis {axis!r}")
            value = params[axis]
            if isinstance(value, (str, bool)) or not math.isfinite(float(value)):
                raise InstrumentLimitError(f"{self.name}: {axis}={value!r} is not a finite number")
            low, high = self.limits(axis)
            if not low <= float(value) <= high:
                raise InstrumentLimitError(
                    f"{self.name}: {axis}={value} is outside the limits [{low}, {high}] of {getattr(device, 'name', axis)}"
                )
            check_value = getattr(device, "check_value", None)
            if callable(check_value):
                try:
                    check_value(float(value))  # the device's own verdict (ophyd's LimitError is a ValueError)
                except ValueError as exc:
                    raise InstrumentLimitError(
                        f"{self.name}: {axis}={value} refused by {getattr(device, 'name', axis)}: {exc}"
                    ) from None

    def measure(self, request: MeasurementRequest) -> Measurement:
        self.check(request)
        wall_start = time.perf_counter()
        documents: list[tuple[str, dict[str, Any]]] = []
        try:
            # Copied: the RunEngine may reuse or mutate a document after the callback returns.
            self._run_engine(self._plan(request), lambda name, doc: documents.append((name, dict(doc))))
        except Exception as exc:
            # A timeout's own message is often empty: the attempt's record must say what failed.
            raise RuntimeError(
                f"{self.name}: attempt {request.attempt_id}: the run failed: {type(exc).__name__}: {exc}"
            ) from exc
        return self._measurement(request, documents, time.perf_counter() - wall_start)

    def stop(self, success: bool) -> None:
        """Stop every device (axes first); a paused run is aborted. Raises the first failure after trying all."""
        self.stopped = success
        failures: list[str] = []
        if self._run_engine.state == "paused":
            try:
                self._run_engine.abort(reason=f"{self.name}: stopped")
            except Exception as exc:  # noqa: BLE001 — still stop the devices
                failures.append(f"RunEngine: {exc}")
        for device in [*self._movables.values(), *self._detectors]:
            stop = getattr(device, "stop", None)
            if not callable(stop):
                continue
            try:
                stop(success=success)
            except Exception as exc:  # noqa: BLE001 — every device gets its stop
                failures.append(f"{getattr(device, 'name', device)}: {exc}")
        if failures:
            raise RuntimeError(f"{self.name}: stop failed for " + "; ".join(failures))

    def subscribe(self, callback: Any) -> int:
        """Also send every run's documents to ``callback(name, doc)`` (a facility's own data
        pipeline, a live plot); returns the RunEngine's subscription token."""
        return int(self._run_engine.subscribe(callback))

    def close(self) -> None:
        """End the RunEngine's event-loop thread (tests; an actor's process simply exits)."""
        loop = self._loop
        if loop.is_closed():
            return
        thread = getattr(self._run_engine, "_th", None)
        loop.call_soon_threadsafe(loop.stop)
        if thread is not None:
            thread.join(timeout=5)
        if not loop.is_running():
            loop.close()

    # -- the run ---------------------------------------------------------------------------------
    def _plan(self, request: MeasurementRequest) -> Any:
        from bluesky import plan_stubs as bps
        from bluesky import preprocessors as bpp

        movables = list(self._movables.items())
        detectors = list(self._detectors)
        settle, timeout = self.settings.settle_seconds, self.settings.move_timeout_seconds
        md = {
            "plan_name": "labpilot_count",
            "labpilot_attempt_id": request.attempt_id,
            "labpilot_instrument": self.name,
            "sample_id": request.sample_id or request.attempt_id,
            "labpilot_params": dict(request.params),
            "motors": [getattr(d, "name", a) for a, d in movables],
            "detectors": [getattr(d, "name", str(d)) for d in detectors],
        }

        @bpp.run_decorator(md=md)
        def run() -> Any:
            targets: list[Any] = []
            for axis, device in movables:
                targets += [device, float(request.params[axis])]
            yield from bps.mv(*targets, timeout=timeout)
            # The axes as reached, in their own stream: its event closes the motion in the documents.
            yield from bps.create(name="motion")
            for _, device in movables:
                yield from bps.read(device)
            yield from bps.save()
            if settle > 0:
                yield from bps.sleep(settle)
            yield from bps.trigger_and_read(detectors)

        return run()

    def _measurement(
        self, request: MeasurementRequest, documents: list[tuple[str, dict[str, Any]]], wall: float
    ) -> Measurement:
        what = f"{self.name}: attempt {request.attempt_id}:"
        starts = [d for n, d in documents if n == "start"]
        stops = [d for n, d in documents if n == "stop"]
        if len(starts) != 1 or len(stops) != 1:
            raise RuntimeError(f"{what} expected one run, got {len(starts)} start and {len(stops)} stop documents")
        start, stop = starts[0], stops[0]
        if stop.get("exit_status") != "success":
            raise RuntimeError(
                f"{what} run {start['uid']} ended {stop.get('exit_status')!r}: {stop.get('reason', '')}"
            )
        streams = {d["uid"]: d for n, d in documents if n == "descriptor"}
        events: dict[str, dict[str, Any]] = {}
        for name, doc in documents:
            if name == "event":
                events[streams[doc["descriptor"]]["name"]] = doc
        if "primary" not in events or "motion" not in events:
            missing = "primary" if "primary" not in events else "motion"
            raise RuntimeError(f"{what} run {start['uid']} has no {missing} event")
        primary = events["primary"]
        data_keys = next(d for d in streams.values() if d["name"] == "primary")["data_keys"]
        data: dict[str, np.ndarray] = {}
        for key, value in primary["data"].items():
            if data_keys.get(key, {}).get("dtype") == "string" or isinstance(value, str):
                continue  # text cannot be a numeric array; see describe()
            array = np.asarray(value, dtype=np.float64)
            data[key] = array.reshape(1) if array.ndim == 0 else array
        sigma = {key: data[sigma_key] for key, sigma_key in self.settings.sigma.items() if key in data and sigma_key in data}
        t_start, t_moved, t_read, t_stop = (float(start["time"]), float(events["motion"]["time"]),
                                            float(primary["time"]), float(stop["time"]))
        motion = max(t_moved - t_start, 0.0)
        exposure = max(t_read - t_moved - self.settings.settle_seconds, 0.0)
        overhead = max(t_read - t_moved - exposure, 0.0) + max(t_stop - t_read, 0.0)
        return Measurement(
            attempt_id=request.attempt_id,
            instrument=self.name,
            params=dict(request.params),
            sample_id=request.sample_id,
            data=data,
            sigma=sigma,
            timing=Timing(
                exposure_seconds=exposure, motion_seconds=motion, overhead_seconds=overhead,
                started_at=datetime.fromtimestamp(t_start, timezone.utc), wall_seconds=wall,
            ),
        )

