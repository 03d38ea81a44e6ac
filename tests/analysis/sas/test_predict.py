"""Planner support: the fit's information is JᵀWJ of the prediction's Jacobian; prospective information.

``fisher_information`` was a production function no planner used; it is kept here as the reference
computation a planner does with :func:`predict_with_jacobian` (JᵀWJ of a prospective exposure).
"""

from __future__ import annotations

import numpy as np
import pytest

from analysis.sas import (
    FitResult,
    SASFitAnalysis,
    SASFitSettings,
    predict_with_jacobian,
    prior_precision,
)
from tests.analysis.sas.data import SPHERE, grid, settings, simulate, sphere_pars

pytestmark = pytest.mark.timeout(120)


def fisher_information(
    settings: SASFitSettings, fitted_model: FitResult, q: np.ndarray, dq: np.ndarray, sigma: np.ndarray
) -> np.ndarray:
    """JᵀWJ, (k, k), of a prospective measurement (q, dq, expected σ; (n,)) at the fitted model;
    points with non-finite inputs or σ ≤ 0 contribute nothing."""
    q = np.asarray(q, dtype=float).reshape(-1)
    dq = np.broadcast_to(np.asarray(dq, dtype=float), q.shape).reshape(-1)
    sigma = np.broadcast_to(np.asarray(sigma, dtype=float), q.shape).reshape(-1)
    with np.errstate(invalid="ignore"):
        ok = np.isfinite(q) & np.isfinite(dq) & np.isfinite(sigma) & (sigma > 0) & (q > 0) & (dq >= 0)
    k = fitted_model.k
    if not ok.any():
        return np.zeros((k, k))
    order = np.argsort(q[ok])
    _, jac, _ = predict_with_jacobian(settings, fitted_model.model, fitted_model.params, q[ok][order], dq[ok][order])
    jac = jac / sigma[ok][order][:, None]
    return jac.T @ jac


def test_fisher_information_matches_the_fit_and_predicts_its_covariance():
    data = simulate("sphere", sphere_pars(), np.random.default_rng(15), configs=("mid",), n=50)
    st = settings(SPHERE)
    report = SASFitAnalysis(st).fit(data)
    fit = report.fits["sphere"]
    assert isinstance(fit, FitResult) and fit.converged and fit.names == ("radius", "radius_pd", "scale", "background")
    (block,) = report.blocks
    info = fisher_information(st, fit, block.q, block.dq, block.sigma)
    assert info.shape == (4, 4)
    np.testing.assert_allclose(info, info.T, rtol=1e-12)
    np.testing.assert_allclose(info, fit.information, rtol=1e-6)
    np.testing.assert_allclose(np.linalg.inv(info), fit.covariance, rtol=1e-5)
    # A prospective high-Q configuration adds information; bad points contribute nothing.
    q, dq = grid("high", 40)
    sigma = np.full(q.size, 0.01)
    extra = fisher_information(st, fit, q, dq, sigma)
    assert np.all(np.linalg.eigvalsh(extra) >= -1e-9 * np.abs(extra).max())
    sigma_bad = sigma.copy()
    sigma_bad[:5] = np.nan
    partial = fisher_information(st, fit, q, dq, sigma_bad)
    np.testing.assert_allclose(partial, fisher_information(st, fit, q[5:], dq[5:], sigma[5:]), rtol=1e-9)
    predicted = np.linalg.inv(fit.information + extra)
    assert predicted[0, 0] < fit.covariance[0, 0]


def test_prior_precision_is_one_over_variance_for_gaussian_and_twelve_over_width_squared_for_uniform():
    pd_prior = {"value": 0.15, "bounds": [0.0, 0.3], "prior": {"mean": 0.2, "sigma": 0.01}}
    st = settings({**SPHERE, "parameters": {**SPHERE["parameters"], "radius_pd": pd_prior}})
    # radius [10, 300], radius_pd N(0.2, 0.01²), scale [0, 0.1], background [-0.05, 0.05]
    expected = np.diag([12 / 290**2, 1 / 0.01**2, 12 / 0.1**2, 12 / 0.1**2])
    np.testing.assert_allclose(prior_precision(st, "sphere"), expected, rtol=1e-12)


def test_prediction_is_the_smeared_model_and_its_jacobian_matches_a_finite_difference():
    st = settings(SPHERE)
    q, dq = grid("mid", 30)
    values = {"radius": 60.0, "radius_pd": 0.1, "scale": 0.01, "background": 0.001}
    intensity, jac, names = predict_with_jacobian(st, "sphere", values, q, dq)
    assert names == ("radius", "radius_pd", "scale", "background") and jac.shape == (30, 4)
    # I is linear in scale and background: their columns are I_without_background / scale and 1.
    np.testing.assert_allclose(jac[:, 2], (intensity - 0.001) / 0.01, rtol=1e-6)
    np.testing.assert_allclose(jac[:, 3], 1.0, rtol=1e-6)  # a step of 1e-8: round-off ~1e-7
    up, _, _ = predict_with_jacobian(st, "sphere", {**values, "radius": 60.001}, q, dq)
    down, _, _ = predict_with_jacobian(st, "sphere", {**values, "radius": 59.999}, q, dq)
    np.testing.assert_allclose((up - down) / 0.002, jac[:, 0], rtol=1e-4, atol=1e-5 * np.abs(jac[:, 0]).max())
