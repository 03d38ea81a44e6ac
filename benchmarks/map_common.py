"""The loop both policy-level map benchmarks share (``map_toy.py``, ``map_oxide.py``): a policy
picks recipes one at a time, each comes back as an outcome at once, and the shared learner's map of
the samples so far is scored on a test grid at the checkpoints; runs are summarised per checkpoint.

Scores of a map (``score_map``): accuracy (fraction of test points labelled right), the points
labelled with p ≥ 0.95 and how many of them are right (calibration), the map confidence (fraction
at p ≥ 0.95). A summary row: accuracy median, mean, standard deviation and minimum over runs, the
runs' accuracies, calibration pooled over runs' maps and the worst run's.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from policies.map_model import PhaseMap
from policies.map_targets import calibration, map_accuracy, map_confidence, predicted_labels
from policies.protocol import PlanningContext, Proposal, SampleOutcome


class Planner(Protocol):
    def plan(self, context: PlanningContext, n: int) -> list[Proposal]: ...


def score_map(phase_map: PhaseMap, grid: Sequence[Mapping[str, Any]], truths: Sequence[str]) -> dict[str, Any]:
    """Accuracy, calibration at p ≥ 0.95 (count, right) and map confidence of ``phase_map`` on ``grid``."""
    p = phase_map.probabilities_at(grid)
    c = calibration(p, phase_map.labels, truths, 0.95)
    return {"accuracy": map_accuracy(predicted_labels(p, phase_map.labels), truths),
            "confident": c.count, "confident_right": round((c.fraction_right or 0.0) * c.count),
            "map_confidence_095": map_confidence(p, 0.95)}


def learning_curve(
    policy: Planner, outcome: Callable[[int, dict[str, Any]], SampleOutcome], checkpoints: Sequence[int],
    score: Callable[[list[SampleOutcome]], dict[str, Any]],
) -> list[dict[str, Any]]:
    """``max(checkpoints)`` samples, one at a time: ``policy`` proposes, ``outcome(k, recipe)`` is
    sample k; ``score(samples)`` at each checkpoint. Stops early when the policy has no recipe left."""
    samples: list[SampleOutcome] = []
    rows = []
    for k in range(max(checkpoints)):
        proposals = policy.plan(PlanningContext(samples=samples), 1)
        if not proposals:
            break
        samples.append(outcome(k, dict(proposals[0].params)))
        if k + 1 in checkpoints:
            rows.append({"samples": k + 1, **score(samples)})
    return rows


def summary(runs: Sequence[Sequence[dict[str, Any]]], checkpoints: Sequence[int]) -> list[dict[str, Any]]:
    """Per checkpoint over runs: accuracy median, mean, standard deviation, minimum and the list;
    calibration pooled (right / confident over every run's map) and the worst run's."""
    out = []
    for i, n in enumerate(checkpoints):
        at = [r[i] for r in runs if len(r) > i]
        if not at:
            continue
        accuracies = [a["accuracy"] for a in at]
        confident = sum(a["confident"] for a in at)
        per_run = [a["confident_right"] / a["confident"] for a in at if a["confident"]]
        out.append({
            "samples": n, "accuracy_median": statistics.median(accuracies), "accuracy_mean": statistics.fmean(accuracies),
            "accuracy_std": statistics.stdev(accuracies) if len(accuracies) > 1 else 0.0,
            "accuracy_min": min(accuracies), "accuracies": [round(a, 3) for a in accuracies],
            "confident": confident, "calibration_095": sum(a["confident_right"] for a in at) / confident if confident else None,
            "calibration_095_min": min(per_run) if per_run else None,
            "map_confidence_095_median": statistics.median(a["map_confidence_095"] for a in at),
        })
    return out


def compare(
    names: Sequence[str], runs_of: Callable[[str], list[list[dict[str, Any]]]], checkpoints: Sequence[int], as_json: bool,
) -> dict[str, list[dict[str, Any]]]:
    """Run and summarise every policy in ``names`` (``runs_of(name)``: its runs' curves), timing each
    on stderr; print the summaries as JSON or one line per policy and checkpoint."""
    results: dict[str, list[dict[str, Any]]] = {}
    for name in names:
        start = time.perf_counter()
        results[name] = summary(runs_of(name), checkpoints)
        print(f"{name}: {time.perf_counter() - start:.0f} s", file=sys.stderr)
    if as_json:
        print(json.dumps(results, indent=2))
        return results
    for name, rows in results.items():
        for row in rows:
            cal = "—" if row["calibration_095"] is None else f"{row['calibration_095']:.3f}"
            worst = "—" if row["calibration_095_min"] is None else f"{row['calibration_095_min']:.3f}"
            print(f"{name:10s} n={row['samples']:3d}  accuracy mean {row['accuracy_mean']:.3f} ± {row['accuracy_std']:.3f} "
                  f"median {row['accuracy_median']:.3f} (min {row['accuracy_min']:.3f}) {row['accuracies']}  "
                  f"right at p≥0.95 {cal} of {row['confident']} (worst run {worst})  confident {row['map_confidence_095_median']:.2f}")
    return results


__all__ = ["compare", "learning_curve", "score_map", "summary"]
