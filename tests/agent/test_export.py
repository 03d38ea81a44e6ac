"""Export of recorded measurements: NXcanSAS for reduced SAS data, .xye for powder patterns.

Real parts throughout: the shipped campaign files' instruments, measurements made by the SAS
(sasmodels) and XRD (pymatgen) simulators, a real SQLite store, real HDF5 files read back with h5py
(and with sasdata, SasView's loader, when it is installed), .xye read back with numpy.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
from typer.testing import CliRunner

from agent.cli import app
from agent.config import parse_campaign
from agent.export import ExportError, export_measurement
from agent.fleet import instrument_record
from agent.kinds import build_driver
from agent.store import ProposedAttempt, Store
from instruments.types import Measurement, MeasurementRequest
from tests.agent.campaign_files import shipped

pytestmark = pytest.mark.timeout(180)


def _record(store: Store, tmp_path: Path, campaign_id: str, file: str, params: dict[str, Any],
            **settings: Any) -> tuple[dict[str, Any], Measurement]:
    """Measure once with the shipped campaign's instrument and record it as the campaign would."""
    document = shipped(file, tmp_path)
    document["instruments"][0]["settings"].update(settings)
    config = parse_campaign(document)
    stored = config.model_dump(mode="json")  # what a campaign stores
    instrument = stored["instruments"][0]
    driver = build_driver(instrument["kind"], instrument["name"], instrument["settings"])
    attempt_id = f"{campaign_id}-00000"
    measurement = driver.measure(MeasurementRequest(attempt_id=attempt_id, params=params, sample_id=config.sample))
    store.create_campaign(campaign_id, config.name, stored, config.seed, str(tmp_path), {})
    # What the instrument said about itself when the campaign started (exports take wavelengths from it).
    store.record_instruments(campaign_id, [instrument_record(instrument["name"], instrument["kind"], driver.planning_model(),
                                                             driver.describe())])
    store.record_decision(
        campaign_id, 0, policy="test", fallback=False, error=None, seed=0, n_history=0, n_pending=0,
        reasons=[{}, {}], decision_seconds=0.0, versions={},
        attempts=[
            ProposedAttempt(attempt_id, 0, params, config.sample, ("validated", "dispatched"), instrument=instrument["name"]),
            ProposedAttempt(f"{campaign_id}-00001", 1, params, config.sample, ("refused",), reason="outside limits"),
        ],
    )
    assert store.record_measurement(campaign_id, measurement)
    return stored, measurement


