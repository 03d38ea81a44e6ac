"""The simulated diffractometer: Bragg's law from the lattice, Poisson counts that scale with dwell,
texture, peak shifts, the virtual clock, and requests refused before they reach the goniometer."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from pydantic import ValidationError

from instruments.protocol import InstrumentLimitError
from instruments.types import MeasurementRequest
from physics.phases import PhaseLibrary
from physics.xrd import WAVELENGTH_LINES, march_dollase
from simulators.xrd import XRDDriver, XRDSettings

pytestmark = pytest.mark.timeout(120)
CU_KA1 = WAVELENGTH_LINES["CuKa1"][0][0]


def _driver(phases: list[dict[str, Any]], **settings: Any) -> XRDDriver:
    return XRDDriver("xrd", XRDSettings.model_validate({"sample": {"phases": phases}, **settings}))


def _window(start: float, stop: float, step: float, dwell: float, attempt: str = "a") -> MeasurementRequest:
    return MeasurementRequest(attempt_id=attempt, params={
        "two_theta_start": start, "two_theta_stop": stop, "two_theta_step": step, "dwell_seconds": dwell})


def _apex(x: np.ndarray, y: np.ndarray, near: float, width: float = 0.3) -> float:
    # Centroid of the top of the peak near ``near`` (the Kα1 line; Kα2 sits 0.07–0.2° above it).
    window = (x > near - width) & (x < near + width)
    xs, ys = x[window], y[window]
    top = ys >= 0.5 * ys.max()
    return float(np.sum(xs[top] * ys[top]) / np.sum(ys[top]))


@pytest.mark.parametrize(("phase", "hkls"), [("si", [(1, 1, 1), (2, 2, 0), (3, 1, 1)]), ("mgo_periclase", [(2, 0, 0), (2, 2, 0)])])
def test_peaks_sit_where_braggs_law_puts_them_for_the_cif_lattice(phase: str, hkls: list[tuple[int, int, int]]) -> None:
    driver = _driver([{"phase": phase, "weight_fraction": 1.0, "crystallite_size_nm": 500}], wavelength="CuKa1")
    a = PhaseLibrary().phase(phase).structure.lattice.a  # type: ignore[attr-defined]
    x = np.arange(20.0, 80.0, 0.002)
    rate = driver.true_rate(x)
    for hkl in hkls:
        expected = 2 * math.degrees(math.asin(CU_KA1 / (2 * a / math.sqrt(sum(i * i for i in hkl)))))
        assert _apex(x, rate, expected) == pytest.approx(expected, abs=0.004), hkl


def test_lattice_strain_zero_shift_and_displacement_move_the_peaks_as_the_geometry_says() -> None:
    base = {"phase": "si", "weight_fraction": 1.0, "crystallite_size_nm": 500}
    x = np.arange(27.0, 30.0, 0.001)
    apex = _apex(x, _driver([base], wavelength="CuKa1").true_rate(x), 28.44)
    strained = _apex(x, _driver([{**base, "lattice_strain": 0.002}], wavelength="CuKa1").true_rate(x), 28.44)
    theta = math.radians(apex / 2)
    assert strained - apex == pytest.approx(-math.degrees(2 * 0.002 * math.tan(theta)), abs=0.003)  # Δ2θ = −2ε tan θ
    shifted = _apex(x, _driver([base], wavelength="CuKa1", zero_shift_deg=0.05).true_rate(x), 28.44)
    assert shifted - apex == pytest.approx(0.05, abs=0.002)
    displaced = _driver([base], wavelength="CuKa1")
    displaced_settings = displaced.settings.model_copy(update={"sample": displaced.settings.sample.model_copy(update={"displacement_mm": 0.1})})
    moved = _apex(x, XRDDriver("xrd", displaced_settings).true_rate(x), 28.44)
    assert moved - apex == pytest.approx(-math.degrees(2 * 0.1 * math.cos(theta) / 240.0), abs=0.003)


def test_smaller_crystallites_broaden_the_peaks_as_scherrer_says() -> None:
    x = np.arange(27.5, 29.5, 0.001)

    def fwhm(size: float) -> float:
        rate = _driver([{"phase": "si", "weight_fraction": 1.0, "crystallite_size_nm": size}], wavelength="CuKa1",
                       background=[0.0]).true_rate(x)
        above = x[rate >= rate.max() / 2]
        return float(above[-1] - above[0])

    wide, narrow = fwhm(20), fwhm(2000)
    scherrer = math.degrees(0.9 * CU_KA1 / (200.0 * math.cos(math.radians(28.44 / 2))))
    assert wide > narrow + 0.5 * scherrer and wide == pytest.approx(math.hypot(narrow, scherrer), rel=0.35)


def test_counts_scale_with_dwell_and_are_poisson() -> None:
    driver = _driver([{"phase": "si", "weight_fraction": 1.0}])
    counts = {dwell: np.stack([driver.measure(_window(40.0, 40.5, 0.05, dwell, f"{dwell}-{i}")).data["counts"] for i in range(300)])
              for dwell in (0.5, 2.0)}
    expected = {dwell: dwell * driver.true_rate(np.linspace(40.0, 40.5, 11)) for dwell in counts}
    for dwell, c in counts.items():
        assert c.mean(axis=0) == pytest.approx(expected[dwell], rel=0.06)
        assert c.var(axis=0, ddof=1) == pytest.approx(c.mean(axis=0), rel=0.3)  # Poisson: variance = mean
    assert counts[2.0].mean() / counts[0.5].mean() == pytest.approx(4.0, rel=0.05)
    m = driver.measure(_window(40.0, 40.5, 0.05, 1.0, "sigma"))
    assert np.array_equal(m.sigma["counts"], np.sqrt(np.maximum(m.data["counts"], 1.0)))


def test_the_same_attempt_draws_the_same_counts() -> None:
    driver = _driver([{"phase": "si", "weight_fraction": 1.0}])
    first = driver.measure(_window(20, 30, 0.05, 0.2, "same")).data["counts"]
    again = driver.measure(_window(20, 30, 0.05, 0.2, "same")).data["counts"]
    other = driver.measure(_window(20, 30, 0.05, 0.2, "other")).data["counts"]
    assert np.array_equal(first, again) and not np.array_equal(first, other)


def test_march_dollase_is_one_for_a_random_powder_and_enhances_the_pole_for_platelets() -> None:
    phase = PhaseLibrary().phase("tio2_rutile")
    d_min = 0.8
    normals, index = phase.plane_normals(d_min)
    reflections = phase.reflections(d_min)
    assert np.allclose(march_dollase(normals, index, len(reflections.d), phase.pole((1, 1, 0)), 1.0), 1.0)
    factors = march_dollase(normals, index, len(reflections.d), phase.pole((0, 0, 1)), 0.7)
    families = [families[0][0] for families in reflections.hkls]
    assert factors[families.index((0, 0, 2))] > 2.0  # (002) ∥ the (001) pole: enhanced by r⁻³ ≈ 2.9
    assert factors[families.index((1, 1, 0))] < 1.0  # perpendicular to it: weakened


def test_instrument_time_is_setup_slew_and_dwell() -> None:
    driver = _driver([{"phase": "si", "weight_fraction": 1.0}], setup_seconds=15, motion_deg_per_second=5)
    first = driver.measure(_window(10, 20, 0.1, 0.5, "w1")).timing
    assert first.exposure_seconds == pytest.approx(101 * 0.5) and first.motion_seconds == 0.0 and first.overhead_seconds == 15
    second = driver.measure(_window(40, 45, 0.1, 0.5, "w2")).timing  # slews from 20° to 40°
    assert second.motion_seconds == pytest.approx(4.0)
    assert driver.clock.elapsed_seconds == pytest.approx(first.instrument_seconds + second.instrument_seconds)
    assert driver.planning_model().window_seconds(40, 45, 0.1, 0.5, position=20.0) == pytest.approx(second.instrument_seconds)


@pytest.mark.parametrize(("params", "message"), [
    ({"two_theta_start": 2.0, "two_theta_stop": 20, "two_theta_step": 0.02, "dwell_seconds": 1}, "two_theta_start=2.0 is outside the goniometer"),
    ({"two_theta_start": 10, "two_theta_stop": 150, "two_theta_step": 0.02, "dwell_seconds": 1}, "two_theta_stop=150.0 is outside"),
    ({"two_theta_start": 30, "two_theta_stop": 20, "two_theta_step": 0.02, "dwell_seconds": 1}, "must be below two_theta_stop"),
    ({"two_theta_start": 10, "two_theta_stop": 20, "two_theta_step": 0.0, "dwell_seconds": 1}, "two_theta_step=0.0 must be positive"),
    ({"two_theta_start": 10, "two_theta_stop": 20, "two_theta_step": 0.02, "dwell_seconds": -1}, "dwell_seconds=-1.0 must be positive"),
    ({"two_theta_start": 10, "two_theta_stop": 20, "two_theta_step": 0.02}, "lacks 'dwell_seconds'"),
    ({"two_theta_start": 10, "two_theta_stop": 20, "two_theta_step": 0.02, "dwell_seconds": 1, "speed": 2}, "unknown request fields"),
    ({"two_theta_start": 5, "two_theta_stop": 140, "two_theta_step": 0.005, "dwell_seconds": 1}, "at most 20000"),
])
def test_bad_windows_are_refused_before_any_motion(params: dict[str, Any], message: str) -> None:
    driver = _driver([{"phase": "si", "weight_fraction": 1.0}])
    with pytest.raises(InstrumentLimitError, match=message):
        driver.check(MeasurementRequest(attempt_id="bad", params=params))
    assert driver.clock.elapsed_seconds == 0.0 and driver.position is None


def test_an_unknown_phase_is_refused_with_the_library_listed() -> None:
    with pytest.raises(ValidationError, match="unknown phase.*'unobtainium'.*tio2_anatase"):
        _driver([{"phase": "unobtainium", "weight_fraction": 1.0}])
    with pytest.raises(ValidationError, match="weight fractions must sum to 1"):
        _driver([{"phase": "si", "weight_fraction": 0.5}, {"phase": "tio2_rutile", "weight_fraction": 0.2}])
    with pytest.raises(ValidationError, match="unknown line 'CuKz'"):
        _driver([{"phase": "si", "weight_fraction": 1.0}], wavelength="CuKz")


# -- samples of a materials system -----------------------------------------------------------------

EXACT_OXIDE = {"kind": "oxide", "seed": 4, "composition_scatter": 0.0, "temperature_scatter_k": 0.0, "size_scatter": 0.0}


def _oxide_driver(**system: Any) -> XRDDriver:
    return XRDDriver("xrd", XRDSettings.model_validate({"materials_system": {**EXACT_OXIDE, **system}, "wavelength": "CuKa1"}))


def _made(recipe: dict[str, float], sample: str = "s-1", **window: Any) -> MeasurementRequest:
    params = {"two_theta_start": 30.0, "two_theta_stop": 45.0, "two_theta_step": 0.02, "dwell_seconds": 1.0, **window}
    return MeasurementRequest(attempt_id=f"a-{sample}", params=params, recipe=recipe, sample_id=sample)


def _strongest_peak(phase: str, strain: float, low: float, high: float) -> float:
    """2θ (degrees, Cu Kα1) of the phase's strongest peak in [low, high], from pymatgen's own pattern,
    moved by a lattice strain ε as Bragg's law says (d → d(1 + ε))."""
    from pymatgen.analysis.diffraction.xrd import XRDCalculator

    pattern = XRDCalculator(wavelength="CuKa1").get_pattern(PhaseLibrary().phase(phase).structure, two_theta_range=(low, high))
    d = pattern.d_hkls[int(np.argmax(pattern.y))]
    return 2 * math.degrees(math.asin(CU_KA1 / (2 * d * (1 + strain))))


