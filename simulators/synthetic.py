"""A synthetic "synthesis → measured property" instrument with a known optimum.

It stands in for a robot that makes a sample at the requested conditions and measures one scalar
property of it (a yield, a conductivity). The response surface is a known test function of the
inputs scaled to the unit cube, so tests and benchmarks can check the campaign's answer. Noise is
Gaussian with a configurable standard deviation, drawn reproducibly per attempt.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import Field, model_validator
from scipy.optimize import minimize

from instruments.protocol import InstrumentLimitError
from instruments.types import DataKey, Measurement, MeasurementRequest, ParamValue, Record, Timing
from simulators.clock import VirtualClock
from simulators.faults import FaultInjector, SimulatedFaults
from simulators.journal import JournalledDriver, MeasurementJournal
from simulators.noise import attempt_seed


class SyntheticSettings(Record):
    """Settings of the synthetic instrument (campaign file: ``instruments[].settings``)."""

    function: Literal["peaks", "branin"] = Field(
        default="peaks",
        description="'peaks': a tall Gaussian bump near u=0.7 and a lower one near u=0.25 (any dimension, max ≈ 1); "
        "'branin': the Branin function (two inputs, minimum 0.397887)",
    )
    inputs: dict[str, tuple[float, float]] = Field(
        default_factory=dict,
        description="input name → (low, high) limits in the design units; the function sees them scaled to [0, 1]. "
        "Filled from the design space when empty.",
    )
    output: str = Field(default="yield", min_length=1, description="data key of the measured property")
    units: str = Field(default="a.u.", description="units of the measured property")
    noise_sd: float = Field(default=0.01, ge=0, description="standard deviation of the measurement noise, in `units`")
    report_sigma: bool = Field(default=True, description="report noise_sd as the measurement's σ")
    synthesis_seconds: float = Field(default=600.0, ge=0, description="virtual time to make and measure one sample")
    motion_seconds: float = Field(default=20.0, ge=0, description="virtual time to load/unload")
    overhead_seconds: float = Field(default=5.0, ge=0, description="virtual per-request overhead")
    realtime_factor: float = Field(default=0.0, ge=0, description="real seconds slept per virtual second")
    nan_probability: float = Field(default=0.0, ge=0, le=1, description="chance a measurement returns NaN")
    failure_probability: float = Field(default=0.0, ge=0, le=1, description="chance a measurement raises")
    journal_dir: str | None = Field(default=None, description="folder for the instrument's own data files")
    journal: bool = Field(
        default=True,
        description="keep the instrument's own data files (a resumed campaign adopts a measurement from them); "
        "false: a zero-cost instrument with no files (benchmarks/orchestration_overhead.py), nothing to adopt",
    )
    faults: SimulatedFaults = Field(default_factory=SimulatedFaults, description="injected faults (tests, chaos)")
    seed: int = 0

    @model_validator(mode="after")
    def _valid_inputs(self) -> SyntheticSettings:
        for name, (low, high) in self.inputs.items():
            if not low < high:
                raise ValueError(f"inputs.{name}: low ({low}) must be below high ({high})")
        if self.function == "branin" and self.inputs and len(self.inputs) != 2:
            raise ValueError(f"function 'branin' takes exactly 2 inputs, got {len(self.inputs)}")
        return self


def peaks(u: np.ndarray) -> np.ndarray:
    """Two Gaussian bumps on the unit cube; u: (n, d) → (n,). Global max ≈ 1 near u = 0.7."""
    d = u.shape[1]
    main_center = 0.7 + 0.05 * np.sin(np.arange(d))  # not on a symmetric grid point
    side_center = np.full(d, 0.25)
    main = np.exp(-np.sum((u - main_center) ** 2, axis=1) / (2 * 0.18**2))
    side = 0.55 * np.exp(-np.sum((u - side_center) ** 2, axis=1) / (2 * 0.1**2))
    return main + side


def branin(u: np.ndarray) -> np.ndarray:
    """Branin on [-5, 10] × [0, 15] from the unit square; u: (n, 2) → (n,). Global min 0.397887."""
    x1 = -5 + 15 * u[:, 0]
    x2 = 15 * u[:, 1]
    b, c, t = 5.1 / (4 * np.pi**2), 5 / np.pi, 1 / (8 * np.pi)
    return (x2 - b * x1**2 + c * x1 - 6) ** 2 + 10 * (1 - t) * np.cos(x1) + 10


FUNCTIONS = {"peaks": (peaks, "maximize"), "branin": (branin, "minimize")}


class SyntheticPropertyDriver(JournalledDriver):
    """Driver of the synthetic instrument. Plain class; Ray wraps it in ``InstrumentActor``."""

    def __init__(self, name: str, settings: SyntheticSettings) -> None:
        if not settings.inputs:
            raise ValueError(f"instrument {name!r}: settings.inputs is empty; name the inputs and their limits")
        self.name = name
        self.settings = settings
        self.clock = VirtualClock(settings.realtime_factor)
        self._function, self.direction = FUNCTIONS[settings.function]
        self._journal = MeasurementJournal(settings.journal_dir) if settings.journal_dir and settings.journal else None
        self._faults = FaultInjector(settings.faults, settings.journal_dir)
        self.stopped: bool | None = None

    # -- the driver protocol ---------------------------------------------------------------------
    def describe(self) -> dict[str, DataKey]:
        return {
            self.settings.output: DataKey(
                dtype="number", shape=[], units=self.settings.units, description=f"{self.settings.function} response"
            )
        }

    def expected_seconds(self, request: MeasurementRequest) -> float:
        """Real seconds one request takes: its virtual time × ``realtime_factor`` (``DurationDriver``)."""
        s = self.settings
        return (s.motion_seconds + s.overhead_seconds + s.synthesis_seconds) * s.realtime_factor

    def check(self, request: MeasurementRequest) -> None:
        self._faults.before_check(self.name, request)
        for name, (low, high) in self.settings.inputs.items():
            if name not in request.params:
                raise InstrumentLimitError(f"{self.name}: request lacks input {name!r}")
            value = request.params[name]
            if isinstance(value, str) or not np.isfinite(float(value)):
                raise InstrumentLimitError(f"{self.name}: input {name}={value!r} is not a finite number")
            if not low <= float(value) <= high:
                raise InstrumentLimitError(f"{self.name}: input {name}={value} is outside the limits [{low}, {high}]")
        unknown = sorted(set(request.params) - set(self.settings.inputs))
        if unknown:
            raise InstrumentLimitError(f"{self.name}: unknown inputs {unknown}; known: {sorted(self.settings.inputs)}")

    def measure(self, request: MeasurementRequest) -> Measurement:
        self.check(request)
        self._faults.before_measure(self.name, request)
        s = self.settings
        rng = np.random.default_rng(attempt_seed(s.seed, request))
        started = Timing(exposure_seconds=0).started_at
        self.clock.advance(s.motion_seconds + s.overhead_seconds + s.synthesis_seconds)
        if rng.random() < s.failure_probability:
            raise RuntimeError(f"{self.name}: simulated instrument fault during attempt {request.attempt_id}")
        noise = rng.normal(0.0, s.noise_sd) if s.noise_sd > 0 else 0.0
        value = self.true_value(request.params) + noise
        if rng.random() < s.nan_probability:
            value = float("nan")
        sigma = {s.output: np.array(s.noise_sd)} if s.report_sigma else {}
        measurement = Measurement(
            attempt_id=request.attempt_id,
            instrument=self.name,
            params=dict(request.params),
            sample_id=request.sample_id,
            data={s.output: np.array(value)},
            sigma=sigma,
            timing=Timing(
                exposure_seconds=s.synthesis_seconds,
                motion_seconds=s.motion_seconds,
                overhead_seconds=s.overhead_seconds,
                started_at=started,
            ),
        )
        self._journalled(measurement)
        self._faults.after_measure(request)
        return measurement

    # -- ground truth, for tests and benchmarks ----------------------------------------------------
    def _unit(self, params: dict[str, ParamValue]) -> np.ndarray:
        return np.array(
            [[(float(params[n]) - lo) / (hi - lo) for n, (lo, hi) in self.settings.inputs.items()]]
        )

    def true_value(self, params: dict[str, ParamValue]) -> float:
        """The noise-free property at ``params``."""
        return float(self._function(self._unit(params))[0])

    def true_optimum(self) -> tuple[dict[str, float], float]:
        """The optimum (params, value) of the noise-free response over the instrument's input box."""
        sign = -1.0 if self.direction == "maximize" else 1.0
        d = len(self.settings.inputs)
        starts = np.random.default_rng(0).random((32, d))
        best = min(
            (minimize(lambda u: sign * self._function(u[None, :])[0], x0, bounds=[(0, 1)] * d) for x0 in starts),
            key=lambda r: r.fun,
        )
        params = {n: lo + float(u) * (hi - lo) for u, (n, (lo, hi)) in zip(best.x, self.settings.inputs.items())}
        return params, float(sign * best.fun)
