"""The replay instrument: binomial thinning of recorded counts (mean p·n, binomial variance, never more
than recorded), Gaussian splitting of recorded SAS blocks (parts average back to the recording),
requests beyond the recording refused in ``check`` naming the field, and the planning models."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import sasdata
from instruments.files import read_measurements
from instruments.files.replay import ReplayDriver, ReplaySettings
from instruments.protocol import Driver, InstrumentLimitError, PlanningModelDriver
from instruments.sas import SASInstrumentModel
from instruments.types import MeasurementRequest
from instruments.xrd import XRDInstrumentModel

pytestmark = pytest.mark.timeout(60)
TK49 = "sasdata:example_data/1d_data/ISIS_Polymer_Blend_TK49.xml"


def _flat_pattern(tmp_path: Path, n_counts: int = 400, dwell: float = 4.0) -> Path:
    x = np.round(np.arange(20.0, 60.0, 0.02), 4)
    path = tmp_path / "flat.xye"
    np.savetxt(path, np.column_stack([x, np.full(x.size, n_counts), np.full(x.size, np.sqrt(n_counts))]), fmt="%.4f",
               header=f"wavelength: CuKa1\ndwell: {dwell} s per step")
    return path


def _window(attempt: str, start: float, stop: float, dwell: float, step: float = 0.02) -> MeasurementRequest:
    return MeasurementRequest(attempt_id=attempt, params={"two_theta_start": start, "two_theta_stop": stop,
                                                          "two_theta_step": step, "dwell_seconds": dwell})


def test_thinned_counts_have_the_binomial_mean_and_variance(tmp_path: Path) -> None:
    driver = ReplayDriver("replay", ReplaySettings.model_validate({"xrd": {"file": str(_flat_pattern(tmp_path))}}))
    assert isinstance(driver, Driver) and isinstance(driver, PlanningModelDriver)
    m = driver.measure(_window("a-1", 20.0, 59.98, 1.0))  # a quarter of the recorded 4 s per step
    counts = m.data["counts"]
    n, p = 400, 0.25
    assert counts.size == 2000 and m.timing.exposure_seconds == pytest.approx(2000 * 1.0)
    assert abs(counts.mean() - n * p) < 4 * np.sqrt(n * p * (1 - p) / counts.size)
    assert counts.var(ddof=1) / (n * p * (1 - p)) == pytest.approx(1.0, abs=4 * np.sqrt(2 / counts.size))
    # The rest of the recording: 3 s left; a second window draws only from what is left.
    again = driver.measure(_window("a-2", 20.0, 59.98, 3.0))
    np.testing.assert_array_equal(counts + again.data["counts"], np.full(2000, 400.0))
    with pytest.raises(InstrumentLimitError, match=r"dwell_seconds=0.5 exceeds the recorded dwell left at these steps \(0 s of 4 s"):
        driver.check(_window("a-3", 30.0, 31.0, 0.5))


def test_the_same_attempt_draws_the_same_counts_and_the_real_pattern_thins_to_its_fraction(fityk_samples: Path) -> None:
    settings = ReplaySettings.model_validate(
        {"xrd": {"file": str(fityk_samples / "SiC_Zn.dat"), "wavelength": "CuKa1", "recorded_dwell_seconds": 10.0}, "seed": 3})
    recorded = read_measurements(fityk_samples / "SiC_Zn.dat", kind="xrd", wavelength_angstrom="CuKa1")[0].data["counts"]
    one, two = (ReplayDriver("r", settings).measure(_window("x-1", 20.0, 100.0, 2.0)) for _ in range(2))
    np.testing.assert_array_equal(one.data["counts"], two.data["counts"])
    total, expected = one.data["counts"].sum(), 0.2 * recorded.sum()
    assert abs(total - expected) < 4 * np.sqrt(recorded.sum() * 0.2 * 0.8)
    assert np.all(one.data["counts"] <= recorded)


def test_windows_outside_the_recording_or_longer_than_it_are_refused_naming_the_field(tmp_path: Path) -> None:
    driver = ReplayDriver("replay", ReplaySettings.model_validate({"xrd": {"file": str(_flat_pattern(tmp_path))}}))
    model = driver.planning_model()
    assert isinstance(model, XRDInstrumentModel)
    assert (model.goniometer_min_deg, model.goniometer_max_deg) == (20.0, pytest.approx(59.98))
    assert model.lines == [(pytest.approx(1.5405929), 1.0)]
    with pytest.raises(InstrumentLimitError, match=r"two_theta_start=10.0 is outside the goniometer range"):
        driver.check(_window("b-1", 10.0, 30.0, 1.0))
    with pytest.raises(InstrumentLimitError, match=r"dwell_seconds=5 exceeds the recorded dwell"):
        driver.check(_window("b-2", 30.0, 40.0, 5.0))
    with pytest.raises(InstrumentLimitError, match=r"two_theta_step=0.01 is below the finest step"):
        driver.check(_window("b-3", 30.0, 40.0, 1.0, step=0.01))


def test_a_scaled_pattern_cannot_be_thinned(tmp_path: Path) -> None:
    path = tmp_path / "scaled.xy"
    np.savetxt(path, np.column_stack([np.arange(20.0, 30.0, 0.1), np.linspace(-1.5, 3.5, 100)]), header="wavelength: CuKa")
    with pytest.raises(ValueError, match=r"scaled\.xy: intensity column: holds scaled intensities, not counts"):
        ReplayDriver("r", ReplaySettings.model_validate({"xrd": {"file": str(path)}}))


def _sas_driver(seed: int = 0) -> ReplayDriver:
    return ReplayDriver("loq", ReplaySettings.model_validate(
        {"seed": seed, "sas": {"recordings": [{"configuration": "loq", "file": TK49, "exposure_seconds": 3600}]}}))


def _exposure(attempt: str, seconds: float, sample: str = "tk49") -> MeasurementRequest:
    return MeasurementRequest(attempt_id=attempt, params={"configuration": "loq", "exposure_seconds": seconds}, sample_id=sample)


def test_sas_parts_are_independent_and_average_back_to_the_recording() -> None:
    recorded = read_measurements(Path(sasdata.__file__).parent / "example_data/1d_data/ISIS_Polymer_Blend_TK49.xml")[0]
    driver = _sas_driver()
    parts = [driver.measure(_exposure(f"s-{i}", 1200.0)) for i in range(3)]
    np.testing.assert_allclose(sum(p.data["intensity"] for p in parts) / 3, recorded.data["intensity"], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(parts[0].sigma["intensity"], recorded.sigma["intensity"] * np.sqrt(3))
    with pytest.raises(InstrumentLimitError, match=r"exposure_seconds=60 exceeds the recorded exposure left \(0 s of 3600 s\)"):
        driver.check(_exposure("s-4", 60.0))
    # Over many seeds, a quarter-length part scatters about the recording with variance σ²(1/f − 1).
    draws = np.array([_sas_driver(seed).measure(_exposure("q", 900.0)).data["intensity"][10] for seed in range(400)])
    y, s = recorded.data["intensity"][10], recorded.sigma["intensity"][10]
    assert abs(draws.mean() - y) < 4 * s * np.sqrt(3) / np.sqrt(draws.size)
    assert draws.var(ddof=1) / (3 * s**2) == pytest.approx(1.0, abs=4 * np.sqrt(2 / draws.size))


def test_sas_planning_model_and_unknown_configuration() -> None:
    driver = _sas_driver()
    model = driver.planning_model()
    assert isinstance(model, SASInstrumentModel) and [c.name for c in model.configurations] == ["loq"]
    k = model.configurations[0].counts_per_second
    recorded = read_measurements(Path(sasdata.__file__).parent / "example_data/1d_data/ISIS_Polymer_Blend_TK49.xml")[0]
    y, s = recorded.data["intensity"], recorded.sigma["intensity"]
    # σ² = I / (k t): the model predicts the recorded σ at the recorded exposure where I > 0.
    np.testing.assert_allclose(np.sqrt(y / (k * 3600))[y > 0], s[y > 0], rtol=1e-9)
    bad = MeasurementRequest(attempt_id="u", params={"configuration": "sans", "exposure_seconds": 60.0})
    with pytest.raises(InstrumentLimitError, match=r"configuration='sans' is not a configuration"):
        driver.check(bad)


def test_a_restarted_driver_rebuilds_what_is_left_from_its_log_and_recovers_served_attempts(tmp_path: Path) -> None:
    settings = ReplaySettings.model_validate({"xrd": {"file": str(_flat_pattern(tmp_path))}, "journal_dir": str(tmp_path / "log")})
    first = ReplayDriver("replay", settings)
    served = first.measure(_window("c-1", 20.0, 40.0, 1.5))
    assert first.measure(_window("c-1", 20.0, 40.0, 1.5)) is served  # the same attempt is not measured twice
    first.measure(_window("c-2", 30.0, 50.0, 2.0))
    after_crash = ReplayDriver("replay", settings)
    recovered = after_crash.recover("c-1")
    assert recovered is not None and recovered.recovered
    np.testing.assert_array_equal(recovered.data["counts"], served.data["counts"])
    assert after_crash.recover("c-9") is None
    # What is left at 30–40° is 4 − 1.5 − 2 = 0.5 s in both drivers, with the same counts.
    with pytest.raises(InstrumentLimitError, match=r"dwell left at these steps \(0.5 s of 4 s"):
        after_crash.check(_window("c-3", 30.0, 40.0, 1.0))
    np.testing.assert_array_equal(after_crash.measure(_window("c-3", 30.0, 40.0, 0.5)).data["counts"],
                                  first.measure(_window("c-3", 30.0, 40.0, 0.5)).data["counts"])
