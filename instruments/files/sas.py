"""Reduced 1-D small-angle scattering files → ``Measurement`` records in labpilot's units.

Reading is sasdata's (``sasdata.dataloader.loader.Loader``): canSAS XML (``.xml``), NXcanSAS
(``.h5``/``.hdf5``/``.nxs``/``.hdf``), NIST ``.ABS``, ASCII tables of 2–4 columns (``.txt``/``.csv``/
``.dat``) and Anton Paar ``.pdh``. What this module adds is units that are *known*, not assumed:

- canSAS XML and NXcanSAS carry their units: q in 1/Å, 1/nm or 1/m is converted to 1/Å, an
  absolute intensity (1/cm, 1/m, 1/mm) to 1/cm.
- NIST ABS defines its columns as Q (1/Å) and I (1/cm).
- An ASCII or PDH file says nothing sasdata reads (its ASCII reader *assumes* 1/Å), so the header
  text is searched for a q unit (``Q (1/A)``, ``q [nm^-1]``); a file naming none (or both) is refused
  — an error naming the file — unless the caller passes ``q_units``. A PDH file from a SAXSess camera
  is typically in 1/nm: read as 1/Å it gives sizes ten times too small, silently.

Data keys (the SAS data contract): ``q`` (1/Å), ``intensity`` (1/cm when the file's unit is absolute,
else as the file has it and ``params["intensity_units"]`` says so), ``sigma["intensity"]``, and the
resolution either ``dq`` (pinhole, Gaussian 1-σ, 1/Å; zeros when the file gives none) or
``dq_slit_length`` / ``dq_slit_width`` (slit-smeared data such as USANS; sasdata's dxl/dxw, 1/Å).
A pinhole ``dq/q`` outside [1e-4, 1] is implausible (a fourth column that is not a resolution, or
one in other units) and refused, naming the file, unless ``ignore_resolution`` is set.
A file of several data blocks (SANS + USANS in ``latex_smeared.xml``) gives one record per block,
``params["configuration"]`` naming the block.
"""

from __future__ import annotations

import warnings
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from instruments.files.errors import DataFileError
from instruments.files.text import check_ascii_table, read_text
from instruments.files.units import canonical_unit, intensity_factor, q_factor, q_unit_in_header
from instruments.types import Measurement, ParamValue, Timing

UNITS_IN_FILE = {".xml": "canSAS XML", ".h5": "NXcanSAS", ".hdf5": "NXcanSAS", ".nxs": "NXcanSAS", ".hdf": "NXcanSAS"}
UNITS_BY_FORMAT = {".abs": "NIST ABS", ".cor": "NIST ABS"}
UNITS_UNKNOWN = {".txt": "ASCII", ".csv": "ASCII (CSV)", ".dat": "ASCII", ".pdh": "Anton Paar PDH"}
SAS_FORMATS = {**UNITS_IN_FILE, **UNITS_BY_FORMAT, **UNITS_UNKNOWN}
"""Extension → format name of every SAS file this module reads."""
DQ_OVER_Q_PLAUSIBLE = (1e-4, 1.0)
"""A pinhole resolution σ_Q/Q outside this range is not a resolution."""
ASCII_EXPECTED = "rows of 2–4 numbers: q, I(q)[, σ_I[, σ_q]]"


