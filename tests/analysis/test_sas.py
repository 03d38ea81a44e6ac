"""SAS fitting: parameter recovery, interval calibration, model selection, merging, bad data, settings.

Data are made here with sasmodels directly (``DirectModel`` on ``Data1D`` with ``dx`` = pinhole dQ,
i.e. sasmodels' own smearing), never through ``simulators`` (the analysis layer must not need it),
and given Gaussian noise with a known, counts-like σ: σ² = (I + 0.05)/(flux · t).
"""

from __future__ import annotations

import time

import numpy as np
import pytest
from pydantic import ValidationError

from analysis.protocol import Analysis
from analysis.sas import (
    FitResult,
    SASFitAnalysis,
    SASFitSettings,
    fisher_information,
    merge_measurements,
)
from instruments.types import Measurement, Timing

pytestmark = pytest.mark.timeout(120)

# Three pinhole configurations (q_min, q_max, dq floor), like a SANS low/mid/high Q set-up.
CONFIGS = {"low": (0.003, 0.03, 0.0015), "mid": (0.015, 0.15, 0.004), "high": (0.06, 0.5, 0.01)}
D2O = 6.36  # 1e-6/Å²
SPHERE_TRUTH = {"radius": 60.0, "radius_pd": 0.1, "scale": 0.01, "background": 0.001}

_models: dict[str, object] = {}


def smeared(model: str, q: np.ndarray, dq: np.ndarray, pars: dict) -> np.ndarray:
    """Resolution-smeared I(q) by sasmodels (double precision, whole polydispersity mesh)."""
    from sasmodels.core import load_model
    from sasmodels.data import Data1D
    from sasmodels.direct_model import DirectModel

    if model not in _models:
        _models[model] = load_model(model, dtype="double")
    return DirectModel(Data1D(x=q, y=None, dx=dq), _models[model], cutoff=0.0)(**pars)


def grid(config: str, n: int) -> tuple[np.ndarray, np.ndarray]:
    lo, hi, dq0 = CONFIGS[config]
    q = np.geomspace(lo, hi, n)
    return q, np.sqrt((0.04 * q) ** 2 + dq0**2)


def measurement(q, intensity, dq, sigma, config="mid", exposure=10.0, attempt="a") -> Measurement:
    return Measurement(
        attempt_id=attempt, instrument="sans", sample_id="s1",
        params={"configuration": config, "exposure_seconds": exposure},
        data={"q": q, "intensity": intensity, "dq": dq}, sigma={"intensity": sigma},
        timing=Timing(exposure_seconds=exposure),
    )


def simulate(model, pars, rng, configs=("low", "mid", "high"), n=40, flux=20.0, exposure=10.0) -> list[Measurement]:
    out = []
    for j, config in enumerate(configs):
        q, dq = grid(config, n)
        truth = smeared(model, q, dq, pars)
        sigma = np.sqrt((np.abs(truth) + 0.05) / (flux * exposure))
        y = truth + rng.normal(size=q.size) * sigma
        out.append(measurement(q, y, dq, sigma, config, exposure, attempt=f"a{j}"))
    return out


def sphere_pars(**over) -> dict:
    pars = {**SPHERE_TRUTH, "sld": 1.0, "sld_solvent": D2O, "radius_pd_n": 35}
    pars.update(over)
    return pars


SCALE_BG = {"scale": {"value": 0.01, "bounds": [0, 0.1]}, "background": {"value": 0, "bounds": [-0.05, 0.05]}}
SPHERE = {
    "name": "sphere", "model": "sphere",
    "parameters": {
        "radius": {"value": 40, "bounds": [10, 300]}, "radius_pd": {"value": 0.15, "bounds": [0.0, 0.3]}, **SCALE_BG,
    },
    "fixed": {"sld": 1.0, "sld_solvent": D2O, "radius_pd_type": "gaussian", "radius_pd_n": 35},
}
CORE_SHELL = {
    "name": "core_shell", "model": "core_shell_sphere",
    "parameters": {
        "radius": {"value": 40, "bounds": [10, 300]}, "thickness": {"value": 10, "bounds": [5, 60]},
        "radius_pd": {"value": 0.15, "bounds": [0.0, 0.3]}, **SCALE_BG,
    },
    "fixed": {"sld_core": 1.0, "sld_shell": 3.0, "sld_solvent": D2O, "radius_pd_n": 35},
}
CYLINDER = {
    "name": "cylinder", "model": "cylinder",
    "parameters": {"radius": {"value": 30, "bounds": [5, 300]}, "length": {"value": 200, "bounds": [10, 3000]}, **SCALE_BG},
    # A fixed 10 % radius spread with 10 points keeps the (orientation-averaged) kernel cheap.
    "fixed": {"sld": 1.0, "sld_solvent": D2O, "radius_pd": 0.1, "radius_pd_n": 10},
}


