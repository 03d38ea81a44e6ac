"""The slices of the design space the model is drawn over (with a stand-in model: no GP fit)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pytest

from agent.report.model import (
    FALLBACK_SAMPLE_POINTS,
    GRID_POINTS_1D,
    GRID_POINTS_2D,
    GridSlice,
    LineSlice,
    SampleSlice,
    axis_values,
    describe_slice,
    edges,
    model_slice,
    slice_point,
)
from policies.protocol import Observation
from policies.space import DesignSpace

pytestmark = pytest.mark.timeout(60)


class SumModel:
    """Mean: the sum of the numeric parameters; std: one everywhere."""

    def predict(self, points: Sequence[Mapping[str, object]]) -> tuple[np.ndarray, np.ndarray]:
        mean = np.array([sum(float(v) for v in p.values() if isinstance(v, (int, float))) for p in points])
        return mean, np.ones(len(points))


def space(*parameters: dict, **extra: object) -> DesignSpace:
    return DesignSpace.model_validate({"parameters": list(parameters), **extra})


def continuous(name: str, low: float = 0.0, high: float = 1.0, **kw: object) -> dict:
    return {"name": name, "type": "continuous", "low": low, "high": high, **kw}


def test_axis_values_are_whole_numbers_for_integers_and_log_spaced_when_log_scaled() -> None:
    s = space({"name": "n", "type": "integer", "low": 1, "high": 12}, continuous("rate", 0.01, 100.0, log_scale=True))
    assert axis_values(s.parameter("n"), GRID_POINTS_2D).tolist() == list(range(1, 13))
    rates = axis_values(s.parameter("rate"), 5)
    np.testing.assert_allclose(rates, [0.01, 0.1, 1.0, 10.0, 100.0])
    np.testing.assert_allclose(edges(rates, log=True), [10**-2.5, 10**-1.5, 10**-0.5, 10**0.5, 10**1.5, 10**2.5])
    np.testing.assert_allclose(edges(np.array([1.0, 2.0, 4.0]), log=False), [0.5, 1.5, 3.0, 5.0])
    np.testing.assert_allclose(edges(np.array([3.0]), log=False), [2.5, 3.5])


def test_composition_partners_share_the_remainder_in_the_incumbents_proportions() -> None:
    s = space(*(continuous(n) for n in "abc"), compositions=[{"parameters": ["a", "b", "c"]}])
    incumbent = {"a": 0.2, "b": 0.2, "c": 0.6}
    assert slice_point(s, incumbent, ["a", "b"], (0.5, 0.2)) == pytest.approx({"a": 0.5, "b": 0.2, "c": 0.3})
    s4 = space(*(continuous(n) for n in "abcd"), compositions=[{"parameters": ["a", "b", "c", "d"]}])
    point = slice_point(s4, {"a": 0.1, "b": 0.1, "c": 0.2, "d": 0.6}, ["a", "b"], (0.4, 0.4))
    assert point == pytest.approx({"a": 0.4, "b": 0.4, "c": 0.05, "d": 0.15})


def test_one_numeric_parameter_gives_a_line_and_two_give_a_grid() -> None:
    s = space(continuous("x"), continuous("y"), {"name": "solvent", "type": "categorical", "choices": ["w", "e"]})
    incumbent = Observation(params={"x": 0.5, "y": 0.25, "solvent": "w"}, value=1.0, sigma=None, attempt_id="a-1")

    line = model_slice(s, ["x"], SumModel(), incumbent)
    assert isinstance(line, LineSlice) and line.mean.shape == (GRID_POINTS_1D,)
    np.testing.assert_allclose(line.mean, line.xs + 0.25)
    assert describe_slice(s, line) == "Posterior along x. Fixed at the incumbent's values: y, solvent."

    grid = model_slice(s, ["x", "y"], SumModel(), incumbent)
    assert isinstance(grid, GridSlice) and grid.mean.shape == (GRID_POINTS_2D**2,)
    assert grid.x_edges.shape == (GRID_POINTS_2D + 1,) and np.isfinite(grid.mean).all()
    assert grid.mean[1] == pytest.approx(grid.xs[1] + grid.ys[0])  # x varies fastest
    assert describe_slice(s, grid) == "Grid over x × y. Fixed at the incumbent's values: solvent."


def test_a_slice_with_almost_no_feasible_cell_becomes_a_feasible_sample() -> None:
    # a + b = 1 with b ≤ 0.7: only 6 cells of the 60 × 60 grid lie on the line.
    s = space(continuous("a"), continuous("b", 0.0, 0.7), compositions=[{"parameters": ["a", "b"]}])
    incumbent = Observation(params={"a": 0.6, "b": 0.4}, value=1.0, sigma=None, attempt_id="a-1")

    view = model_slice(s, ["a", "b"], SumModel(), incumbent)

    assert isinstance(view, SampleSlice) and view.x.shape == view.mean.shape == (FALLBACK_SAMPLE_POINTS,)
    np.testing.assert_allclose(view.x + view.y, 1.0)
    assert describe_slice(s, view).startswith(f"The slice through the incumbent has almost no feasible point, so "
                                              f"{FALLBACK_SAMPLE_POINTS} space-filling")
