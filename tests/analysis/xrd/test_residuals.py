"""The residual tests tell a missing phase from a too-simple profile (synthetic residuals, exact truth)."""

from __future__ import annotations

import numpy as np

from analysis.xrd.residuals import missing_log_odds, residual_verdict
from physics.xrd import pseudo_voigt

X = np.arange(20.0, 80.0, 0.02)
BACKGROUND = np.full(X.size, 50.0)
CENTRES = (30.0, 45.0, 60.0)


def _peaks(fwhm: float, centres=CENTRES, area: float = 400.0) -> np.ndarray:
    return sum(area / 0.02 * pseudo_voigt(X - c, np.full(X.size, fwhm), np.full(X.size, 0.5)) for c in centres)


def test_a_peak_no_phase_has_is_unexplained_and_raises_the_missing_odds() -> None:
    rng = np.random.default_rng(1)
    model = BACKGROUND + _peaks(0.15)
    counts = rng.poisson(model + _peaks(0.15, centres=(52.0,), area=150.0)).astype(float)
    verdict = residual_verdict(X, counts, model, BACKGROUND, 0.15, 0.01)
    assert [round(x) for x, _, _ in verdict.unexplained] == [52]
    assert missing_log_odds(verdict, 1.0, -np.log(40)) > 5


def test_a_too_narrow_profile_is_a_profile_misfit_not_a_missing_phase() -> None:
    rng = np.random.default_rng(2)
    model = BACKGROUND + _peaks(0.15)
    counts = rng.poisson(BACKGROUND + _peaks(0.25)).astype(float)  # the truth is broader
    verdict = residual_verdict(X, counts, model, BACKGROUND, 0.15, 0.01)
    assert verdict.profile_misfit
    assert verdict.unexplained == []


def test_a_right_model_raises_nothing() -> None:
    hits = 0
    for seed in range(20):
        model = BACKGROUND + _peaks(0.15)
        counts = np.random.default_rng(seed).poisson(model).astype(float)
        verdict = residual_verdict(X, counts, model, BACKGROUND, 0.15, 0.01)
        hits += bool(verdict.unexplained or verdict.traces or verdict.profile_misfit)
    assert hits <= 1  # each test's family-wise false-alarm rate is 10⁻³


def test_a_tiny_peak_is_a_trace_not_a_missing_phase() -> None:
    rng = np.random.default_rng(3)
    model = BACKGROUND + _peaks(0.15, area=3000.0)
    counts = rng.poisson(model + _peaks(0.15, centres=(52.0,), area=60.0)).astype(float)
    verdict = residual_verdict(X, counts, model, BACKGROUND, 0.15, 0.01)
    assert verdict.unexplained == []
    assert [round(x) for x, _, _ in verdict.traces] == [52]


def test_a_missing_phase_spread_over_many_small_peaks_is_unexplained_together() -> None:
    # eight peaks of 0.6 % of the diffracted counts each: every one alone is below the 1 % materiality
    # floor, together they are a 5 % phase the set lacks
    rng = np.random.default_rng(4)
    model = BACKGROUND + _peaks(0.15, area=4000.0)
    missing = (24.0, 34.0, 38.0, 49.0, 53.0, 56.0, 66.0, 72.0)
    counts = rng.poisson(model + _peaks(0.15, centres=missing, area=75.0)).astype(float)
    verdict = residual_verdict(X, counts, model, BACKGROUND, 0.15, 0.01)
    assert verdict.traces == []
    assert sorted(round(x) for x, _, _ in verdict.unexplained) == list(missing)
    assert missing_log_odds(verdict, 1.0, -np.log(40)) > 5


def test_a_weak_peak_of_the_set_does_not_hide_a_missing_phase_beside_it() -> None:
    # the set's own peak at 52.36° stands a third of a background σ high (2.4 counts; its strong peak at 30°
    # 80,000); the missing phase's peak 0.36° away holds 2 % of the diffracted counts
    rng = np.random.default_rng(5)
    model = BACKGROUND + _peaks(0.15, centres=(30.0,), area=300.0) + _peaks(0.15, centres=(52.36,), area=0.0076)
    counts = rng.poisson(model + _peaks(0.15, centres=(52.0,), area=6.0)).astype(float)
    verdict = residual_verdict(X, counts, model, BACKGROUND, 0.15, 0.01)
    assert [round(x) for x, _, _ in verdict.unexplained] == [52]
