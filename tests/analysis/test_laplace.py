"""analysis.laplace against reference values computed independently here (scipy.stats, numpy.linalg)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import special, stats

from analysis.laplace import invert_information, log_box_mass, log_occam, posterior_probabilities

pytestmark = pytest.mark.timeout(60)


# -- log_box_mass ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("x", "s", "lo", "hi"), [(0.0, 1.0, -1.0, 1.0), (2.0, 0.5, 0.0, 2.0), (5.0, 3.0, -10.0, 4.0)])
def test_log_box_mass_is_the_normal_mass_inside_the_box(x, s, lo, hi):
    expected = math.log(stats.norm.cdf(hi, loc=x, scale=s) - stats.norm.cdf(lo, loc=x, scale=s))
    assert log_box_mass(x, s, lo, hi) == pytest.approx(expected, rel=1e-12)


def test_log_box_mass_of_one_sigma_either_side():
    assert log_box_mass(0.0, 1.0, -1.0, 1.0) == pytest.approx(math.log(0.6826894921370859), rel=1e-14)


def test_log_box_mass_without_a_usable_width_is_zero():
    assert log_box_mass(0.0, 0.0, -1.0, 1.0) == 0.0
    assert log_box_mass(0.0, math.inf, -1.0, 1.0) == 0.0
    assert log_box_mass(0.0, math.nan, -1.0, 1.0) == 0.0


def test_log_box_mass_in_the_far_tail_is_a_safe_lower_bound():
    # Φ(11) − Φ(10) is 0 in double precision; the rectangle under the density at 11 bounds it below.
    true = stats.norm.logsf(10.0) + math.log1p(-math.exp(stats.norm.logsf(11.0) - stats.norm.logsf(10.0)))
    value = log_box_mass(0.0, 1.0, 10.0, 11.0)
    assert value == pytest.approx(-0.5 * 11.0**2 - 0.5 * math.log(2 * math.pi), rel=1e-12)
    assert value <= true
    assert log_box_mass(0.0, 1.0, 100.0, 101.0) == pytest.approx(math.log(1e-300))


# -- invert_information ------------------------------------------------------------------------------


def test_invert_information_of_a_well_conditioned_matrix():
    h = np.array([[4.0, 1.0, 0.5], [1.0, 3.0, 0.2], [0.5, 0.2, 2.0]])
    cov, logdet, ill = invert_information(h, np.ones(3))
    np.testing.assert_allclose(cov, np.linalg.inv(h), rtol=1e-12)
    assert logdet == pytest.approx(np.linalg.slogdet(h)[1], rel=1e-12)
    assert ill is False


def test_invert_information_of_badly_scaled_parameters():
    # Parameters in very different units: pre-scaling keeps the inverse exact.
    h = np.array([[1e12, 2e5], [2e5, 1.0]])
    cov, logdet, ill = invert_information(h, np.array([1e-6, 1.0]))
    np.testing.assert_allclose(cov, np.linalg.inv(h), rtol=1e-9)
    assert logdet == pytest.approx(math.log(1e12 - 4e10), rel=1e-12)
    assert not ill


def test_invert_information_of_a_flat_direction_is_finite_and_flagged():
    h = np.array([[1.0, 1.0], [1.0, 1.0]])  # rank 1: θ₁ − θ₂ is not seen at all
    cov, logdet, ill = invert_information(h, np.ones(2))
    assert ill is True
    assert np.all(np.isfinite(cov)) and math.isfinite(logdet)
    assert cov[0, 0] > 1e10  # a huge variance along the flat direction
    h0 = np.array([[1.0, 0.0], [0.0, 0.0]])  # a parameter the data do not see: scaled by 1e-6 / width
    cov0, logdet0, ill0 = invert_information(h0, np.array([1.0, 2.0]))
    assert ill0 is True and math.isfinite(logdet0)
    assert cov0[0, 0] == pytest.approx(1.0) and math.isfinite(cov0[1, 1]) and cov0[1, 1] > 1e20


# -- log_occam ---------------------------------------------------------------------------------------


def _reference_log_occam(x, h, lo, hi, uniform, log_prior_density):
    """The module docstring's formula, with numpy's inverse and scipy's normal CDF."""
    x, lo, hi = (np.asarray(a, dtype=float) for a in (x, lo, hi))
    h_tilde = np.array(h, dtype=float) + np.diag(np.where(uniform, 12.0 / (hi - lo) ** 2, 0.0))
    cov = np.linalg.inv(h_tilde)
    s = np.sqrt(np.diag(cov))
    log_mass = sum(math.log(stats.norm.cdf(hi[i], x[i], s[i]) - stats.norm.cdf(lo[i], x[i], s[i])) for i in range(x.size))
    return log_prior_density + 0.5 * x.size * math.log(2 * math.pi) - 0.5 * np.linalg.slogdet(h_tilde)[1] + log_mass, cov