def test_a_recipe_in_a_two_phase_region_gives_both_phases_peaks_where_pymatgen_puts_them() -> None:
    driver = _oxide_driver()
    request = _made({"MgO": 0.4, "ZnO": 0.6, "CuO": 0.0, "anneal_temperature_k": 1373.0})
    truth = driver.sample_truth(request)
    assert truth.label == "mgo_periclase+zno_zincite"
    measurement = driver.measure(request)
    x, counts = measurement.data["two_theta"], measurement.data["counts"]
    background = np.median(counts)
    for phase in truth.phases:
        expected = _strongest_peak(phase.phase, phase.lattice_strain, 30.0, 45.0)
        near = np.abs(x - expected) < 0.3
        assert abs(x[near][np.argmax(counts[near])] - expected) <= 0.03, phase.phase
        assert counts[near].max() > background + 20 * math.sqrt(background), phase.phase
    assert 0.3 < min(p.weight_fraction for p in truth.phases)


def test_a_vegard_shifted_phase_moves_its_peaks_the_way_its_lattice_strain_says() -> None:
    driver = _oxide_driver()
    x = np.arange(42.0, 43.6, 0.002)
    apexes, strains = [], []
    for zinc in (0.0, 0.1, 0.2):
        request = _made({"MgO": 1 - zinc, "ZnO": zinc, "CuO": 0.0, "anneal_temperature_k": 1373.0}, sample=f"zn{zinc}")
        (periclase,) = driver.sample_truth(request).phases  # still in the single-phase field
        strains.append(periclase.lattice_strain)
        apexes.append(_apex(x, driver.true_rate(x, request), _strongest_peak("mgo_periclase", 0.0, 40, 45), width=0.6))
    assert strains[0] == 0.0 and strains[2] > strains[1] > 0  # Zn²⁺ expands the periclase lattice
    for apex, strain in zip(apexes, strains):  # (200) moves to lower angle, by Bragg's law
        assert apex == pytest.approx(_strongest_peak("mgo_periclase", strain, 40, 45), abs=0.004)
    assert apexes[2] < apexes[1] < apexes[0] and apexes[0] - apexes[2] > 0.06


