"""One entry point for data files: pick the reader by extension (and ``kind`` where it is ambiguous)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from instruments.files.errors import DataFileError
from instruments.files.gsas import read_gsas
from instruments.files.powder import read_xy
from instruments.files.sas import SAS_FORMATS, read_sas
from instruments.files.xrdml import read_xrdml
from instruments.types import Measurement

Kind = Literal["sas", "xrd"]
POWDER_FORMATS = {".xy": "2θ columns", ".xye": "2θ columns with esd", ".gsa": "GSAS", ".gss": "GSAS",
                  ".gsas": "GSAS", ".fxye": "GSAS FXYE", ".std": "GSAS STD", ".esd": "GSAS ESD", ".xrdml": "PANalytical XRDML"}
AMBIGUOUS = {".dat", ".txt", ".csv"}
"""Extensions used for SAS tables and powder columns alike: ``kind`` decides (default SAS, except .dat)."""
NOT_READ = {".raw": "Bruker/Siemens RAW is binary and no maintained PyPI reader installs here (xylib-py and "
                    "xylib-py-wheels fail to build); convert it to .xy or .xrdml with the instrument's software"}
KNOWN_FORMATS = {"sas": dict(SAS_FORMATS), "xrd": {**POWDER_FORMATS, ".dat": "2θ columns", ".txt": "2θ columns",
                                                    ".csv": "2θ columns"}}
"""kind → extension → format name, for help texts and errors."""


def _known() -> str:
    return "; ".join(f"{kind}: {', '.join(sorted(formats))}" for kind, formats in KNOWN_FORMATS.items())


def _kind_of(path: Path, kind: Kind | None) -> Kind:
    suffix = path.suffix.lower()
    if kind is not None:
        if kind not in KNOWN_FORMATS:
            raise DataFileError(path, "kind", f"{kind!r} is not a data kind", "'sas' or 'xrd'")
        if suffix not in KNOWN_FORMATS[kind]:
            raise DataFileError(path, "extension", f"{suffix or '(none)'} is not a {kind} format labpilot reads",
                                f"one of {', '.join(sorted(KNOWN_FORMATS[kind]))}")
        return kind
    if suffix in NOT_READ:
        raise DataFileError(path, "extension", NOT_READ[suffix])
    if suffix == ".dat":
        raise DataFileError(path, "kind", ".dat is used for SAS tables and powder patterns alike",
                            "kind='sas' or kind='xrd' (labpilot analyse --analysis)")
    if suffix in SAS_FORMATS:
        return "sas"
    if suffix in POWDER_FORMATS:
        return "xrd"
    raise DataFileError(path, "extension", f"{suffix or '(none)'} is not a format labpilot reads", f"one of {_known()}")


def read_measurements(path: str | Path, *, kind: Kind | None = None, wavelength_angstrom: str | float | None = None,
                      q_units: str | None = None, ignore_resolution: bool = False,
                      sample_id: str | None = None) -> list[Measurement]:
    """The measurements in the data file at ``path``, in labpilot's units (see ``instruments.files``).

    ``kind`` ('sas' | 'xrd') settles extensions used by both; ``wavelength_angstrom`` (a line name such as
    'CuKa1' or λ in Å) is required for a powder file that does not give its wavelength; ``q_units``
    ('1/A' | '1/nm') for a SAS file that does not give its q unit. Raises ``DataFileError`` naming the
    file, the line or field and what was expected.
    """
    path = Path(path)
    if not path.is_file():
        raise DataFileError(path, "", "no such file")
    if path.suffix.lower() in NOT_READ:
        raise DataFileError(path, "extension", NOT_READ[path.suffix.lower()])
    if _kind_of(path, kind) == "sas":
        return read_sas(path, q_units=q_units, ignore_resolution=ignore_resolution, sample_id=sample_id)
    suffix = path.suffix.lower()
    if suffix == ".xrdml":
        return read_xrdml(path, wavelength_angstrom=wavelength_angstrom, sample_id=sample_id)
    if suffix in (".gsa", ".gss", ".gsas", ".fxye", ".std", ".esd"):
        return read_gsas(path, wavelength_angstrom=wavelength_angstrom, sample_id=sample_id)
    return read_xy(path, wavelength_angstrom=wavelength_angstrom, sample_id=sample_id)
