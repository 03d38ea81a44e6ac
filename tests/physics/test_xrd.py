"""Powder-diffraction physics against reference values computed here, independently of the module:
Bragg's law, pseudo-Voigt normalisation and width, the Thompson–Cox–Hastings limits, Scherrer
broadening, the Lorentz–polarisation factor, March–Dollase, Chebyshev backgrounds."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import constants, integrate

from physics.constants import HC_KEV_ANGSTROM
from physics.phases import Reflections
from physics.xrd import (
    WAVELENGTH_LINES,
    _tch,
    chebyshev_background,
    chebyshev_basis,
    lorentz_polarisation,
    march_dollase,
    peak_positions,
    peak_shapes,
    phase_rate,
    pseudo_voigt,
    resolve_lines,
    scan_points,
    wavelength_lines,
)

pytestmark = pytest.mark.timeout(60)
CU_KA1 = 1.5405929  # Å, Hölzer et al. (1997)
SI_A = 5.4309  # Å, silicon lattice parameter


def test_cu_ka1_puts_si_111_where_braggs_law_does() -> None:
    assert WAVELENGTH_LINES["CuKa1"] == ((CU_KA1, 1.0),)
    d_111 = SI_A / math.sqrt(3)
    expected = math.degrees(2 * math.asin(CU_KA1 / (2 * d_111)))
    assert expected == pytest.approx(28.443, abs=1e-3)  # the familiar Si(111) line
    (position,) = peak_positions(np.array([d_111]), CU_KA1, 0.0, 0.0, 0.0, 240.0)
    assert position == pytest.approx(expected, abs=1e-10)


def test_strain_zero_shift_and_displacement_move_the_peak_as_the_geometry_says() -> None:
    d, strain, zero, s, radius = SI_A / math.sqrt(3), 0.002, 0.03, 0.1, 240.0
    theta = math.asin(CU_KA1 / (2 * d * (1 + strain)))
    expected = math.degrees(2 * theta) + zero - math.degrees(2 * s * math.cos(theta) / radius)
    (position,) = peak_positions(np.array([d]), CU_KA1, strain, zero, s, radius)
    assert position == pytest.approx(expected, abs=1e-10)
    (beyond,) = peak_positions(np.array([0.5]), CU_KA1, 0.0, 0.0, 0.0, radius)  # λ/2d > 1: no reflection
    assert math.isnan(beyond)


@pytest.mark.parametrize("eta", [0.0, 0.3, 1.0])
def test_a_unit_area_pseudo_voigt_integrates_to_one(eta: float) -> None:
    fwhm = 0.12
    area, _ = integrate.quad(lambda x: float(pseudo_voigt(np.asarray(x), np.asarray(fwhm), np.asarray(eta))),
                             -np.inf, np.inf, limit=200)
    assert area == pytest.approx(1.0, abs=1e-8)


@pytest.mark.parametrize("eta", [0.0, 1.0])
def test_the_pseudo_voigt_is_half_its_peak_at_half_its_fwhm(eta: float) -> None:
    fwhm = 0.2
    peak = float(pseudo_voigt(np.asarray(0.0), np.asarray(fwhm), np.asarray(eta)))
    gauss_peak, lorentz_peak = 2 * math.sqrt(math.log(2) / math.pi) / fwhm, 2 / (math.pi * fwhm)
    assert peak == pytest.approx(eta * lorentz_peak + (1 - eta) * gauss_peak, rel=1e-12)
    half = float(pseudo_voigt(np.asarray(fwhm / 2), np.asarray(fwhm), np.asarray(eta)))
    assert half == pytest.approx(peak / 2, rel=1e-12)


def test_the_tch_mix_reduces_to_the_pure_gaussian_and_lorentzian() -> None:
    width = np.array([0.07, 0.3])
    h, eta = _tch(width, np.zeros(2))
    np.testing.assert_allclose(h, width, rtol=1e-12)
    np.testing.assert_allclose(eta, 0.0, atol=1e-12)
    h, eta = _tch(np.zeros(2), width)
    np.testing.assert_allclose(h, width, rtol=1e-12)
    np.testing.assert_allclose(eta, 1.0, atol=1e-5)  # 1.36603 − 0.47719 + 0.11116 = 1 to the coefficients' digits


def test_peak_widths_follow_caglioti_and_scherrer() -> None:
    two_theta = np.array([30.0, 80.0])
    tan = np.tan(np.radians(two_theta / 2))
    u, v, w = 0.01, -0.003, 0.004
    fwhm, eta = peak_shapes(two_theta, CU_KA1, (u, v, w), None, 0.0)
    np.testing.assert_allclose(fwhm, np.sqrt(u * tan**2 + v * tan + w), rtol=1e-12)
    np.testing.assert_allclose(eta, 0.0, atol=1e-12)
    # No instrument width: the Scherrer width K λ / (L cos θ) alone (L = 50 nm = 500 Å).
    fwhm, eta = peak_shapes(two_theta, CU_KA1, (0.0, 0.0, 0.0), 50.0, 0.0)
    scherrer = np.degrees(0.9 * CU_KA1 / (500.0 * np.cos(np.radians(two_theta / 2))))
    np.testing.assert_allclose(fwhm, scherrer, rtol=2e-3)
    np.testing.assert_allclose(eta, 1.0, atol=1e-2)


def test_lorentz_polarisation_at_known_angles() -> None:
    # 2θ = 90°: (1 + cos² 90°) / (sin² 45° cos 45°) = 2√2; 2θ = 60°: 1.25 / (¼ · √3/2) = 10/√3.
    np.testing.assert_allclose(lorentz_polarisation(np.array([90.0, 60.0])), [2 * math.sqrt(2), 10 / math.sqrt(3)],
                               rtol=1e-12)


def test_march_dollase_is_r_to_the_minus_three_along_the_pole_and_r_to_the_three_halves_across() -> None:
    pole = np.array([0.0, 0.0, 1.0])
    normals = np.array([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, 1.0, 0.0]])
    index = np.array([0, 1, 2, 2])  # the third reflection: one plane along the pole, one across
    r = 0.7
    along, across = r**-3, r**1.5
    np.testing.assert_allclose(march_dollase(normals, index, 3, pole, r), [along, across, (along + across) / 2], rtol=1e-12)
    np.testing.assert_array_equal(march_dollase(normals, index, 3, pole, 1.0), np.ones(3))


def test_a_peaks_area_is_its_structure_factor_times_lp_over_the_volume_squared() -> None:
    d, f2m, volume = SI_A / math.sqrt(3), 250.0, SI_A**3
    reflections = Reflections(d=np.array([d]), f2m=np.array([f2m]), hkls=((((1, 1, 1), 8),),))
    step = 0.0005
    x = np.arange(26.0, 31.0, step)
    rate = phase_rate(x, reflections, volume, [(CU_KA1, 1.0)], (0.0, 0.0, 0.01))  # Gaussian, FWHM 0.1°
    centre = math.degrees(2 * math.asin(CU_KA1 / (2 * d)))
    theta = math.radians(centre / 2)
    lp = (1 + math.cos(2 * theta) ** 2) / (math.sin(theta) ** 2 * math.cos(theta))
    assert float(rate.sum() * step) == pytest.approx(f2m * lp / volume**2, rel=1e-6)
    assert float(x[np.argmax(rate)]) == pytest.approx(centre, abs=step)


def test_chebyshev_background_and_basis_match_numpy_on_the_mapped_domain() -> None:
    low, high = 5.0, 140.0
    x = np.linspace(low, high, 37)
    coefficients = [40.0, -15.0, 8.0, 2.5]
    reference = np.polynomial.Chebyshev(coefficients, domain=[low, high])
    np.testing.assert_allclose(chebyshev_background(x, coefficients, low, high), reference(x), rtol=1e-12, atol=1e-12)
    basis = chebyshev_basis(x, 4, low, high)
    assert basis.shape == (37, 4)
    for k in range(4):
        np.testing.assert_allclose(basis[:, k], np.polynomial.Chebyshev.basis(k, domain=[low, high])(x), atol=1e-12)


def test_wavelengths_from_names_numbers_and_energies() -> None:
    assert HC_KEV_ANGSTROM == pytest.approx(constants.h * constants.c / (constants.e * 1e3) * 1e10, rel=1e-12)
    ((lam, weight),) = resolve_lines("CuKa", 17.0)  # an energy replaces the tube
    assert (lam, weight) == (pytest.approx(constants.h * constants.c / (constants.e * 17e3) * 1e10, rel=1e-12), 1.0)
    assert resolve_lines("CuKa", None) == WAVELENGTH_LINES["CuKa"] == wavelength_lines("CuKa")
    assert wavelength_lines(0.7) == ((0.7, 1.0),)
    with pytest.raises(ValueError, match="unknown line 'CuKb'"):
        wavelength_lines("CuKb")
    with pytest.raises(ValueError, match="not a plausible X-ray wavelength"):
        wavelength_lines(12.0)


def test_scan_points_run_from_start_to_stop_inclusive() -> None:
    np.testing.assert_allclose(scan_points(10.0, 20.0, 0.5), 10.0 + 0.5 * np.arange(21))
    # The last step is the one nearest the stop, within half a step either side.
    np.testing.assert_allclose(scan_points(10.0, 10.11, 0.04), [10.0, 10.04, 10.08, 10.12])
    np.testing.assert_allclose(scan_points(10.0, 10.09, 0.04), [10.0, 10.04, 10.08])


def test_debye_waller_factor_matches_pymatgens_structure_factor_with_thermal_motion() -> None:
    """exp(−B/(2d²)) per reflection equals the ratio of pymatgen's intensities with and without B."""
    import warnings

    from pymatgen.analysis.diffraction.xrd import XRDCalculator

    from physics.phases import PhaseLibrary
    from physics.xrd import debye_waller

    structure = PhaseLibrary().phase("si").structure
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        plain = XRDCalculator(wavelength=1.0).get_pattern(structure, scaled=False, two_theta_range=(10, 120))
        warm = XRDCalculator(wavelength=1.0, debye_waller_factors={"Si": 0.8}).get_pattern(
            structure, scaled=False, two_theta_range=(10, 120))
    ratio = np.asarray(warm.y) / np.asarray(plain.y)
    np.testing.assert_allclose(debye_waller(np.asarray(plain.d_hkls), 0.8), ratio, rtol=1e-6)


def test_split_pseudo_voigt_has_unit_area_and_the_asked_half_widths() -> None:
    from physics.xrd import split_pseudo_voigt

    x = np.linspace(-60, 60, 1_200_001)
    f, a = 0.3, 0.4
    y = split_pseudo_voigt(x, np.full(x.size, f), np.zeros(x.size), np.full(x.size, a))  # Gaussian: exact tails
    assert np.trapezoid(y, x) == pytest.approx(1.0, abs=1e-6)
    half = y.max() / 2
    above = x[y >= half]
    assert -above[0] == pytest.approx(f * (1 + a) / 2, abs=1e-4)
    assert above[-1] == pytest.approx(f * (1 - a) / 2, abs=1e-4)


def test_axial_asymmetry_tails_low_below_90_degrees_and_high_above() -> None:
    from physics.xrd import axial_asymmetry

    split = axial_asymmetry(np.array([20.0, 60.0, 120.0]), 0.05)
    assert split[0] > split[1] > 0 > split[2]
    np.testing.assert_allclose(split[:2], 0.05 / np.tan(np.radians([20.0, 60.0])))
