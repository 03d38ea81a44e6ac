"""Posterior confidence measures behave as their names promise on functions we understand."""

from __future__ import annotations

import numpy as np
import pytest

from policies.baselines import space_filling_points
from policies.confidence import max_posterior_std, prob_incumbent_near_optimum
from policies.models import ModelCache
from tests.policies.spaces import bump, line_space, observe, plane_space, quadratic


def test_max_posterior_std_decreases_as_data_is_added() -> None:
    space = plane_space()
    points = space_filling_points(space, 0, 48, 5)
    cache = ModelCache()
    # From a dozen points on: with fewer, the fitted lengthscales and outputscale are still
    # changing a lot, and a GP that has seen 4 points of a bump may well be *more* confident.
    stds = [max_posterior_std(cache.fit(space, observe(points[:n], bump, sigma=0.01), "maximize"), n_points=256) for n in (12, 24, 48)]
    assert stds[0] > stds[1] > stds[2], stds
    assert stds[2] < 0.1


def test_max_posterior_std_is_in_objective_units() -> None:
    space = plane_space()
    points = space_filling_points(space, 0, 12, 5)
    cache = ModelCache()
    base = max_posterior_std(cache.fit(space, observe(points, bump, sigma=0.01), "maximize"), n_points=256)
    scaled = max_posterior_std(cache.fit(space, observe(points, lambda p: 100.0 * bump(p), sigma=1.0), "maximize"), n_points=256)
    assert scaled == pytest.approx(100.0 * base, rel=0.05)


@pytest.mark.parametrize("direction", ["maximize", "minimize"])
def test_incumbent_probability_is_high_for_a_well_sampled_quadratic(direction: str) -> None:
    sign = 1.0 if direction == "maximize" else -1.0
    space = line_space()
    points = [{"x": float(x)} for x in np.linspace(0.0, 1.0, 21)]
    history = observe(points, lambda p: sign * quadratic(p), sigma=0.002, noise_seed=0)
    fitted = ModelCache().fit(space, history, direction)  # type: ignore[arg-type]
    probability, incumbent = prob_incumbent_near_optimum(fitted, epsilon=0.02)
    assert probability > 0.9
    assert incumbent == {"x": 0.4}


def test_incumbent_probability_is_low_with_three_points() -> None:
    space = line_space()
    history = observe([{"x": 0.05}, {"x": 0.5}, {"x": 0.95}], quadratic, sigma=0.002)
    fitted = ModelCache().fit(space, history, "maximize")
    probability, incumbent = prob_incumbent_near_optimum(fitted, epsilon=0.02)
    assert probability < 0.5
    assert incumbent == {"x": 0.5}


def test_incumbent_probability_is_reproducible_and_grows_with_epsilon() -> None:
    space = line_space()
    history = observe([{"x": float(x)} for x in (0.0, 0.2, 0.35, 0.6, 0.9)], quadratic, sigma=0.01)
    fitted = ModelCache().fit(space, history, "maximize")
    tight, _ = prob_incumbent_near_optimum(fitted, epsilon=0.001, seed=3)
    again, _ = prob_incumbent_near_optimum(fitted, epsilon=0.001, seed=3)
    loose, _ = prob_incumbent_near_optimum(fitted, epsilon=0.5, seed=3)
    assert tight == again and tight <= loose and loose > 0.9
    with pytest.raises(ValueError, match="epsilon"):
        prob_incumbent_near_optimum(fitted, epsilon=-1.0)
