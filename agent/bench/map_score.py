"""Scoring a campaign over samples against its materials system's hidden truth, after each sample.

After the k-th sample (in the order they were made; failed syntheses count, they took time):

- ``seconds``: synthesis + instrument seconds of the first k samples (the virtual clock; samples
  are made and characterised one after another, so this is the campaign's total time);
- ``accuracy``: fraction of the system's dense test grid (``dense_grid``) where the map fitted to the
  first k outcomes (``PhaseMapPolicy.fit``: the learner every policy shares) gives the most
  probability to the system's true label (``label``: the noiseless region of the nominal recipe);
- ``confident`` / ``confident_right``: test points labelled with p ≥ 0.95, and how many are right;
- ``target_met``: whether a ``map_confidence`` target (p ≥ 0.95 on ≥ 90 % of the space, at least 5
  labelled samples; ``agent/map_targets.py``, the campaign's own evaluation) holds;
- ``expected_accuracy`` / ``accuracy_target_met``: the map's own estimate of its accuracy on the
  campaign's grid, and whether a ``map_accuracy`` target of 0.9 (the accuracy goal itself) holds.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from policies.protocol import SampleOutcome
from policies.space import DesignSpace

CONFIDENT_P = 0.95
ACCURACY_GOAL = 0.9
MAP_TARGET = {"name": "map_known", "kind": "map_confidence", "probability": 0.95, "fraction": 0.9, "min_samples": 5}
ACCURACY_TARGET = {"name": "map_accurate", "kind": "map_accuracy", "accuracy": ACCURACY_GOAL, "min_samples": 5}
TEST_GRID_STEPS = {"oxide": 10, "formulation": 30}
"""``dense_grid`` steps: oxide 66 compositions × 11 temperatures = 726 recipes; formulation 31² = 961."""


def _map_scores(space: DesignSpace, samples: Sequence[SampleOutcome], grid: list[dict[str, float]],
                truth: list[str], seed: int) -> dict[str, Any]:
    from policies.map_model import labelled
    from policies.map_targets import calibration, map_accuracy, predicted_labels
    from policies.phase_map import PhaseMapPolicy

    if not labelled(samples):  # no map yet: nothing on the grid is labelled
        return {"accuracy": 0.0, "confident": 0, "confident_right": 0}
    phase_map = PhaseMapPolicy(space, seed=seed).fit(samples)
    p = phase_map.probabilities_at(grid)
    c = calibration(p, phase_map.labels, truth, CONFIDENT_P)
    right = 0 if c.fraction_right is None else round(c.fraction_right * c.count)
    return {"accuracy": map_accuracy(predicted_labels(p, phase_map.labels), truth), "confident": c.count,
            "confident_right": right, "labels": list(phase_map.labels), "probabilities": p}


def curve(space: DesignSpace, outcomes: Sequence[SampleOutcome], system: Any, system_name: str,
          seed: int) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The per-sample rows of the module docstring, and the final map on the test grid (its
    labels, probabilities, the grid and the truth) for the figure."""
    from agent.map_targets import MapAccuracyTarget, MapConfidenceTarget, evaluate_map_targets

    grid = system.dense_grid(TEST_GRID_STEPS[system_name])
    truth = [system.label(g) for g in grid]
    targets = [MapConfidenceTarget.model_validate(MAP_TARGET), MapAccuracyTarget.model_validate(ACCURACY_TARGET)]
    rows, seconds, final = [], 0.0, {}
    for k in range(1, len(outcomes) + 1):
        seconds += outcomes[k - 1].seconds
        scores = _map_scores(space, outcomes[:k], grid, truth, seed)
        held = evaluate_map_targets(targets, space, outcomes[:k], seed)
        accurate = held[ACCURACY_TARGET["name"]]
        rows.append({"samples": k, "seconds": seconds, "accuracy": scores["accuracy"], "confident": scores["confident"],
                     "confident_right": scores["confident_right"], "target_met": bool(held[MAP_TARGET["name"]].met),
                     "expected_accuracy": accurate.value, "accuracy_target_met": bool(accurate.met)})
        final = scores
    return rows, {"grid": grid, "truth": truth, "labels": final.get("labels", []),
                  "probabilities": final.get("probabilities", np.zeros((len(grid), 0)))}


def first(rows: Sequence[dict[str, Any]], key: str, at_least: float | None = None) -> float | None:
    """Seconds at the first row whose ``key`` holds (≥ ``at_least``, or true); None if never."""
    for row in rows:
        if (row[key] >= at_least) if at_least is not None else row[key]:
            return float(row["seconds"])
    return None


def run_figures(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """One run's headline numbers: time to 0.9 accuracy, when the map target first held, final
    accuracy and calibration (pooled counts over the final map's confident points)."""
    last = rows[-1] if rows else {"accuracy": 0.0, "confident": 0, "confident_right": 0, "seconds": 0.0, "samples": 0}
    t_accuracy, t_target = first(rows, "accuracy", ACCURACY_GOAL), first(rows, "target_met")
    # Rows scored before the map_accuracy target existed lack its key: never met.
    t_accurate = first([{"accuracy_target_met": False} | r for r in rows], "accuracy_target_met")
    samples_to_goal = next((r["samples"] for r in rows if r["accuracy"] >= ACCURACY_GOAL), None)
    return {
        "seconds_to_0.9": t_accuracy, "samples_to_0.9": samples_to_goal, "target_met_seconds": t_target,
        "target_over_accuracy_time": (t_target / t_accuracy) if t_target is not None and t_accuracy else None,
        "accuracy_target_met_seconds": t_accurate,
        "accuracy_target_over_accuracy_time": (t_accurate / t_accuracy) if t_accurate is not None and t_accuracy else None,
        "final_accuracy": last["accuracy"], "final_confident": last["confident"],
        "final_confident_right": last["confident_right"], "total_seconds": last["seconds"], "samples": last["samples"],
    }
