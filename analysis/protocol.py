"""The analysis protocol: ``interpret(measurements)`` → estimates ± σ with quality flags.

An analysis never raises on bad data: NaN, inf or a negative variance produce an interpretation
flagged invalid (kept in the store, excluded from model training), so the loop goes on.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from pydantic import Field

from instruments.types import Measurement, Record


class Estimate(Record):
    """One estimated quantity: value and 1-σ standard error, in ``units``.

    ``value`` is None when the data did not allow an estimate (then the interpretation is flagged).
    """

    value: float | None
    sigma: float | None = Field(default=None, ge=0, description="1-σ standard error; None if unknown")
    units: str = ""


class Interpretation(Record):
    """What an analysis concluded from all measurements of one sample."""

    attempt_id: str = Field(description="the attempt whose measurement triggered this interpretation")
    sample_id: str
    analysis: str
    estimates: dict[str, Estimate]
    flags: list[str] = Field(default_factory=list, description="quality flags, e.g. 'non-finite-data'")
    valid: bool = Field(description="false: keep and show, but never train a model on it")
    details: dict[str, float | str | bool | None] = Field(default_factory=dict)


@runtime_checkable
class Analysis(Protocol):
    """Turns raw measurements into estimates."""

    name: str

    def interpret(self, measurements: Sequence[Measurement]) -> Interpretation:
        """Interpret every measurement of one sample (oldest first); the last one is the newest."""
        ...
