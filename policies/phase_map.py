"""Phase-map active learning across samples: the next recipe is where one more sample is expected
to reduce the map's uncertainty most per second it costs.

Reads ``context.samples`` (each sample's soft label and cost) and ``context.pending_recipes``;
learns the map (:mod:`policies.map_model`), the cost (:mod:`policies.map_cost`) and values
candidates by lookahead (:mod:`policies.map_acquisition`). Before ``n_initial`` recipes have been
asked for, or with no labelled sample yet, the recipes are the seed's space-filling sequence.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np
from pydantic import Field

from instruments.types import ParamValue, Record
from policies.baselines import space_filling_points
from policies.map_acquisition import expected_entropy_reduction
from policies.map_cost import CostModel
from policies.map_model import DirichletTransform, PhaseMap, fit_phase_map, labelled, single_threaded_torch
from policies.map_points import integration_points, with_face_candidates
from policies.protocol import PlanningContext, Proposal, SampleOutcome
from policies.space import DesignSpace

#: Seed of the integration grid: fixed, so that successive decisions value the same map.
GRID_SEED = 20_201


class PhaseMapOptions(Record):
    """Settings of the map learner and its acquisition (counts; dimensionless concentrations)."""

    labels: list[str] = Field(default_factory=list, description="labels known in advance (e.g. the phase sets of a library), in map order; others join as samples report them")
    n_initial: int = Field(default=4, ge=1, description="recipes asked for (samples + pending) before the map is used")
    n_candidates: int = Field(default=256, ge=1, le=4096, description="feasible random candidates valued per decision")
    n_grid: int = Field(default=256, ge=16, le=4096, description="feasible space-filling points the map's entropy is averaged over")
    alpha_epsilon: float = Field(default=0.01, gt=0, description="Dirichlet concentration of a label with no probability")
    label_strength: float = Field(default=1.0, gt=0, description="Dirichlet pseudo-count of a fully confident label")
    cost_aware: bool = Field(default=True, description="divide the entropy reduction by the expected seconds of a sample")
    integration: Literal["faces", "sobol"] = Field(default="sobol", description="points the map's entropy is averaged over: 'sobol' = the space's Sobol points; 'faces' = the design lattice (simplex edges and vertices included) for half, Sobol points for the rest (policies/map_points.py; measured in the README: not better on the oxide truth once the learner fits the edges)")
    face_candidates: float = Field(default=0.0, ge=0, le=1, description="share of the candidates moved onto a face (edge, vertex) of each composition simplex (0: none)")


def step_seed(seed: int, step: int) -> int:
    """A numpy seed for decision ``step`` of a campaign seeded with ``seed`` (reproducible)."""
    return int(np.random.SeedSequence([seed, step]).generate_state(1)[0])


def _label_reason(labels: Sequence[str], probabilities: np.ndarray) -> dict[str, float]:
    return {label: round(float(p), 4) for label, p in zip(labels, probabilities, strict=True)}


class PhaseMapPolicy:
    """Active learning of the phase map, cost-aware and batch-aware (see the module docstring)."""

    name = "phase_map"
    campaign_arguments: tuple[str, ...] = ()
    Options = PhaseMapOptions

    def __init__(self, space: DesignSpace, *, seed: int = 0, options: PhaseMapOptions | None = None) -> None:
        self.space = space
        self.seed = int(seed)
        self.options = options if options is not None else PhaseMapOptions()
        self.transform = DirichletTransform(self.options.alpha_epsilon, self.options.label_strength)
        n_grid = self.options.n_grid
        grid = integration_points(space, n_grid, GRID_SEED) if self.options.integration == "faces" else space.sample(n_grid, GRID_SEED, "sobol")
        self.grid_X = space.encode(grid)

    def fit(self, samples: Sequence[SampleOutcome]) -> PhaseMap:
        """The map of ``samples`` (what targets and reports evaluate)."""
        return fit_phase_map(self.space, samples, known_labels=self.options.labels, transform=self.transform)

    def training_samples(self, context: PlanningContext) -> list[SampleOutcome]:
        """The samples the map learns from (the unsupervised mode relabels them first)."""
        return list(context.samples)

    def plan(self, context: PlanningContext, n: int) -> list[Proposal]:
        """``n`` recipes: space-filling at first, then greedy lookahead picks, each joining the pending."""
        if not 0 <= n <= self.options.n_candidates:
            raise ValueError(f"n must be in [0, n_candidates={self.options.n_candidates}], not {n}")
        step = len(context.samples) + len(context.pending_recipes)
        samples = self.training_samples(context)
        if n == 0:
            return []
        if step < self.options.n_initial or not labelled(samples):
            points = space_filling_points(self.space, step, n, self.seed, "sobol")
            return [
                Proposal(params=p, policy=self.name, reason={"phase": "space-filling", "index": step + i, "seed": self.seed})
                for i, p in enumerate(points)
            ]
        with single_threaded_torch():  # small matrices: thread pools only cost (see map_model)
            return self._lookahead(samples, list(context.pending_recipes), context.samples, n, step)

    def _lookahead(
        self, samples: list[SampleOutcome], pending: list[Mapping[str, ParamValue]],
        costed: Sequence[SampleOutcome], n: int, step: int,
    ) -> list[Proposal]:
        phase_map = self.fit(samples)
        cost = CostModel(self.space, costed)
        candidates = with_face_candidates(
            self.space, self.space.sample(self.options.n_candidates, step_seed(self.seed, step), "random"),
            self.options.face_candidates, step_seed(self.seed, step) ^ 0xFACE)
        candidates_X = self.space.encode(candidates)
        seconds = cost.expected_seconds(candidates_X)
        proposals: list[Proposal] = []
        chosen: list[Mapping[str, ParamValue]] = []
        for _ in range(n):
            pending_X = self.space.encode(pending + chosen) if pending or chosen else np.zeros((0, self.space.n_columns))
            result = expected_entropy_reduction(phase_map, self.grid_X, candidates_X, pending_X)
            value = result.entropy_reduction / seconds if self.options.cost_aware else result.entropy_reduction.copy()
            if chosen:
                value[[candidates.index(c) for c in chosen]] = -np.inf  # type: ignore[arg-type]
            best = int(np.argmax(value))
            chosen.append(candidates[best])
            reason: dict[str, Any] = {
                "phase": "map-uncertainty",
                "acquisition": float(value[best]),
                "acquisition_units": "nats/s" if self.options.cost_aware else "nats",
                "entropy_reduction": float(result.entropy_reduction[best]),
                "map_entropy": result.map_entropy,
                "expected_seconds": float(seconds[best]),
                "cost_model": cost.kind,
                "label_probabilities": _label_reason(phase_map.labels, result.probabilities[best]),
                "n_samples": len(labelled(samples)),
                "n_pending": len(pending) + len(chosen) - 1,
            }
            proposals.append(Proposal(params=candidates[best], policy=self.name, reason=reason))
        return proposals


__all__ = ["PhaseMapOptions", "PhaseMapPolicy", "step_seed"]
