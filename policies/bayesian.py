"""BoTorch policies: Bayesian optimisation (qLogNEI) and active learning (qNIPV).

Both fit a GP through a shared :class:`~policies.models.ModelCache`, optimise a Monte-Carlo
acquisition over the unit-cube encoding of the design space (honouring its linear constraints and
composition groups), decode, and return proposals whose ``reason`` records the acquisition value,
the model's hyperparameters and where the time went.

Categorical parameters are not relaxed: their one-hot columns are fixed to each combination of
choices (all of them up to :data:`MAX_CATEGORICAL_COMBINATIONS`, a random subset beyond) and the
continuous columns are optimised for each. Integer parameters are relaxed and rounded on decode.
"""

from __future__ import annotations

import itertools
import math
import time
from abc import abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Self

import numpy as np
import torch
from pydantic import Field, model_validator

# policies.models must be imported before BoTorch: it silences a torch deprecation raised while
# BoTorch's dependencies are first imported (see the comment there).
from policies.models import Direction, FittedModel, ModelCache, direction_sign, recorded_model_warnings

from botorch.acquisition import qLogNoisyExpectedImprovement, qNegIntegratedPosteriorVariance  # noqa: E402
from botorch.acquisition.acquisition import AcquisitionFunction  # noqa: E402
from botorch.optim import optimize_acqf, optimize_acqf_mixed  # noqa: E402
from botorch.optim.initializers import sample_q_batches_from_polytope  # noqa: E402
from botorch.sampling import SobolQMCNormalSampler  # noqa: E402
from botorch.utils.sampling import manual_seed  # noqa: E402

from instruments.types import ParamValue, Record, finite_or_none  # noqa: E402
from policies.baselines import space_filling_points  # noqa: E402
from policies.protocol import ObjectivePolicy, Observation, Proposal  # noqa: E402
from policies.space import DesignSpace, IntegerParameter  # noqa: E402

#: Most combinations of categorical choices searched per decision; beyond this a random subset
#: (always including the best observed point's combination) keeps the decision time bounded.
MAX_CATEGORICAL_COMBINATIONS = 32

#: A GP needs at least this many observations to say anything beyond its prior.
MIN_TRAIN_POINTS = 2

#: Integer parameters beyond this many are only rounded, not searched over floor/ceil when a
#: rounded point breaks a constraint (2**k feasibility checks).
MAX_INTEGER_REPAIR_PARAMETERS = 8


def _step_seed(seed: int, step: int) -> int:
    """A torch seed for decision ``step`` of a campaign seeded with ``seed`` (reproducible)."""
    return int(np.random.SeedSequence([seed, step]).generate_state(1)[0])



@dataclass(frozen=True)
class _AcquisitionSearch:
    """What one maximisation of the acquisition found, and what it cost."""

    candidates: torch.Tensor
    """Encoded points ``(q, n_columns)``."""
    batch_value: float
    """Joint acquisition value of the whole batch given the pending points (what was optimised)."""
    point_values: list[float]
    """Value of each point alone given the pending points (length q), to rank a batch's members."""
    fixings: list[dict[int, float]] | None
    """The combinations of categorical choices searched, or None without categoricals."""
    warnings: list[str]
    seconds: float


