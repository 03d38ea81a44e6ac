"""The shared map learner on the oxide system's hidden truth (``benchmarks/map_oxide.py``, policy
level: no Ray, no XRD): from 24 random samples with XRD-like soft labels it must place the map's
seven fields of one, two and three phases well enough — the class-per-set learner sat at 0.65–0.70
here (median 0.69), the per-phase presence learner on the fractions at 0.78–0.83 (median 0.81), on
the square roots of the fractions (``map_model.presence_inputs``) at 0.85–0.90 (median 0.85), with
"absent" weighted half (``map_coding.ABSENT_WEIGHT``) at 0.84–0.90 (median 0.88) — and
its confident points must be right."""

from __future__ import annotations

import statistics

import pytest

from benchmarks.map_oxide import run


@pytest.mark.timeout(120)
def test_random_samples_of_the_oxide_truth_give_an_accurate_calibrated_map() -> None:
    rows = [run("map_random", truth, 0, [24])[0] for truth in (0, 2, 3)]
    accuracies = [r["accuracy"] for r in rows]
    assert statistics.median(accuracies) >= 0.83, accuracies
    assert min(accuracies) >= 0.8, accuracies
    confident = sum(r["confident"] for r in rows)
    right = sum(r["confident_right"] for r in rows)
    assert confident >= 100 and right / confident >= 0.95, (right, confident)