def read_sas(path: str | Path, *, q_units: str | None = None, ignore_resolution: bool = False,
             sample_id: str | None = None) -> list[Measurement]:
    """One ``Measurement`` per 1-D data block of the SAS file at ``path``.

    ``q_units`` ('1/A', '1/nm', …) states the q unit of a file that does not (ASCII, PDH); for a file
    that does, it must agree. ``ignore_resolution`` drops an implausible dq column instead of refusing
    the file. Raises ``DataFileError`` (naming the file and what is missing) for anything unreadable.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in SAS_FORMATS:
        raise DataFileError(path, "extension", f"{suffix or '(none)'} is not a SAS format labpilot reads",
                            "one of " + ", ".join(f"{ext} ({name})" for ext, name in SAS_FORMATS.items()))
    if not path.is_file():
        raise DataFileError(path, "", "no such file")
    header_unit = _ascii_q_unit(path) if suffix in UNITS_UNKNOWN else None
    blocks = _load_blocks(path)
    out = []
    for index, block in enumerate(blocks):
        factor, q_source = _q_conversion(path, suffix, block, q_units, header_unit)
        out.append(_measurement(path, block, index, len(blocks), factor, q_source, ignore_resolution, sample_id))
    return out


def _ascii_q_unit(path: Path) -> str | None:
    """The q unit an ASCII/PDH header names (after checking every data row), or None."""
    header = check_ascii_table(path, read_text(path), ASCII_EXPECTED)
    return q_unit_in_header(header)


def _load_blocks(path: Path) -> list[Any]:
    """sasdata's 1-D data blocks of ``path``; its failures become a ``DataFileError`` naming the file."""
    from sasdata.dataloader.loader import Loader  # on use: sasdata pulls in its readers and lxml

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sasdata warns about schema versions and missing fields it fills
        try:
            blocks = Loader().load(str(path))
        except Exception as exc:  # noqa: BLE001 — sasdata raises many kinds; each becomes one clear error
            raise DataFileError(path, "", f"sasdata cannot read it ({type(exc).__name__}: {exc})",
                                f"a valid {SAS_FORMATS.get(path.suffix.lower(), 'SAS')} file") from None
    one_d = [b for b in blocks if type(b).__name__ == "Data1D"]
    if not one_d:
        kinds = sorted({type(b).__name__ for b in blocks}) or ["nothing"]
        raise DataFileError(path, "", f"holds no 1-D I(q) data (sasdata found {', '.join(kinds)})", "reduced 1-D data")
    for b in one_d:
        if np.asarray(b.x).size == 0:
            raise DataFileError(path, "", "a data block holds no points", "q and I(q) columns")
    return one_d


def _q_conversion(path: Path, suffix: str, block: Any, q_units: str | None, header_unit: str | None) -> tuple[float, str]:
    """(factor to 1/Å, where the unit came from) for one block; refuses a file whose q unit is unknown."""
    stated = None
    if q_units is not None:
        stated = q_factor(q_units)
        if stated is None:
            raise DataFileError(path, "q_units", f"{q_units!r} is not a q unit", "'1/A', '1/nm' or '1/m'")
    if suffix in UNITS_IN_FILE:
        in_file = q_factor(getattr(block, "_xunit", None))
        if in_file is None:
            if stated is not None:
                return stated, f"stated (q_units={q_units})"
            raise DataFileError(path, "Q units", f"{getattr(block, '_xunit', None)!r} is not a q unit labpilot knows",
                                "1/A, 1/nm or 1/m in the file, or q_units= passed")
        if stated is not None and stated != in_file:
            raise DataFileError(path, "Q units", f"the file says {block._xunit!r}, q_units={q_units!r} disagrees",
                                "no q_units for a file that states its own")
        return in_file, f"file ({block._xunit})"
    if suffix in UNITS_BY_FORMAT:
        return (stated if stated is not None else 1.0), "format (NIST ABS: 1/A)" if stated is None else f"stated ({q_units})"
    if stated is not None:
        return stated, f"stated (q_units={q_units})"
    if header_unit is not None:
        return Q_FACTORS_BY_CANONICAL[header_unit], f"header ({header_unit})"
    raise DataFileError(path, "Q units", f"the file ({SAS_FORMATS[suffix]}) does not say whether q is in 1/Å or 1/nm",
                        "a header naming the unit (e.g. 'Q (1/A)') or q_units='1/A' or '1/nm' passed "
                        "(labpilot analyse --q-units)")


Q_FACTORS_BY_CANONICAL = {"1/a": 1.0, "1/nm": 0.1, "1/m": 1e-10}


def _array(value: Any, n: int) -> np.ndarray | None:
    """``value`` as a float array of length ``n``, or None when sasdata gave none (or the wrong length)."""
    if value is None:
        return None
    a = np.asarray(value, dtype=float).reshape(-1)
    return a if a.size == n else None


