"""The SAS fit on real measurements shipped with sasdata, against direct fits written here.

References are fitted in this file with sasmodels kernels and resolution objects and
:func:`scipy.optimize.least_squares` — never with labpilot's fit. Pinhole smearing of the latex SANS
block is integrated on a dense grid (sasmodels' default sampling at the data points misses its
first point by ~30 %: dq/q ≈ 0.3 there), slit smearing on a dense grid to the end of the slit.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import least_squares

from analysis.sas import SASFitAnalysis, SASFitSettings
from tests.analysis.sas.real_data import load_blocks, measurement_of

pytestmark = pytest.mark.timeout(120)

LATEX_SPHERE = {
    "name": "sphere", "model": "sphere",
    "parameters": {
        "radius": {"value": 1000, "bounds": [10, 10000]}, "radius_pd": {"value": 0.1, "bounds": [0, 0.5]},
        "scale": {"value": 0.01, "bounds": [0, 1]}, "background": {"value": 0.0, "bounds": [-1, 10]},
    },
    "fixed": {"sld": 1.0, "sld_solvent": 6.3},
}
COIL = {
    "name": "coil", "model": "mono_gauss_coil",
    "parameters": {
        "i_zero": {"value": 10, "bounds": [0, 1e4]}, "rg": {"value": 50, "bounds": [1, 1000]},
        "background": {"value": 0, "bounds": [-1, 10]},
    },
}


def _dense_kernel(q_calc: np.ndarray):
    from sasmodels.core import load_model

    return load_model("sphere", dtype="double").make_kernel([q_calc])


def _reference_sphere(blocks, starts, n_calc: int = 6000) -> tuple[float, np.ndarray, float]:
    """Direct weighted least squares of a Gaussian-polydisperse sphere (35 points, 3 σ) to sasdata
    blocks: (best χ², [radius, radius_pd, scale, background], σ of the radius)."""
    from sasmodels import resolution
    from sasmodels.direct_model import call_kernel

    parts = []
    for b in blocks:
        q = np.asarray(b.x, dtype=float)
        if getattr(b, "dxl", None) is not None:
            top = float(np.max(np.sqrt(q**2 + np.asarray(b.dxl) ** 2)))
            res = resolution.Slit1D(q, q_length=np.asarray(b.dxl), q_width=np.zeros_like(q),
                                    q_calc=np.geomspace(0.5 * q.min(), top, n_calc))
        else:
            dq = np.asarray(b.dx, dtype=float)
            q_calc = np.geomspace(max(float(np.min(q - 2.5 * dq)), 0.02 * q.min()), float(np.max(q + 3 * dq)), n_calc)
            res = resolution.Pinhole1D(q, dq, q_calc=q_calc)
        parts.append((res, _dense_kernel(res.q_calc), np.asarray(b.y), np.asarray(b.dy)))

    def residuals(t: np.ndarray) -> np.ndarray:
        pars = {"sld": 1.0, "sld_solvent": 6.3, "radius": t[0], "radius_pd": t[1], "radius_pd_n": 35,
                "radius_pd_nsigma": 3, "scale": t[2], "background": 0.0}
        return np.concatenate([(res.apply(call_kernel(k, pars, cutoff=0.0)) + t[3] - y) / dy for res, k, y, dy in parts])

    fits = [least_squares(residuals, [r, pd, 0.006, 0.06], bounds=([10, 0, 0, -1], [1e4, 0.5, 1, 10]), x_scale="jac")
            for r, pd in starts]
    best = min(fits, key=lambda f: f.cost)
    cov = np.linalg.inv(best.jac.T @ best.jac)
    return 2 * float(best.cost), best.x, float(np.sqrt(cov[0, 0]))


def test_tk49_radius_of_gyration_equals_a_direct_sasmodels_fit():
    from sasmodels.core import load_model
    from sasmodels.data import Data1D
    from sasmodels.direct_model import DirectModel

    (block,) = load_blocks("ISIS_Polymer_Blend_TK49.xml")
    assert not np.any(np.asarray(block.dx) > 0)  # no resolution given: unsmeared
    direct = DirectModel(Data1D(x=block.x, y=block.y, dy=block.dy), load_model("mono_gauss_coil", dtype="double"))
    names = ["i_zero", "rg", "background"]

    def residuals(t: np.ndarray) -> np.ndarray:
        return (direct(**dict(zip(names, t))) - block.y) / block.dy

    ref = least_squares(residuals, [10.0, 50.0, 0.0], bounds=([0, 1, -1], [1e4, 1000, 10]), x_scale="jac")
    rg_sigma = float(np.sqrt(np.linalg.inv(ref.jac.T @ ref.jac)[1, 1]))
    out = SASFitAnalysis(SASFitSettings(candidates=[COIL])).interpret([measurement_of(block, "tk49")])
    rg = out.estimates["rg"]
    assert abs(rg.value - ref.x[1]) < 0.2 * rg_sigma, (rg.value, ref.x[1], rg_sigma)
    assert rg.sigma == pytest.approx(rg_sigma, rel=0.05)
    assert out.valid and "poor-fit" not in out.flags and "second-minimum" not in out.flags


def test_latex_sans_and_slit_smeared_usans_fit_jointly_like_a_direct_joint_fit():
    sans, usans = load_blocks("latex_smeared.xml")
    chi2_ref, x_ref, _ = _reference_sphere([sans, usans], [(r, pd) for r in (1800, 2200, 2600) for pd in (0.02, 0.1)])
    measurements = [measurement_of(sans, "sans"), measurement_of(usans, "usans", "a1")]
    assert "dq_slit_length" in measurements[1].data
    out = SASFitAnalysis(SASFitSettings(candidates=[LATEX_SPHERE])).interpret(measurements)
    radius = out.estimates["radius"].value
    assert abs(radius - x_ref[0]) < 0.01 * x_ref[0], (radius, x_ref)
    # labpilot's optimum is as good (its quadrature grids are coarser than the reference's: ~1 % in χ²)
    assert out.details["chi2"] <= chi2_ref * 1.02
    assert out.details["resolution:usans"] == "slit" and out.details["resolution:sans"] == "pinhole"
    # One absolute scale fits both blocks: each block alone would want the shared scale within 2 %.
    assert abs(out.details["block_scale:usans"] - 1) < 0.02 and abs(out.details["block_scale:sans"] - 1) < 0.02
    # χ²_red ≈ 2: flagged, and the target machinery will not count it.
    assert "poor-fit" in out.flags and out.details["probability_temperature"] > 1.5


def test_latex_sans_alone_reports_the_global_optimum_and_says_the_first_round_missed_it():
    (sans, _usans) = load_blocks("latex_smeared.xml")
    grid = [(r, pd) for r in np.arange(1500, 2700, 100) for pd in (0.02, 0.12)]
    chi2_ref, x_ref, radius_sigma = _reference_sphere([sans], grid, n_calc=2000)
    out = SASFitAnalysis(SASFitSettings(candidates=[LATEX_SPHERE])).interpret([measurement_of(sans, "sans")])
    radius = out.estimates["radius"]
    assert out.details["chi2"] <= chi2_ref * 1.02, (out.details["chi2"], chi2_ref, x_ref)  # quadrature: ~1 %
    assert abs(radius.value - x_ref[0]) < radius_sigma, (radius.value, x_ref)
    # The first round of starts stops at a broad minimum (R ≈ 1713 Å, χ² 8.7 higher); the check found
    # the narrow valley. A near-equivalent minimum (Δχ² < 4) would be flagged second-minimum.
    assert "search-widened" in out.flags
    assert radius.sigma >= 0.9 * radius_sigma
