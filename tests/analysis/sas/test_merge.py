"""Merging exposures: inverse-variance and exposure-time merges, configurations apart, bad points dropped."""

from __future__ import annotations

import numpy as np
import pytest

from analysis.sas import SASFitAnalysis, merge_measurements
from tests.analysis.sas.data import (
    SPHERE,
    SPHERE_TRUTH,
    grid,
    measurement,
    settings,
    simulate,
    smeared,
    sphere_pars,
)

pytestmark = pytest.mark.timeout(120)


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


def _slit_measurement(attempt: str, length, width=None, config: str = "usans"):
    from instruments.types import Measurement, Timing

    q = np.geomspace(1e-4, 5e-3, 10)
    data = {"q": q, "intensity": 1e4 * np.ones_like(q), "dq_slit_length": np.asarray(length, dtype=float)}
    if width is not None:
        data["dq_slit_width"] = np.asarray(width, dtype=float)
    return Measurement(
        attempt_id=attempt, instrument="usans", sample_id="s1", params={"configuration": config},
        data=data, sigma={"intensity": 100 * np.ones_like(q)}, timing=Timing(exposure_seconds=1.0),
    )


def test_slit_exposures_merge_into_a_slit_block_beside_a_pinhole_one():
    q, dq = grid("low", 10)
    pinhole = measurement(q, np.ones_like(q), dq, 0.1 * np.ones_like(q), config="usans", attempt="p")
    slit = [_slit_measurement("s1", 0.117), _slit_measurement("s2", np.full(10, 0.117), np.zeros(10))]
    blocks, flags, counts = merge_measurements([pinhole, *slit])
    assert flags == [] and counts["n_dropped"] == 0
    by_kind = {b.is_slit: b for b in blocks}
    assert len(blocks) == 2 and by_kind[True].n_exposures == 2 and by_kind[False].slit_length is None
    np.testing.assert_allclose(by_kind[True].slit_length, 0.117)
    np.testing.assert_allclose(by_kind[True].slit_width, 0.0)
    np.testing.assert_allclose(by_kind[True].sigma, 100 / np.sqrt(2))


def test_a_negative_slit_length_is_dropped_and_flagged():
    length = np.full(10, 0.117)
    length[3] = -1.0
    blocks, flags, counts = merge_measurements([_slit_measurement("s", length)])
    assert "negative-dq" in flags and counts["n_dropped"] == 1 and blocks[0].q.size == 9
