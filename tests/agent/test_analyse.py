"""``labpilot analyse``: one interpretation of files, answer first, --json for scripts, --report HTML;
bad input exits 2 naming the file and writes nothing. References are direct scipy fits in the test."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
import yaml
from scipy.optimize import curve_fit
from typer.testing import CliRunner

import sasdata
from agent.cli import app

pytestmark = pytest.mark.timeout(120)
DATA = Path(sasdata.__file__).parent / "example_data" / "1d_data"
TK49 = DATA / "ISIS_Polymer_Blend_TK49.xml"
COIL = {"candidates": [{"name": "coil", "model": "mono_gauss_coil", "parameters": {
    "i_zero": {"value": 50, "bounds": [1, 1000]}, "rg": {"value": 60, "bounds": [10, 300]},
    "background": {"value": 0.1, "bounds": [0, 5]}}}]}


def _debye(q: np.ndarray, i_zero: float, rg: float, background: float) -> np.ndarray:
    x = (q * rg) ** 2
    return i_zero * 2 * (np.expm1(-x) + x) / x**2 + background


def _tk49_direct_rg() -> tuple[float, float]:
    """Rg ± σ of a direct least-squares Debye fit to the XML's columns (no smearing: the file gives none)."""
    rows = [{c.tag.rsplit("}", 1)[-1]: float(c.text) for c in node} for node in ET.parse(TK49).getroot().iter()
            if node.tag.endswith("Idata")]
    q, i, s = (np.array([r[k] for r in rows]) for k in ("Q", "I", "Idev"))
    popt, pcov = curve_fit(_debye, q, i, p0=(50, 60, 0.1), sigma=s, absolute_sigma=True)
    return float(popt[1]), float(np.sqrt(pcov[1, 1]))


def _settings(tmp_path: Path, data: dict) -> Path:  # type: ignore[type-arg]
    path = tmp_path / "settings.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_tk49_json_answer_matches_a_direct_fit_and_the_report_has_the_fit(tmp_path: Path) -> None:
    report = tmp_path / "out" / "tk49.html"
    result = CliRunner().invoke(app, ["analyse", str(TK49), "--analysis", "sas", "--settings",
                                      str(_settings(tmp_path, COIL)), "--json", "--report", str(report)])
    assert result.exit_code == 0, result.output
    answer = json.loads(result.stdout.splitlines()[0])
    rg, sigma = _tk49_direct_rg()
    assert answer["valid"] and answer["probabilities"]["p(coil)"] == pytest.approx(1.0)
    assert abs(answer["estimates"]["rg"]["value"] - rg) < 0.2 * sigma
    assert answer["estimates"]["rg"]["sigma"] == pytest.approx(sigma, rel=0.2)
    assert answer["measurements"][0]["params"]["intensity_units"] == "1/cm"
    page = report.read_text()
    assert "data:image/png;base64," in page and "rg" in page


def test_the_human_answer_comes_first(tmp_path: Path) -> None:
    campaign_style = {"analysis": {"kind": "sas", "settings": COIL}}  # a campaign file's block works as is
    result = CliRunner().invoke(app, ["analyse", str(TK49), "--analysis", "sas", "--settings",
                                      str(_settings(tmp_path, campaign_style))])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].startswith("sas analysis of 1 file(s), 1 measurement(s): valid")
    assert any(line.split()[:1] == ["rg"] and "±" in line for line in lines[:6])


