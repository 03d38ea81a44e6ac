"""Powder patterns as 2θ columns (``.xy``, ``.xye``, 2-column ``.dat``) → ``Measurement`` records.

A file is 2 or 3 numeric columns — 2θ (degrees), intensity and optionally its esd — under ``#``
(or ``!``) comment lines. The wavelength comes from a header line when there is one
(``wavelength_angstrom: 1.5405929 1.5444274`` as ``labpilot export`` writes it, or ``wavelength: CuKa``,
``lambda = 1.5406``), else from the caller; with neither the file is refused.

Counts or scaled intensity (the powder data contract):

- integer, non-negative values without esd, or with an esd that is the Poisson one (√max(n, 1), as
  rounded in the file), or under a header naming the column ``counts`` → ``counts``, σ = √max(n, 1)
  (or the file's esd), and ``params["dwell_seconds"]`` from a header line (``dwell: 2 s per step``),
  else 1 s with ``params["dwell_source"]`` saying it was assumed: the counts are then per step;
- anything else (fractional, negative — background-subtracted — or with a non-Poisson esd) →
  ``intensity``, with σ from the esd column when there is one; negative values are kept.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from instruments.files.errors import DataFileError
from instruments.files.text import data_columns, read_text
from instruments.types import Measurement, ParamValue, Timing
from physics.xrd import WAVELENGTH_LINES, wavelength_lines

XY_EXPECTED = "2 or 3 numbers per line: 2θ (degrees), intensity[, esd]"
_LABPILOT_LINES = re.compile(r"^wavelength_angstrom\s*:\s*([0-9.eE+\-\s]+)$", re.IGNORECASE)
_LABPILOT_WEIGHTS = re.compile(r"^wavelength_weights\s*:\s*([0-9.eE+\-\s]+)$", re.IGNORECASE)
_NUMBER_WAVELENGTH = re.compile(r"\b(wavelength|lambda|alpha1|kalpha1|ka1)\b[^0-9\n]{0,20}?([0-9]+\.[0-9]+)", re.IGNORECASE)
_NAMED_WAVELENGTH = re.compile(r"\b(wavelength|radiation|anode|tube)\b[^A-Za-z\n]*([A-Z][a-z]?Ka1?)\b")
_DWELL = re.compile(r"\b(dwell|count(?:ing)?\s*time|time\s*per\s*step|step\s*time)\b[^0-9\n]{0,20}?([0-9]+(?:\.[0-9]*)?)\s*s",
                    re.IGNORECASE)


def resolve_wavelength(path: Path, given: str | float | None, header: list[str]) -> tuple[str | float, str]:
    """(the radiation: a line name such as 'CuKa' or λ in Å, where it came from). The caller's value wins;
    else the header's; else a ``DataFileError`` saying how to pass it."""
    if given is not None:
        try:
            wavelength_lines(given)
        except ValueError as exc:
            raise DataFileError(path, "wavelength_angstrom", str(exc), "a line name or λ in Å") from None
        return given, "stated"
    found = wavelength_in_header(header)
    if found is None:
        raise DataFileError(path, "wavelength", "the file does not give the X-ray wavelength",
                            "a header line such as '# wavelength_angstrom: 1.5406', or wavelength_angstrom= "
                            "passed (labpilot analyse --wavelength CuKa1 or 1.5406)")
    return found, "header"


def wavelength_in_header(header: list[str]) -> str | float | None:
    """The wavelength a header gives: a known line name (labpilot's lines matched to one), λ in Å, or None."""
    lines = [m.group(1).split() for h in header if (m := _LABPILOT_LINES.match(h))]
    weights = [m.group(1).split() for h in header if (m := _LABPILOT_WEIGHTS.match(h))]
    if lines:
        pairs = tuple(zip((float(v) for v in lines[0]), (float(w) for w in (weights[0] if weights else ["1"] * len(lines[0])))))
        for name, known in WAVELENGTH_LINES.items():
            if len(known) == len(pairs) and all(abs(a - b) < 1e-6 and abs(w - v) < 1e-6 for (a, w), (b, v) in zip(pairs, known)):
                return name
        return float(pairs[0][0])
    for h in header:
        named = _NAMED_WAVELENGTH.search(h)
        if named and named.group(2) in WAVELENGTH_LINES:
            return named.group(2)
    for h in header:
        number = _NUMBER_WAVELENGTH.search(h)
        if number:
            value = float(number.group(2))
            return value * 10 if value < 0.3 and "nm" in h.lower() else value
    return None


def wavelength_params(radiation: str | float, source: str) -> dict[str, ParamValue]:
    """``wavelength_angstrom`` (Kα1 or the one line, Å), ``wavelength`` (the line name when known)."""
    lines = wavelength_lines(radiation)
    params: dict[str, ParamValue] = {"wavelength_angstrom": float(lines[0][0]), "wavelength_source": source}
    params["wavelength"] = radiation if isinstance(radiation, str) else float(radiation)
    return params