def settings(*candidates, **over) -> SASFitSettings:
    return SASFitSettings.model_validate({"candidates": list(candidates), **over})


def test_is_an_analysis():
    assert isinstance(SASFitAnalysis(settings(SPHERE)), Analysis)
    assert SASFitAnalysis.name == "sas"


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


CLEAR_CASES = {
    "sphere": ("sphere", sphere_pars()),
    "core_shell": (
        "core_shell_sphere",
        {"radius": 40.0, "thickness": 15.0, "radius_pd": 0.1, "radius_pd_n": 35, "sld_core": 1.0,
         "sld_shell": 3.0, "sld_solvent": D2O, "scale": 0.01, "background": 0.001},
    ),
    "cylinder": (
        "cylinder",
        {"radius": 25.0, "length": 250.0, "radius_pd": 0.1, "radius_pd_n": 10, "sld": 1.0, "sld_solvent": D2O,
         "scale": 0.01, "background": 0.001},
    ),
}


@pytest.mark.parametrize("truth", list(CLEAR_CASES))
def test_model_selection_on_clearly_distinguishable_data(truth):
    model, pars = CLEAR_CASES[truth]
    rng = np.random.default_rng(5)
    data = simulate(model, pars, rng, n=40, flux=2000.0)
    out = SASFitAnalysis(settings(SPHERE, CORE_SHELL, CYLINDER)).interpret(data)
    probs = {name: out.estimates[f"p({name})"].value for name in ("sphere", "core_shell", "cylinder")}
    assert sum(probs.values()) == pytest.approx(1.0)
    assert out.details["best_model"] == truth, probs
    assert probs[truth] > 0.95, probs
    assert out.details["best_model_probability"] == pytest.approx(probs[truth])
    assert out.valid
    for name in ("sphere", "core_shell", "cylinder"):
        assert isinstance(out.details[f"log_evidence:{name}"], float)


def test_bic_evidence_also_selects_the_true_model():
    model, pars = CLEAR_CASES["cylinder"]
    data = simulate(model, pars, np.random.default_rng(6), n=40, flux=2000.0)
    out = SASFitAnalysis(settings(SPHERE, CYLINDER, evidence="bic")).interpret(data)
    assert out.details["best_model"] == "cylinder" and out.estimates["p(cylinder)"].value > 0.95
    assert out.details["evidence_method"] == "bic"


def test_model_probability_is_not_confident_on_data_too_noisy_to_tell():
    # Sphere data counted ~10⁴ times less than above: sphere, core-shell and cylinder all fit.
    data = simulate("sphere", sphere_pars(), np.random.default_rng(8), n=40, flux=0.05)
    out = SASFitAnalysis(settings(SPHERE, CORE_SHELL, CYLINDER)).interpret(data)
    probs = [out.estimates[f"p({m})"].value for m in ("sphere", "core_shell", "cylinder")]
    assert sum(probs) == pytest.approx(1.0)
    assert max(probs) < 0.9, probs


def test_model_prior_enters_the_posterior():
    data = simulate("sphere", sphere_pars(), np.random.default_rng(8), n=40, flux=0.05)
    flat = SASFitAnalysis(settings(SPHERE, CORE_SHELL)).interpret(data)
    tilted = SASFitAnalysis(settings(SPHERE, CORE_SHELL, model_prior={"sphere": 1, "core_shell": 9})).interpret(data)
    p0, p1 = flat.estimates["p(core_shell)"].value, tilted.estimates["p(core_shell)"].value
    odds = (p1 / (1 - p1)) / (p0 / (1 - p0))
    assert odds == pytest.approx(9.0, rel=1e-6)


