"""Fitting: parameter recovery, interval calibration, Gaussian priors, speed."""

from __future__ import annotations

import time

import numpy as np
import pytest

from analysis.sas import SASFitAnalysis
from tests.analysis.sas.data import (
    CLEAR_CASES,
    CORE_SHELL,
    CYLINDER,
    SPHERE,
    SPHERE_TRUTH,
    settings,
    simulate,
    sphere_pars,
)

pytestmark = pytest.mark.timeout(120)


def test_recovers_sphere_radius_and_polydispersity_within_3_sigma():
    rng = np.random.default_rng(11)
    out = SASFitAnalysis(settings(SPHERE)).interpret(simulate("sphere", sphere_pars(), rng, n=80))
    assert out.valid and out.flags == []
    assert out.details["best_model"] == "sphere" and out.details["converged"] is True
    assert out.details["n_points"] == 240
    for name, truth in SPHERE_TRUTH.items():
        est = out.estimates[name]
        assert est.sigma is not None and est.sigma > 0
        assert abs(est.value - truth) < 3 * est.sigma, (name, est, truth)
    assert out.estimates["radius"].units == "Ang"
    assert out.estimates["radius"].sigma < 1.0  # an informative fit, not a trivially wide interval
    assert 0.6 < out.details["chi2_reduced"] < 1.4
    assert out.estimates["p(sphere)"].value == pytest.approx(1.0)
    assert out.details["errors_scaled"] is False


def test_95_percent_intervals_are_calibrated():
    """Coverage of value ± 1.96σ over 48 independent datasets (4 parameters each)."""
    analysis = SASFitAnalysis(settings(SPHERE))
    hits = []
    for i in range(48):
        rng = np.random.default_rng(1000 + i)
        out = analysis.interpret(simulate("sphere", sphere_pars(), rng, n=25))
        for name, truth in SPHERE_TRUTH.items():
            est = out.estimates[name]
            hits.append(abs(est.value - truth) <= 1.96 * est.sigma)
    coverage = float(np.mean(hits))
    assert 0.88 <= coverage <= 0.99, coverage


def test_gaussian_prior_pulls_an_uninformed_parameter():
    data = simulate("sphere", sphere_pars(), np.random.default_rng(9), n=30, flux=0.05)
    pd_prior = {"value": 0.15, "bounds": [0.0, 0.3], "prior": {"mean": 0.2, "sigma": 0.01}}
    out = SASFitAnalysis(settings({**SPHERE, "parameters": {**SPHERE["parameters"], "radius_pd": pd_prior}})).interpret(data)
    est = out.estimates["radius_pd"]
    assert abs(est.value - 0.2) < 0.03 and est.sigma <= 0.0101


def test_three_candidates_on_three_configurations_is_fast_enough():
    st = settings(SPHERE, CORE_SHELL, CYLINDER)
    analysis = SASFitAnalysis(st)
    data = simulate("sphere", sphere_pars(), np.random.default_rng(16), n=80, exposure=30.0)
    analysis.interpret(data)  # warm-up: kernels compiled and loaded once per process
    start = time.perf_counter()
    out = analysis.interpret(data)
    elapsed = time.perf_counter() - start
    assert out.details["n_points"] == 240 and out.details["best_model"] == "sphere"
    # ~1200 model evaluations for three candidates (≈ 3× the former 2-start search: a local fit from
    # the initial values, the scan's best distinct points, and the check round — an independent scan
    # and a box around the best); ≲ 6 s on a quiet 2-core machine, the bound leaves room for a busy one.
    assert elapsed < 20.0, elapsed


def test_a_near_equivalent_second_minimum_is_flagged_and_covered_by_the_sigma():
    # A monodisperse sphere seen over one fringe with large noise: the radius fits almost as well one
    # fringe away (Δχ² ≈ 1.6). The answer must say so, not pick one to ±1 Å.
    from analysis.sas import SASFitSettings
    from tests.analysis.sas.data import measurement, smeared

    q = np.linspace(0.06, 0.12, 25)
    dq = np.full(q.size, 0.002)
    truth = smeared("sphere", q, dq, {"radius": 100.0, "sld": 1.0, "sld_solvent": 6.36, "scale": 0.01, "background": 0.0})
    sigma = 1.5 * truth.mean() * np.ones_like(q)
    y = truth + np.random.default_rng(3).normal(size=q.size) * sigma
    st = SASFitSettings(candidates=[{"name": "sphere", "model": "sphere", "fixed": {"sld": 1.0, "sld_solvent": 6.36},
                                     "parameters": {"radius": {"value": 50, "bounds": [10, 400]},
                                                    "scale": {"value": 0.01, "bounds": [0, 1]}}}])
    analysis = SASFitAnalysis(st)
    data = [measurement(q, y, dq, sigma)]
    out = analysis.interpret(data)
    fit = analysis.fit(data).fits["sphere"]
    radius = out.estimates["radius"]
    assert {"second-minimum", "second-minimum:radius"} <= set(out.flags) and 0 < out.details["second_minimum_delta_chi2"] < 4
    own = float(np.sqrt(fit.covariance[0, 0]))
    assert radius.sigma > 5 * own  # widened from the best minimum's own curvature …
    assert abs(radius.value - 100.0) < 1.96 * radius.sigma  # … so that it covers the truth


def test_fringe_parameters_leave_a_cylinders_length_out_of_the_scan_and_fit_as_well():
    # Orientation-averaged I(q) has fringes from a cylinder's radius, none from its length: counting
    # the length's 10–3000 Å range as fringes fills the start scan to its cap for nothing (up to
    # q = 0.15/Å: 3 × 143 length fringes against 3 × 14 radius ones).
    model, pars = CLEAR_CASES["cylinder"]
    data = simulate(model, pars, np.random.default_rng(21), configs=("low", "mid"), n=40, flux=2000.0)
    every = SASFitAnalysis(settings(CYLINDER)).fit(data).fits["cylinder"]
    radius_only = SASFitAnalysis(settings({**CYLINDER, "fringe_parameters": ["radius"]})).fit(data).fits["cylinder"]
    assert radius_only.n_evaluations < 0.85 * every.n_evaluations, (radius_only.n_evaluations, every.n_evaluations)
    assert radius_only.chi2 <= every.chi2 + 0.1
    for name in ("radius", "length"):
        assert abs(radius_only.params[name] - pars[name]) < 3 * radius_only.sigmas[name], name
    with pytest.raises(ValueError, match="fringe_parameters"):
        settings({**CYLINDER, "fringe_parameters": ["radius_pd"]})