@pytest.fixture
def store(tmp_path: Path) -> Any:
    with Store(f"sqlite:///{tmp_path}/labpilot.db") as s:
        yield s


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def test_nxcansas_holds_the_sas_measurement_with_its_structure_units_and_configuration(store: Store, tmp_path: Path) -> None:
    stored, m = _record(store, tmp_path, "sans", "adaptive_sans.yaml", {"configuration": "5m", "exposure_seconds": 300.0})
    path = export_measurement(store, m.attempt_id, tmp_path / "out" / "sans.h5", "nxcansas")
    assert path == tmp_path / "out" / "sans.h5" and sorted(p.name for p in path.parent.iterdir()) == ["sans.h5"]

    with h5py.File(path, "r") as f:
        assert _text(f.attrs["default"]) == "sasentry01"
        entry = f["sasentry01"]
        assert (_text(entry.attrs["NX_class"]), _text(entry.attrs["canSAS_class"])) == ("NXentry", "SASentry")
        assert _text(entry["definition"][()]) == "NXcanSAS"
        assert _text(entry["run"][()]) == m.attempt_id
        assert "sample" in _text(entry["title"][()]) and "5m" in _text(entry["title"][()])

        data = entry["sasdata01"]
        assert (_text(data.attrs["NX_class"]), _text(data.attrs["canSAS_class"])) == ("NXdata", "SASdata")
        assert {k: _text(data.attrs[k]) for k in ("signal", "I_axes", "I_uncertainties", "Q_uncertainties")} == {
            "signal": "I", "I_axes": "Q", "I_uncertainties": "Idev", "Q_uncertainties": "Qdev",
        }
        assert list(data.attrs["Q_indices"]) == [0]
        assert _text(data["I"].attrs["uncertainties"]) == "Idev" and _text(data["Q"].attrs["resolutions"]) == "Qdev"
        units = {k: _text(data[k].attrs["units"]) for k in ("Q", "I", "Idev", "Qdev")}
        assert units == {"Q": "1/angstrom", "I": "1/cm", "Idev": "1/cm", "Qdev": "1/angstrom"}
        np.testing.assert_array_equal(data["Q"][()], m.data["q"])
        np.testing.assert_array_equal(data["I"][()], m.data["intensity"])
        np.testing.assert_array_equal(data["Idev"][()], m.sigma["intensity"])
        np.testing.assert_array_equal(data["Qdev"][()], m.data["dq"])

        instrument = entry["sasinstrument"]
        assert _text(instrument.attrs["canSAS_class"]) == "SASinstrument"
        source = instrument["sassource"]
        assert _text(source["radiation"][()]) == "neutron"
        assert source["incident_wavelength"][()] == 6.0 and _text(source["incident_wavelength"].attrs["units"]) == "angstrom"
        assert _text(instrument["sasdetector01"]["name"][()]) == "5m"
        assert _text(entry["sassample"]["name"][()]) == m.sample_id
        assert entry["sassample"]["thickness"][()] == 0.1
        note = json.loads(_text(entry["sasnote01"]["data"][()]))
        configuration = next(c for c in stored["instruments"][0]["settings"]["configurations"] if c["name"] == "5m")
        assert note["configuration"] == configuration and note["params"] == m.params


def test_sasdata_reads_the_nxcansas_file(store: Store, tmp_path: Path) -> None:
    pytest.importorskip("sasdata", reason="sasdata (SasView's loader) is not installed")
    from sasdata.dataloader.loader import Loader

    _, m = _record(store, tmp_path, "sans", "adaptive_sans.yaml", {"configuration": "15m", "exposure_seconds": 120.0})
    path = export_measurement(store, m.attempt_id, tmp_path / "sans.h5", "nxcansas")
    (loaded,) = Loader().load(str(path))
    # sasdata converts units on load (1/angstrom → its 1/A): equal to the last bit or so, not bit-exact.
    np.testing.assert_allclose(loaded.x, m.data["q"], rtol=1e-14, atol=0)
    np.testing.assert_allclose(loaded.y, m.data["intensity"], rtol=1e-14, atol=0)
    np.testing.assert_allclose(loaded.dy, m.sigma["intensity"], rtol=1e-14, atol=0)
    np.testing.assert_allclose(loaded.dx, m.data["dq"], rtol=1e-14, atol=0)
    assert (loaded.x_unit, loaded.y_unit) == ("A^{-1}", "cm^{-1}")
    assert loaded.run == [m.attempt_id] and loaded.sample.name == m.sample_id
    assert loaded.source.wavelength == 6.0 and loaded.source.radiation == "neutron"


@pytest.mark.parametrize(
    ("settings", "header", "wavelengths"),
    [
        ({}, "wavelength: CuKa", [1.5405929, 1.5444274]),  # the shipped file's Cu Kα1 + Kα2
        ({"wavelength": "MoKa1"}, "wavelength: MoKa1", [0.7093171]),
        ({"energy_kev": 20.0}, "wavelength: 20 keV", [12.398419843320026 / 20.0]),  # a synchrotron energy wins
    ],
)
def test_xye_holds_the_pattern_with_the_wavelength_window_and_dwell(
    store: Store, tmp_path: Path, settings: dict[str, Any], header: str, wavelengths: list[float]
) -> None:
    window = {"two_theta_start": 24.0, "two_theta_stop": 28.0, "two_theta_step": 0.02, "dwell_seconds": 0.5}
    _, m = _record(store, tmp_path, "xrd", "adaptive_xrd.yaml", window, **settings)
    path = export_measurement(store, m.attempt_id, tmp_path / "pattern.xye", "xye")

    columns = np.loadtxt(path)
    assert columns.shape == (m.data["two_theta"].size, 3)
    np.testing.assert_array_equal(columns[:, 0], m.data["two_theta"])
    np.testing.assert_array_equal(columns[:, 1], m.data["counts"])
    np.testing.assert_array_equal(columns[:, 2], m.sigma["counts"])
    head = [line[2:] for line in path.read_text().splitlines() if line.startswith("#")]
    assert any(line.startswith(header) for line in head), head
    listed = next(line for line in head if line.startswith("wavelength_angstrom:")).split(":")[1].split()
    np.testing.assert_allclose([float(w) for w in listed], wavelengths, rtol=1e-7)
    assert "window: two_theta_start 24 deg, two_theta_stop 28 deg, two_theta_step 0.02 deg, 201 steps" in head
    assert "dwell: 0.5 s per step" in head
    path.read_text(encoding="ascii")  # plain ASCII, as powder programs expect


