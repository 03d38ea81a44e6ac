"""The one error a data file reader raises: which file, where in it, what is wrong, what was expected."""

from __future__ import annotations

from pathlib import Path


class DataFileError(ValueError):
    """A data file that cannot be read as a measurement with known units.

    ``where`` is a line (``"line 17"``), a field (``"Q units"``) or a block; ``expected`` says what a
    readable file has there. The message names all three and the file, so a user can fix the file
    (or pass what is missing, such as ``wavelength_angstrom=`` or ``q_units=``) without reading code.
    """

    def __init__(self, path: str | Path, where: str, problem: str, expected: str = "") -> None:
        self.path = str(path)
        self.where = where
        self.problem = problem
        self.expected = expected
        message = f"{self.path}: {where}: {problem}" if where else f"{self.path}: {problem}"
        if expected:
            message += f"; expected {expected}"
        super().__init__(message)
