"""Instrument drivers: one small protocol, request/measurement records, and the Ray actor around them."""

from instruments.protocol import Driver, InstrumentLimitError, RecoverableDriver
from instruments.types import (
    DataKey,
    Measurement,
    MeasurementRequest,
    ParamValue,
    Timing,
)

__all__ = [
    "DataKey",
    "Driver",
    "InstrumentLimitError",
    "Measurement",
    "MeasurementRequest",
    "ParamValue",
    "RecoverableDriver",
    "Timing",
]
