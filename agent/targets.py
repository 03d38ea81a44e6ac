"""Confidence targets: each is ``evaluate(state)`` → (value, goal, met).

The campaign stops when every target is met (or a budget runs out). Model-based targets use the
same cached GP as the policy (``policies.models.ModelCache``), so a step fits one model, not two.

:func:`planning_goals` is the only place that reads target kinds for planners: it turns the
targets into the typed :class:`~policies.protocol.PlanningGoals` a measurement planner plans toward.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from agent.config import (
    EstimateThresholdTarget,
    IncumbentNearOptimumTarget,
    MaxPosteriorStdTarget,
    RelativeUncertaintyTarget,
    TargetConfig,
)
from agent.errors import first_line
from analysis.protocol import Estimate, Interpretation
from policies.protocol import Observation, PlanningGoals
from policies.space import DesignSpace

if TYPE_CHECKING:  # the GP targets import torch/BoTorch when they evaluate, not when a file is validated
    from policies.models import FittedModel, ModelCache


UNTRUSTED_FLAGS = frozenset({"poor-fit", "not-identified"})
"""Flags of an interpretation whose answer must not meet any target: the model does not describe the
data, or nothing was identified. The value is still shown. Per estimate, ``second-minimum:<name>``
(a near-equivalent minimum disagrees on it) and ``unconstrained:<name>`` also block its targets."""


def untrusted_flags(interpretation: Interpretation, estimate: str) -> list[str]:
    """The flags of ``interpretation`` that keep a target on ``estimate`` from being met."""
    return [
        f for f in interpretation.flags
        if f in UNTRUSTED_FLAGS or f == f"unconstrained:{estimate}" or f == f"second-minimum:{estimate}"
    ]


def _flagged(result: TargetResult, interpretation: Interpretation, estimate: str) -> TargetResult:
    """``result``, not met if the interpretation it was read from is flagged (the flags in its detail)."""
    flags = untrusted_flags(interpretation, estimate)
    if not flags or not result.met:
        return result
    return TargetResult(result.value, result.goal, False, f"{result.detail}; flagged: {', '.join(flags)}")


@dataclass(frozen=True)
class TargetResult:
    value: float | None
    goal: float
    met: bool
    detail: str = ""

    def as_dict(self) -> dict[str, object]:
        return {"value": self.value, "goal": self.goal, "met": self.met, "detail": self.detail}


@dataclass(frozen=True)
class CampaignState:
    """What targets may look at: valid observations of the objective, all interpretations, the model."""

    space: DesignSpace
    direction: str
    history: Sequence[Observation]
    interpretations: Sequence[Interpretation]
    models: ModelCache
    seed: int


class Target(Protocol):
    name: str

    def evaluate(self, state: CampaignState) -> TargetResult: ...


def _model_if_enough_data(state: CampaignState, min_observations: int) -> FittedModel | None:
    """The campaign's GP (shared with the policy through the cache), or None while data is too thin
    for a model's confidence to mean anything."""
    if len(state.history) < min_observations:
        return None
    return state.models.fit(state.space, state.history, state.direction)


def _no_structure_yet(fitted: FittedModel) -> str | None:
    """Why the model's confidence cannot be used yet (every observation is explained by a constant
    objective within its noise: the GP has seen no structure), or None when it can."""
    from policies.confidence import NO_SIGNAL_P_VALUE, constant_objective_p_value

    p_value = constant_objective_p_value(fitted)
    if p_value <= NO_SIGNAL_P_VALUE:
        return None
    return (
        f"no structure seen yet: the {fitted.n_train} observations are consistent with a constant objective "
        f"(χ² p = {p_value:.2f}), so the model cannot tell where the optimum is"
    )


class MaxPosteriorStd:
    def __init__(self, config: MaxPosteriorStdTarget) -> None:
        self.name, self.config = config.name, config

    def evaluate(self, state: CampaignState) -> TargetResult:
        fitted = _model_if_enough_data(state, self.config.min_observations)
        if fitted is None:
            return TargetResult(None, self.config.goal, False, f"needs {self.config.min_observations} observations")
        if (reason := _no_structure_yet(fitted)) is not None:
            return TargetResult(None, self.config.goal, False, reason)
        from policies.confidence import max_posterior_std

        value = max_posterior_std(fitted, seed=state.seed)
        return TargetResult(value, self.config.goal, value <= self.config.goal)


class IncumbentNearOptimum:
    def __init__(self, config: IncumbentNearOptimumTarget) -> None:
        self.name, self.config = config.name, config

    def evaluate(self, state: CampaignState) -> TargetResult:
        goal = self.config.probability
        fitted = _model_if_enough_data(state, self.config.min_observations)
        if fitted is None:
            return TargetResult(None, goal, False, f"needs {self.config.min_observations} observations")
        if (reason := _no_structure_yet(fitted)) is not None:
            return TargetResult(None, goal, False, reason)
        from policies.confidence import prob_incumbent_near_optimum

        probability, incumbent = prob_incumbent_near_optimum(fitted, self.config.epsilon, seed=state.seed)
        # The attempt is named so the answer (agent/answer.py) can read the incumbent from the store.
        attempt = next((o.attempt_id for o in state.history if o.params == incumbent and o.attempt_id), None)
        detail = f"incumbent {incumbent}" + (f" (attempt {attempt})" if attempt else "")
        return TargetResult(probability, goal, probability >= goal, detail)


