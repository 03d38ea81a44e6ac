"""The XRD set evidence's Occam term (``analysis.xrd.fit.box_laplace``) against direct numerical
integration of a Gaussian likelihood over a uniform prior box: a constrained parameter, one on an
edge, one the data do not constrain, and an exactly degenerate correlated pair."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate

from analysis.xrd.fit import box_laplace, kkt_gradient, log_gaussian_box


def _direct(x: np.ndarray, h: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> float:
    """log ∫_box exp(−½ δᵀ H δ) dθ / Π w by adaptive quadrature (two parameters)."""
    def f(b: float, a: float) -> float:
        d = np.array([a, b]) - x
        return math.exp(-0.5 * float(d @ h @ d))

    value, _ = integrate.dblquad(f, lo[0], hi[0], lo[1], hi[1], epsabs=1e-13, epsrel=1e-9)
    return math.log(value) - float(np.sum(np.log(hi - lo)))


@pytest.mark.parametrize(("x", "h"), [
    ([0.5, 0.4], [[4e3, 0.0], [0.0, 9e2]]),             # both constrained, interior
    ([0.0, 0.4], [[4e3, 0.0], [0.0, 9e2]]),             # first on its lower edge: half its mass
    ([0.5, 0.0], [[4e3, 0.0], [0.0, 1e-8]]),            # second not constrained at all, on an edge
    ([0.5, 0.3], [[4e3, 1.5e3], [1.5e3, 9e2]]),         # correlated
    ([0.5, 0.5], [[1e3, -1e3], [-1e3, 1e3]]),           # exactly degenerate pair (a ridge)
])
def test_box_laplace_matches_the_integral_over_the_prior_box(x: list[float], h: list[list[float]]) -> None:
    xs, hs, lo, hi = np.array(x), np.array(h), np.zeros(2), np.ones(2)
    assert box_laplace(xs, hs, lo, hi) == pytest.approx(_direct(xs, hs, lo, hi), abs=0.03)


def test_a_parameter_the_data_do_not_see_costs_nothing() -> None:
    """The flat likelihood's exact integral over its prior is 1: no Occam cost, wherever the optimum sits."""
    for x in (0.0, 0.3, 1.0):
        assert box_laplace(np.array([x]), np.array([[1e-10]]), np.zeros(1), np.ones(1)) == pytest.approx(0.0, abs=1e-6)


def _direct_with_gradient(x: np.ndarray, h: np.ndarray, g: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> float:
    """log ∫_box exp(gᵀδ − ½ δᵀ H δ) dθ / Π w by adaptive quadrature (two parameters)."""
    def f(b: float, a: float) -> float:
        d = np.array([a, b]) - x
        return math.exp(float(g @ d) - 0.5 * float(d @ h @ d))

    value, _ = integrate.dblquad(f, lo[0], hi[0], lo[1], hi[1], epsabs=1e-15, epsrel=1e-10)
    return math.log(value) - float(np.sum(np.log(hi - lo)))


@pytest.mark.parametrize(("x", "h", "g", "tolerance"), [
    ([1.0, 0.4], [[4e3, 0.0], [0.0, 9e2]], [200.0, 0.0], 0.01),          # first pinned on its upper edge, pushed out
    ([1.0, 0.4], [[4e3, 1.5e3], [1.5e3, 9e2]], [200.0, 0.0], 0.01),      # ... correlated with an interior one
    ([0.0, 0.4], [[1e-8, 0.0], [0.0, 9e2]], [-5.0, 0.0], 0.01),          # a flat direction pushed against its lower edge
    ([1.0, 0.0], [[4e3, 1.5e3], [1.5e3, 9e2]], [2000.0, -500.0], 0.01),  # both pinned, pushed hard
    ([1.0, 0.0], [[4e3, -1.5e3], [-1.5e3, 9e2]], [200.0, -50.0], 0.25),  # both pinned, anticorrelated
])
def test_a_parameter_pushed_against_its_bound_pays_for_the_push(x: list[float], h: list[list[float]], g: list[float],
                                                                tolerance: float) -> None:
    """The likelihood's gradient at a pinned parameter puts the Gaussian's peak beyond the edge: the box holds a
    tail, and the Occam term is that tail's integral (below the half-Gaussian the gradient-free term charges)."""
    xs, hs, gs, lo, hi = np.array(x), np.array(h), np.array(g), np.zeros(2), np.ones(2)
    value = box_laplace(xs, hs, lo, hi, kkt_gradient(xs, gs, lo, hi))
    assert value == pytest.approx(_direct_with_gradient(xs, hs, gs, lo, hi), abs=tolerance)
    assert value < box_laplace(xs, hs, lo, hi) - 1.0


def test_kkt_gradient_keeps_only_the_outward_push_on_an_edge() -> None:
    x, lo, hi = np.array([0.5, 0.0, 1.0, 0.0]), np.zeros(4), np.ones(4)
    g = np.array([3.0, 4.0, 5.0, -6.0])  # interior; on the lower edge pushed in; on the upper pushed out; lower pushed out
    assert kkt_gradient(x, g, lo, hi).tolist() == [0.0, 0.0, 5.0, -6.0]
    # A lower edge that is a physical limit (no broadening, B = 0) is a state, not an edge of the box: no push counted.
    assert kkt_gradient(x, g, lo, hi, np.array([False, False, True, True])).tolist() == [0.0, 0.0, 5.0, 0.0]


@pytest.mark.parametrize(("p", "g", "lo", "hi"), [
    (1e4, 0.0, -0.5, 0.5), (1e4, 300.0, -0.5, 0.0), (1e4, -300.0, 0.0, 0.5), (1e6, 1e5, -0.3, 0.0),
    (1e-20, 3.0, -1.0, 0.0), (1e-20, 0.0, -1.0, 1.0), (4.0, 10.0, -1.0, 0.0), (1e8, 1e3, -1e-3, 1e-3),
])
def test_log_gaussian_box_matches_quadrature(p: float, g: float, lo: float, hi: float) -> None:
    peak = min(max(g / p, lo), hi)
    value, _ = integrate.quad(lambda d: math.exp(g * d - 0.5 * p * d * d), lo, hi, points=[peak], epsabs=0, epsrel=1e-11,
                              limit=500)
    assert log_gaussian_box(p, g, lo, hi) == pytest.approx(math.log(value), abs=1e-8)

