"""The synthesiser contract, shared by simulated and real synthesis robots: an instrument that *makes*
a sample from a recipe and hands back the new sample's id.

A request's fields are the recipe: the fractions of the synthesiser's ``components`` (≥ 0, summing
to 1 within :data:`FRACTION_TOLERANCE`) and its process variables (e.g. an annealing temperature,
within the synthesiser's limits). ``check_synthesis_request`` refuses anything else before a
robot moves, naming the field. The planning model (``SynthesisModel``) is what a planner may know:
the components, the process limits, the expected synthesis time per sample (seconds) and the batch
capacity. A synthesis is recorded like a measurement: its ``Measurement.sample_id`` is the new
sample's id (deterministic from the attempt id, :func:`sample_id_for`), its data the synthesis time.

Batches: a synthesiser with ``batch_capacity`` N makes up to N samples together in one synthesis
time. Each member is still its own request and its own record (so each is journalled, recovered and
resumed alone); ``MeasurementRequest.batch`` names every member's recipe, and a member's measurement
charges its share of the batch's time (the batch's time divided by its size: the members' shares
add up to the batch's time once) while its data say how long the whole batch took.
"""

from __future__ import annotations

import math

from pydantic import Field, model_validator

from instruments.protocol import InstrumentLimitError
from instruments.types import DataKey, MeasurementRequest, ParamValue, Record

FRACTION_TOLERANCE = 1e-6
"""How far the component fractions of a recipe may sum from 1 (absolute)."""

DATA_KEYS = {
    "synthesis_seconds": DataKey(dtype="number", shape=[], units="s",
                                 description="time the synthesis (the whole batch, when made in one) took"),
}


def sample_id_for(attempt_id: str) -> str:
    """The id of the sample a synthesis attempt makes: a function of the attempt id alone, so a
    re-run or an adopted synthesis names the same sample."""
    return f"{attempt_id}-sample"


class SynthesisModel(Record):
    """What a planner knows of a synthesiser (no ground truth)."""

    components: list[str] = Field(min_length=1, description="components whose fractions make the recipe (sum 1)")
    process_limits: dict[str, tuple[float, float]] = Field(
        default_factory=dict, description="process variable → (low, high), in its own units (e.g. °C)")
    expected_seconds: float = Field(ge=0, description="expected time to make one sample, s")
    batch_capacity: int = Field(default=1, ge=1, description="samples the synthesiser can make at once")

    @model_validator(mode="after")
    def _consistent(self) -> SynthesisModel:
        if len(set(self.components)) != len(self.components):
            raise ValueError(f"components: a component is listed twice: {self.components}")
        overlap = sorted(set(self.components) & set(self.process_limits))
        if overlap:
            raise ValueError(f"process_limits: {overlap} are components too")
        for name, (low, high) in self.process_limits.items():
            if not low < high:
                raise ValueError(f"process_limits.{name}: low ({low}) must be below high ({high})")
        return self

    @property
    def request_fields(self) -> tuple[str, ...]:
        """The recipe's fields: component fractions, then process variables."""
        return (*self.components, *self.process_limits)


def check_synthesis_request(model: SynthesisModel, request: MeasurementRequest, *, instrument: str) -> None:
    """Raise ``InstrumentLimitError`` (starting with ``instrument``) for a recipe the synthesiser must
    not make: unknown or missing fields, a value that is not a finite number, a negative fraction,
    fractions not summing to 1 (± :data:`FRACTION_TOLERANCE`), a process variable outside its limits."""
    values = _recipe_values(request.params, model, instrument)
    for name in model.components:
        if values[name] < 0:
            raise InstrumentLimitError(f"{instrument}: {name}={values[name]} is a negative fraction")
    total = sum(values[n] for n in model.components)
    if abs(total - 1.0) > FRACTION_TOLERANCE:
        raise InstrumentLimitError(f"{instrument}: the fractions of {model.components} sum to {total:.9g}, not 1")
    for name, (low, high) in model.process_limits.items():
        if not low <= values[name] <= high:
            raise InstrumentLimitError(f"{instrument}: {name}={values[name]} is outside the limits [{low}, {high}]")


def check_synthesis_batch(model: SynthesisModel, request: MeasurementRequest, *, instrument: str) -> None:
    """Raise ``InstrumentLimitError`` for a batch the synthesiser cannot make together: more samples
    than its ``batch_capacity``, a batch that does not hold this request's own recipe, or any member's
    recipe that ``check_synthesis_request`` refuses. A request without a batch passes."""
    batch = request.batch
    if batch is None:
        return
    if len(batch) > model.batch_capacity:
        raise InstrumentLimitError(f"{instrument}: a batch of {len(batch)} samples exceeds the batch capacity "
                                   f"({model.batch_capacity})")
    if batch.get(request.attempt_id) != request.params:
        raise InstrumentLimitError(f"{instrument}: the batch does not hold {request.attempt_id}'s own recipe")
    for attempt_id, recipe in batch.items():
        check_synthesis_request(model, MeasurementRequest(attempt_id=attempt_id, params=recipe), instrument=instrument)


def _recipe_values(params: dict[str, ParamValue], model: SynthesisModel, instrument: str) -> dict[str, float]:
    unknown = sorted(set(params) - set(model.request_fields))
    if unknown:
        raise InstrumentLimitError(f"{instrument}: unknown recipe fields {unknown}; known: {list(model.request_fields)}")
    values: dict[str, float] = {}
    for name in model.request_fields:
        if name not in params:
            raise InstrumentLimitError(f"{instrument}: the recipe lacks {name!r}")
        value = params[name]
        if isinstance(value, (str, bool)) or not math.isfinite(float(value)):
            raise InstrumentLimitError(f"{instrument}: {name}={value!r} is not a finite number")
        values[name] = float(value)
    return values
