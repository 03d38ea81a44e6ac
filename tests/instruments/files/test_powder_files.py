"""Powder files → Measurements: fityk's measured patterns (.dat), .xy/.xye headers, GSAS STD/ESD/FXYE
and XRDML written here from a measured pattern by independent writers, counts against scaled
intensities, and bad input named by file and line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from instruments.files import DataFileError, read_measurements

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def sic_zn(fityk_samples: Path) -> tuple[Path, np.ndarray]:
    path = fityk_samples / "SiC_Zn.dat"
    return path, np.loadtxt(path)


def test_a_measured_dat_pattern_is_counts_and_needs_a_wavelength(sic_zn: tuple[Path, np.ndarray]) -> None:
    path, raw = sic_zn
    with pytest.raises(DataFileError, match=r"SiC_Zn\.dat: wavelength: .*does not give the X-ray wavelength.*--wavelength"):
        read_measurements(path, kind="xrd")
    with pytest.raises(DataFileError, match=r"SiC_Zn\.dat: kind: .dat is used for SAS tables and powder patterns alike"):
        read_measurements(path)
    [m] = read_measurements(path, kind="xrd", wavelength_angstrom="CuKa1")
    np.testing.assert_array_equal(m.data["two_theta"], raw[:, 0])
    np.testing.assert_array_equal(m.data["counts"], raw[:, 1])
    np.testing.assert_allclose(m.sigma["counts"], np.sqrt(np.maximum(raw[:, 1], 1)))
    assert m.params["wavelength_angstrom"] == pytest.approx(1.5405929) and m.params["wavelength"] == "CuKa1"
    assert m.params["dwell_seconds"] == 1.0 and "assumed" in str(m.params["dwell_source"])


def test_xye_header_gives_wavelength_and_dwell_and_an_esd_column_makes_scaled_intensity(tmp_path: Path) -> None:
    x = np.arange(20.0, 30.0, 0.05)
    counts = np.rint(50 + 400 * np.exp(-((x - 25) / 0.1) ** 2))
    counted = tmp_path / "counted.xye"
    np.savetxt(counted, np.column_stack([x, counts, np.sqrt(counts)]), fmt="%.4f",
               header="Wavelength = 0.7093 A\ncounting time 2.5 s per step")
    [m] = read_measurements(counted)
    assert "counts" in m.data and m.params["wavelength_angstrom"] == pytest.approx(0.7093)
    assert m.params["dwell_seconds"] == 2.5 and m.timing.exposure_seconds == pytest.approx(2.5 * x.size)
    scaled = tmp_path / "subtracted.xye"
    y = counts - 60.0  # background-subtracted: negative in places
    np.savetxt(scaled, np.column_stack([x, y / 7.0, 0.3 + 0 * x]), header="wavelength: CuKa")
    [s] = read_measurements(scaled)
    assert "counts" not in s.data and np.any(s.data["intensity"] < 0)
    np.testing.assert_allclose(s.data["intensity"], y / 7.0)
    np.testing.assert_allclose(s.sigma["intensity"], 0.3)
    assert s.params["wavelength"] == "CuKa" and s.params["intensity_units"] == "scaled"


def test_truncated_non_numeric_and_empty_xy_files_name_the_line(tmp_path: Path) -> None:
    path = tmp_path / "p.xy"
    path.write_text("# wavelength: CuKa1\n20.0 10\n20.1 12\n20.2\n")
    with pytest.raises(DataFileError, match=r"p\.xy: line 4: has 1 numbers where the lines above have 2.*2θ \(degrees\)"):
        read_measurements(path)
    path.write_text("# wavelength: CuKa1\n20.0 10\n20.1 twelve\n")
    with pytest.raises(DataFileError, match=r"p\.xy: line 3: '20\.1 twelve' is not numeric"):
        read_measurements(path)
    path.write_text("# wavelength: CuKa1\n")
    with pytest.raises(DataFileError, match=r"p\.xy: holds no data lines"):
        read_measurements(path)
    path.write_text("# wavelength: CuKa1\n20.0 10\n200.0 12\n")
    with pytest.raises(DataFileError, match=r"p\.xy: line 3: 2θ = 200"):
        read_measurements(path)


def _write_std(path: Path, x: np.ndarray, counts: np.ndarray) -> None:
    """GSAS STD by hand: BANK line, then ten (I2, F6.0) fields per line, 2θ in centidegrees."""
    start, step = 100 * x[0], 100 * (x[1] - x[0])
    lines = ["SiC + Zn (fityk sample), Cu Ka1", f"BANK 1 {x.size} {(x.size + 9) // 10} CONST {start:.2f} {step:.4f} 0 0 STD"]
    fields = [f"{'':2}{int(c):6d}" for c in counts]
    lines += ["".join(fields[i:i + 10]) for i in range(0, len(fields), 10)]
    path.write_text("\n".join(lines) + "\n")


def test_gsas_std_esd_and_fxye_read_back_the_measured_pattern(sic_zn: tuple[Path, np.ndarray], tmp_path: Path) -> None:
    _, raw = sic_zn
    x, counts = raw[:, 0], raw[:, 1]
    std = tmp_path / "sic.std"
    _write_std(std, x, counts)
    [m] = read_measurements(std, wavelength_angstrom="CuKa1")
    np.testing.assert_allclose(m.data["two_theta"], x, atol=1e-9)
    np.testing.assert_array_equal(m.data["counts"], counts)
    scaled, esd = counts / 3.0, np.sqrt(np.maximum(counts, 1)) / 3.0
    fxye = tmp_path / "sic.fxye"
    body = "\n".join(f"{100 * a:.3f} {b:.5f} {c:.5f}" for a, b, c in zip(x, scaled, esd))
    fxye.write_text(f"title\n# wavelength: CuKa1\nBANK 1 {x.size} {x.size} CONS {100 * x[0]} 2.0 0 0 FXYE\n{body}\n")
    [f] = read_measurements(fxye)
    np.testing.assert_allclose(f.data["two_theta"], x, atol=1e-6)
    np.testing.assert_allclose(f.data["intensity"], scaled, atol=1e-5)
    np.testing.assert_allclose(f.sigma["intensity"], esd, atol=1e-5)
    esd_file = tmp_path / "sic.esd"
    pairs = [f"{b:8.1f}{c:8.2f}" for b, c in zip(scaled, esd)]
    esd_file.write_text(f"title\nBANK 1 {x.size} {(x.size + 4) // 5} CONST {100 * x[0]:.2f} 2.0 0 0 ESD\n"
                        + "\n".join("".join(pairs[i:i + 5]) for i in range(0, len(pairs), 5)) + "\n")
    [e] = read_measurements(esd_file, wavelength_angstrom=1.5406)
    np.testing.assert_allclose(e.data["intensity"], np.round(scaled, 1))
    truncated = tmp_path / "cut.std"
    _write_std(truncated, x, counts)
    truncated.write_text("\n".join(truncated.read_text().splitlines()[:-3]) + "\n")
    with pytest.raises(DataFileError, match=rf"cut\.std: BANK 1 \(line 2\): declares {x.size} points, the file holds \d+ \(truncated\)"):
        read_measurements(truncated, wavelength_angstrom="CuKa1")


def _write_xrdml(path: Path, x: np.ndarray, counts: np.ndarray, *, wavelength: bool = True) -> None:
    used = ("<usedWavelength intended='K-Alpha 1'><kAlpha1 unit='Angstrom'>1.5405980</kAlpha1>"
            "<kAlpha2 unit='Angstrom'>1.5444260</kAlpha2><ratioKAlpha2KAlpha1>0.5</ratioKAlpha2KAlpha1></usedWavelength>"
            if wavelength else "")
    path.write_text(
        "<?xml version='1.0' encoding='UTF-8'?>\n<xrdMeasurements xmlns='http://www.xrdml.com/XRDMeasurement/1.5'>"
        f"<xrdMeasurement measurementType='Scan' status='Completed'>{used}<scan appendNumber='0' mode='Continuous' "
        "scanAxis='Gonio' status='Completed'><dataPoints>"
        f"<positions axis='2Theta' unit='deg'><startPosition>{x[0]}</startPosition><endPosition>{x[-1]}</endPosition></positions>"
        "<commonCountingTime unit='seconds'>0.5</commonCountingTime>"
        f"<intensities unit='counts'>{' '.join(str(int(c)) for c in counts)}</intensities>"
        "</dataPoints></scan></xrdMeasurement></xrdMeasurements>")


def test_xrdml_gives_wavelength_and_counting_time_from_the_file(sic_zn: tuple[Path, np.ndarray], tmp_path: Path) -> None:
    _, raw = sic_zn
    path = tmp_path / "sic.xrdml"
    _write_xrdml(path, raw[:, 0], raw[:, 1])
    [m] = read_measurements(path)
    np.testing.assert_allclose(m.data["two_theta"], raw[:, 0], atol=1e-9)
    np.testing.assert_array_equal(m.data["counts"], raw[:, 1])
    assert m.params["wavelength_angstrom"] == pytest.approx(1.540598) and m.params["dwell_seconds"] == 0.5
    _write_xrdml(path, raw[:, 0], raw[:, 1], wavelength=False)
    with pytest.raises(DataFileError, match=r"sic\.xrdml: usedWavelength: is missing"):
        read_measurements(path)


def test_bruker_raw_is_refused_saying_why(tmp_path: Path) -> None:
    raw = tmp_path / "scan.raw"
    raw.write_bytes(b"RAW1.01\x00\x00")
    with pytest.raises(DataFileError, match=r"scan\.raw: extension: Bruker/Siemens RAW .*convert it"):
        read_measurements(raw)
