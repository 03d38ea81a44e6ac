"""The policy protocol: ``propose(history, pending, n)`` → proposals that say why.

A policy is stateless with respect to the campaign: everything it knows comes in ``history``
(built from the store), so a resumed campaign rebuilds exactly the model it had.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

from instruments.types import ParamValue


class Observation(BaseModel):
    """One analysed point: where it was measured and what the objective estimate was.

    ``sigma`` is the analysis' 1-σ standard error of ``value`` (same units); None when unknown, in
    which case the model infers a homoscedastic noise level.
    """

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, frozen=True)

    params: dict[str, ParamValue]
    value: float
    sigma: float | None = Field(default=None, ge=0)
    attempt_id: str = ""


class Proposal(BaseModel):
    """A point to measure next and the reason it was chosen (acquisition value, model state)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, frozen=True)

    params: dict[str, ParamValue]
    policy: str
    reason: dict[str, Any] = Field(default_factory=dict)


@runtime_checkable
class Policy(Protocol):
    """Chooses the next measurements."""

    name: str

    def propose(
        self, history: Sequence[Observation], pending: Sequence[dict[str, ParamValue]], n: int
    ) -> list[Proposal]:
        """Return ``n`` proposals given valid analysed observations and in-flight points."""
        ...