def test_merging_exposures_equals_fitting_with_accumulated_sigma():
    rng = np.random.default_rng(21)
    pars = sphere_pars()
    q, dq = grid("mid", 60)
    truth = smeared("sphere", q, dq, pars)
    exposures = []
    for i, t in enumerate((5.0, 15.0)):
        sigma = np.sqrt((truth + 0.05) / (20.0 * t))
        exposures.append(measurement(q, truth + rng.normal(size=q.size) * sigma, dq, sigma, "mid", t, f"e{i}"))
    w = [1 / m.sigma["intensity"] ** 2 for m in exposures]
    merged_i = (w[0] * exposures[0].data["intensity"] + w[1] * exposures[1].data["intensity"]) / (w[0] + w[1])
    merged_s = 1 / np.sqrt(w[0] + w[1])
    single = measurement(q, merged_i, dq, merged_s, "mid", 20.0, "merged")

    analysis = SASFitAnalysis(settings(SPHERE))
    two, one = analysis.interpret(exposures), analysis.interpret([single])
    assert two.details["n_points"] == one.details["n_points"] == 60
    assert two.details["n_configurations"] == 1
    for name in SPHERE_TRUTH:
        assert two.estimates[name].value == pytest.approx(one.estimates[name].value, rel=1e-7, abs=1e-12)
        assert two.estimates[name].sigma == pytest.approx(one.estimates[name].sigma, rel=1e-6)
    assert two.details["chi2"] == pytest.approx(one.details["chi2"], rel=1e-8)

    # The exposure-time merge is literally "accumulate the counts" when σ² ∝ I/t.
    blocks, _, _ = merge_measurements(exposures, merge="exposure_time")
    (block,) = blocks
    t = np.array([5.0, 15.0])
    expected = (t[0] * exposures[0].data["intensity"] + t[1] * exposures[1].data["intensity"]) / t.sum()
    np.testing.assert_allclose(block.intensity, expected, rtol=1e-12)
    expected_sigma = np.sqrt(sum(ti**2 * m.sigma["intensity"] ** 2 for ti, m in zip(t, exposures))) / t.sum()
    np.testing.assert_allclose(block.sigma, expected_sigma, rtol=1e-12)
    np.testing.assert_allclose(block.sigma, np.sqrt((truth + 0.05) / (20.0 * 20.0)), rtol=1e-12)


def test_configurations_are_kept_apart_and_fitted_jointly():
    data = simulate("sphere", sphere_pars(), np.random.default_rng(3), n=30)
    data += simulate("sphere", sphere_pars(), np.random.default_rng(4), configs=("mid",), n=30)
    blocks, flags, _ = merge_measurements(data)
    assert flags == [] and sorted(b.configuration for b in blocks) == ["high", "low", "mid"]
    assert {b.configuration: b.n_exposures for b in blocks}["mid"] == 2
    out = SASFitAnalysis(settings(SPHERE)).interpret(data)
    assert out.details["n_configurations"] == 3 and out.details["n_points"] == 90


def test_nan_and_nonpositive_sigma_points_are_dropped_and_flagged():
    data = simulate("sphere", sphere_pars(), np.random.default_rng(12), n=40)
    bad = data[1]
    y, s, dq = bad.data["intensity"].copy(), bad.sigma["intensity"].copy(), bad.data["dq"].copy()
    y[[3, 17]] = np.nan
    s[5] = 0.0
    s[6] = -1.0
    dq[8] = np.inf
    y[9] = np.inf
    data[1] = measurement(bad.data["q"], y, dq, s, "mid", attempt="bad")
    out = SASFitAnalysis(settings(SPHERE)).interpret(data)
    assert {"non-finite-data", "non-positive-sigma"} <= set(out.flags)
    assert out.valid
    assert out.details["n_points"] == 120 - 6 and out.details["n_dropped_points"] == 6
    for name, truth in SPHERE_TRUTH.items():
        est = out.estimates[name]
        assert abs(est.value - truth) < 4 * est.sigma


def test_pure_noise_is_flagged_and_does_not_raise():
    rng = np.random.default_rng(13)
    data = []
    for j, config in enumerate(("low", "mid")):
        q, dq = grid(config, 40)
        sigma = np.full(q.size, 0.1)
        data.append(measurement(q, rng.normal(size=q.size) * sigma, dq, sigma, config, attempt=f"n{j}"))
    out = SASFitAnalysis(settings(SPHERE, CORE_SHELL)).interpret(data)
    assert "no-signal" in out.flags
    assert not out.valid
    assert any(f.startswith(("unconstrained:", "at-bound:")) for f in out.flags)
    # Probabilities are still reported (finite, normalised); on flat data they mostly reflect how much
    # of each model's prior predicts a small signal, so no particular value is asserted.
    probs = [out.estimates["p(sphere)"].value, out.estimates["p(core_shell)"].value]
    assert all(0 <= p <= 1 for p in probs) and sum(probs) == pytest.approx(1.0)
    assert not any(f.startswith("fit-failed") for f in out.flags)


