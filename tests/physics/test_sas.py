"""physics.sas against reference values: the kernel grid, the sphere form factor written out here,
smearing that leaves a constant alone, caches, and the compile lock.

The sphere reference is the textbook form factor, independent of sasmodels::

    I(q) = scale · 1e-4 · Δρ² · V · [3 (sin qR − qR cos qR) / (qR)³]² + background     (1/cm)

with Δρ in 1e-6/Å², V = 4/3 π R³ in Å³ (1e-4 turns 1e-12/Å⁴ · Å³ into 1/cm).
"""

from __future__ import annotations

import math
import threading

import numpy as np
import pytest

from physics.constants import HC_KEV_ANGSTROM
from physics.sas import (
    FWHM_PER_SIGMA,
    PinholeEvaluator,
    compile_lock,
    fit_resolution,
    kernel_defaults,
    kernel_model,
    library_models,
    log_q_grid,
    model_info,
    parameter_table,
    polydispersity_types,
    sasmodels_resolution,
    smeared_intensity,
    truth_resolution,
)

pytestmark = pytest.mark.timeout(120)


def sphere_reference(q: np.ndarray, radius: float, sld: float, sld_solvent: float, scale: float, background: float) -> np.ndarray:
    x = q * radius
    amplitude = 3 * (np.sin(x) - x * np.cos(x)) / x**3
    volume = 4 / 3 * math.pi * radius**3
    return scale * 1e-4 * (sld - sld_solvent) ** 2 * volume * amplitude**2 + background


# -- constants ---------------------------------------------------------------------------------------


def test_constants():
    assert FWHM_PER_SIGMA == pytest.approx(2.3548200450309493, rel=1e-15)
    assert HC_KEV_ANGSTROM / 8.04778 == pytest.approx(1.5406, abs=1e-4)  # Cu Kα1


# -- the kernel grid ---------------------------------------------------------------------------------


def test_log_q_grid_bounds_and_size():
    q = np.array([0.01, 0.02, 0.04])
    dq = 0.1 * q
    grid = log_q_grid(q, dq, per_sigma=8, at_least=6, at_most=1500)
    # −2.5σ below the first point, +3σ above the last; ⌈ln(0.052/0.0075) · 8 / 0.1⌉ = 155 points.
    assert grid[0] == pytest.approx(0.0075, rel=1e-12) and grid[-1] == pytest.approx(0.052, rel=1e-12)
    assert grid.size == 155
    np.testing.assert_allclose(np.diff(np.log(grid)), math.log(0.052 / 0.0075) / 154, rtol=1e-9)
    assert log_q_grid(q, dq, per_sigma=8, at_least=6, at_most=100).size == 100
    assert log_q_grid(q, dq, per_sigma=8, at_least=400, at_most=1500).size == 400


def test_log_q_grid_ignores_points_without_resolution_and_keeps_q_positive():
    q = np.array([0.01, 0.02, 0.04])
    dq = np.array([0.0, 0.002, 0.004])
    grid = log_q_grid(q, dq, per_sigma=8, at_least=6, at_most=1500)
    # The narrowest relative resolution is over dq > 0 only (0.1); the lower end is the first point.
    assert grid[0] == pytest.approx(0.01) and grid[-1] == pytest.approx(0.052)
    assert grid.size == math.ceil(math.log(0.052 / 0.01) * 80)
    wide = log_q_grid(np.array([0.01]), np.array([0.01]), per_sigma=8, at_least=2, at_most=1500)
    assert wide[0] == pytest.approx(0.02 * 0.01)  # sasmodels' MINIMUM_ABSOLUTE_Q of the smallest q


def test_fit_resolution_without_dq_is_unsmeared_at_the_data():
    q = np.geomspace(0.01, 0.1, 7)
    block = fit_resolution(q, np.zeros_like(q))
    np.testing.assert_array_equal(block.q_kernel, q)
    assert not block.interpolate


# -- the evaluator against the textbook sphere -------------------------------------------------------


def test_unsmeared_sphere_matches_the_analytic_form_factor():
    q = np.array([0.003, 0.01, 0.05, 0.1, 0.2])
    pars = {"radius": 50.0, "sld": 1.0, "sld_solvent": 6.36, "scale": 0.01, "background": 0.002}
    evaluator = PinholeEvaluator("sphere", [fit_resolution(q, np.zeros_like(q))])
    try:
        intensity = evaluator(pars)
    finally:
        evaluator.release()
    np.testing.assert_allclose(intensity, sphere_reference(q, **pars), rtol=1e-9)
    # Guinier: I ≈ I(0) exp(−(qR)²/5), I(0) = scale · 1e-4 · Δρ² · V (to ~1e-6 at qR = 0.15).
    forward = 0.01 * 1e-4 * (6.36 - 1.0) ** 2 * 4 / 3 * math.pi * 50.0**3
    assert intensity[0] - 0.002 == pytest.approx(forward * math.exp(-((0.003 * 50.0) ** 2) / 5), rel=1e-5)


def test_one_kernel_call_serves_several_blocks():
    q1, q2 = np.geomspace(0.005, 0.05, 20), np.geomspace(0.03, 0.3, 25)
    dq1, dq2 = 0.05 * q1, 0.03 * q2
    pars = {"radius": 40.0, "sld": 1.0, "sld_solvent": 6.0, "scale": 0.01, "background": 0.0}
    together = PinholeEvaluator("sphere", [fit_resolution(q1, dq1), fit_resolution(q2, dq2)])
    apart = [PinholeEvaluator("sphere", [fit_resolution(q, dq)]) for q, dq in ((q1, dq1), (q2, dq2))]
    try:
        np.testing.assert_allclose(together(pars), np.concatenate([e(pars) for e in apart]), rtol=1e-13)
    finally:
        for e in (together, *apart):
            e.release()


