"""The planning protocol: ``plan(context, n)`` → proposals that say why.

A policy is stateless with respect to the campaign: everything it knows comes in the
:class:`PlanningContext` (built from the store), so a resumed campaign rebuilds exactly the model
it had.

Two kinds of policy share the one protocol:

- *objective policies* (BO, active learning, Sobol, random) model only the campaign objective: they
  derive from :class:`ObjectivePolicy` and implement ``propose(history, pending, n)``; the base
  class supplies ``plan``;
- *measurement planners* (SAS, XRD) decide how to measure one sample (which configuration, how
  long) from the sample's raw measurements, the analysis' interpretations, what the instruments say
  about themselves and the campaign's :class:`PlanningGoals`; they implement ``plan`` directly.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, Protocol, runtime_checkable

from pydantic import Field

from analysis.protocol import Interpretation
from instruments.types import Measurement, ParamValue, Record


class Observation(Record):
    """One analysed point: where it was measured and what the objective estimate was.

    ``sigma`` is the analysis' 1-σ standard error of ``value`` (same units); None when unknown, in
    which case the model infers a homoscedastic noise level.
    """

    params: dict[str, ParamValue]
    value: float
    sigma: float | None = Field(default=None, ge=0)
    attempt_id: str = ""


class SampleOutcome(Record):
    """What a campaign over samples learned from one synthesised sample (self-driving lab).

    ``recipe``: where in the design space the sample was made (composition fractions, process
    variables, in the design space's units); ``label_probabilities``: the sample's answer as a *soft*
    label — label (e.g. a phase set ``"anatase+rutile"`` or a SAS model name) → probability, summing
    to ≤ 1; the rest is "none of the labels" (a "not identified" sample has all its mass there, i.e.
    maximal uncertainty, never a confident label); ``estimates``: name → (value, 1-σ) of the sample's
    estimates (e.g. a property to optimise); ``status``: ``answered`` (per-sample target met),
    ``budget`` (per-sample budget spent first), ``unreachable``, ``not_identified`` or ``failed`` (the
    synthesis or its characterisation failed — information, but no label); ``seconds``: synthesis plus
    instrument seconds the sample cost (s).
    """

    sample_id: str = Field(min_length=1)
    recipe: dict[str, ParamValue]
    label_probabilities: dict[str, float] = Field(default_factory=dict)
    estimates: dict[str, tuple[float, float]] = Field(default_factory=dict)
    status: Literal["answered", "budget", "unreachable", "not_identified", "failed"] = "answered"
    seconds: float = Field(default=0.0, ge=0)


class Proposal(Record):
    """A point to measure next and the reason it was chosen (acquisition value, model state)."""

    params: dict[str, ParamValue]
    policy: str
    reason: dict[str, Any] = Field(default_factory=dict)


@dataclass(frozen=True)
class PlanningGoals:
    """What the campaign's targets ask of a planner (built by ``agent/targets.py:planning_goals``,
    the only reader of target kinds).

    ``relative_precision``: estimate name → goal for σ/|value| (dimensionless);
    ``best_probability``: goal for ``p(best)``, the most probable answer's probability, or None.
    """

    relative_precision: Mapping[str, float] = field(default_factory=dict)
    best_probability: float | None = None

    def is_empty(self) -> bool:
        """True when the campaign asks a planner for nothing (no precision and no probability goal)."""
        return not self.relative_precision and self.best_probability is None


@dataclass(frozen=True)
class PlanningContext:
    """Everything the campaign knows when a policy decides, rebuilt from the store on resume.

    ``history``: valid analysed observations of the objective; ``pending``: params decided but not
    yet analysed, in decision order (an objective policy's pending points); ``unmeasured``: those of
    them not yet measured (what a measurement planner adds to ``measurements``, which holds the
    measured ones); ``measurements``: every measurement of the campaign's sample, oldest first;
    ``interpretations``: the analysis of them (newest last; may lag the newest measurement by one);
    ``instrument_models``: instrument name → its ``planning_model()`` (None for a driver that has
    none); ``goals``: what the campaign's targets ask of a planner. In a campaign over samples (a
    self-driving lab), ``samples`` holds every finished sample's outcome with its uncertainty and
    ``pending_recipes`` the recipes decided (synthesised or being characterised) but not finished —
    what an across-sample policy plans from; both are empty otherwise.
    """

    history: Sequence[Observation] = ()
    pending: Sequence[Mapping[str, ParamValue]] = ()
    unmeasured: Sequence[Mapping[str, ParamValue]] = ()
    measurements: Sequence[Measurement] = ()
    interpretations: Sequence[Interpretation] = ()
    instrument_models: Mapping[str, Any] = field(default_factory=dict)
    goals: PlanningGoals = field(default_factory=PlanningGoals)
    samples: Sequence[SampleOutcome] = ()
    pending_recipes: Sequence[Mapping[str, ParamValue]] = ()
    remaining_instrument_seconds: float | None = None
    """Instrument budget left, s: the budget less the measured time (requests decided but not yet
    measured are not subtracted: a planner counts its own); None without an instrument-time budget."""

    def latest_valid(self) -> Interpretation | None:
        """The newest interpretation marked valid, or None."""
        return next((i for i in reversed(self.interpretations) if i.valid), None)

    def goals_or(self, built_with: PlanningGoals) -> PlanningGoals:
        """The goals to plan toward: the context's when it has any, else ``built_with`` (the goals
        the planner was constructed with).

        In a campaign both are the same object. The context's are authoritative so that one step
        can carry goals of its own (a sample step of a nested campaign plans toward the sample's
        targets, not the campaign's).
        """
        return built_with if self.goals.is_empty() else self.goals


@runtime_checkable
class Policy(Protocol):
    """Chooses the next measurements."""

    name: str

    def plan(self, context: PlanningContext, n: int) -> list[Proposal]:
        """Return ``n`` proposals, each with the reason it was chosen."""
        ...


class ObjectivePolicy(ABC):
    """Base of policies that only model the objective (BO, AL, Sobol, random): ``plan`` calls
    ``propose(context.history, context.pending, n)``."""

    name: str
    #: What the campaign passes to the constructor besides the space, the seed and the options
    #: (see :func:`policies.registry.build_policy`).
    campaign_arguments: ClassVar[tuple[str, ...]] = ()

    def plan(self, context: PlanningContext, n: int) -> list[Proposal]:
        """``n`` proposals from the context's history and pending points (nothing else is read)."""
        return self.propose(context.history, context.pending, n)

    @abstractmethod
    def propose(
        self, history: Sequence[Observation], pending: Sequence[Mapping[str, ParamValue]], n: int
    ) -> list[Proposal]:
        """Return ``n`` proposals given valid analysed observations and in-flight points."""


__all__ = ["ObjectivePolicy", "Observation", "PlanningContext", "PlanningGoals", "Policy", "Proposal", "SampleOutcome"]
