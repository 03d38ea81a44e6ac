"""The policy protocols: ``propose(history, pending, n)`` → proposals that say why.

A policy is stateless with respect to the campaign: everything it knows comes in ``history``
(built from the store), so a resumed campaign rebuilds exactly the model it had.

A *measurement planner* decides how to measure one sample (which configuration, how long) and needs
more than the objective's values: ``plan(context, n)`` receives a :class:`PlanningContext` with the
sample's raw measurements, the analysis' interpretations and what the instruments say about
themselves. The campaign calls ``plan`` on a policy that has it, ``propose`` otherwise.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

from analysis.protocol import Interpretation
from instruments.types import Measurement, ParamValue


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


@dataclass(frozen=True)
class PlanningGoals:
    """What the campaign's targets ask of a planner (built by ``agent/targets.py:planning_goals``)."""

    relative_precision: Mapping[str, float] = field(default_factory=dict)
    """estimate name → goal of σ/|value|"""
    best_probability: float | None = None
    """goal for p(best), the most probable answer's probability"""


@dataclass(frozen=True)
class PlanningContext:
    """Everything the campaign knows when a planner decides, rebuilt from the store on resume.

    ``history``: valid analysed observations of the objective; ``pending``: params decided but not
    yet analysed (an objective policy's pending points), in decision order; ``unmeasured``: those
    of them not yet measured — what a measurement planner adds to ``measurements``, every
    measurement of the campaign's sample, oldest first; ``interpretations``: the analysis of them
    (newest last; may lag the newest measurement by one); ``instrument_models``: instrument name →
    its ``planning_model()`` (None for a driver that has none); ``goals``: the targets' goals.
    """

    history: Sequence[Observation] = ()
    pending: Sequence[Mapping[str, ParamValue]] = ()
    unmeasured: Sequence[Mapping[str, ParamValue]] = ()
    measurements: Sequence[Measurement] = ()
    interpretations: Sequence[Interpretation] = ()
    instrument_models: Mapping[str, Any] = field(default_factory=dict)
    goals: PlanningGoals = field(default_factory=PlanningGoals)

    def latest_valid(self) -> Interpretation | None:
        """The newest interpretation marked valid, or None."""
        return next((i for i in reversed(self.interpretations) if i.valid), None)


@runtime_checkable
class MeasurementPlanner(Protocol):
    """Chooses how to measure next from the full planning context."""

    name: str

    def plan(self, context: PlanningContext, n: int) -> list[Proposal]:
        """Return ``n`` proposals."""
        ...


def best_probability_goal(targets: Sequence[Mapping[str, Any]]) -> float | None:
    """The campaign's goal for the most probable answer's probability (its ``p(best)``
    estimate_threshold targets, the strictest one), or None if it has none."""
    goals = [float(t["at_least"]) for t in targets
             if t.get("kind") == "estimate_threshold" and t.get("estimate") == "p(best)" and t.get("at_least") is not None]
    return max(goals) if goals else None