def test_wrong_model_is_flagged_poor_fit():
    model, pars = CLEAR_CASES["cylinder"]
    data = simulate(model, pars, np.random.default_rng(14), n=40, flux=2000.0)
    out = SASFitAnalysis(settings(SPHERE)).interpret(data)
    assert "poor-fit" in out.flags and out.details["chi2_reduced"] > 1.5
    assert out.valid  # a poor fit is shown and usable with care; σ are not silently inflated
    assert out.details["errors_scaled"] is False
    scaled = SASFitAnalysis(settings(SPHERE, scale_errors=True)).interpret(data)
    assert scaled.details["errors_scaled"] is True
    ratio = scaled.estimates["radius"].sigma / out.estimates["radius"].sigma
    assert ratio == pytest.approx(np.sqrt(out.details["chi2_reduced"]), rel=1e-6)


@pytest.mark.parametrize(
    "case",
    ["all-nan", "empty", "missing-key", "shape-mismatch", "zero-sigma", "negative-q", "two-points", "grid-mismatch",
     "duplicate-q", "zero-dq"],
)
def test_bad_data_never_raises(case):
    q, dq = grid("mid", 20)
    good = np.ones(20)
    if case == "all-nan":
        data = [measurement(q, np.full(20, np.nan), dq, good)]
    elif case == "empty":
        data = [measurement(np.array([]), np.array([]), np.array([]), np.array([]))]
    elif case == "missing-key":
        data = [Measurement(attempt_id="m", instrument="sans", params={"configuration": "mid"},
                            data={"q": q, "intensity": good}, sigma={}, timing=Timing(exposure_seconds=1))]
    elif case == "shape-mismatch":
        data = [measurement(q, good[:10], dq, good)]
    elif case == "zero-sigma":
        data = [measurement(q, good, dq, np.zeros(20))]
    elif case == "negative-q":
        data = [measurement(-q, good, dq, good)]
    elif case == "two-points":
        data = [measurement(q[:2], good[:2], dq[:2], good[:2])]
    elif case == "grid-mismatch":
        data = simulate("sphere", sphere_pars(), np.random.default_rng(1), configs=("mid",), n=20)
        q2, dq2 = grid("mid", 25)
        data.append(measurement(q2, smeared("sphere", q2, dq2, sphere_pars()), dq2, np.full(25, 0.01), "mid"))
    else:
        (m,) = simulate("sphere", sphere_pars(), np.random.default_rng(1), configs=("mid",), n=20)
        q2, y2, dq2, s2 = (m.data["q"], m.data["intensity"], m.data["dq"], m.sigma["intensity"])
        if case == "duplicate-q":
            q2, y2, dq2, s2 = (np.concatenate([a, a[:5]]) for a in (q2, y2, dq2, s2))
        data = [measurement(q2, y2, np.zeros_like(dq2) if case == "zero-dq" else dq2, s2)]
    out = SASFitAnalysis(settings(SPHERE)).interpret(data)
    assert out.analysis == "sas"
    if case in ("duplicate-q", "zero-dq"):
        # Unusual but legal data (repeated q; no resolution given): fitted normally.
        assert out.valid and out.details["converged"] is True
    elif case == "grid-mismatch":
        assert "q-grid-mismatch:mid" in out.flags and out.details["n_configurations"] == 2
    else:
        assert out.flags and not out.valid
        assert set(out.estimates) == {"radius", "radius_pd", "scale", "background", "p(sphere)", "p(best)"}


def test_settings_name_an_unknown_model_and_list_valid_ones():
    with pytest.raises(ValidationError, match="spheer") as info:
        settings({**SPHERE, "model": "spheer"})
    assert "core_shell_sphere" in str(info.value)  # the list of valid model names
    with pytest.raises(ValidationError, match="cylindr"):
        settings({**SPHERE, "model": "sphere+cylindr"})


