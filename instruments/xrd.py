"""The powder-diffractometer contract, shared by simulated and real diffractometers.

What a planner or an analysis knows of the instrument (``XRDInstrumentModel``: wavelength lines,
Caglioti profile, goniometer range, time costs), the names of a request's fields and the check
every driver runs before it moves (``check_xrd_request``). A simulated and a real diffractometer
differ only in how the counts are produced. Units: angles in degrees 2θ, time in seconds.

A request is one window: ``two_theta_start``, ``two_theta_stop``, ``two_theta_step`` (degrees) and
``dwell_seconds`` per step.
"""

from __future__ import annotations

import math

from pydantic import Field, model_validator

from instruments.protocol import InstrumentLimitError
from instruments.types import MeasurementRequest, ParamValue, Record
from physics.xrd import scan_points

REQUEST_FIELDS = ("two_theta_start", "two_theta_stop", "two_theta_step", "dwell_seconds")
"""The parameters of a window request, all numbers: degrees 2θ, degrees 2θ, degrees, seconds."""


class XRDInstrumentModel(Record):
    """The diffractometer's optics and its time costs, as a planner or an analysis needs them."""

    lines: list[tuple[float, float]] = Field(min_length=1, description="(wavelength Å, relative intensity) per line")
    wavelength_name: str | None = Field(
        default=None, description="how the radiation is named in file headers, e.g. 'CuKa' or '20 keV'; None: by its lines"
    )
    caglioti_u: float = Field(description="Caglioti U, deg²")
    caglioti_v: float = Field(description="Caglioti V, deg²")
    caglioti_w: float = Field(description="Caglioti W, deg²")
    goniometer_min_deg: float = Field(description="lowest 2θ the goniometer reaches, degrees")
    goniometer_max_deg: float = Field(description="highest 2θ the goniometer reaches, degrees")
    goniometer_radius_mm: float = Field(gt=0, description="goniometer radius, mm (sample displacement shift)")
    setup_seconds: float = Field(ge=0, description="time to set up one window (shutter, detector), s")
    motion_deg_per_second: float = Field(gt=0, description="goniometer slew speed between windows, degrees/s")
    step_overhead_seconds: float = Field(ge=0, description="dead time per step (readout), s")
    min_step_deg: float = Field(gt=0, description="finest 2θ step, degrees")
    max_points: int = Field(ge=2, description="most steps in one window")

    @model_validator(mode="after")
    def _range(self) -> XRDInstrumentModel:
        if not self.goniometer_min_deg < self.goniometer_max_deg:
            raise ValueError("goniometer_min_deg must be below goniometer_max_deg")
        return self

    @property
    def caglioti(self) -> tuple[float, float, float]:
        return (self.caglioti_u, self.caglioti_v, self.caglioti_w)

    def window_seconds(self, start: float, stop: float, step: float, dwell: float, position: float | None) -> float:
        """Instrument time of a window scanned from ``start`` to ``stop``: set-up, slew from
        ``position`` (None: already there), and per step the dwell and the dead time. Seconds."""
        n = len(scan_points(start, stop, step))
        slew = 0.0 if position is None else abs(start - position) / self.motion_deg_per_second
        return self.setup_seconds + slew + n * (dwell + self.step_overhead_seconds)


def check_xrd_request(model: XRDInstrumentModel, request: MeasurementRequest, *, instrument: str) -> None:
    """Raise ``InstrumentLimitError`` (its message starting with ``instrument``, the driver's name)
    for a window the goniometer must not run: unknown or missing fields, a field that is not a
    finite number, an end outside the goniometer range, start not below stop, a step that is not
    positive or finer than ``min_step_deg``, a dwell that is not positive, more than ``max_points``
    steps. Nothing moves: a real and a simulated driver call this before anything else."""
    values = _window_values(request.params, instrument)
    start, stop = values["two_theta_start"], values["two_theta_stop"]
    for field in ("two_theta_start", "two_theta_stop"):
        if not model.goniometer_min_deg <= values[field] <= model.goniometer_max_deg:
            raise InstrumentLimitError(
                f"{instrument}: {field}={values[field]} is outside the goniometer range "
                f"[{model.goniometer_min_deg}, {model.goniometer_max_deg}] degrees"
            )
    if not start < stop:
        raise InstrumentLimitError(f"{instrument}: two_theta_start={start} must be below two_theta_stop={stop}")
    step = values["two_theta_step"]
    if step <= 0:
        raise InstrumentLimitError(f"{instrument}: two_theta_step={step} must be positive")
    if step < model.min_step_deg:
        raise InstrumentLimitError(f"{instrument}: two_theta_step={step} is below the finest step {model.min_step_deg}")
    if values["dwell_seconds"] <= 0:
        raise InstrumentLimitError(f"{instrument}: dwell_seconds={values['dwell_seconds']} must be positive")
    n = len(scan_points(start, stop, step))
    if n > model.max_points:
        raise InstrumentLimitError(f"{instrument}: the window has {n} steps; at most {model.max_points}")


def _window_values(params: dict[str, ParamValue], instrument: str) -> dict[str, float]:
    """The request's fields as floats; ``InstrumentLimitError`` for an unknown or missing field or
    one that is not a finite number."""
    unknown = sorted(set(params) - set(REQUEST_FIELDS))
    if unknown:
        raise InstrumentLimitError(f"{instrument}: unknown request fields {unknown}; known: {list(REQUEST_FIELDS)}")
    values: dict[str, float] = {}
    for field in REQUEST_FIELDS:
        if field not in params:
            raise InstrumentLimitError(f"{instrument}: request lacks {field!r}")
        value = params[field]
        if isinstance(value, (str, bool)) or not math.isfinite(float(value)):
            raise InstrumentLimitError(f"{instrument}: {field}={value!r} is not a finite number")
        values[field] = float(value)
    return values