def test_a_materials_system_simulator_refuses_a_request_without_a_recipe() -> None:
    driver = _oxide_driver()
    with pytest.raises(InstrumentLimitError, match="recipe"):
        driver.check(_window(30.0, 40.0, 0.02, 1.0))
    with pytest.raises(InstrumentLimitError, match="recipe"):
        driver.measure(_window(30.0, 40.0, 0.02, 1.0))
    with pytest.raises(InstrumentLimitError, match=r"recipe\.MgO"):
        driver.check(_made({"MgO": 1.5, "ZnO": -0.5, "CuO": 0.0, "anneal_temperature_k": 1000.0}))


def test_a_sample_is_made_once_and_keeps_its_recipe() -> None:
    driver = _oxide_driver(composition_scatter=0.01, seed=7)
    recipe = {"MgO": 0.5, "ZnO": 0.3, "CuO": 0.2, "anneal_temperature_k": 1100.0}
    first = driver.sample_truth(_made(recipe, sample="s-9"))
    again = driver.sample_truth(_made(recipe, sample="s-9", two_theta_start=35.0))
    assert again == first
    assert driver.sample_truth(_made(recipe, sample="s-10")) != first  # another sample, its own scatter
    with pytest.raises(InstrumentLimitError, match="recipe"):
        driver.check(_made({**recipe, "anneal_temperature_k": 900.0}, sample="s-9"))


