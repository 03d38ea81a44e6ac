"""Data files → ``Measurement`` records with explicit units (SAS through sasdata; powder patterns).

``read_measurements(path, kind=..., wavelength_angstrom=..., q_units=...)`` is the one entry point;
every reader raises ``DataFileError`` naming the file, the line or field and what was expected.
"""

from instruments.files.errors import DataFileError
from instruments.files.read import KNOWN_FORMATS, read_measurements

__all__ = ["DataFileError", "KNOWN_FORMATS", "read_measurements"]