@pytest.mark.parametrize("sampling", ["fit", "truth", "sasmodels"])
def test_smearing_a_constant_gives_the_constant(sampling):
    q = np.geomspace(0.005, 0.5, 60)
    dq = 0.04 * q
    block = {"fit": fit_resolution, "truth": truth_resolution, "sasmodels": sasmodels_resolution}[sampling](q, dq)
    # power_law with power 0 is I = scale + background at every q.
    evaluator = PinholeEvaluator("power_law", [block])
    try:
        intensity = evaluator({"power": 0.0, "scale": 0.3, "background": 0.4})
    finally:
        evaluator.release()
    np.testing.assert_allclose(intensity, 0.7, rtol=1e-12)


def test_smeared_sphere_is_close_to_the_form_factor_where_it_is_smooth_and_fills_its_minimum():
    radius = 50.0
    x0 = 4.493409457909064  # first positive root of tan x = x: the form factor's first zero
    q = np.sort(np.append(np.geomspace(0.005, 0.12, 80), x0 / radius))
    dq = q * 0.05 / FWHM_PER_SIGMA
    pars = {"radius": radius, "sld": 1.0, "sld_solvent": 6.0, "scale": 0.01, "background": 0.0}
    smeared = smeared_intensity("sphere", pars, q, dq)
    exact = sphere_reference(q, **pars)
    low = q * radius < 1.0  # Guinier region: curvature small compared with the resolution
    np.testing.assert_allclose(smeared[low], exact[low], rtol=2e-3)
    first_zero = int(np.flatnonzero(q == x0 / radius)[0])
    assert exact[first_zero] < 1e-12 * exact.max()
    assert smeared[first_zero] > 1e-4 * smeared.max()  # resolution fills the zero of the form factor


# -- model info, parameters, caches, the compile lock ------------------------------------------------


def test_model_info_and_parameter_table_of_the_sphere():
    assert {"sphere", "cylinder", "hardsphere", "power_law"} <= set(library_models())
    assert model_info("sphere") is model_info("sphere")
    table = parameter_table("sphere")
    assert table.fittable["radius"] == (0.0, math.inf, "Ang")
    assert table.fittable["radius_pd"] == (0.0, math.inf, "")
    assert table.pd_parameters == ("radius",)
    assert {"radius_pd_n", "radius_pd_type", "radius_pd_nsigma"} <= table.fixed_only
    defaults = kernel_defaults("sphere")
    assert defaults["radius_pd_n"] == 35 and defaults["radius_pd_nsigma"] == 3.0 and defaults["radius_pd_type"] == "gaussian"
    assert defaults["radius"] == 50.0 and defaults["scale"] == 1.0
    assert polydispersity_types() == ("boltzmann", "gaussian", "lognormal", "rectangle", "schulz", "uniform")


def test_kernel_model_is_built_once_per_process():
    assert kernel_model("sphere") is kernel_model("sphere")


def test_compile_lock_does_not_deadlock_on_reentry():
    done = threading.Event()

    def nested() -> None:
        with compile_lock():
            with compile_lock():
                kernel_model("sphere")  # takes the lock a third time
            with compile_lock():
                pass
        done.set()

    worker = threading.Thread(target=nested, daemon=True)
    worker.start()
    worker.join(timeout=60)
    assert done.is_set(), "compile_lock deadlocked when taken again by the same thread"
    # Released: another thread can take it now.
    other = threading.Thread(target=nested, daemon=True)
    done.clear()
    other.start()
    other.join(timeout=60)
    assert done.is_set()


def _porod_slit_reference(q: np.ndarray, length: float) -> np.ndarray:
    """(1/L) ∫₀ᴸ (q² + u²)⁻² du in closed form: a q⁻⁴ law smeared by a slit of half-length L, no width."""
    return (length / (2 * q**2 * (q**2 + length**2)) + np.arctan(length / q) / (2 * q**3)) / length


@pytest.mark.parametrize("dense", [False, True])
def test_slit_smearing_of_a_porod_law_matches_the_closed_form(dense):
    from physics.sas import SmearedEvaluator, resolution_block

    q = np.geomspace(8e-5, 5e-3, 60)
    block = resolution_block(q, slit_length=np.full(q.size, 0.117), slit_width=np.zeros(q.size), dense=dense)
    evaluator = SmearedEvaluator("power_law", [block])
    try:
        intensity = evaluator({"power": 4.0, "scale": 1.0, "background": 0.0})
    finally:
        evaluator.release()
    np.testing.assert_allclose(intensity, _porod_slit_reference(q, 0.117), rtol=2e-3 if not dense else 5e-4)


def test_resolution_block_chooses_slit_pinhole_or_none_by_its_widths():
    from sasmodels import resolution

    from physics.sas import resolution_block

    q = np.geomspace(0.01, 0.1, 20)
    assert isinstance(resolution_block(q, slit_length=np.full(20, 0.1)).resolution, resolution.Slit1D)
    assert isinstance(resolution_block(q, dq=0.05 * q).resolution, resolution.Pinhole1D)
    assert isinstance(resolution_block(q, dq=np.zeros(20), slit_length=np.zeros(20)).resolution, resolution.Perfect1D)