def test_settings_take_a_sample_or_an_oxide_system_but_not_both_nor_neither() -> None:
    with pytest.raises(ValidationError, match="exactly one"):
        XRDSettings.model_validate({})
    with pytest.raises(ValidationError, match="exactly one"):
        XRDSettings.model_validate({"sample": {"phases": [{"phase": "si", "weight_fraction": 1.0}]},
                                    "materials_system": {"kind": "oxide"}})
    with pytest.raises(ValidationError, match="kind 'oxide'"):
        XRDSettings.model_validate({"materials_system": {"kind": "formulation"}})
    with pytest.raises(ValidationError, match="materials_system.components"):
        XRDSettings.model_validate({"materials_system": {"kind": "oxide", "components": [
            {"name": "A", "phase": "unobtainium", "solubility": [0.1, 0.2]},
            {"name": "B", "phase": "zno_zincite", "solubility": [0.1, 0.2]},
            {"name": "C", "phase": "cuo_tenorite", "solubility": [0.1, 0.2]}]}})


# -- model mismatch ----------------------------------------------------------------------------------

def _net_peak(driver: XRDDriver, centre: float) -> float:
    x = np.arange(centre - 1.0, centre + 1.0, 0.002)
    bare = XRDDriver("bg", XRDSettings.model_validate({**driver.settings.model_dump(), "sample": {
        **driver.settings.sample.model_dump(), "phases": [{"phase": "si", "weight_fraction": 1.0, "crystallite_size_nm": 200.0}],
        "amorphous": None}, "flux": 1e-12}))
    return float(np.trapezoid(driver.true_rate(x) - bare.true_rate(x), x))


def test_mismatch_options_act_as_their_physics_says() -> None:
    """Debye–Waller B scales a peak by exp(−B/(2d²)); thin-sample absorption by 1 − exp(−2μt/sin θ);
    an amorphous hump adds its height at its centre; asymmetry moves area to the low-angle side."""
    si = {"phase": "si", "weight_fraction": 1.0, "crystallite_size_nm": 200.0}
    plain = _driver([si], wavelength="CuKa1", background=[0.0])
    d = PhaseLibrary().phase("si").structure.lattice.a / math.sqrt(11)  # Si (311), Å
    two_theta = 2 * math.degrees(math.asin(1.5405929 / (2 * d)))
    warm = _driver([{**si, "b_iso": 1.2}], wavelength="CuKa1", background=[0.0])
    assert _net_peak(warm, two_theta) / _net_peak(plain, two_theta) == pytest.approx(math.exp(-1.2 / (2 * d * d)), rel=1e-3)
    thin = _driver([si], wavelength="CuKa1", background=[0.0], sample={"phases": [si], "mu_t": 0.05})
    expected = 1 - math.exp(-2 * 0.05 / math.sin(math.radians(two_theta / 2)))
    assert _net_peak(thin, two_theta) / _net_peak(plain, two_theta) == pytest.approx(expected, rel=2e-2)
    hump = _driver([si], wavelength="CuKa1", background=[0.0],
                   sample={"phases": [si], "amorphous": {"centre_deg": 22.0, "fwhm_deg": 8.0, "rate": 30.0}})
    assert hump.true_rate(np.array([22.0]))[0] - plain.true_rate(np.array([22.0]))[0] == pytest.approx(30.0, rel=1e-6)
    skew = _driver([si], wavelength="CuKa1", background=[0.0], asymmetry=0.1)
    x = np.arange(27.4, 29.4, 0.002)
    centre = 28.44
    low = lambda drv: float(np.trapezoid(np.where(x < centre, drv.true_rate(x), 0.0), x))  # noqa: E731
    assert low(skew) > 1.05 * low(plain)
