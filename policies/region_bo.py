"""Property optimisation inside a phase region (CAMEO's second stage): feasibility-weighted qLogNEI.

The property is an estimate every sample step reports (``SampleOutcome.estimates[estimate]`` =
(value, 1-σ)); its GP uses the σ as per-point noise (:class:`policies.models.ModelCache`). The
region is a set of map labels (e.g. the single-phase region of a wanted phase); the phase map
(:mod:`policies.map_model`) gives ``P(region | x)``, the sum of those labels' probabilities. The
acquisition of a candidate is

    log qLogNEI(x | pending; baseline = samples in the region) + log P(region | x)

i.e. expected improvement over the best *in-region* sample, weighted by the probability of being
in the region (constrained EI with a classifier as the constraint model; Gardner et al. 2014). A
sample counts as in the region when the map gives it P(region) ≥ 0.5; with none yet, the
acquisition is P(region | x) alone (find the region first). Candidates are a feasible
random set (composition simplices and linear constraints hold by construction); a batch is chosen
greedily, each pick joining ``X_pending``. Before ``n_initial`` recipes, or with fewer than two
samples reporting the estimate, the recipes are space-filling.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch
from pydantic import Field

# policies.models first: it imports BoTorch with a harmless torch deprecation silenced.
from policies.models import Direction, FittedModel, ModelCache, direction_sign, recorded_model_warnings

from botorch.acquisition import qLogNoisyExpectedImprovement  # noqa: E402
from botorch.sampling import SobolQMCNormalSampler  # noqa: E402

from instruments.types import ParamValue, Record  # noqa: E402
from policies.baselines import space_filling_points  # noqa: E402
from policies.map_model import DirichletTransform, fit_phase_map, labelled, single_threaded_torch  # noqa: E402
from policies.phase_map import step_seed  # noqa: E402
from policies.protocol import Observation, PlanningContext, Proposal, SampleOutcome  # noqa: E402
from policies.space import DesignSpace  # noqa: E402

#: Floor of P(region | x) inside the log, so that a candidate the map is sure is outside still
#: ranks by its improvement rather than being -inf (ties would make the pick arbitrary).
MIN_REGION_PROBABILITY = 1e-12


class RegionOptions(Record):
    estimate: str = Field(min_length=1, description="name of the sample estimate to optimise (its units are the estimate's)")
    region: list[str] = Field(min_length=1, description="map labels that make up the region the material must be in")
    labels: list[str] = Field(default_factory=list, description="labels known in advance, in map order")
    n_initial: int = Field(default=4, ge=1, description="recipes asked for (samples + pending) before the models are used")
    n_candidates: int = Field(default=512, ge=1, le=8192, description="feasible random candidates valued per decision")
    mc_samples: int = Field(default=128, ge=1, description="quasi-MC samples of qLogNEI")


def _observations(samples: Sequence[SampleOutcome], estimate: str) -> list[Observation]:
    return [
        Observation(params=s.recipe, value=s.estimates[estimate][0], sigma=s.estimates[estimate][1], attempt_id=s.sample_id)
        for s in samples
        if estimate in s.estimates
    ]


class RegionBayesianOptimisation:
    """Optimise one estimate within a phase region of the learned map (see the module docstring)."""

    name = "region_bo"
    campaign_arguments: tuple[str, ...] = ("direction", "cache")
    Options = RegionOptions

    def __init__(
        self, space: DesignSpace, *, seed: int = 0, options: RegionOptions, direction: Direction = "maximize",
        cache: ModelCache | None = None,
    ) -> None:
        direction_sign(direction)  # validates
        self.space = space
        self.seed = int(seed)
        self.options = options
        self.direction: Direction = direction
        self.cache = cache if cache is not None else ModelCache()

    def region_probability(self, samples: Sequence[SampleOutcome], X: np.ndarray) -> np.ndarray:
        """P(region | x) at encoded points ``X (N, n_columns)`` from the map of ``samples`` → ``(N,)``;
        0.5 everywhere before any labelled sample (nothing known)."""
        if not labelled(samples):
            return np.full(len(X), 0.5)
        phase_map = fit_phase_map(self.space, samples, known_labels=self.options.labels, transform=DirichletTransform())
        columns = [j for j, label in enumerate(phase_map.labels) if label in self.options.region]
        return phase_map.probabilities(X)[:, columns].sum(axis=1)  # type: ignore[no-any-return]

    def plan(self, context: PlanningContext, n: int) -> list[Proposal]:
        """``n`` recipes: space-filling at first, then greedy feasibility-weighted qLogNEI picks."""
        if n < 0:
            raise ValueError(f"n must be >= 0, not {n}")
        step = len(context.samples) + len(context.pending_recipes)
        history = _observations(context.samples, self.options.estimate)
        if n == 0:
            return []
        if step < self.options.n_initial or len(history) < 2:
            points = space_filling_points(self.space, step, n, self.seed, "sobol")
            return [Proposal(params=p, policy=self.name, reason={"phase": "space-filling", "index": step + i}) for i, p in enumerate(points)]
        with single_threaded_torch():  # small matrices: thread pools only cost (see map_model)
            return self._weighted_picks(context.samples, history, list(context.pending_recipes), n, step)

    def _weighted_picks(
        self, samples: Sequence[SampleOutcome], history: list[Observation],
        pending: list[Mapping[str, ParamValue]], n: int, step: int,
    ) -> list[Proposal]:
        fitted = self.cache.fit(self.space, history, self.direction)
        candidates = self.space.sample(self.options.n_candidates, step_seed(self.seed, step), "random")
        X = self.space.encode(candidates)
        train_X = fitted.train_X.numpy()
        region = self.region_probability(samples, np.vstack([X, train_X]))
        log_region = np.log(np.maximum(region[: len(X)], MIN_REGION_PROBABILITY))
        baseline = fitted.train_X[torch.as_tensor(region[len(X):] >= 0.5)]
        mean, std = fitted.predict_encoded(X)
        proposals: list[Proposal] = []
        chosen: list[int] = []
        for _ in range(n):
            made = pending + [candidates[i] for i in chosen]
            log_ei = self._log_ei(fitted, baseline, X, made)
            value = log_ei + log_region
            value[chosen] = -np.inf
            best = int(np.argmax(value))
            chosen.append(best)
            proposals.append(Proposal(params=candidates[best], policy=self.name, reason={
                "phase": "region-constrained",
                "acquisition": float(value[best]),
                "log_ei": float(log_ei[best]),
                "n_in_region": int(len(baseline)),
                "region_probability": float(np.exp(log_region[best])),
                "predicted": {"mean": float(mean[best]), "std": float(std[best]), "estimate": self.options.estimate},
                "region": list(self.options.region),
                "n_samples": len(history),
            }))
        return proposals

    def _log_ei(self, fitted: FittedModel, baseline: torch.Tensor, X: np.ndarray, made: list[Mapping[str, ParamValue]]) -> np.ndarray:
        """log qLogNEI ``(N,)`` of each candidate over the in-region ``baseline`` given the pending
        ``made`` recipes; zeros (no improvement term) when no sample is in the region yet."""
        if len(baseline) == 0:
            return np.zeros(len(X))
        X_pending = torch.as_tensor(self.space.encode(made), dtype=torch.float64) if made else None
        acquisition = qLogNoisyExpectedImprovement(
            model=fitted.model, X_baseline=baseline, X_pending=X_pending, prune_baseline=True,
            sampler=SobolQMCNormalSampler(sample_shape=torch.Size([self.options.mc_samples]), seed=self.seed),
        )
        with torch.no_grad(), recorded_model_warnings():
            return acquisition(torch.as_tensor(X, dtype=torch.float64).unsqueeze(1)).numpy()  # type: ignore[no-any-return]


__all__ = ["RegionBayesianOptimisation", "RegionOptions"]
