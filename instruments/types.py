"""Records that cross the instrument boundary.

Every record is a pydantic model with ``extra="forbid"`` and ``allow_inf_nan=False``. Raw data arrays
are the one exception to "no NaN": an instrument may really return NaN or inf, and that data must be
kept and flagged downstream, not rejected at the door. So arrays are carried as numpy arrays, and
only the scalar metadata is validated as finite.
"""

from __future__ import annotations

import math
from datetime import datetime, timezone
from typing import Annotated, Any, Literal, SupportsFloat

import numpy as np
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer

ParamValue = float | int | str
"""A design-space coordinate: a float (continuous), int (integer) or str (categorical)."""


class Record(BaseModel):
    """Base of all boundary records: strict about unknown fields and non-finite numbers."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, frozen=True)


def _as_float_array(value: Any) -> np.ndarray:
    # numpy turns None (how JSON carries a non-finite value) into NaN under dtype=float64.
    return np.asarray(value, dtype=np.float64)


def _array_to_json(value: np.ndarray) -> Any:
    # JSON has no NaN/inf; write them as null so the record can still be serialised.
    return json_safe(value.tolist())


FloatArray = Annotated[
    np.ndarray,
    BeforeValidator(_as_float_array),
    PlainSerializer(_array_to_json, return_type=Any, when_used="json"),
]
"""A float64 numpy array; may hold NaN/inf (raw data is kept as measured)."""


def finite_or_none(x: SupportsFloat | None) -> float | None:
    """``x`` as a float, or None when it is None, NaN or infinite (how JSON carries those)."""
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def json_safe(value: Any) -> Any:
    """``value`` with every non-finite float replaced by None, recursively through dicts, lists,
    tuples and numpy scalars/arrays — how JSON (and PostgreSQL's json) carries NaN and inf.

    With ``finite_or_none`` for one number, the one non-finite-to-None rule of labpilot: stores,
    documents, wire messages, fit details and decision reasons use it."""
    if isinstance(value, float):
        return finite_or_none(value)
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, np.generic):
        return json_safe(value.item())
    if isinstance(value, np.ndarray):
        return json_safe(value.tolist())
    return value


class DataKey(Record):
    """Describes one data key an instrument produces (the event-model ``data_keys`` entry)."""

    dtype: Literal["number", "integer", "array", "string"]
    shape: list[int] = Field(default_factory=list, description="[] for scalars; [n] for 1-d arrays")
    units: str = Field(description="physical units, e.g. 'a.u.', '1/cm', 'counts'")
    description: str = ""


class MeasurementRequest(Record):
    """What to measure, addressed to one instrument.

    ``attempt_id`` is deterministic and unique within the store; an instrument that sees the same id
    twice must not measure twice (see ``RecoverableDriver.recover``).
    """

    attempt_id: str = Field(min_length=1)
    params: dict[str, ParamValue]
    sample_id: str | None = Field(default=None, description="sample measured; defaults to the attempt")
    recipe: dict[str, ParamValue] | None = Field(
        default=None,
        description="how the sample was made, in a campaign over synthesised samples (composition fractions, "
        "process variables; the design space's units). Simulators of a materials system derive the sample's hidden "
        "truth from it; real instruments ignore it",
    )
    noise_key: str | None = Field(
        default=None,
        description="what simulated and replayed instruments key their random draws on (instruments.noise): the "
        "campaign's seed, the attempt's sequence number and sample — the same for the same seed, unlike the attempt id",
    )
    batch: dict[str, dict[str, ParamValue]] | None = Field(
        default=None,
        description="a synthesiser's batch this request belongs to: attempt id → recipe of every sample made "
        "together with this one, this one included (instruments/synthesis.py); other instruments ignore it",
    )


class Timing(Record):
    """Where the instrument's time went, in seconds of *instrument* (virtual for simulators) time."""

    exposure_seconds: float = Field(ge=0)
    motion_seconds: float = Field(default=0.0, ge=0)
    overhead_seconds: float = Field(default=0.0, ge=0)
    started_at: datetime = Field(default_factory=lambda: datetime.now(timezone.utc))
    wall_seconds: float = Field(default=0.0, ge=0, description="real elapsed seconds of the call")

    @property
    def instrument_seconds(self) -> float:
        """Total instrument time charged to this measurement, in seconds."""
        return self.exposure_seconds + self.motion_seconds + self.overhead_seconds


class Measurement(BaseModel):
    """Raw data of one attempt: arrays with their 1-σ uncertainties (same keys), and timing.

    Not frozen and NaN-tolerant on purpose: ``data`` and ``sigma`` hold what the instrument produced.
    ``sigma`` is a standard deviation in the units of the matching data key.
    """

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, arbitrary_types_allowed=True)

    attempt_id: str
    instrument: str
    params: dict[str, ParamValue]
    sample_id: str | None = None
    data: dict[str, FloatArray]
    sigma: dict[str, FloatArray] = Field(default_factory=dict)
    timing: Timing
    recovered: bool = Field(default=False, description="true when reported by recover(), not measured now")

    def scalar(self, key: str) -> float:
        """The value of a scalar data key as a float (may be NaN)."""
        return float(np.asarray(self.data[key]).reshape(-1)[0])