class _ModelBasedPolicy(ObjectivePolicy):
    """Shared machinery: initial design, fitting, constrained (mixed) optimisation, decoding."""

    name = ""
    acquisition_name = ""
    campaign_arguments = ("direction", "cache")

    class Options(Record):
        """Settings of a model-based policy (counts; no units)."""

        n_initial: int = Field(default=5, ge=1, strict=True, description="points asked for (history + pending) before the model is used")
        num_restarts: int = Field(default=8, ge=1, strict=True, description="optimize_acqf: starting points of the acquisition's optimisation")
        raw_samples: int = Field(default=256, ge=1, strict=True, description="optimize_acqf: raw candidates the starting points are chosen from")
        mc_samples: int = Field(default=128, ge=1, strict=True, description="quasi-MC samples of the acquisition's posterior expectation")

        @model_validator(mode="after")
        def _enough_raw_samples(self) -> Self:
            if self.raw_samples < self.num_restarts:
                raise ValueError(f"raw_samples ({self.raw_samples}) must be >= num_restarts ({self.num_restarts})")
            return self

    def __init__(
        self,
        space: DesignSpace,
        *,
        direction: Direction = "maximize",
        seed: int = 0,
        cache: ModelCache | None = None,
        options: Options | None = None,
    ) -> None:
        direction_sign(direction)  # validates
        options = options if options is not None else self.Options()
        self.options = options
        self.space = space
        self.direction: Direction = direction
        self.seed = int(seed)
        self.n_initial = options.n_initial
        self.num_restarts = options.num_restarts
        self.raw_samples = options.raw_samples
        self.mc_samples = options.mc_samples
        self.cache = cache if cache is not None else ModelCache()
        ineq, eq = space.linear_constraints_unit()
        self._inequality_constraints = [_constraint_tensors(c) for c in ineq] or None
        self._equality_constraints = [_constraint_tensors(c) for c in eq] or None

    # -- the protocol ------------------------------------------------------------------------------
    def propose(
        self, history: Sequence[Observation], pending: Sequence[Mapping[str, ParamValue]], n: int
    ) -> list[Proposal]:
        """``n`` proposals given analysed ``history`` and in-flight ``pending`` points.

        Before ``n_initial`` points have been asked for (history + pending), or with fewer than
        two observations, the proposals are the next points of the seed's Sobol sequence.
        """
        if n < 0:
            raise ValueError(f"n must be >= 0, not {n}")
        if n == 0:
            return []
        step = len(history) + len(pending)
        if step < self.n_initial or len(history) < MIN_TRAIN_POINTS:
            return self._initial_design(step, n, n_observed=len(history))
        return self._model_proposals(history, pending, n, step)

    def _model_proposals(
        self, history: Sequence[Observation], pending: Sequence[Mapping[str, ParamValue]], n: int, step: int
    ) -> list[Proposal]:
        """Fit (or reuse) the model, maximise the acquisition, decode, and say why each point."""
        fits_before = self.cache.stats.fits
        fitted = self.cache.fit(self.space, history, self.direction)
        model_reused = self.cache.stats.fits == fits_before
        X_pending = (
            torch.as_tensor(self.space.encode(list(pending)), dtype=torch.float64) if pending else None
        )
        search = self._search(fitted, X_pending, n, step)
        points = self._feasible_points(search.candidates.detach().numpy())
        shared: dict[str, object] = {
            "hyperparameters": fitted.hyperparameters(),
            "n_train": fitted.n_train,
            "n_pending": len(pending),
            "fit_seconds": fitted.fit_seconds,
            "model_reused": model_reused,
            "acquisition_seconds": search.seconds,
            "seed": self.seed,
        }
        model_warnings = list(dict.fromkeys([*fitted.fit_warnings, *search.warnings]))
        return [
            Proposal(params=params, policy=self.name, reason=self._model_reason(search, i, n, shared, model_warnings))
            for i, params in enumerate(points)
        ]

    def _search(self, fitted: FittedModel, X_pending: torch.Tensor | None, n: int, step: int) -> _AcquisitionSearch:
        """Maximise the acquisition for a batch of ``n`` (seeded by the campaign seed and ``step``)."""
        started = time.perf_counter()
        with recorded_model_warnings() as acquisition_warnings, manual_seed(_step_seed(self.seed, step)):
            acquisition = self._acquisition(fitted, X_pending)
            fixings = self._categorical_fixings(fitted, step)
            candidates = self._optimise(acquisition, n, fixings)
            with torch.no_grad():
                batch_value = float(acquisition(candidates.unsqueeze(0)).reshape(-1)[0])
                point_values = [float(acquisition(c.reshape(1, 1, -1)).reshape(-1)[0]) for c in candidates]
        seconds = time.perf_counter() - started
        return _AcquisitionSearch(candidates, batch_value, point_values, fixings, acquisition_warnings, seconds)

    def _model_reason(
        self, search: _AcquisitionSearch, i: int, n: int, shared: Mapping[str, object], model_warnings: list[str]
    ) -> dict[str, object]:
        """The reason of batch member ``i``: acquisition values, then the model state in ``shared``."""
        reason: dict[str, object] = {
            "phase": "model",
            "acquisition": self.acquisition_name,
            "acquisition_value": finite_or_none(search.batch_value),
            "point_acquisition_value": finite_or_none(search.point_values[i]),
            "batch_index": i,
            "batch_size": n,
            **shared,
        }
        if search.fixings is not None:
            reason["categorical_combinations_searched"] = len(search.fixings)
        if model_warnings:
            reason["warnings"] = model_warnings
        return reason

    # -- subclass hook ---------------------------------------------------------------------------
    @abstractmethod
    def _acquisition(self, fitted: FittedModel, X_pending: torch.Tensor | None) -> AcquisitionFunction:
        """The acquisition function to maximise, given the fitted model and in-flight points."""

    # -- helpers -------------------------------------------------------------------------------------
    def _initial_design(self, step: int, n: int, n_observed: int) -> list[Proposal]:
        points = space_filling_points(self.space, step, n, self.seed, "sobol")
        return [
            Proposal(
                params=p,
                policy=self.name,
                reason={
                    "phase": "initial",
                    "index": step + i,
                    "n_initial": self.n_initial,
                    "n_observed": n_observed,
                    "seed": self.seed,
                },
            )
            for i, p in enumerate(points)
        ]

    def _categorical_fixings(self, fitted: FittedModel, step: int) -> list[dict[int, float]] | None:
        """One ``{column: 0/1}`` dict per combination of categorical choices to search, or None."""
        categoricals = self.space.categorical
        if not categoricals:
            return None
        sizes = [len(p.choices) for p in categoricals]
        total = math.prod(sizes)
        if total <= MAX_CATEGORICAL_COMBINATIONS:
            combos = list(itertools.product(*(range(s) for s in sizes)))
        else:
            # The best observed combination is always searched, so exploitation never depends on luck.
            best_row = int(torch.argmax(fitted.train_Y.reshape(-1)))
            best = self.space.decode(fitted.train_X[best_row].numpy())[0]
            chosen = {tuple(p.choices.index(str(best[p.name])) for p in categoricals)}
            # A fresh subset at every step (seeded by seed and step) so every combination gets a chance.
            rng = np.random.default_rng([self.seed, step])
            while len(chosen) < MAX_CATEGORICAL_COMBINATIONS:
                chosen.add(tuple(int(rng.integers(s)) for s in sizes))
            combos = sorted(chosen)
        slices = self.space.column_slices()
        fixings = []
        for combo in combos:
            fixing: dict[int, float] = {}
            for parameter, choice in zip(categoricals, combo, strict=True):
                s = slices[parameter.name]
                for j in range(s.start, s.stop):
                    fixing[j] = 1.0 if j - s.start == choice else 0.0
            fixings.append(fixing)
        return fixings

    def _optimise(self, acquisition: AcquisitionFunction, q: int, fixings: list[dict[int, float]] | None) -> torch.Tensor:
        """Maximise ``acquisition`` over the unit cube; returns candidates ``(q, n_columns)``."""
        d = self.space.n_columns
        bounds = torch.stack([torch.zeros(d, dtype=torch.float64), torch.ones(d, dtype=torch.float64)])
        common = {
            "acq_function": acquisition,
            "bounds": bounds,
            "q": q,
            "num_restarts": self.num_restarts,
            "raw_samples": self.raw_samples,
            "inequality_constraints": self._inequality_constraints,
            "equality_constraints": self._equality_constraints,
            # A line-search stop is not a failure worth a second full optimisation (it doubled
            # decision time on flat qNIPV surfaces); the warning is recorded in the reason instead.
            "retry_on_optimization_warning": False,
        }
        # Under linear constraints BoTorch draws raw candidates by hit-and-run on the polytope: a
        # Python loop of ~18k steps per call (about a second). The space's own sampler gives feasible
        # space-filling points in milliseconds.
        ic_gen_kwargs = {"generator": self._feasible_raw_samples} if self._has_constraints else {}
        if fixings is None:
            candidates, _ = optimize_acqf(**common, **ic_gen_kwargs)
        elif len(fixings[0]) == d:
            candidates = self._best_fully_fixed(acquisition, q, fixings)
        else:
            candidates, _ = optimize_acqf_mixed(fixed_features_list=fixings, ic_gen_kwargs=ic_gen_kwargs, **common)
        return candidates.detach().reshape(q, d)

    @property
    def _has_constraints(self) -> bool:
        return bool(self._inequality_constraints or self._equality_constraints)

    def _feasible_raw_samples(self, n: int, q: int, seed: int | None) -> torch.Tensor:
        """``n`` q-batches ``(n, q, n_columns)`` of feasible encoded points (BoTorch's generator hook).

        Seeded from torch's RNG, which :meth:`propose` seeds per decision, so it is reproducible.
        Categorical columns are overwritten by BoTorch with the fixed features afterwards.
        """
        draw_seed = int(torch.randint(0, 2**31 - 1, (1,))) if seed is None else int(seed)
        try:
            points = space_filling_points(self.space, 0, n * q, draw_seed, "sobol")
        except ValueError:
            # The constraints leave too little room for rejection sampling: use hit-and-run.
            d = self.space.n_columns
            bounds = torch.stack([torch.zeros(d, dtype=torch.float64), torch.ones(d, dtype=torch.float64)])
            return sample_q_batches_from_polytope(
                n=n,
                q=q,
                bounds=bounds,
                n_burnin=10000,
                n_thinning=32,
                seed=draw_seed,
                inequality_constraints=self._inequality_constraints,
                equality_constraints=self._equality_constraints,
            )
        encoded = torch.as_tensor(self.space.encode(points), dtype=torch.float64)
        return encoded.reshape(n, q, self.space.n_columns)

    @staticmethod
    def _best_fully_fixed(acquisition: AcquisitionFunction, q: int, fixings: list[dict[int, float]]) -> torch.Tensor:
        """Purely categorical space: greedily pick the best of the enumerated points, q times."""
        d = len(fixings[0])
        options = torch.tensor([[f[j] for j in range(d)] for f in fixings], dtype=torch.float64)
        chosen: list[torch.Tensor] = []
        with torch.no_grad():
            for _ in range(q):
                batches = torch.stack([torch.stack([*chosen, x]) for x in options])
                chosen.append(options[int(torch.argmax(acquisition(batches)))])
        return torch.stack(chosen)

    def _feasible_points(self, X: np.ndarray) -> list[dict[str, ParamValue]]:
        """Decode candidates and make them exactly feasible, or raise naming what is wrong."""
        points = []
        for x in X:
            params = self.space.decode(x[None, :])[0]
            _renormalise_compositions(self.space, params)
            if self.space.violations(params):
                params = self._repair_integers(params, x)
            problems = self.space.violations(params)
            if problems:
                raise RuntimeError(f"{self.name}: the optimiser returned an infeasible point {params}: {problems}")
            points.append(params)
        return points

    def _repair_integers(self, params: dict[str, ParamValue], x: np.ndarray) -> dict[str, ParamValue]:
        """Rounding integers can break a linear constraint: try floor/ceil combinations, nearest first."""
        integers = [p for p in self.space.parameters if isinstance(p, IntegerParameter)]
        if not integers or len(integers) > MAX_INTEGER_REPAIR_PARAMETERS:
            return params
        slices = self.space.column_slices()
        relaxed = {p.name: p.low + float(np.clip(x[slices[p.name].start], 0, 1)) * (p.high - p.low) for p in integers}
        options = [
            sorted({min(max(math.floor(relaxed[p.name]), p.low), p.high), min(max(math.ceil(relaxed[p.name]), p.low), p.high)})
            for p in integers
        ]
        candidates = []
        for combo in itertools.product(*options):
            distance = sum(abs(v - relaxed[p.name]) / (p.high - p.low) for p, v in zip(integers, combo, strict=True))
            candidates.append((distance, combo))
        for _, combo in sorted(candidates):
            trial = dict(params) | {p.name: int(v) for p, v in zip(integers, combo, strict=True)}
            if not self.space.violations(trial):
                return trial
        return params


