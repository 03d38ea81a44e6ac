"""SAS measurement planning: which configuration next, and for how long — and its baselines.

Every policy here chooses the request of a SAS instrument on one sample, ``{configuration,
exposure_seconds}`` (the parameter names are options), through one code path: ``plan(context, n)``
(see :class:`policies.protocol.PlanningContext`), with the campaign's targets as the stopping rule and,
for the planners, their :class:`~policies.protocol.PlanningGoals` as what to plan toward.

- ``sas_adaptive``: plans from the current fits. Hypotheses are the candidate models that are
  plausible now (p ≥ ``hypothesis_min_probability``) at their fitted parameters; information so
  far is predicted from the exposures made (``instruments.sas`` counting model); the optimiser of
  :mod:`policies.sas_allocation` finds the cheapest allocation that meets the precision and model targets
  under each of them, counting configuration changes. The first configuration of that plan (the
  current one if it is in the plan: no change) is measured next, for the planned time but at most
  ``growth`` × the exposure so far (at least ``first_exposure_seconds``): a plan made from early,
  uncertain fits — and a linearised forecast of model probabilities — is committed to gradually,
  and re-made after every analysis.
- ``sas_oracle``: the same optimiser fed the *true* model and parameters (``truth``) — the
  Cramér–Rao allocation, with rivals fitted to the noise-free truth. It commits to its plan as
  gradually as the adaptive planner and stops by the same rule, so the two differ only in what they
  know: the ratio of their times is the price of not knowing the sample.
- ``sas_fixed``: a facility protocol chosen up front (``protocol``: configuration and exposure per
  step), repeated in order.
- ``sas_round_robin``: every configuration in turn for ``exposure_seconds`` each.
- ``sas_random``: a random configuration each step for ``exposure_seconds`` (Kanazawa et al.'s
  baseline).

Planners and baselines need only the design space (planners also the analysis settings and the
goals), so they are built and validated with the campaign; the instrument's
:class:`instruments.sas.SASInstrumentModel` arrives in the context. Each policy's options are its
``Options`` model.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any, ClassVar, Self

import numpy as np
from pydantic import Field, field_validator, model_validator

from analysis.sas import SASFitAnalysis, SASFitSettings
from analysis.sas.predict import predict_with_jacobian, prior_precision
from instruments.sas import SASInstrumentModel
from instruments.types import Measurement, Record, Timing
from policies.protocol import PlanningContext, PlanningGoals, Proposal
from policies.sas_allocation import (
    Allocation,
    AllocationHypothesis,
    AllocationProblem,
    MAX_TOTAL_SECONDS,
    Rival,
    log_odds,
    plan_allocation,
)
from policies.futility import REASON_KEY, HypothesisNeed, forecast
from policies.space import CategoricalParameter, ContinuousParameter, DesignSpace

_Linearised = tuple[np.ndarray, np.ndarray, tuple[str, ...]]  # intensity (n,), jacobian (n, k), names


class _SASPolicy(ABC):
    """What every SAS policy shares: the request's parameters in the design space, and the tally."""

    name = "sas"
    #: What the campaign passes to the constructor besides the space, the seed and the options
    #: (see :func:`policies.registry.build_policy`).
    campaign_arguments: ClassVar[tuple[str, ...]] = ()

    class Options(Record):
        """The names of the request's parameters in the design space."""

        configuration_parameter: str = Field(
            default="configuration", description="categorical parameter: the instrument configuration"
        )
        exposure_parameter: str = Field(default="exposure_seconds", description="continuous parameter: exposure, s")

    def __init__(self, space: DesignSpace, *, seed: int = 0, options: Options | None = None) -> None:
        options = options if options is not None else self.Options()
        self.options = options
        configuration_parameter, exposure_parameter = options.configuration_parameter, options.exposure_parameter
        self.space, self.seed = space, seed
        self.configuration_parameter, self.exposure_parameter = configuration_parameter, exposure_parameter
        params = {p.name: p for p in space.parameters}
        config = params.get(configuration_parameter)
        if not isinstance(config, CategoricalParameter):
            raise ValueError(
                f"policy {self.name!r}: the design space needs a categorical parameter {configuration_parameter!r} "
                f"(the instrument configuration); it has {sorted(params)} (option configuration_parameter renames it)"
            )
        exposure = params.get(exposure_parameter)
        if not isinstance(exposure, ContinuousParameter):
            raise ValueError(
                f"policy {self.name!r}: the design space needs a continuous parameter {exposure_parameter!r} "
                f"(seconds); it has {sorted(params)} (option exposure_parameter renames it)"
            )
        self.configurations: list[str] = [str(c) for c in config.choices]
        self.exposure_bounds = (float(exposure.low), float(exposure.high))

    @abstractmethod
    def plan(self, context: PlanningContext, n: int) -> list[Proposal]:
        """``n`` requests ``{configuration, exposure}`` for the campaign's sample."""

    # -- shared helpers ---------------------------------------------------------------------------
    def _tally(self, context: PlanningContext) -> tuple[dict[str, float], str | None, int]:
        """Exposure so far per configuration (measured + pending, s), the current configuration, the count."""
        seconds = {c: 0.0 for c in self.configurations}
        current: str | None = None
        steps = [m.params for m in context.measurements] + [dict(p) for p in context.unmeasured]
        for params in steps:
            config = str(params.get(self.configuration_parameter))
            if config in seconds:
                seconds[config] += float(params.get(self.exposure_parameter, 0.0))  # type: ignore[arg-type]
                current = config
        return seconds, current, len(steps)

    def _request(self, configuration: str, exposure: float, reason: dict[str, Any]) -> Proposal:
        low, high = self.exposure_bounds
        exposure = float(min(max(exposure, low), high))
        return Proposal(
            params={self.configuration_parameter: configuration, self.exposure_parameter: round(exposure, 3)},
            policy=self.name, reason=reason,
        )


