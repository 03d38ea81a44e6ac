"""A simulated synthesis robot: makes a sample from a recipe (component fractions and process
variables), charging the synthesis time to a virtual clock.

Synthesis time = ``base_seconds`` + ``seconds_per_unit`` × the recipe's process variable named
``time_driver`` (e.g. hotter anneals take longer), or ``base_seconds`` alone. A synthesis fails with
probability ``failure_probability``, drawn per attempt from the seed (the same attempt fails again
if re-run: failure is a property of the recipe's attempt, not of the moment). A finished synthesis is
journalled, so a resumed campaign adopts it instead of making the sample twice. The sample's hidden
truth is not here: a materials system derives it from the recipe the sample carries.

Batches (``batch_capacity`` N): up to N recipes made together (``MeasurementRequest.batch``) take one
synthesis time, that of the batch's longest recipe (parallel stations: the batch is done when its
slowest member is), passed on the clock once; each member charges its share (the time / the batch's
size) and fails or succeeds on its own draw.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

import numpy as np
from pydantic import Field, model_validator

from instruments.synthesis import DATA_KEYS, SynthesisModel, check_synthesis_batch, check_synthesis_request, sample_id_for
from instruments.types import DataKey, Measurement, MeasurementRequest, ParamValue, Record, Timing
from simulators.clock import VirtualClock
from simulators.journal import JournalledDriver, MeasurementJournal
from simulators.noise import attempt_seed


class SynthesisSettings(Record):
    """Settings of the simulated synthesiser (campaign file: ``synthesiser.settings``)."""

    components: list[str] = Field(min_length=1, description="components of the recipe (fractions summing to 1)")
    process_limits: dict[str, tuple[float, float]] = Field(
        default_factory=dict, description="process variable → (low, high) the robot can run, its own units")
    base_seconds: float = Field(default=3600.0, ge=0, description="time to make one sample, s")
    time_driver: str | None = Field(default=None, description="a process variable the synthesis time grows with")
    seconds_per_unit: float = Field(default=0.0, ge=0, description="extra seconds per unit of time_driver")
    failure_probability: float = Field(default=0.0, ge=0, le=1, description="chance a synthesis fails (per attempt)")
    batch_capacity: int = Field(default=1, ge=1, description="samples made together in one synthesis time")
    realtime_factor: float = Field(default=0.0, ge=0, description="real seconds slept per virtual second")
    journal_dir: str | None = None
    seed: int = 0

    @model_validator(mode="after")
    def _driver_known(self) -> SynthesisSettings:
        if self.time_driver is not None and self.time_driver not in self.process_limits:
            raise ValueError(f"time_driver: {self.time_driver!r} is not a process variable {sorted(self.process_limits)}")
        self.model()  # component/process consistency, reported now
        return self

    def model(self) -> SynthesisModel:
        mid = 0.0 if self.time_driver is None else sum(self.process_limits[self.time_driver]) / 2
        return SynthesisModel(components=self.components, process_limits=self.process_limits,
                              expected_seconds=self.base_seconds + self.seconds_per_unit * mid,
                              batch_capacity=self.batch_capacity)


class SynthesisDriver(JournalledDriver):
    """Driver of the simulated synthesiser. Plain class; Ray wraps it in ``InstrumentActor``."""

    def __init__(self, name: str, settings: SynthesisSettings) -> None:
        self.name, self.settings = name, settings
        self.clock = VirtualClock(settings.realtime_factor)
        self._model = settings.model()
        self._journal = MeasurementJournal(settings.journal_dir) if settings.journal_dir else None
        self.stopped: bool | None = None
        self._batches_made: set[tuple[str, ...]] = set()  # batches (their attempt ids) whose time has passed

    def describe(self) -> dict[str, DataKey]:
        return dict(DATA_KEYS)

    def planning_model(self) -> SynthesisModel:
        return self._model

    def check(self, request: MeasurementRequest) -> None:
        check_synthesis_request(self._model, request, instrument=self.name)
        check_synthesis_batch(self._model, request, instrument=self.name)

    def recipe_seconds(self, recipe: Mapping[str, ParamValue]) -> float:
        """The synthesis time of one recipe, s."""
        s = self.settings
        extra = 0.0 if s.time_driver is None else s.seconds_per_unit * float(recipe[s.time_driver])  # type: ignore[arg-type]
        return s.base_seconds + extra

    def seconds(self, request: MeasurementRequest) -> float:
        """The synthesis time of the request's batch (its longest member: the batch is done when all
        are), or of its own recipe when it is made alone, s."""
        recipes = request.batch.values() if request.batch else [request.params]
        return max(self.recipe_seconds(r) for r in recipes)

    def measure(self, request: MeasurementRequest) -> Measurement:
        self.check(request)
        wall_start = time.perf_counter()
        started = Timing(exposure_seconds=0).started_at
        seconds = self.seconds(request)
        members = tuple(sorted(request.batch)) if request.batch else (request.attempt_id,)
        if members not in self._batches_made:  # the batch's time passes once, with its first member
            self._batches_made.add(members)
            self.clock.advance(seconds)
        rng = np.random.default_rng(attempt_seed(self.settings.seed, request))
        if rng.random() < self.settings.failure_probability:
            raise RuntimeError(f"{self.name}: synthesis {request.attempt_id} failed (simulated: no product)")
        share = seconds / len(members)  # the members' shares add up to the batch's time
        measurement = Measurement(
            attempt_id=request.attempt_id, instrument=self.name, params=dict(request.params),
            sample_id=sample_id_for(request.attempt_id), data={"synthesis_seconds": np.array(seconds)}, sigma={},
            timing=Timing(exposure_seconds=share, started_at=started, wall_seconds=time.perf_counter() - wall_start),
        )
        return self._journalled(measurement)
