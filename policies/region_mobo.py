"""Two-objective optimisation inside a phase region: feasibility-weighted qLogNEHVI.

Two estimates every sample step reports (``SampleOutcome.estimates``), each with its direction,
each modelled by its own GP with the analysis σ as per-point noise (sign-flipped so larger is
better, :class:`policies.models.ModelCache`), joined in a ``ModelListGP``. The acquisition of a
candidate is

    log qLogNEHVI(x | pending; baseline = samples in the region) + log P(region | x)

— the expected gain of the in-region Pareto front's hypervolume, weighted by the map's probability
that x is in the region. The reference point is BoTorch's ``infer_reference_point`` of the
in-region samples' values (a little worse than their nadir). With no sample in the region yet,
the acquisition is P(region | x) alone. Candidates are a feasible random set; a batch is greedy,
each pick joining ``X_pending``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal

import numpy as np
import torch
from pydantic import Field

# policies.models first: it imports BoTorch with a harmless torch deprecation silenced.
from policies.models import ModelCache, recorded_model_warnings

from botorch.acquisition.multi_objective import logei as _botorch_logei  # noqa: E402
from botorch.acquisition.multi_objective.logei import qLogNoisyExpectedHypervolumeImprovement  # noqa: E402
from botorch.utils.multi_objective.hypervolume import infer_reference_point  # noqa: E402
from botorch.models import ModelListGP  # noqa: E402
from botorch.sampling import SobolQMCNormalSampler  # noqa: E402

from instruments.types import ParamValue, Record  # noqa: E402
from policies.baselines import space_filling_points  # noqa: E402
from policies.map_model import single_threaded_torch  # noqa: E402
from policies.phase_map import step_seed  # noqa: E402
from policies.protocol import Observation, PlanningContext, Proposal, SampleOutcome  # noqa: E402
from policies.region_bo import MIN_REGION_PROBABILITY, RegionBayesianOptimisation, RegionOptions  # noqa: E402
from policies.space import DesignSpace  # noqa: E402

# BoTorch ≥ 0.17 JIT-compiles an optional fused C++ kernel (ninja, -march=native) the first time a
# qLogEHVI is built: minutes of compilation and ~1.5 GB of memory inside a campaign's first
# decision (measured here: killed by the 120 s test timeout). Its pure-Python path computes the
# same values; marking the load as attempted selects it. Guarded: a BoTorch without the flag is
# left alone.
if hasattr(_botorch_logei, "_load_attempted"):
    _botorch_logei._load_attempted = True


class RegionMultiObjectiveOptions(Record):
    estimates: list[str] = Field(min_length=2, max_length=2, description="the two sample estimates to optimise")
    directions: list[Literal["maximize", "minimize"]] = Field(min_length=2, max_length=2, description="direction of each estimate")
    region: list[str] = Field(min_length=1, description="map labels that make up the region the material must be in")
    labels: list[str] = Field(default_factory=list, description="labels known in advance, in map order")
    n_initial: int = Field(default=4, ge=1, description="recipes asked for (samples + pending) before the models are used")
    n_candidates: int = Field(default=256, ge=1, le=4096, description="feasible random candidates valued per decision")
    mc_samples: int = Field(default=64, ge=1, description="quasi-MC samples of qLogNEHVI")


class RegionMultiObjective:
    """Pareto-front search for two estimates within a phase region (see the module docstring)."""

    name = "region_mobo"
    campaign_arguments: tuple[str, ...] = ("cache",)
    Options = RegionMultiObjectiveOptions

    def __init__(self, space: DesignSpace, *, seed: int = 0, options: RegionMultiObjectiveOptions, cache: ModelCache | None = None) -> None:
        self.space = space
        self.seed = int(seed)
        self.options = options
        self.cache = cache if cache is not None else ModelCache()
        # The region's probability comes from the same map code as the single-objective policy.
        self._region = RegionBayesianOptimisation(
            space, seed=seed, options=RegionOptions(estimate=options.estimates[0], region=options.region, labels=options.labels)
        )

    def plan(self, context: PlanningContext, n: int) -> list[Proposal]:
        """``n`` recipes: space-filling at first, then greedy feasibility-weighted qLogNEHVI picks."""
        if n < 0:
            raise ValueError(f"n must be >= 0, not {n}")
        step = len(context.samples) + len(context.pending_recipes)
        both = [s for s in context.samples if all(e in s.estimates for e in self.options.estimates)]
        if n == 0:
            return []
        if step < self.options.n_initial or len(both) < 2:
            points = space_filling_points(self.space, step, n, self.seed, "sobol")
            return [Proposal(params=p, policy=self.name, reason={"phase": "space-filling", "index": step + i}) for i, p in enumerate(points)]
        with single_threaded_torch():  # small matrices: thread pools only cost (see map_model)
            return self._picks(context.samples, both, list(context.pending_recipes), n, step)

    def _models(self, both: Sequence[SampleOutcome]) -> tuple[ModelListGP, torch.Tensor, torch.Tensor]:
        """The two objectives' GPs (larger is better), the samples' encoded X ``(m, d)`` and their
        model-unit values ``(m, 2)``."""
        fitted = []
        for name, direction in zip(self.options.estimates, self.options.directions, strict=True):
            history = [Observation(params=s.recipe, value=s.estimates[name][0], sigma=s.estimates[name][1]) for s in both]
            fitted.append(self.cache.fit(self.space, history, direction))  # type: ignore[arg-type]
        Y = torch.cat([f.train_Y for f in fitted], dim=-1)
        return ModelListGP(*[f.model for f in fitted]), fitted[0].train_X, Y

    def _picks(
        self, samples: Sequence[SampleOutcome], both: Sequence[SampleOutcome], pending: list[Mapping[str, ParamValue]], n: int, step: int,
    ) -> list[Proposal]:
        model, train_X, train_Y = self._models(both)
        candidates = self.space.sample(self.options.n_candidates, step_seed(self.seed, step), "random")
        X = self.space.encode(candidates)
        region = self._region.region_probability(samples, np.vstack([X, train_X.numpy()]))
        log_region = np.log(np.maximum(region[: len(X)], MIN_REGION_PROBABILITY))
        inside = torch.as_tensor(region[len(X):] >= 0.5)
        proposals: list[Proposal] = []
        chosen: list[int] = []
        for _ in range(n):
            made = pending + [candidates[i] for i in chosen]
            log_hvi = self._log_hvi(model, train_X[inside], train_Y[inside], X, made)
            value = log_hvi + log_region
            value[chosen] = -np.inf
            best = int(np.argmax(value))
            chosen.append(best)
            proposals.append(Proposal(params=candidates[best], policy=self.name, reason={
                "phase": "region-pareto",
                "acquisition": float(value[best]),
                "log_hvi": float(log_hvi[best]),
                "region_probability": float(np.exp(log_region[best])),
                "estimates": list(self.options.estimates),
                "n_in_region": int(inside.sum()),
            }))
        return proposals

    def _log_hvi(
        self, model: ModelListGP, baseline: torch.Tensor, baseline_Y: torch.Tensor, X: np.ndarray, made: list[Mapping[str, ParamValue]],
    ) -> np.ndarray:
        """log qLogNEHVI ``(N,)`` over the in-region baseline; zeros when it is empty."""
        if len(baseline) == 0:
            return np.zeros(len(X))
        X_pending = torch.as_tensor(self.space.encode(made), dtype=torch.float64) if made else None
        with torch.no_grad(), recorded_model_warnings():
            acquisition = qLogNoisyExpectedHypervolumeImprovement(
                model=model, ref_point=infer_reference_point(baseline_Y).tolist(), X_baseline=baseline, X_pending=X_pending,
                prune_baseline=True, sampler=SobolQMCNormalSampler(sample_shape=torch.Size([self.options.mc_samples]), seed=self.seed),
            )
            return acquisition(torch.as_tensor(X, dtype=torch.float64).unsqueeze(1)).numpy()  # type: ignore[no-any-return]


__all__ = ["RegionMultiObjective", "RegionMultiObjectiveOptions"]
