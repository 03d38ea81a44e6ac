"""Instrument drivers: one small protocol, request/measurement records, and the Ray actor around them."""

from instruments.protocol import Driver, DurationDriver, InstrumentLimitError, InstrumentNotReady, RecoverableDriver
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
    "DurationDriver",
    "InstrumentLimitError",
    "InstrumentNotReady",
    "Measurement",
    "MeasurementRequest",
    "ParamValue",
    "RecoverableDriver",
    "Timing",
]