class RelativeUncertainty:
    def __init__(self, config: RelativeUncertaintyTarget) -> None:
        self.name, self.config = config.name, config
        # The chosen (interpretation, estimate) so far, kept between evaluations: the loop evaluates after
        # every analysis, and a scan of all interpretations each time made a campaign O(n²) (its loop
        # slowed as it went). Rescanned whenever the list is not the one seen growing (a rebuilt ledger).
        self._seen: tuple[list[Interpretation] | None, int, str] = (None, 0, "")
        self._chosen: tuple[Interpretation, Estimate] | None = None

    def evaluate(self, state: CampaignState) -> TargetResult:
        name, goal = self.config.estimate, self.config.goal
        chosen = self._choose(state)
        if chosen is None:
            return TargetResult(None, goal, False, f"no valid estimate of {name!r} yet")
        interp, est = chosen
        assert est.value is not None and est.sigma is not None
        value = est.sigma / abs(est.value) if est.value != 0 else float("inf")
        relative = value if value != float("inf") else None
        return _flagged(TargetResult(relative, goal, value <= goal, f"sample {interp.sample_id}"), interp, name)

    def _choose(self, state: CampaignState) -> tuple[Interpretation, Estimate] | None:
        """The latest, or the best by the objective's direction (the first of equals), valid estimate with a σ."""
        name, interpretations = self.config.estimate, state.interpretations
        source, start, direction = self._seen
        if source is not interpretations or start > len(interpretations) or direction != state.direction:
            start, self._chosen = 0, None
        sign = 1.0 if state.direction == "maximize" else -1.0
        for i in interpretations[start:]:
            est = i.estimates.get(name)
            if not i.valid or est is None or est.value is None or est.sigma is None:
                continue
            if self.config.sample == "latest" or self._chosen is None or sign * est.value > sign * self._chosen[1].value:  # type: ignore[operator]
                self._chosen = (i, est)
        self._seen = (interpretations, len(interpretations), state.direction)
        return self._chosen


class EstimateThreshold:
    def __init__(self, config: EstimateThresholdTarget) -> None:
        self.name, self.config = config.name, config

    def evaluate(self, state: CampaignState) -> TargetResult:
        c = self.config
        goal = c.at_least if c.at_least is not None else c.at_most
        assert goal is not None
        latest = next(
            (i for i in reversed(state.interpretations)
             if i.valid and c.estimate in i.estimates and i.estimates[c.estimate].value is not None),
            None,
        )
        if latest is None:
            return TargetResult(None, goal, False, f"no valid estimate of {c.estimate!r} yet")
        value = latest.estimates[c.estimate].value
        assert value is not None
        met = (c.at_least is None or value >= c.at_least) and (c.at_most is None or value <= c.at_most)
        return _flagged(TargetResult(value, goal, met, f"sample {latest.sample_id}"), latest, c.estimate)


def goal_of(config: TargetConfig) -> float:
    """The number a target compares its value with (its goal, probability or bound)."""
    for attribute in ("goal", "probability", "at_least", "at_most"):
        value = getattr(config, attribute, None)
        if value is not None:
            return float(value)
    raise AssertionError(f"target {config.name!r} has no goal")


class TargetBoard:
    """The campaign's targets and their latest results (what the loop's stop rule reads)."""

    def __init__(self, configs: Sequence[TargetConfig]) -> None:
        self.targets = build_targets(configs)
        self.results: dict[str, TargetResult] = {
            t.name: TargetResult(None, goal_of(c), False, "not evaluated") for t, c in zip(self.targets, configs)
        }

    def evaluate(self, state: CampaignState) -> dict[str, TargetResult]:
        """Evaluate every target on ``state``; a target that cannot be evaluated is simply not met."""
        for target in self.targets:
            try:
                self.results[target.name] = target.evaluate(state)
            except Exception as exc:  # noqa: BLE001 — recorded as the target's detail, never a crash
                old = self.results[target.name]
                self.results[target.name] = TargetResult(None, old.goal, False, f"error: {first_line(exc)}")
        return dict(self.results)

    @property
    def all_met(self) -> bool:
        return bool(self.results) and all(r.met for r in self.results.values())


def build_targets(configs: Sequence[TargetConfig]) -> list[Target]:
    kinds = {
        "max_posterior_std": MaxPosteriorStd,
        "incumbent_near_optimum": IncumbentNearOptimum,
        "relative_uncertainty": RelativeUncertainty,
        "estimate_threshold": EstimateThreshold,
    }
    return [kinds[c.kind](c) for c in configs]  # type: ignore[arg-type]


def planning_goals(targets: Sequence[TargetConfig]) -> PlanningGoals:
    """What ``targets`` ask of a planner.

    ``relative_uncertainty`` targets give the relative-precision goal of their estimate (when two
    name the same estimate, the later one's); ``estimate_threshold`` targets on ``p(best)`` with an
    ``at_least`` give the probability goal of the most probable answer (the strictest one).
    """
    relative = {t.estimate: float(t.goal) for t in targets if isinstance(t, RelativeUncertaintyTarget)}
    best = [
        float(t.at_least)
        for t in targets
        if isinstance(t, EstimateThresholdTarget) and t.estimate == "p(best)" and t.at_least is not None
    ]
    return PlanningGoals(relative_precision=relative, best_probability=max(best) if best else None)