def dwell_in_header(header: list[str]) -> float | None:
    """Seconds per step a header gives (``dwell: 2 s per step``, ``counting time 1.5 s``), or None."""
    for h in header:
        m = _DWELL.search(h)
        if m and float(m.group(2)) > 0:
            return float(m.group(2))
    return None


def is_poisson(y: np.ndarray, esd: np.ndarray | None) -> bool:
    """True when ``y`` are counts: finite non-negative integers whose esd (if any) is the Poisson one,
    √max(y, 1) or √y (programs differ at zero counts), to the file's rounding."""
    if not (np.all(np.isfinite(y)) and np.all(y >= 0) and np.all(y == np.rint(y))):
        return False
    if esd is None:
        return True
    root = np.sqrt(y)
    tolerance = 0.005 * np.maximum(root, 1.0) + 0.006
    return bool(np.all((np.abs(esd - np.sqrt(np.maximum(y, 1.0))) <= tolerance) | (np.abs(esd - root) <= tolerance)))


def powder_record(path: Path, two_theta: np.ndarray, y: np.ndarray, esd: np.ndarray | None, *,
                  radiation: str | float, wavelength_source: str, header: list[str], format_name: str,
                  dwell: float | None, counts_declared: bool = False, sample_id: str | None = None,
                  attempt_id: str | None = None) -> Measurement:
    """One pattern as a ``Measurement`` under the powder data contract (see the module docstring)."""
    params: dict[str, ParamValue] = {"source_file": str(path), "format": format_name,
                                     **wavelength_params(radiation, wavelength_source)}
    finite = two_theta[np.isfinite(two_theta)]
    if finite.size:
        params["two_theta_start"], params["two_theta_stop"] = float(finite.min()), float(finite.max())
    if finite.size > 1:
        params["two_theta_step"] = float(np.median(np.abs(np.diff(finite))))
    counted = is_poisson(y, esd) or (counts_declared and is_poisson(y, None))
    if counted:
        params["dwell_seconds"] = dwell if dwell is not None else 1.0
        params["dwell_source"] = "file" if dwell is not None else "assumed 1 s (not in file): counts per step"
        data = {"two_theta": two_theta, "counts": y}
        sigma = {"counts": esd if esd is not None else np.sqrt(np.maximum(y, 1.0))}
        exposure = float(params["dwell_seconds"]) * y.size
    else:
        params["intensity_units"] = "scaled"
        data = {"two_theta": two_theta, "intensity": y}
        sigma = {} if esd is None else {"intensity": esd}
        if esd is None:
            params["intensity_sigma"] = "not in file"
        exposure = 0.0
    started = datetime.fromtimestamp(path.stat().st_mtime, tz=timezone.utc)
    return Measurement(attempt_id=attempt_id or path.stem, instrument="file", params=params,
                       sample_id=sample_id or path.stem, data=data, sigma=sigma,
                       timing=Timing(exposure_seconds=exposure, started_at=started))


def check_two_theta(path: Path, two_theta: np.ndarray, line_numbers: np.ndarray | None) -> None:
    """2θ must be finite and within (0, 180) degrees; the error names the first bad line."""
    bad = ~(np.isfinite(two_theta) & (two_theta > 0) & (two_theta < 180))
    if np.any(bad):
        i = int(np.argmax(bad))
        where = f"line {int(line_numbers[i])}" if line_numbers is not None else f"point {i + 1}"
        raise DataFileError(path, where, f"2θ = {two_theta[i]:g} is not an angle in (0, 180) degrees",
                            "2θ in degrees in the first column")


def read_xy(path: str | Path, *, wavelength_angstrom: str | float | None = None,
            sample_id: str | None = None) -> list[Measurement]:
    """The pattern of an ``.xy``/``.xye``/``.dat`` file (see the module docstring); one record."""
    path = Path(path)
    table = data_columns(path, read_text(path), expected=XY_EXPECTED)
    if table.values.shape[1] not in (2, 3):
        raise DataFileError(path, f"line {int(table.line_numbers[0])}",
                            f"has {table.values.shape[1]} columns", XY_EXPECTED)
    two_theta, y = table.values[:, 0], table.values[:, 1]
    esd = table.values[:, 2] if table.values.shape[1] == 3 else None
    check_two_theta(path, two_theta, table.line_numbers)
    radiation, source = resolve_wavelength(path, wavelength_angstrom, table.header)
    declared = any(re.search(r"\bcolumns?\b.*\bcounts\b", h, re.IGNORECASE) for h in table.header)
    return [powder_record(path, two_theta, y, esd, radiation=radiation, wavelength_source=source,
                          header=table.header, format_name="xy", dwell=dwell_in_header(table.header),
                          counts_declared=declared, sample_id=sample_id)]