@pytest.mark.parametrize(
    ("name", "content", "extra", "message"),
    [
        ("pattern.foo", "20 1\n", [], r"pattern\.foo: extension: \.foo is not a xrd format"),
        ("nowave.xy", "20.0 10\n20.1 12\n", [], r"nowave\.xy: wavelength: the file does not give the X-ray wavelength"),
        ("cut.xy", "# wavelength: CuKa1\n20.0 10\n20.1 12\n20.2\n", [], r"cut\.xy: line 4: has 1 numbers"),
        ("words.xy", "# wavelength: CuKa1\n20.0 10\n20.1 ten\n", [], r"words\.xy: line 3: '20\.1 ten' is not numeric"),
        ("bad.xy", "# lambda 1.54\n20.0 10\n", ["--wavelength", "CuKz"], r"bad\.xy: wavelength_angstrom: .*unknown line 'CuKz'"),
    ],
)
def test_bad_powder_input_exits_2_naming_the_file_and_writes_nothing(
    tmp_path: Path, name: str, content: str, extra: list[str], message: str
) -> None:
    path = tmp_path / name
    path.write_text(content)
    report = tmp_path / "report.html"
    result = CliRunner().invoke(app, ["analyse", str(path), "--analysis", "xrd", "--json", "--report", str(report), *extra])
    assert result.exit_code == 2
    import re

    assert re.search(message, json.loads(result.stdout.splitlines()[0])["error"]), result.stdout
    assert not report.exists() and sorted(p.name for p in tmp_path.iterdir()) == [name]


def test_sas_input_without_units_or_settings_exits_2(tmp_path: Path) -> None:
    report = tmp_path / "r.html"
    result = CliRunner().invoke(app, ["analyse", str(DATA / "saxess_example.pdh"), "--analysis", "sas", "--report", str(report),
                                      "--settings", str(_settings(tmp_path, COIL))])
    assert result.exit_code == 2 and "saxess_example.pdh: Q units: " in result.output
    result = CliRunner().invoke(app, ["analyse", str(TK49), "--analysis", "sas", "--report", str(report)])
    assert result.exit_code == 2 and "candidates" in result.output and "default settings" in result.output
    wrong = _settings(tmp_path, {"candidates": [{"name": "coil", "model": "mono_gauss_coil", "parameters": {"rg": {"value": 1}}}]})
    result = CliRunner().invoke(app, ["analyse", str(TK49), "--analysis", "sas", "--settings", str(wrong), "--json"])
    assert result.exit_code == 2
    assert "settings.yaml: invalid sas analysis settings: candidates.0.parameters.rg.bounds" in json.loads(result.stdout)["error"]
    assert not report.exists()


def test_xrd_takes_the_wavelength_from_the_file(tmp_path: Path) -> None:
    """A Co Kα pattern (simulated here, written as labpilot exports it): analysed with the file's
    wavelength, the phases are found; the default (Cu Kα) would put every peak elsewhere."""
    from simulators.xrd import XRDDriver, XRDSettings
    from instruments.types import MeasurementRequest

    sample = {"phases": [{"phase": "tio2_anatase", "weight_fraction": 0.7}, {"phase": "tio2_rutile", "weight_fraction": 0.3}]}
    driver = XRDDriver("xrd", XRDSettings.model_validate({"sample": sample, "wavelength": "CoKa", "seed": 1}))
    m = driver.measure(MeasurementRequest(attempt_id="a", params={
        "two_theta_start": 20.0, "two_theta_stop": 80.0, "two_theta_step": 0.04, "dwell_seconds": 1.0}))
    path = tmp_path / "tio2.xye"
    np.savetxt(path, np.column_stack([m.data["two_theta"], m.data["counts"], m.sigma["counts"]]), fmt="%.17g",
               header="wavelength_angstrom: 1.7889920 1.7928350\nwavelength_weights: 1 0.5\ndwell: 1 s per step",
               comments="# ")
    settings = _settings(tmp_path, {"candidates": ["tio2_anatase", "tio2_rutile", "tio2_brookite", "si"]})
    result = CliRunner().invoke(app, ["analyse", str(path), "--analysis", "xrd", "--settings", str(settings), "--json"])
    assert result.exit_code == 0, result.output
    answer = json.loads(result.stdout.splitlines()[0])
    assert answer["measurements"][0]["params"]["wavelength"] == "CoKa"
    assert answer["details"]["best_set"] == "tio2_anatase+tio2_rutile"