class BayesianOptimisation(_ModelBasedPolicy):
    """Batch Bayesian optimisation with q-Log Noisy Expected Improvement (qLogNEI).

    Args:
        space: the design space.
        direction: whether the objective is maximised or minimised.
        seed: makes proposals reproducible (initial design, MC base samples, optimiser starts).
        cache: a :class:`ModelCache` shared with stopping targets; a private one by default.
        options: :class:`_ModelBasedPolicy.Options` (``n_initial``, ``num_restarts``,
            ``raw_samples``, ``mc_samples``); the defaults when None.
    """

    name = "qlognei"
    acquisition_name = "qLogNoisyExpectedImprovement"

    def _acquisition(self, fitted: FittedModel, X_pending: torch.Tensor | None) -> AcquisitionFunction:
        return qLogNoisyExpectedImprovement(
            model=fitted.model,
            X_baseline=fitted.train_X,
            sampler=SobolQMCNormalSampler(sample_shape=torch.Size([self.mc_samples]), seed=self.seed),
            X_pending=X_pending,
            # Drops baseline points that are (almost) never the best: much cheaper at large n.
            prune_baseline=True,
        )


class ActiveLearning(_ModelBasedPolicy):
    """Active learning: minimise the integrated posterior variance (qNIPV) over the feasible space.

    The integral is a quasi-MC average over 256 feasible Sobol points of the space (fixed per
    seed). Same arguments as :class:`BayesianOptimisation`; ``direction`` only labels the model.
    """

    name = "qnipv"
    acquisition_name = "qNegIntegratedPosteriorVariance"
    n_integration_points = 256
    _mc_points: torch.Tensor | None = None

    def integration_points(self) -> torch.Tensor:
        """Encoded feasible points ``(256, n_columns)`` over which posterior variance is integrated."""
        if self._mc_points is None:
            points = space_filling_points(self.space, 0, self.n_integration_points, self.seed, "sobol")
            self._mc_points = torch.as_tensor(self.space.encode(points), dtype=torch.float64)
        return self._mc_points

    def _acquisition(self, fitted: FittedModel, X_pending: torch.Tensor | None) -> AcquisitionFunction:
        return qNegIntegratedPosteriorVariance(
            model=fitted.model,
            mc_points=self.integration_points(),
            X_pending=X_pending,
        )


def _constraint_tensors(constraint: tuple[list[int], list[float], float]) -> tuple[torch.Tensor, torch.Tensor, float]:
    indices, coefficients, rhs = constraint
    return (
        torch.tensor(indices, dtype=torch.long),
        torch.tensor(coefficients, dtype=torch.float64),
        float(rhs),
    )


def _renormalise_compositions(space: DesignSpace, params: dict[str, ParamValue]) -> None:
    """Make each composition group sum exactly to its total (the optimiser leaves ~1e-9 errors)."""
    for group in space.compositions:
        values = [float(params[n]) for n in group.parameters]
        total = sum(values)
        if total <= 0:
            continue
        scaled = [v * group.total / total for v in values]
        # Floating-point rounding can leave ~1e-16; the largest fraction absorbs it.
        largest = int(np.argmax(scaled))
        scaled[largest] = group.total - (sum(scaled) - scaled[largest])
        for name, value in zip(group.parameters, scaled, strict=True):
            params[name] = value


__all__ = ["ActiveLearning", "BayesianOptimisation", "MAX_CATEGORICAL_COMBINATIONS"]