def test_log_occam_of_one_well_determined_parameter_is_the_textbook_laplace_factor():
    # Data precision 1e6 inside a box of width 10: the Occam factor is σ √(2π) / w.
    lo, hi = np.array([0.0]), np.array([10.0])
    value, cov, ill = log_occam(np.array([5.0]), np.array([[1e6]]), lo, hi, np.array([True]), -math.log(10.0))
    assert value == pytest.approx(math.log(1e-3 * math.sqrt(2 * math.pi) / 10.0), abs=1e-6)
    assert cov[0, 0] == pytest.approx(1 / (1e6 + 12 / 100), rel=1e-12)
    assert ill is False


def test_log_occam_on_a_bound_pays_half_the_factor():
    lo, hi = np.array([0.0]), np.array([10.0])
    inside, _, _ = log_occam(np.array([5.0]), np.array([[1e6]]), lo, hi, np.array([True]), -math.log(10.0))
    at_bound, _, _ = log_occam(np.array([0.0]), np.array([[1e6]]), lo, hi, np.array([True]), -math.log(10.0))
    assert at_bound - inside == pytest.approx(math.log(0.5), abs=1e-9)


@pytest.mark.parametrize("uniform", [(True, True), (True, False), (False, False)])
def test_log_occam_of_correlated_parameters_matches_the_formula(uniform):
    x = np.array([1.0, 2.5])
    h = np.array([[3.0, 1.2], [1.2, 2.0]])
    lo, hi = np.array([0.0, 0.0]), np.array([4.0, 3.0])
    uniform_mask = np.array(uniform)
    value, cov, ill = log_occam(x, h, lo, hi, uniform_mask, -1.7)
    expected, expected_cov = _reference_log_occam(x, h, lo, hi, uniform_mask, -1.7)
    assert value == pytest.approx(expected, rel=1e-12)
    np.testing.assert_allclose(cov, expected_cov, rtol=1e-12)
    assert ill is False


def test_log_occam_bounds_a_flat_direction_by_its_prior():
    # No information at all: H̃ = 12/w², the Gaussian of the box's variance; the evidence stays
    # near L_max (log Z − log L ≈ log(√(2π/12)·Φ-mass) ≈ −0.4 nat), not far above it.
    value, _, ill = log_occam(np.array([5.0]), np.zeros((1, 1)), np.array([0.0]), np.array([10.0]), np.array([True]), -math.log(10.0))
    s = 10.0 / math.sqrt(12.0)
    expected = -math.log(10.0) + 0.5 * math.log(2 * math.pi) + math.log(s) + math.log(
        stats.norm.cdf(10.0, 5.0, s) - stats.norm.cdf(0.0, 5.0, s)
    )
    assert value == pytest.approx(expected, rel=1e-12)
    assert -1.0 < value < 0.0


# -- posterior_probabilities -------------------------------------------------------------------------


def test_posterior_probabilities_normalise_log_posteriors():
    logs = {"a": math.log(1.0), "b": math.log(3.0), "c": -1000.0}
    out = posterior_probabilities(logs)
    reference = special.softmax(np.array(list(logs.values())))
    assert list(out) == ["a", "b", "c"]
    np.testing.assert_allclose(list(out.values()), reference, rtol=1e-12)
    assert out["a"] == pytest.approx(0.25) and out["b"] == pytest.approx(0.75)


def test_posterior_probabilities_survive_large_log_values():
    out = posterior_probabilities({"a": 1e6, "b": 1e6 + math.log(2.0)})
    assert out["a"] == pytest.approx(1 / 3) and out["b"] == pytest.approx(2 / 3)


def test_non_finite_log_posteriors_get_zero():
    out = posterior_probabilities({"a": 0.0, "b": -math.inf, "c": math.nan})
    assert out == {"a": 1.0, "b": 0.0, "c": 0.0}
    assert posterior_probabilities({"a": -math.inf, "b": math.nan}) == {"a": 0.0, "b": 0.0}
