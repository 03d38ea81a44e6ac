"""Phase identification on a real measured pattern: fityk's SiC_Zn.dat (Cu Kα1, 3C-SiC + Zn).

The CIFs are written here from the textbook cells (pymatgen ``Structure.from_spacegroup``) and
reach the analysis through its ``library:`` setting. Reference lattice parameters come from an
independent scipy fit of single Zn peaks (pseudo-Voigt + line), not from labpilot.
"""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure
from scipy.optimize import least_squares

from analysis.xrd import XRDPhaseIdentification, XRDPhaseIDSettings
from instruments.types import Measurement, Timing
from physics.phases import DEFAULT_LIBRARY

WAVELENGTH = 1.5406  # Cu Kα1, Å (fityk's SiC_Zn.fit: λ = 1.54051)


def _measurement(path: Path) -> Measurement:
    data = np.loadtxt(path)
    return Measurement(attempt_id=path.stem, instrument="file", params={"dwell_seconds": 1.0, "wavelength_angstrom": WAVELENGTH},
                       data={"two_theta": data[:, 0], "counts": data[:, 1]}, timing=Timing(exposure_seconds=1.0))


def _write_cifs(folder: Path) -> None:
    Structure.from_spacegroup("F-43m", Lattice.cubic(4.3596), ["Si", "C"], [[0, 0, 0], [0.25, 0.25, 0.25]]).to(
        filename=str(folder / "sic_3c.cif"))
    Structure.from_spacegroup("P6_3/mmc", Lattice.hexagonal(2.6649, 4.9468), ["Zn"], [[1 / 3, 2 / 3, 0.25]]).to(
        filename=str(folder / "zn.cif"))


@pytest.fixture(scope="module")
def library(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("library")
    for cif in DEFAULT_LIBRARY.glob("*.cif"):
        shutil.copy(cif, folder)
    _write_cifs(folder)
    return folder


def _peak_centre(x: np.ndarray, y: np.ndarray, lo: float, hi: float) -> float:
    """Centre (deg) of the one peak in [lo, hi]: a least-squares pseudo-Voigt + straight line."""
    s = (x > lo) & (x < hi)
    xs, ys = x[s], y[s]

    def model(p: np.ndarray) -> np.ndarray:
        c, f, eta, a, b0, b1 = p
        u = ((xs - c) / f) ** 2
        pv = eta * 2 / (math.pi * f) / (1 + 4 * u) + (1 - eta) * math.sqrt(4 * math.log(2) / math.pi) / f * np.exp(-4 * math.log(2) * u)
        return a * pv + b0 + b1 * (xs - xs.mean())

    p0 = [xs[np.argmax(ys)], 0.3, 0.5, ys.max() * 0.3, float(np.median(ys)), 0.0]
    fit = least_squares(lambda p: (model(p) - ys) / np.sqrt(np.maximum(ys, 1)), p0,
                        bounds=([lo, 0.01, 0, 0, -1e3, -1e3], [hi, 3, 1, 1e7, 1e4, 1e3]))
    return float(fit.x[0])


def _zn_cell_independent(path: Path) -> tuple[float, float]:
    """Zn a, c (Å) from the (100) and (101) peak centres."""
    data = np.loadtxt(path)
    d100 = WAVELENGTH / (2 * math.sin(math.radians(_peak_centre(data[:, 0], data[:, 1], 38.0, 40.0) / 2)))
    d101 = WAVELENGTH / (2 * math.sin(math.radians(_peak_centre(data[:, 0], data[:, 1], 42.0, 44.6) / 2)))
    a = 2 * d100 / math.sqrt(3)
    c = 1 / math.sqrt(1 / d101**2 - 4 / (3 * a * a))
    return a, c


def test_sic_zn_with_the_shipped_library_is_sic_plus_zn_with_the_independent_zn_cell(fityk_samples: Path, library: Path) -> None:
    """Issue 11's goal: best set {SiC, Zn} with p ≥ 0.9 among the shipped library + the two CIFs, no
    third phase above 0.5 wt %, no ``unexplained-peaks``; and the refined Zn cell matches a direct
    peak fit (the profile model — Debye–Waller, asymmetry, refined instrument, axial strain and
    size — explains the real pattern)."""
    path = fityk_samples / "SiC_Zn.dat"
    # Zn's c/a in this sample is 0.65 % below the textbook cell's: axial refinement on.
    settings = XRDPhaseIDSettings(library=str(library), wavelength=WAVELENGTH, two_theta_range=(20.0, 100.0),
                                  axial_strain_bound=0.01)
    result = XRDPhaseIdentification(settings).interpret([_measurement(path)])
    assert result.details["best_set"] == "sic_3c+zn", result.flags
    assert result.estimates["p(best)"].value >= 0.9
    assert "unexplained-peaks" not in result.flags and result.details["identified"] is True
    others = [k for k, e in result.estimates.items() if k.startswith("w:") and k not in ("w:sic_3c", "w:zn")]
    assert all((result.estimates[k].value or 0.0) <= 0.005 for k in others)
    a_ref, c_ref = _zn_cell_independent(path)
    strain, axial = (float(result.details[f"hyp:0:{k}:zn"]) for k in ("strain", "axial_strain"))
    assert 2.6649 * (1 + strain) == pytest.approx(a_ref, rel=2e-3)
    assert 4.9468 * (1 + strain) * (1 + axial) == pytest.approx(c_ref, rel=2e-3)


@pytest.mark.parametrize("sample", ["SiC_Zn.dat", "nacl01.dat"])
def test_an_absurd_library_gives_not_identified(fityk_samples: Path, sample: str) -> None:
    """Diamond + graphite + calcite explain neither SiC + Zn nor fityk's NaCl pattern: not identified,
    fractions unusable, p(best) low (the old open-world rule gave 0.5 whatever the fit)."""
    data = np.loadtxt(fityk_samples / sample)
    settings = XRDPhaseIDSettings(candidates=["c_diamond", "c_graphite", "caco3_calcite"], wavelength=WAVELENGTH,
                                  two_theta_range=(float(data[0, 0]), float(data[-1, 0])), max_phases=1)
    result = XRDPhaseIdentification(settings).interpret([_measurement(fityk_samples / sample)])
    assert "not-identified" in result.flags and "fractions-unusable" in result.flags
    assert result.estimates["p(best)"].value is not None and result.estimates["p(best)"].value < 0.05
    assert all(result.estimates[f"w:{n}"].value is None for n in str(result.details["best_set"]).split("+"))
