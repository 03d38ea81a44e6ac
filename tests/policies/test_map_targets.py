"""Campaign-level map measures on hand-built maps."""

from __future__ import annotations

import numpy as np
import pytest

from policies.map_targets import (
    boundary_location,
    calibration,
    expected_accuracy,
    map_accuracy,
    map_confidence,
    prob_incumbent_best_in_region,
)
from policies.models import ModelCache
from policies.protocol import Observation
from tests.policies.spaces import plane_space

pytestmark = pytest.mark.timeout(60)

P = np.array([[0.99, 0.01], [0.96, 0.04], [0.6, 0.4], [0.3, 0.7], [0.02, 0.98]])


def test_confidence_accuracy_calibration() -> None:
    assert map_confidence(P, 0.95) == pytest.approx(3 / 5)
    assert map_confidence(P, 0.5) == 1.0
    assert map_accuracy(["A", "A", "B"], ["A", "B", "B"]) == pytest.approx(2 / 3)
    truth = ["A", "B", "A", "B", "B"]  # the 0.96 point is wrong
    c = calibration(P, ["A", "B"], truth, 0.95)
    assert (c.count, c.fraction_right) == (3, pytest.approx(2 / 3))
    assert calibration(P, ["A", "B"], truth, 0.999).fraction_right is None
    with pytest.raises(ValueError):
        map_confidence(P, 0.0)


def test_expected_accuracy_is_the_mean_top_probability() -> None:
    assert expected_accuracy(P) == pytest.approx((0.99 + 0.96 + 0.6 + 0.7 + 0.98) / 5)
    assert expected_accuracy(np.zeros((0, 2))) == 0.0
    # A calibrated map's expectation matches its accuracy: draw truths from the map's own probabilities.
    rng = np.random.default_rng(0)
    p = rng.dirichlet([0.7, 0.7, 0.7], size=4000)
    truth = [["A", "B", "C"][rng.choice(3, p=row)] for row in p]
    predicted = [["A", "B", "C"][j] for j in p.argmax(axis=1)]
    assert expected_accuracy(p) == pytest.approx(map_accuracy(predicted, truth), abs=0.03)


def test_boundary_location_excludes_the_delta_band() -> None:
    x = np.linspace(0, 1, 11)[:, None]  # 1-D grid, boundary between 0.5 and 0.6
    p_a = np.where(x[:, 0] <= 0.5, 0.9, 0.2)
    probabilities = np.column_stack([p_a, 1 - p_a])
    narrow = boundary_location(x, probabilities, 0.05)  # spacing 0.1: nothing is within δ of a change
    assert narrow.band_fraction == 0 and narrow.value == pytest.approx((6 * 0.9 + 5 * 0.8) / 11)
    wide = boundary_location(x, probabilities, 0.15)  # 0.5 and 0.6 are in the band
    assert wide.band_fraction == pytest.approx(2 / 11)
    assert wide.value == pytest.approx((5 * 0.9 + 4 * 0.8) / 9)
    everywhere = boundary_location(x, probabilities, 2.0)
    assert everywhere.value == 0.0 and everywhere.band_fraction == 1.0


def test_incumbent_best_in_region() -> None:
    space = plane_space()
    points = [{"temperature": t, "time": 5.0} for t in np.linspace(300, 500, 9)]
    values = [0.0, 0.2, 0.5, 0.9, 1.0, 0.9, 0.5, 3.0, 3.5]  # the best two are outside the region
    history = [Observation(params=p, value=v, sigma=0.01) for p, v in zip(points, values, strict=True)]
    fitted = ModelCache().fit(space, history, "maximize")
    X = space.encode(points)
    region = np.array([True] * 7 + [False] * 2)
    p, incumbent = prob_incumbent_best_in_region(fitted, X, region, region, epsilon=0.05)
    assert incumbent == points[4] and p > 0.5
    p_all, incumbent_all = prob_incumbent_best_in_region(fitted, X, np.ones(9, bool), np.ones(9, bool), epsilon=0.05)
    assert incumbent_all == points[8]
    assert prob_incumbent_best_in_region(fitted, X, region, np.zeros(9, bool)) == (0.0, None)


def test_map_on_grid_is_none_before_a_label_then_a_fixed_grid() -> None:
    from policies.map_targets import map_on_grid
    from tests.policies.map_toys import labelled_samples, outcome, point, ternary

    assert map_on_grid(ternary(), [outcome(0, point(0.2, 0.2), {}, status="failed")]) is None
    samples = labelled_samples([point(0.9, 0.05), point(0.1, 0.8), point(0.1, 0.1)])
    first = map_on_grid(ternary(), samples, n_points=64)
    again = map_on_grid(ternary(), samples[:2], n_points=64)
    assert first is not None and again is not None and first.points == again.points
    assert first.probabilities.shape == (64, 3) and np.allclose(first.probabilities.sum(axis=1), 1)
