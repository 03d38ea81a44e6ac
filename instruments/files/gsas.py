"""GSAS powder data files (``.gsa``/``.gss``/``.fxye``/``.std``/``.esd``/``.raw`` in GSAS layout).

A title line, optional comment lines, then one or more ``BANK`` lines::

    BANK 1 2201 221 CONST 1000.0 5.0 0 0 STD      (or ESD, or 'CONS' ... FXYE)

For ``CONST``/``CONS`` binning, 2θ runs from the start (centidegrees) in steps (centidegrees).
Data layouts: ``STD`` — ten fields of 8 characters per line, each an optional 2-digit count of
counters (NCTR) and an intensity, σ = √(I/NCTR); ``ESD`` — five (intensity, esd) pairs of 8-character
fields per line; ``FXYE`` — free-format lines of 2θ (centidegrees), intensity, esd. GSAS files keep the
wavelength in a separate instrument-parameter file, so it comes from a comment line if one gives it,
else from the caller. Each bank gives one record.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from instruments.files.errors import DataFileError
from instruments.files.powder import check_two_theta, dwell_in_header, powder_record, resolve_wavelength
from instruments.files.text import numbers, read_text
from instruments.types import Measurement

GSAS_EXPECTED = "a 'BANK n nchan nrec CONST start step 0 0 STD|ESD|FXYE' line followed by its data lines"


@dataclass(frozen=True)
class Bank:
    """One BANK: its header line number, point count, binning start/step (centidegrees), layout."""

    line: int
    number: int
    n: int
    start: float | None
    step: float | None
    layout: str


def _bank(path: Path, number: int, text: str) -> Bank:
    fields = text.split()
    if len(fields) < 5:
        raise DataFileError(path, f"line {number}", f"BANK line {text!r} is too short", GSAS_EXPECTED)
    layout = fields[-1].upper() if fields[-1].upper() in ("STD", "ESD", "FXYE", "ALT") else "STD"
    binning = fields[4].upper()
    try:
        n = int(fields[2])
        start = float(fields[5]) if binning in ("CONST", "CONS") else None
        step = float(fields[6]) if binning in ("CONST", "CONS") else None
    except (ValueError, IndexError):
        raise DataFileError(path, f"line {number}", f"BANK line {text!r} has a non-numeric field", GSAS_EXPECTED) from None
    if layout in ("STD", "ESD") and (start is None or step is None or step <= 0):
        raise DataFileError(path, f"line {number}", f"{layout} data need CONST binning with a positive step", GSAS_EXPECTED)
    if layout == "ALT":
        raise DataFileError(path, f"line {number}", "the ALT layout is not read", "STD, ESD or FXYE data")
    return Bank(number, int(fields[1]), n, start, step, layout)


def _fixed_fields(path: Path, lines: list[tuple[int, str]], width: int = 8) -> list[tuple[int, str]]:
    out = []
    for number, line in lines:
        text = line.rstrip("\r\n")
        out.extend((number, text[i:i + width]) for i in range(0, len(text), width) if text[i:i + width].strip())
    return out


def _float(path: Path, number: int, field: str, what: str) -> float:
    try:
        return float(field)
    except ValueError:
        raise DataFileError(path, f"line {number}", f"{field.strip()!r} is not a number", what) from None


def _std(path: Path, bank: Bank, lines: list[tuple[int, str]]) -> tuple[np.ndarray, np.ndarray]:
    y, esd = [], []
    for number, field in _fixed_fields(path, lines)[: bank.n]:
        nctr = int(field[:2]) if field[:2].strip().isdigit() else 1
        value = _float(path, number, field[2:], "STD fields of 8 characters: NCTR (2) + intensity (6)")
        y.append(value)
        esd.append(np.sqrt(max(value, 1.0) / max(nctr, 1)))
    return np.asarray(y), np.asarray(esd)


def _esd(path: Path, bank: Bank, lines: list[tuple[int, str]]) -> tuple[np.ndarray, np.ndarray]:
    fields = _fixed_fields(path, lines)[: 2 * bank.n]
    values = [_float(path, number, f, "ESD fields of 8 characters: intensity, esd pairs") for number, f in fields]
    return np.asarray(values[0::2]), np.asarray(values[1::2])


def _fxye(path: Path, bank: Bank, lines: list[tuple[int, str]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rows = []
    for number, line in lines[: bank.n]:
        values = numbers(line)
        if values is None or len(values) != 3:
            raise DataFileError(path, f"line {number}", f"{line.strip()!r} is not 3 numbers",
                                "FXYE lines: 2θ (centidegrees), intensity, esd")
        rows.append(values)
    table = np.asarray(rows, dtype=float).reshape(-1, 3)
    return table[:, 0] / 100.0, table[:, 1], table[:, 2]


def _bank_data(path: Path, bank: Bank, lines: list[tuple[int, str]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(2θ degrees, intensity, esd) of one bank; a bank with fewer points than it declares is refused."""
    if bank.layout == "FXYE":
        two_theta, y, esd = _fxye(path, bank, lines)
    else:
        y, esd = (_std if bank.layout == "STD" else _esd)(path, bank, lines)
        two_theta = (bank.start + bank.step * np.arange(y.size)) / 100.0  # type: ignore[operator]
    if y.size != bank.n:
        raise DataFileError(path, f"BANK {bank.number} (line {bank.line})",
                            f"declares {bank.n} points, the file holds {y.size} (truncated)", GSAS_EXPECTED)
    return two_theta, y, esd


def read_gsas(path: str | Path, *, wavelength_angstrom: str | float | None = None,
              sample_id: str | None = None) -> list[Measurement]:
    """One record per BANK of the GSAS file at ``path``; see the module docstring."""
    path = Path(path)
    lines = read_text(path)
    starts = [i for i, line in enumerate(lines) if line.upper().startswith("BANK")]
    if not starts:
        raise DataFileError(path, "", "has no BANK line (not a GSAS data file)", GSAS_EXPECTED)
    header = [line.lstrip("#").strip() for line in lines[: starts[0]]]
    radiation, source = resolve_wavelength(path, wavelength_angstrom, header)
    out = []
    for k, start in enumerate(starts):
        end = starts[k + 1] if k + 1 < len(starts) else len(lines)
        bank = _bank(path, start + 1, lines[start])
        body = [(i + 1, lines[i]) for i in range(start + 1, end) if lines[i].strip() and not lines[i].startswith("#")]
        two_theta, y, esd = _bank_data(path, bank, body)
        check_two_theta(path, two_theta, None)
        out.append(powder_record(path, two_theta, y, esd, radiation=radiation, wavelength_source=source, header=header,
                                 format_name=f"GSAS {bank.layout}", dwell=dwell_in_header(header), sample_id=sample_id,
                                 attempt_id=path.stem if len(starts) == 1 else f"{path.stem}#bank{bank.number}"))
    return out