def test_settings_name_an_unknown_parameter_and_list_the_models_parameters():
    params = {**SPHERE["parameters"], "radus": {"value": 1, "bounds": [0, 2]}}
    with pytest.raises(ValidationError, match="radus") as info:
        settings({**SPHERE, "parameters": params})
    message = str(info.value)
    assert "radius_pd" in message and "sld_solvent" in message
    with pytest.raises(ValidationError, match="thikness"):
        settings({**CORE_SHELL, "fixed": {**CORE_SHELL["fixed"], "thikness": 3}})


@pytest.mark.parametrize(
    "change, match",
    [
        ({"radius": {"value": 40, "bounds": [-5, 300]}}, "limits"),
        ({"radius": {"value": 400, "bounds": [10, 300]}}, "outside bounds"),
        ({"radius": {"value": 40, "bounds": [300, 10]}}, "low < high"),
        ({"radius_pd_n": {"value": 3, "bounds": [1, 5]}}, "cannot be fitted"),
    ],
)
def test_settings_reject_bad_parameters(change, match):
    with pytest.raises(ValidationError, match=match):
        settings({**SPHERE, "parameters": {**SPHERE["parameters"], **change}})


def test_settings_reject_bad_fixed_values_and_names():
    with pytest.raises(ValidationError, match="radius_pd_type"):
        settings({**SPHERE, "fixed": {**SPHERE["fixed"], "radius_pd_type": "cauchy"}})
    with pytest.raises(ValidationError, match="both fitted and fixed"):
        settings({**SPHERE, "fixed": {**SPHERE["fixed"], "radius": 50}})
    with pytest.raises(ValidationError, match="unique"):
        settings(SPHERE, SPHERE)
    with pytest.raises(ValidationError, match="model_prior"):
        settings(SPHERE, model_prior={"ellipsoid": 1.0})
    with pytest.raises(ValidationError, match="report"):
        settings(SPHERE, report=["length"])
    with pytest.raises(ValidationError):
        settings({**SPHERE, "parameters": {**SPHERE["parameters"], "radius": {"value": 40, "bounds": [10, float("inf")]}}})
    s = settings(SPHERE, CYLINDER, report=["radius", "length"])
    assert s.estimate_names() == ["radius", "length", "p(sphere)", "p(cylinder)", "p(best)"]


def test_gaussian_prior_pulls_an_uninformed_parameter():
    data = simulate("sphere", sphere_pars(), np.random.default_rng(9), n=30, flux=0.05)
    pd_prior = {"value": 0.15, "bounds": [0.0, 0.3], "prior": {"mean": 0.2, "sigma": 0.01}}
    out = SASFitAnalysis(settings({**SPHERE, "parameters": {**SPHERE["parameters"], "radius_pd": pd_prior}})).interpret(data)
    est = out.estimates["radius_pd"]
    assert abs(est.value - 0.2) < 0.03 and est.sigma <= 0.0101


def test_report_of_a_parameter_the_best_model_lacks_is_flagged():
    model, pars = CLEAR_CASES["cylinder"]
    data = simulate(model, pars, np.random.default_rng(2), n=30, flux=2000.0)
    out = SASFitAnalysis(settings(SPHERE, CYLINDER, report=["radius", "length", "radius_pd"])).interpret(data)
    assert out.details["best_model"] == "cylinder"
    assert out.estimates["length"].value == pytest.approx(250.0, rel=0.05)
    # radius_pd is fixed (0.1) in the cylinder candidate: value known by assumption, σ unknown.
    assert out.estimates["radius_pd"].value == 0.1 and out.estimates["radius_pd"].sigma is None


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


def test_three_candidates_on_three_configurations_is_fast_enough():
    st = settings(SPHERE, CORE_SHELL, CYLINDER)
    analysis = SASFitAnalysis(st)
    data = simulate("sphere", sphere_pars(), np.random.default_rng(16), n=80, exposure=30.0)
    analysis.interpret(data)  # warm-up: kernels compiled and loaded once per process
    start = time.perf_counter()
    out = analysis.interpret(data)
    elapsed = time.perf_counter() - start
    assert out.details["n_points"] == 240 and out.details["best_model"] == "sphere"
    # Target ≲ 2 s on a quiet 2-core machine; the bound leaves room for a busy CI runner.
    assert elapsed < 8.0, elapsed