def _resolution(path: Path, block: Any, factor: float, q: np.ndarray, ignore: bool) -> tuple[dict[str, np.ndarray], str]:
    """(resolution data keys in 1/Å, how the resolution is given) of one block."""
    n = q.size
    dxl, dxw, dx = (_array(getattr(block, k, None), n) for k in ("dxl", "dxw", "dx"))
    if dxl is not None and np.any(np.abs(dxl) > 0):
        keys = {"dq_slit_length": np.abs(dxl) * factor,
                "dq_slit_width": (np.abs(dxw) if dxw is not None else np.zeros(n)) * factor}
        return keys, "slit"
    if dx is None or not np.any(dx > 0):
        return {"dq": np.zeros(n)}, "none (the file gives no resolution)"
    dq = dx * factor
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.abs(dq / q)
    ok = ratio[np.isfinite(ratio) & (dq > 0)]
    low, high = DQ_OVER_Q_PLAUSIBLE
    if ok.size and not (low <= float(np.median(ok)) <= high):
        if ignore:
            return {"dq": np.zeros(n)}, f"ignored (median dq/q {float(np.median(ok)):.3g} implausible)"
        raise DataFileError(path, "dQ column", f"median dq/q = {float(np.median(ok)):.3g} is not a plausible "
                            "pinhole resolution (not a resolution, or not in q's units)",
                            f"σ_Q/Q within [{low:g}, {high:g}], or ignore_resolution (--ignore-resolution)")
    return {"dq": dq}, "pinhole (Gaussian 1-σ)"


def _intensity(block: Any, n: int, unit: str | None) -> tuple[np.ndarray, np.ndarray | None, str]:
    """(intensity, σ or None, its units) — 1/cm when ``unit`` (the file's) is absolute, else as the file has it."""
    factor = intensity_factor(unit)
    y = np.asarray(block.y, dtype=float).reshape(-1)
    dy = _array(getattr(block, "dy", None), n)
    if dy is not None and not np.any(dy > 0):
        dy = None  # sasdata fills a missing σ column with zeros
    if factor is None:
        return y, dy, f"not absolute (file: {unit or 'none given'})"
    return y * factor, None if dy is None else dy * factor, "1/cm"


def _intensity_unit(path: Path, block: Any) -> str | None:
    """The intensity unit the file states: its own field (canSAS, NXcanSAS), the format's (ABS: 1/cm),
    or for ASCII/PDH one named in the header — sasdata's ASCII reader assumes 1/cm, which is not knowing."""
    suffix = path.suffix.lower()
    if suffix in UNITS_IN_FILE:
        return getattr(block, "_yunit", None)
    if suffix in UNITS_BY_FORMAT:
        return "1/cm"
    header = " ".join(read_text(path)[:40]).lower().replace(" ", "")
    return "1/cm" if ("1/cm" in header or "cm^-1" in header or "cm-1" in header) else None


def _block_name(block: Any, index: int, count: int) -> str:
    run = getattr(block, "run", None) or []
    if count > 1 and run and str(run[0]).strip():
        return str(run[0]).strip()
    title = str(getattr(block, "title", "") or "").strip()
    return title if count > 1 and title else (f"block{index + 1}" if count > 1 else "file")


def _measurement(path: Path, block: Any, index: int, count: int, factor: float, q_source: str,
                 ignore_resolution: bool, sample_id: str | None) -> Measurement:
    q_file = np.asarray(block.x, dtype=float).reshape(-1)
    q = q_file * factor
    resolution, how = _resolution(path, block, factor, q, ignore_resolution)
    y, dy, y_units = _intensity(block, q.size, _intensity_unit(path, block))
    configuration = _block_name(block, index, count)
    params: dict[str, ParamValue] = {
        "configuration": configuration, "source_file": str(path), "format": SAS_FORMATS[path.suffix.lower()],
        "q_units_source": q_source, "intensity_units": y_units, "resolution": how,
    }
    if dy is None:
        params["intensity_sigma"] = "not in file"
    wavelength = _wavelength(block)
    if wavelength is not None:
        params["wavelength_angstrom"] = wavelength
    stem = path.stem if count == 1 else f"{path.stem}#{configuration}"
    return Measurement(
        attempt_id=stem, instrument="file", params=params, sample_id=sample_id or path.stem,
        data={"q": q, "intensity": y, **resolution}, sigma={} if dy is None else {"intensity": dy},
        timing=Timing(exposure_seconds=0.0, started_at=_mtime(path)),
    )


def _wavelength(block: Any) -> float | None:
    """The incident wavelength in Å when the file gives one in Å or nm."""
    source = getattr(block, "source", None)
    value = getattr(source, "wavelength", None)
    unit_text = getattr(source, "wavelength_unit", None) or "A"
    to_angstrom = {"1/a": 1.0, "1/nm": 10.0}.get(canonical_unit(f"1/{unit_text}") or "")
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    if to_angstrom is None or not np.isfinite(value) or value <= 0:
        return None
    return value * to_angstrom


def _mtime(path: Path) -> datetime:
    return datetime.fromtimestamp(path.stat().st_mtime, tz=timezone.utc)
