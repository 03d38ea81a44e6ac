"""``labpilot export`` writes NXcanSAS and .xye; the readers read them back identical, with units."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from agent.export import export_measurement
from agent.store import Store
from instruments.files import read_measurements
from tests.agent.test_export import _record

pytestmark = pytest.mark.timeout(120)


def test_nxcansas_export_reads_back_identical(tmp_path: Path) -> None:
    with Store(f"sqlite:///{tmp_path}/labpilot.db") as store:
        _, m = _record(store, tmp_path, "sans", "adaptive_sans.yaml", {"configuration": "5m", "exposure_seconds": 300.0})
        path = export_measurement(store, m.attempt_id, tmp_path / "sans.h5", "nxcansas")
    [back] = read_measurements(path)
    for key in ("q", "intensity", "dq"):
        np.testing.assert_allclose(back.data[key], m.data[key], rtol=1e-15)
    np.testing.assert_allclose(back.sigma["intensity"], m.sigma["intensity"], rtol=1e-15)
    assert back.params["intensity_units"] == "1/cm" and back.params["resolution"].startswith("pinhole")
    assert back.params["wavelength_angstrom"] == pytest.approx(6.0)


def test_xye_export_reads_back_identical_with_wavelength_and_dwell(tmp_path: Path) -> None:
    params = {"two_theta_start": 20.0, "two_theta_stop": 40.0, "two_theta_step": 0.02, "dwell_seconds": 0.5}
    with Store(f"sqlite:///{tmp_path}/labpilot.db") as store:
        _, m = _record(store, tmp_path, "xrd", "adaptive_xrd.yaml", params)
        path = export_measurement(store, m.attempt_id, tmp_path / "p.xye", "xye")
    [back] = read_measurements(path)  # no wavelength passed: the export's header gives it
    np.testing.assert_array_equal(back.data["two_theta"], m.data["two_theta"])
    np.testing.assert_array_equal(back.data["counts"], m.data["counts"])
    np.testing.assert_array_equal(back.sigma["counts"], m.sigma["counts"])
    assert back.params["wavelength"] == "CuKa" and back.params["wavelength_angstrom"] == pytest.approx(1.5405929)
    assert back.params["dwell_seconds"] == 0.5 and back.params["dwell_source"] == "file"