def test_a_measurement_of_the_wrong_kind_is_refused_naming_the_attempt_and_what_is_missing(store: Store, tmp_path: Path) -> None:
    _, sas = _record(store, tmp_path, "sans", "adaptive_sans.yaml", {"configuration": "1.5m", "exposure_seconds": 60.0})
    window = {"two_theta_start": 30.0, "two_theta_stop": 31.0, "two_theta_step": 0.05, "dwell_seconds": 0.1}
    _, xrd = _record(store, tmp_path, "xrd", "adaptive_xrd.yaml", window)

    with pytest.raises(ExportError, match=r"attempt xrd-00000 is not reduced SAS data.*lacks data key 'q', data key 'intensity'"):
        export_measurement(store, xrd.attempt_id, tmp_path / "x.h5", "nxcansas")
    with pytest.raises(ExportError, match=r"attempt sans-00000 is not a powder pattern.*lacks data key 'two_theta', "
                                          r"data key 'counts', sigma\['counts'\]"):
        export_measurement(store, sas.attempt_id, tmp_path / "s.xye", "xye")
    with pytest.raises(ExportError, match=r"attempt sans-00001: no measurement recorded \(the attempt is 'refused'\)"):
        export_measurement(store, "sans-00001", tmp_path / "r.h5", "nxcansas")
    with pytest.raises(KeyError, match="no attempt 'nope-1'"):
        export_measurement(store, "nope-1", tmp_path / "n.h5", "nxcansas")
    with pytest.raises(ExportError, match="format 'cif' is not one of"):
        export_measurement(store, sas.attempt_id, tmp_path / "s.cif", "cif")
    assert not any(p.suffix in (".h5", ".xye", ".cif") for p in tmp_path.iterdir())  # nothing half-written


def test_labpilot_export_command(store: Store, tmp_path: Path) -> None:
    _, m = _record(store, tmp_path, "sans", "adaptive_sans.yaml", {"configuration": "5m", "exposure_seconds": 60.0})
    runner = CliRunner()
    db = store.url
    ok = runner.invoke(app, ["export", m.attempt_id, "--format", "nxcansas", "--out", str(tmp_path / "c.h5"), "--db", db])
    assert ok.exit_code == 0, ok.output
    with h5py.File(tmp_path / "c.h5", "r") as f:
        np.testing.assert_array_equal(f["sasentry01/sasdata01/I"][()], m.data["intensity"])
    wrong = runner.invoke(app, ["export", m.attempt_id, "--format", "xye", "--out", str(tmp_path / "c.xye"), "--db", db])
    assert wrong.exit_code == 2 and "sans-00000 is not a powder pattern" in wrong.output
    unknown = runner.invoke(app, ["export", "nope-1", "--format", "xye", "--out", str(tmp_path / "n.xye"), "--db", db])
    assert unknown.exit_code == 2 and "no attempt 'nope-1'" in unknown.output
    bad = runner.invoke(app, ["export", m.attempt_id, "--format", "cif", "--out", str(tmp_path / "c.cif"), "--db", db])
    assert bad.exit_code == 2 and not (tmp_path / "c.cif").exists()
