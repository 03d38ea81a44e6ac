"""SAS files → Measurements: sasdata's example data, units read (not assumed), resolution kinds, and
bad input refused naming the file and what is missing. Reference values are read from the files
directly (ElementTree, numpy), never from labpilot."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

import sasdata
from instruments.files import DataFileError, read_measurements

pytestmark = pytest.mark.timeout(60)
DATA = Path(sasdata.__file__).parent / "example_data" / "1d_data"


def _cansas_columns(path: Path) -> list[dict[str, np.ndarray]]:
    """Per SASdata block: every Idata child as an array, straight from the XML."""
    blocks = []
    for sasdata_node in ET.parse(path).getroot().iter():
        if not sasdata_node.tag.endswith("SASdata"):
            continue
        rows = [{c.tag.rsplit("}", 1)[-1]: float(c.text) for c in idata} for idata in sasdata_node
                if idata.tag.endswith("Idata")]
        blocks.append({k: np.array([r.get(k, np.nan) for r in rows]) for k in rows[0]})
    return blocks


def test_tk49_canSAS_xml_gives_q_in_inverse_angstrom_and_absolute_intensity() -> None:
    path = DATA / "ISIS_Polymer_Blend_TK49.xml"
    [m] = read_measurements(path)
    [ref] = _cansas_columns(path)
    np.testing.assert_allclose(m.data["q"], ref["Q"])
    np.testing.assert_allclose(m.data["intensity"], ref["I"])
    np.testing.assert_allclose(m.sigma["intensity"], ref["Idev"])
    assert m.params["intensity_units"] == "1/cm" and "file" in str(m.params["q_units_source"])
    assert not np.any(m.data["dq"]) and m.params["resolution"].startswith("none")


def test_latex_smeared_gives_one_measurement_per_block_pinhole_and_slit() -> None:
    path = DATA / "latex_smeared.xml"
    sans, usans = read_measurements(path)
    ref_sans, ref_usans = _cansas_columns(path)
    assert {sans.params["configuration"], usans.params["configuration"]} == {"latex_sans", "latex_usans"}
    np.testing.assert_allclose(sans.data["dq"], ref_sans["Qdev"])
    assert "dq_slit_length" not in sans.data and "dq" not in usans.data
    np.testing.assert_allclose(usans.data["dq_slit_length"], ref_usans["dQl"])
    np.testing.assert_allclose(usans.data["q"], ref_usans["Q"])
    assert sans.attempt_id != usans.attempt_id and sans.sample_id == usans.sample_id == "latex_smeared"


def test_abs_slit_file_and_nxcansas_file_read_with_their_units() -> None:
    [slit] = read_measurements(DATA / "1umSlitSmearSphere.ABS")
    raw = np.loadtxt(DATA / "1umSlitSmearSphere.ABS", skiprows=12)
    np.testing.assert_allclose(slit.data["q"], raw[:, 0])
    np.testing.assert_allclose(slit.data["dq_slit_length"], np.abs(raw[:, 3]))
    [nx] = read_measurements(DATA / "Lew_Sa3_DSM_QinA.h5")
    assert nx.params["intensity_units"] == "1/cm" and np.all(nx.data["dq"] > 0)
    [counts] = read_measurements(DATA / "33837rear_1D_1.75_16.5_NXcanSAS.h5")
    assert counts.params["intensity_units"].startswith("not absolute")  # the file says Counts: not converted


def test_pdh_without_units_is_refused_and_nm_is_converted_to_inverse_angstrom() -> None:
    path = DATA / "saxess_example.pdh"
    with pytest.raises(DataFileError, match=r"saxess_example\.pdh: Q units: .*1/Å or 1/nm.*q_units"):
        read_measurements(path)
    raw = np.loadtxt(path, skiprows=5, max_rows=748)  # an XML tail follows the 748 rows
    [nm] = read_measurements(path, q_units="1/nm")
    [angstrom] = read_measurements(path, q_units="1/A")
    np.testing.assert_allclose(angstrom.data["q"], raw[:, 0])
    np.testing.assert_allclose(nm.data["q"], 0.1 * raw[:, 0])
    np.testing.assert_allclose(nm.data["intensity"], raw[:, 1])


def test_ascii_header_names_its_units_or_the_file_is_refused() -> None:
    [m] = read_measurements(DATA / "100nmPinholeSphere.txt")  # its header says Q (1/A)
    assert m.params["q_units_source"] == "header (1/a)"
    with pytest.raises(DataFileError, match=r"cyl_400_20\.txt: Q units"):
        read_measurements(DATA / "cyl_400_20.txt")


def test_an_implausible_resolution_column_is_refused_naming_the_file() -> None:
    path = DATA / "APS_DND-CAT.TXT"  # its 4th column is not a Q resolution: dq/q ≈ 190
    with pytest.raises(DataFileError, match=r"APS_DND-CAT\.TXT: dQ column: median dq/q = 1\d\d"):
        read_measurements(path, q_units="1/A")
    [m] = read_measurements(path, q_units="1/A", ignore_resolution=True)
    assert not np.any(m.data["dq"]) and m.params["resolution"].startswith("ignored")


def test_truncated_and_non_numeric_ascii_files_name_the_line(tmp_path: Path) -> None:
    lines = (DATA / "100nmPinholeSphere.txt").read_text().splitlines()
    truncated = tmp_path / "truncated.txt"
    truncated.write_text("\n".join(lines[:-1] + [lines[-1].split()[0]]) + "\n")
    with pytest.raises(DataFileError, match=rf"truncated\.txt: line {len(lines)}: .*truncated"):
        read_measurements(truncated)
    broken = tmp_path / "broken.txt"
    middle = len(lines) // 2
    broken.write_text("\n".join(lines[:middle] + ["0.05 oops 1.0 0.001"] + lines[middle:]) + "\n")
    with pytest.raises(DataFileError, match=rf"broken\.txt: line {middle + 1}: '0.05 oops"):
        read_measurements(broken)


def test_unknown_format_and_missing_file_are_named(tmp_path: Path) -> None:
    odd = tmp_path / "scan.foo"
    odd.write_text("1 2\n")
    with pytest.raises(DataFileError, match=r"scan\.foo: extension: \.foo is not a format.*sas: .*\.xml.*xrd: .*\.xye"):
        read_measurements(odd)
    with pytest.raises(DataFileError, match="no such file"):
        read_measurements(tmp_path / "absent.xml")
    bad_xml = tmp_path / "bad.xml"
    bad_xml.write_text("<SASroot><SASentry>")
    with pytest.raises(DataFileError, match=r"bad\.xml: "):
        read_measurements(bad_xml)


def test_a_canSAS_file_in_inverse_nanometres_gives_q_in_inverse_angstrom(tmp_path: Path) -> None:
    """TK49 rewritten with Q in 1/nm (values × 10), and I in 1/m (× 100): read back in 1/Å and 1/cm it is TK49."""
    import re

    text = (DATA / "ISIS_Polymer_Blend_TK49.xml").read_text()
    text = re.sub(r'<Q unit="1/A">([^<]+)</Q>', lambda m: f'<Q unit="1/nm">{float(m.group(1)) * 10!r}</Q>', text)
    text = re.sub(r'<(I|Idev) unit="1/cm">([^<]+)</\1>', lambda m: f'<{m.group(1)} unit="1/m">{float(m.group(2)) * 100!r}</{m.group(1)}>', text)
    converted = tmp_path / "tk49_nm.xml"
    converted.write_text(text)
    [nm] = read_measurements(converted)
    [ref] = _cansas_columns(DATA / "ISIS_Polymer_Blend_TK49.xml")
    np.testing.assert_allclose(nm.data["q"], ref["Q"], rtol=1e-12)
    np.testing.assert_allclose(nm.data["intensity"], ref["I"], rtol=1e-12)
    np.testing.assert_allclose(nm.sigma["intensity"], ref["Idev"], rtol=1e-12)
    assert nm.params["intensity_units"] == "1/cm"
    with pytest.raises(DataFileError, match=r"tk49_nm\.xml: Q units: the file says .*q_units='1/nm' disagrees"):
        read_measurements(converted, q_units="1/nm")  # sasdata converted the file's 1/nm: nothing to apply twice
