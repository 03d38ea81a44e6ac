"""The lookahead values recipes near the predicted boundary above recipes deep in a known region,
and a pending recipe's neighbourhood below a fresh one."""

from __future__ import annotations

import numpy as np
import pytest

from policies.map_acquisition import entropy, expected_entropy_reduction
from policies.map_model import fit_phase_map
from tests.policies.map_toys import labelled_samples, point, ternary

pytestmark = pytest.mark.timeout(120)


def _map_and_grid():  # noqa: ANN202
    space = ternary()
    # Region A (a > 0.5) sampled on its far side only, B/C (a < 0.5) on theirs: the A boundary is unknown.
    recipes = [point(0.9, 0.05), point(0.8, 0.1), point(0.85, 0.0), point(0.1, 0.8), point(0.1, 0.1), point(0.0, 0.5)]
    phase_map = fit_phase_map(space, labelled_samples(recipes))
    grid_X = space.encode(space.sample(128, 5, "sobol"))
    return space, phase_map, grid_X


def test_entropy_in_nats() -> None:
    assert entropy(np.array([0.5, 0.5])) == pytest.approx(np.log(2))
    assert entropy(np.array([1.0, 0.0])) == pytest.approx(0.0)


def test_boundary_beats_the_inside_of_a_known_region() -> None:
    space, phase_map, grid_X = _map_and_grid()
    candidates = [point(0.45, 0.3), point(0.86, 0.06)]  # between A and B/C | among the A samples
    result = expected_entropy_reduction(phase_map, grid_X, space.encode(candidates), np.zeros((0, 3)))
    assert result.entropy_reduction[0] > 2 * result.entropy_reduction[1] > 0, result.entropy_reduction
    assert result.probabilities.shape == (2, len(phase_map.labels))
    assert result.probabilities[1][phase_map.labels.index("A")] > 0.8


def test_a_pending_recipe_makes_its_neighbourhood_worth_less() -> None:
    space, phase_map, grid_X = _map_and_grid()
    candidates = space.encode([point(0.45, 0.3), point(0.45, 0.05)])
    free = expected_entropy_reduction(phase_map, grid_X, candidates, np.zeros((0, 3)))
    pending = expected_entropy_reduction(phase_map, grid_X, candidates, space.encode([point(0.46, 0.29)]))
    assert pending.entropy_reduction[0] < 0.5 * free.entropy_reduction[0]
    assert pending.map_entropy < free.map_entropy  # the fantasy already counts as information