# -- baselines ----------------------------------------------------------------------------------------


class ProtocolStep(Record):
    """One step of a fixed protocol."""

    configuration: str
    exposure_seconds: float = Field(description="s")


class SASFixedProtocol(_SASPolicy):
    """The facility's protocol chosen up front: each step's configuration and exposure, repeated."""

    name = "sas_fixed"

    class Options(_SASPolicy.Options):
        protocol: tuple[ProtocolStep, ...] = Field(description="the steps, measured in order and repeated")

        @field_validator("protocol")
        @classmethod
        def _at_least_one_step(cls, protocol: tuple[ProtocolStep, ...]) -> tuple[ProtocolStep, ...]:
            if not protocol:
                raise ValueError("option protocol needs at least one step")
            return protocol

    def __init__(self, space: DesignSpace, *, seed: int = 0, options: Options) -> None:
        super().__init__(space, seed=seed, options=options)
        self.protocol: list[tuple[str, float]] = []
        for i, step in enumerate(options.protocol):
            config, exposure = step.configuration, step.exposure_seconds
            if config not in self.configurations:
                raise ValueError(f"policy {self.name!r}: protocol[{i}].configuration {config!r} is not one of {self.configurations}")
            if not self.exposure_bounds[0] <= exposure <= self.exposure_bounds[1]:
                raise ValueError(
                    f"policy {self.name!r}: protocol[{i}].exposure_seconds {exposure} is outside the design space "
                    f"{list(self.exposure_bounds)}"
                )
            self.protocol.append((config, exposure))

    def plan(self, context: PlanningContext, n: int) -> list[Proposal]:
        _, _, done = self._tally(context)
        out = []
        for i in range(done, done + n):
            config, exposure = self.protocol[i % len(self.protocol)]
            out.append(self._request(config, exposure, {"step": i, "pass": i // len(self.protocol) + 1}))
        return out


class SASRoundRobin(_SASPolicy):
    """Equal time per configuration: each in turn for ``exposure_seconds``."""

    name = "sas_round_robin"

    class Options(_SASPolicy.Options):
        exposure_seconds: float = Field(description="exposure of every step, s")
        order: tuple[str, ...] | None = Field(
            default=None, description="configurations in turn; every configuration, in design-space order, by default"
        )

    def __init__(self, space: DesignSpace, *, seed: int = 0, options: Options) -> None:
        super().__init__(space, seed=seed, options=options)
        self.exposure_seconds = float(options.exposure_seconds)
        self.order = list(options.order) if options.order is not None else list(self.configurations)
        unknown = [c for c in self.order if c not in self.configurations]
        if unknown or not self.order:
            raise ValueError(f"policy {self.name!r}: order {self.order} must name configurations of {self.configurations}")

    def plan(self, context: PlanningContext, n: int) -> list[Proposal]:
        _, _, done = self._tally(context)
        return [
            self._request(self.order[i % len(self.order)], self.exposure_seconds, {"step": i})
            for i in range(done, done + n)
        ]


class SASRandom(_SASPolicy):
    """A random configuration each step, for a fixed ``exposure_seconds`` (reproducible per step)."""

    name = "sas_random"

    class Options(_SASPolicy.Options):
        exposure_seconds: float = Field(description="exposure of every step, s")

    def __init__(self, space: DesignSpace, *, seed: int = 0, options: Options) -> None:
        super().__init__(space, seed=seed, options=options)
        self.exposure_seconds = float(options.exposure_seconds)

    def plan(self, context: PlanningContext, n: int) -> list[Proposal]:
        _, _, done = self._tally(context)
        out = []
        for i in range(done, done + n):
            rng = np.random.default_rng([self.seed, i])  # a function of the step: resumes replay it
            out.append(self._request(str(rng.choice(self.configurations)), self.exposure_seconds, {"step": i}))
        return out


# -- planners -----------------------------------------------------------------------------------------


class _Planner(_SASPolicy):
    """Builds the hypotheses of :mod:`policies.sas_allocation` from candidate fits and the instrument model.

    ``goals`` are the campaign's (relative precision of fitted parameters, ``p(best)``); at plan
    time the context's goals win when it has any (see :meth:`PlanningContext.goals_or`).
    """

    campaign_arguments = ("analysis", "goals")

    class Options(_SASPolicy.Options):
        safety: float = Field(
            default=0.9, description="plan for each precision goal × safety (in (0, 1]): the linearised forecast is optimistic"
        )
        margin_nats: float = Field(default=1.0, description="log odds beyond the p(best) goal that the plan asks for, nats")
        instrument: str | None = Field(
            default=None, description="the instrument whose planning model is used; the first SAS one by default"
        )
        first_exposure_seconds: float = Field(default=60.0, description="the longest exposure before anything was measured, s")
        growth: float = Field(
            default=1.0, description="a step's exposure is at most growth × the exposure so far (gradual commitment)"
        )
        forecast_log_sigma: float = Field(
            default=0.5, ge=0, description="log-normal spread of the forecast time each hypothesis needs (policies.futility)"
        )
        look_min_chi2: float = Field(
            default=1.0, gt=0,
            description="look at a configuration not measured yet when a live rival would differ there by at least "
            "this expected Δχ² (after re-fitting) in its minimum look",
        )

        @field_validator("safety")
        @classmethod
        def _safety_is_a_fraction(cls, safety: float) -> float:
            if not 0 < safety <= 1:
                raise ValueError(f"safety must be in (0, 1], got {safety}")
            return safety

        @model_validator(mode="after")
        def _positive_commitment(self) -> Self:
            if self.first_exposure_seconds <= 0 or self.growth <= 0:
                raise ValueError("first_exposure_seconds and growth must be positive")
            return self

    def __init__(
        self,
        space: DesignSpace,
        *,
        seed: int = 0,
        analysis: Mapping[str, Any],
        goals: PlanningGoals,
        options: Options | None = None,
    ) -> None:
        options = options if options is not None else self.Options()
        super().__init__(space, seed=seed, options=options)
        self.first_exposure_seconds, self.growth = float(options.first_exposure_seconds), float(options.growth)
        if analysis.get("kind") != "sas":
            raise ValueError(f"policy {self.name!r} plans from SAS fits: analysis.kind must be 'sas', not {analysis.get('kind')!r}")
        self.settings = SASFitSettings.model_validate(analysis.get("settings", {}))
        if goals.is_empty():
            raise ValueError(
                f"policy {self.name!r} plans toward relative_uncertainty targets and a p(best) estimate_threshold; "
                "the campaign has neither"
            )
        self.goals = goals
        self.safety, self.margin_nats, self.instrument = float(options.safety), float(options.margin_nats), options.instrument

    def _instrument_model(self, context: PlanningContext) -> SASInstrumentModel:
        models = {k: v for k, v in context.instrument_models.items() if isinstance(v, SASInstrumentModel)}
        if self.instrument is not None:
            if self.instrument not in models:
                raise ValueError(f"policy {self.name!r}: instrument {self.instrument!r} has no SAS planning model; have {sorted(models)}")
            return models[self.instrument]
        if not models:
            raise ValueError(f"policy {self.name!r} needs a SAS instrument that describes its configurations (planning_model)")
        return next(iter(models.values()))

    def _linearise(self, instrument: SASInstrumentModel, model: str, theta: Mapping[str, float]) -> list[_Linearised]:
        # Memoised for one plan (the allocation, the forecast and the model check share predictions).
        key = (id(instrument), model, tuple(sorted(theta.items())))
        memo: dict[Any, list[_Linearised]] = self.__dict__.setdefault("_memo", {})
        if key not in memo:
            if len(memo) > 32:
                memo.clear()
            memo[key] = [
                predict_with_jacobian(self.settings, model, theta, cfg.q, cfg.dq, cfg.slit)
                for cfg in (instrument.configuration(c) for c in self.configurations)
            ]
        return memo[key]

    def _hypothesis(
        self,
        instrument: SASInstrumentModel,
        model: str,
        theta: Mapping[str, float],
        rivals: Mapping[str, tuple[Mapping[str, float], float]],
        seconds_so_far: np.ndarray,
        log_odds_of: Mapping[str, float],
        goals: PlanningGoals,
        safety: float | None = None,
    ) -> AllocationHypothesis:
        """Hypothesis "``model`` at ``theta`` is true", its information after ``seconds_so_far`` (C,);
        precision goals × ``safety`` (the option's by default; 1: the goals themselves, for forecasts)."""
        safety = self.safety if safety is None else safety
        configs = [instrument.configuration(c) for c in self.configurations]
        own = self._linearise(instrument, model, theta)
        variances = [cfg.variance_per_second(i) for cfg, (i, _, _) in zip(configs, own)]
        f = np.stack([j.T @ (j / v[:, None]) for (_, j, _), v in zip(own, variances)])
        info0 = prior_precision(self.settings, model) + np.einsum("c,ckl->kl", seconds_so_far, f)
        names = own[0][2]
        limits = []
        for estimate, goal in goals.relative_precision.items():
            if estimate in names and theta[estimate] != 0:
                limits.append((names.index(estimate), (goal * safety * theta[estimate]) ** 2, f"σ({estimate})/{estimate}"))
        rival_terms = []
        for rival, (rival_theta, _) in rivals.items():
            if goals.best_probability is None or rival == model or log_odds_of[rival] > 40:
                continue  # no model target, or this rival is out of the running already
            other = self._linearise(instrument, rival, rival_theta)
            delta = [i_h - i_r for (i_h, _, _), (i_r, _, _) in zip(own, other)]
            rf = np.stack([j.T @ (j / v[:, None]) for (_, j, _), v in zip(other, variances)])
            rival_terms.append(
                Rival(
                    model=rival, log_odds=log_odds_of[rival],
                    a=np.array([np.sum(d**2 / v) for d, v in zip(delta, variances)]),
                    b=np.stack([j.T @ (d / v) for (_, j, _), d, v in zip(other, delta, variances)]),
                    f=rf, info0=prior_precision(self.settings, rival) + np.einsum("c,ckl->kl", seconds_so_far, rf),
                )
            )
        return AllocationHypothesis(model=model, info0=info0, f=f, variance_limits=limits, rivals=rival_terms)

    def _solve(self, problem: AllocationProblem) -> Allocation:
        """The plan; when the linearised targets already hold (but the campaign goes on, so the data
        disagree), plan for stricter ones until some measurement is asked for."""
        allocation = plan_allocation(problem)
        for _ in range(8):
            if allocation.binding != "met":
                break
            problem = replace(
                problem,
                hypotheses=[
                    replace(h, variance_limits=[(j, lim * 0.64, label) for j, lim, label in h.variance_limits])
                    for h in problem.hypotheses
                ],
                margin_nats=problem.margin_nats + 1.0,
            )
            allocation = plan_allocation(problem)
        return allocation

    def _problem(
        self,
        instrument: SASInstrumentModel,
        current: str | None,
        hypotheses: list[AllocationHypothesis],
        offset: np.ndarray | None,
        goals: PlanningGoals,
    ) -> AllocationProblem:
        p = goals.best_probability
        return AllocationProblem(
            configurations=self.configurations,
            min_exposure_seconds=np.array(
                [max(instrument.configuration(c).min_exposure_seconds, self.exposure_bounds[0]) for c in self.configurations]
            ),
            current=current, change_seconds=instrument.change_seconds, overhead_seconds=instrument.overhead_seconds,
            hypotheses=hypotheses, max_rival_odds=None if p is None else (1 - p) / p, margin_nats=self.margin_nats,
            offset_seconds=offset,
        )

    def _time_left(self, context: PlanningContext, instrument: SASInstrumentModel) -> float | None:
        """Instrument budget left after the requests decided but not measured (exposure + overhead), s."""
        if context.remaining_instrument_seconds is None:
            return None
        pending = sum(float(p.get(self.exposure_parameter, 0.0)) + instrument.overhead_seconds  # type: ignore[arg-type]
                      for p in context.unmeasured)
        return float(context.remaining_instrument_seconds) - pending

    def _forecast(
        self, instrument: SASInstrumentModel, current: str | None, state: Mapping[str, tuple[dict[str, float], float]],
        plausible: list[str], so_far: np.ndarray, goals: PlanningGoals, left: float | None,
        unexplained: Sequence[str] = (),
    ) -> dict[str, Any]:
        """The futility forecast (:mod:`policies.futility`): each plausible hypothesis' time to the
        targets themselves (no safety factor, no margin), planned for it alone. Configurations no
        candidate explains (``unexplained``) put the model goal out of reach at any time: more data
        of the same kind cannot make a wrong candidate set right."""
        if unexplained:
            binding = f"a model (no candidate explains {', '.join(unexplained)})"
            needs = [HypothesisNeed(hypothesis=m, weight=state[m][1], seconds=None, binding=binding) for m in plausible]
            return forecast(needs, left, horizon_seconds=MAX_TOTAL_SECONDS, log_sigma=self.options.forecast_log_sigma).as_reason()
        needs = []
        for m in plausible:
            hypothesis = self._hypothesis(
                instrument, m, state[m][0], state, so_far,
                {r: log_odds(state[m][1], p_r) for r, (_, p_r) in state.items()}, goals, safety=1.0,
            )
            problem = replace(self._problem(instrument, current, [hypothesis], None, goals), margin_nats=0.0)
            allocation = plan_allocation(problem)
            needs.append(HypothesisNeed(
                hypothesis=m, weight=state[m][1], seconds=allocation.cost_seconds if allocation.feasible else None,
                binding=allocation.binding.split(" | ")[0],
            ))
        return forecast(needs, left, horizon_seconds=MAX_TOTAL_SECONDS, log_sigma=self.options.forecast_log_sigma).as_reason()

    def _steps(
        self, allocation: Allocation, current: str | None, n: int, so_far: np.ndarray, reason: dict[str, Any],
        instrument: SASInstrumentModel, left: float | None = None,
    ) -> list[Proposal]:
        # Commit gradually: at most `growth` × what was measured so far, so a plan costs at most about
        # as much as the data it came from before it is re-made from the new data — its prediction
        # of the model probabilities is a linearisation, and the early fits may be far off.
        cap = max(self.first_exposure_seconds, self.growth * float(so_far.sum()))
        if left is not None:
            # Plan within the time left: an exposure, its overhead and a configuration change.
            cap = min(cap, max(left - instrument.overhead_seconds - instrument.change_seconds, self.exposure_bounds[0]))
        reason = {**reason, **self._describe(allocation), "exposure_cap_seconds": round(cap, 1)}
        # The current configuration first (no change), then the largest share of the plan.
        order = sorted(allocation.seconds, key=lambda c: (c != current, -allocation.seconds[c])) or [current or self.configurations[0]]
        out = []
        for i in range(n):
            config = order[i % len(order)]
            # Never below what the configuration accepts: the growth cap can be shorter than a slow
            # configuration's minimum, and the instrument would refuse the request.
            shortest = max(instrument.configuration(config).min_exposure_seconds, self.exposure_bounds[0])
            exposure = max(min(allocation.seconds.get(config, 0.0), cap), shortest)
            out.append(self._request(config, math.ceil(exposure), reason))
        return out

    @staticmethod
    def _describe(allocation: Allocation) -> dict[str, Any]:
        return {
            "plan_seconds": {c: round(t, 1) for c, t in allocation.seconds.items()},
            "plan_cost_seconds": round(allocation.cost_seconds, 1),
            "binding": allocation.binding,
            "feasible": allocation.feasible,
        }


class SASAdaptivePlanner(_Planner):
    """Plans configuration and exposure from the current fits; see the module docstring."""

    name = "sas_adaptive"

    class Options(_Planner.Options):
        hypothesis_min_probability: float = Field(
            default=0.2, description="candidate models at least this probable are planned for (the most probable always is)"
        )

        @field_validator("hypothesis_min_probability")
        @classmethod
        def _a_minority_probability(cls, probability: float) -> float:
            if not 0 < probability <= 0.5:
                raise ValueError("hypothesis_min_probability must be in (0, 0.5]")
            return probability

    def __init__(
        self,
        space: DesignSpace,
        *,
        seed: int = 0,
        analysis: Mapping[str, Any],
        goals: PlanningGoals,
        options: Options | None = None,
    ) -> None:
        options = options if options is not None else self.Options()
        super().__init__(space, seed=seed, analysis=analysis, goals=goals, options=options)
        self.hypothesis_min_probability = float(options.hypothesis_min_probability)

    def _state(self, context: PlanningContext) -> tuple[dict[str, tuple[dict[str, float], float]], bool]:
        """Candidate → (fitted values, probability) from the newest valid interpretation, or the
        settings' initial values and the model prior before there is one. Second: fitted or not."""
        latest = context.latest_valid()
        prior = {m: math.exp(v) for m, v in self.settings.log_model_prior().items()}
        initial = {c.name: ({p: s.value for p, s in c.parameters.items()}, prior[c.name]) for c in self.settings.candidates}
        if latest is None:
            return initial, False
        out: dict[str, tuple[dict[str, float], float]] = {}
        for c in self.settings.candidates:
            values = {p: latest.details.get(f"fit:{c.name}:{p}") for p in c.parameters}
            estimate = latest.estimates.get(f"p({c.name})")
            if any(not isinstance(v, (int, float)) or isinstance(v, bool) for v in values.values()) or estimate is None:
                continue  # this candidate has no usable fit now: it is no hypothesis and no rival
            out[c.name] = ({p: float(v) for p, v in values.items()}, float(estimate.value or 0.0))  # type: ignore[arg-type]
        return (out, True) if out else (initial, False)

    def _forecast_state(self, context: PlanningContext) -> dict[str, tuple[dict[str, float], float]]:
        """Candidate → (fitted values, probability) from the newest interpretation with fits, valid or
        not (a sample too dilute to show a signal is invalid, and exactly the one to forecast), every
        candidate's fitted ``scale`` (sasmodels' volume fraction) raised by the *same* factor: the most
        probable candidate's scale + 2σ over its scale. The forecast is for the most concentrated sample
        the data allow, so "out of reach" errs toward measuring on; one factor for all, because raising
        each candidate's scale by its own σ makes their predictions differ by an intensity offset the data
        already rule out, and the linearised model-probability forecast then reads that offset as
        evidence to come (a core-shell / fuzzy-sphere pair stuck at p = 0.6 was forecast to part in
        50 s, and its sample never declared unreachable). Any other parameter the analysis flags
        ``at-bound`` takes its initial value: at a bound (a polydispersity at 0) the linearisation is
        singular and forecasts a need without end. Empty before any fit."""
        for interpretation in reversed(context.interpretations):
            out: dict[str, tuple[dict[str, float], float]] = {}
            raise_by: dict[str, float] = {}
            for c in self.settings.candidates:
                values = {p: interpretation.details.get(f"fit:{c.name}:{p}") for p in c.parameters}
                estimate = interpretation.estimates.get(f"p({c.name})")
                if any(not isinstance(v, (int, float)) or isinstance(v, bool) or not math.isfinite(v) for v in values.values()):
                    continue
                theta = {p: float(v) for p, v in values.items()}  # type: ignore[arg-type]
                theta |= {p: s.value for p, s in c.parameters.items() if p != "scale" and f"at-bound:{p}" in interpretation.flags}
                sigma = interpretation.details.get(f"sigma:{c.name}:scale")
                if theta.get("scale", 0.0) > 0 and isinstance(sigma, (int, float)) and math.isfinite(sigma):
                    raise_by[c.name] = 1.0 + 2.0 * float(sigma) / theta["scale"]
                out[c.name] = (theta, float(estimate.value or 0.0) if estimate is not None else 0.0)
            if out:
                return self._raise_scales(out, raise_by)
        return {}

    def _raise_scales(
        self, state: dict[str, tuple[dict[str, float], float]], raise_by: Mapping[str, float],
    ) -> dict[str, tuple[dict[str, float], float]]:
        """Every candidate's ``scale`` × the most probable candidate's factor (capped at its bound)."""
        best = max(state, key=lambda m: state[m][1])
        factor = raise_by.get(best, 1.0)
        out = {}
        for m, (theta, p) in state.items():
            if "scale" in theta:
                theta = {**theta, "scale": min(theta["scale"] * factor, self.settings.candidate(m).parameters["scale"].bounds[1])}
            out[m] = (theta, p)
        return out

    def plan(self, context: PlanningContext, n: int) -> list[Proposal]:
        goals = context.goals_or(self.goals)
        instrument = self._instrument_model(context)
        seconds, current, _ = self._tally(context)
        so_far = np.array([seconds[c] for c in self.configurations])
        state, fitted = self._state(context)
        best = max(state, key=lambda m: state[m][1])
        plausible = [m for m, (_, p) in state.items() if p >= self.hypothesis_min_probability or m == best]
        hypotheses = [
            self._hypothesis(
                instrument, m, state[m][0], state, so_far,
                {r: log_odds(state[m][1], p_r) for r, (_, p_r) in state.items()},
                goals,
            )
            for m in plausible
        ]
        allocation = self._solve(self._problem(instrument, current, hypotheses, None, goals))
        reason: dict[str, Any] = {"fitted": fitted, "hypotheses": {m: round(state[m][1], 4) for m in plausible}}
        left = self._time_left(context, instrument)
        optimistic = self._forecast_state(context)
        if optimistic:
            plausible_now = [m for m, (_, p) in optimistic.items()
                             if p >= self.hypothesis_min_probability or p == max(q for _, q in optimistic.values())]
            reason[REASON_KEY] = self._forecast(instrument, current, optimistic, plausible_now, so_far, goals, left,
                                                unexplained=_unexplained(context) if goals.best_probability is not None else [])
        if fitted:
            look = self._model_check(instrument, hypotheses[plausible.index(best)], so_far)
            if look is not None:
                config, seconds, chi2 = look
                reason |= {"rule": "model check", "expected_delta_chi2": round(chi2, 2)}
                return [self._request(config, math.ceil(seconds), reason) for _ in range(n)]
        return self._steps(allocation, current, n, so_far, reason, instrument, left)

    def _model_check(
        self, instrument: SASInstrumentModel, best: AllocationHypothesis, so_far: np.ndarray,
    ) -> tuple[str, float, float] | None:
        """A configuration not measured yet where a live rival of the best model would differ by at
        least ``look_min_chi2`` (expected Δχ² after the rival re-fits) in a minimum look: (configuration,
        look seconds, Δχ²), the largest difference first; None when every such configuration was seen.

        Why: the allocation spends time where the *precision* target is cheapest; differences between
        models elsewhere (low Q: aggregation, large-scale structure) would then never be looked at."""
        found: tuple[str, float, float] | None = None
        for c, config in enumerate(self.configurations):
            if so_far[c] > 0:
                continue
            look = max(self.first_exposure_seconds, instrument.configuration(config).min_exposure_seconds,
                       self.exposure_bounds[0])
            for r in best.rivals:
                b = look * r.b[c]
                gain = look * r.a[c] - float(b @ np.linalg.solve(r.info0 + look * r.f[c], b))
                if gain >= self.options.look_min_chi2 and (found is None or gain > found[2]):
                    found = (config, look, gain)
        return found


def _unexplained(context: PlanningContext) -> list[str]:
    """The configurations the newest interpretation says no candidate explains (``unexplained:<c>``)."""
    newest = context.interpretations[-1] if context.interpretations else None
    if newest is None:
        return []
    return sorted(f.split(":", 1)[1] for f in newest.flags if f.startswith("unexplained:"))


class SASTruth(Record):
    """What the oracle knows: the sample's true model and parameter values (the fitted ones at least)."""

    model: str
    parameters: dict[str, float] = Field(default_factory=dict, description="in the candidate's parameter units")


class SASOracle(_Planner):
    """The Cramér–Rao allocation from the true model and parameters; see the module docstring."""

    name = "sas_oracle"

    class Options(_Planner.Options):
        truth: SASTruth

    def __init__(
        self,
        space: DesignSpace,
        *,
        seed: int = 0,
        analysis: Mapping[str, Any],
        goals: PlanningGoals,
        options: Options,
    ) -> None:
        super().__init__(space, seed=seed, analysis=analysis, goals=goals, options=options)
        model = options.truth.model
        names = [c.name for c in self.settings.candidates]
        if model not in names:
            raise ValueError(f"policy {self.name!r}: truth.model {model!r} is not a candidate; candidates: {names}")
        fitted = list(self.settings.candidate(str(model)).parameters)
        values = dict(options.truth.parameters)
        missing = [p for p in fitted if p not in values]
        if missing:
            raise ValueError(f"policy {self.name!r}: truth.parameters lacks {missing} (candidate {model!r} fits {fitted})")
        self.true_model = str(model)
        self.true_values = {p: float(values[p]) for p in fitted}
        self._rivals: dict[str, tuple[dict[str, float], float]] | None = None

    def _rivals_from_truth(self, instrument: SASInstrumentModel) -> dict[str, tuple[dict[str, float], float]]:
        """Every candidate fitted to the noise-free truth (equal time in every configuration)."""
        if self._rivals is None:
            data = []
            for c in self.configurations:
                cfg = instrument.configuration(c)
                intensity, _, _ = predict_with_jacobian(self.settings, self.true_model, self.true_values, cfg.q, cfg.dq, cfg.slit)
                data.append(
                    Measurement(
                        attempt_id=f"truth-{c}", instrument="truth", params={self.configuration_parameter: c},
                        data={"q": cfg.q, "intensity": intensity}
                        | ({"dq": cfg.dq} if cfg.slit is None else {"dq_slit_length": cfg.slit[0], "dq_slit_width": cfg.slit[1]}),
                        sigma={"intensity": np.sqrt(cfg.variance_per_second(intensity))}, timing=Timing(exposure_seconds=1.0),
                    )
                )
            report = SASFitAnalysis(self.settings).fit(data)
            prior = {m: math.exp(v) for m, v in self.settings.log_model_prior().items()}
            self._rivals = {
                m: (f.params, prior[m]) for m, f in report.fits.items() if m != self.true_model and np.isfinite(f.chi2)
            }
            self._rivals[self.true_model] = (self.true_values, prior[self.true_model])
        return self._rivals

    def plan(self, context: PlanningContext, n: int) -> list[Proposal]:
        goals = context.goals_or(self.goals)
        instrument = self._instrument_model(context)
        seconds, current, _ = self._tally(context)
        so_far = np.array([seconds[c] for c in self.configurations])
        state = self._rivals_from_truth(instrument)
        p_true = state[self.true_model][1]
        # Information from the prior alone; the exposures made count through the offset, so the
        # whole allocation (made + to make) is judged at the truth.
        hypothesis = self._hypothesis(
            instrument, self.true_model, self.true_values, state, np.zeros_like(so_far),
            {r: log_odds(p_true, p_r) for r, (_, p_r) in state.items()},
            goals,
        )
        allocation = self._solve(self._problem(instrument, current, [hypothesis], so_far, goals))
        return self._steps(allocation, current, n, so_far, {"truth": self.true_model}, instrument)
