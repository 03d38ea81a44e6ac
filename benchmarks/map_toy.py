"""Across-sample map policies on a toy ternary phase diagram: accuracy, calibration, confidence.

Policy level only (no campaign, no instruments): each sample is "characterised" instantly and comes
back with the true label at p = 0.95 (the rest of the mass on "none of the labels"). The
truth (three regions: a > 0.5 → A;
else b > c → B, else C) lives in this file. The map learner (``policies.map_model``) is the same for
every policy; only the choice of recipes differs. Reported per policy and sample count: median
over seeds of the map accuracy on a 600-point test grid, the calibration (of test points labelled
with p ≥ 0.95, the fraction right) and the map confidence (fraction with p ≥ 0.95).

The benchmark of the issue (``labpilot bench map``: simulated materials systems, nested campaigns,
time rather than sample counts) is built elsewhere; this one isolates the policy and the learner.

    python benchmarks/map_toy.py [--quick] [--json]
"""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np

from benchmarks.map_common import compare, learning_curve, score_map
from policies.map_baselines import MapGridPolicy, MapRandomPolicy
from policies.phase_map import PhaseMapOptions, PhaseMapPolicy
from policies.protocol import SampleOutcome
from policies.space import DesignSpace

SPACE = DesignSpace.model_validate({
    "parameters": [{"name": n, "type": "continuous", "low": 0.0, "high": 1.0, "units": "mol frac"} for n in "abc"],
    "compositions": [{"name": "abc", "parameters": ["a", "b", "c"]}],
})


def truth(recipe: dict) -> str:  # type: ignore[type-arg]
    if recipe["a"] > 0.5:
        return "A"
    return "B" if recipe["b"] > recipe["c"] else "C"


def _policy(name: str, seed: int) -> object:
    if name == "phase_map":
        return PhaseMapPolicy(SPACE, seed=seed, options=PhaseMapOptions(n_candidates=128, n_grid=128))
    if name == "map_grid":
        return MapGridPolicy(SPACE, seed=seed, options=MapGridPolicy.Options(divisions=6))
    return MapRandomPolicy(SPACE, seed=seed)


def run(name: str, seed: int, n_samples: int, checkpoints: list[int]) -> list[dict[str, Any]]:
    """One seeded run of ``name``: the map's measures at each checkpoint."""
    learner = PhaseMapPolicy(SPACE, seed=seed)
    grid = SPACE.sample(600, 1234, "sobol")
    truths = [truth(g) for g in grid]

    def outcome(k: int, recipe: dict[str, Any]) -> SampleOutcome:
        return SampleOutcome(sample_id=f"s{k}", recipe=recipe, label_probabilities={truth(recipe): 0.95}, seconds=100.0)

    return learning_curve(_policy(name, seed), outcome, [c for c in checkpoints if c <= n_samples],
                          lambda samples: score_map(learner.fit(samples), grid, truths))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="2 seeds, 12 samples")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    seeds = range(2) if args.quick else range(6)
    n_samples = 12 if args.quick else 24
    checkpoints = [6, 9, 12] if args.quick else [6, 9, 12, 16, 20, 24]
    compare(("phase_map", "map_random", "map_grid"), lambda name: [run(name, seed, n_samples, checkpoints) for seed in seeds],
            checkpoints, args.json)


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
