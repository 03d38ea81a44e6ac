"""The regions of the materials systems' hidden truths: each label's share of the dense grid, per seed.

For the oxide (``dense_grid(20)``, 4851 recipes) and the formulation system (``dense_grid(40)``, 1681
recipes), over seeds 0–9: the median, min and max share of every region label, and the time to
label the grid. What a phase-map benchmark scores against (``docs/materials-systems.md``).

    python benchmarks/materials_regions.py [--seeds 10] [--json]
"""

from __future__ import annotations

import argparse
import collections
import json
import statistics
import time
from collections.abc import Callable

from simulators.materials import (
    FormulationSystem,
    FormulationSystemSettings,
    MaterialsSystem,
    OxideSystem,
    OxideSystemSettings,
)

SYSTEMS: dict[str, tuple[Callable[[int], MaterialsSystem], int]] = {
    "oxide": (lambda seed: OxideSystem(OxideSystemSettings(seed=seed)), 20),
    "formulation": (lambda seed: FormulationSystem(FormulationSystemSettings(seed=seed)), 40),
}


def region_shares(make: Callable[[int], MaterialsSystem], n: int, seeds: int) -> dict[str, object]:
    """Per label: median, min, max share of ``dense_grid(n)`` over the seeds; grid size; seconds per seed."""
    shares: dict[str, list[float]] = collections.defaultdict(list)
    started, size = time.perf_counter(), 0
    for seed in range(seeds):
        system = make(seed)
        grid = system.dense_grid(n)
        size = len(grid)
        counts = collections.Counter(system.label(recipe) for recipe in grid)
        for label in system.labels():
            shares[label].append(counts[label] / size)
    return {
        "grid": size, "seconds_per_seed": (time.perf_counter() - started) / seeds,
        "labels": {k: {"median": statistics.median(v), "min": min(v), "max": max(v)} for k, v in sorted(shares.items())},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    results = {name: region_shares(make, n, args.seeds) for name, (make, n) in SYSTEMS.items()}
    if args.json:
        print(json.dumps(results, indent=2))
        return
    for name, result in results.items():
        print(f"{name}: dense grid {result['grid']} recipes, {result['seconds_per_seed']:.2f} s per seed to label")
        for label, share in result["labels"].items():  # type: ignore[attr-defined]
            print(f"  {label:42s} median {share['median']:.3f}  min {share['min']:.3f}  max {share['max']:.3f}")


if __name__ == "__main__":
    main()
