"""Numeric columns of a text data file, with the line number of every row and the header apart.

Shared by the powder readers and the check of ASCII SAS files: a line that should hold numbers and
does not (a truncated last line, a stray word in the data) is an error naming its line, never a row
silently skipped.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from instruments.files.errors import DataFileError

_SEPARATORS = re.compile(r"[\s,;]+")
_STARTS_NUMERIC = re.compile(r"^\s*[-+]?(\d|\.\d)")


@dataclass(frozen=True)
class TextColumns:
    """The numeric table of a text file: ``values`` (n, columns), the 1-based ``line_numbers`` (n,)
    of its rows, and the ``header`` lines (text lines, comment markers stripped)."""

    values: np.ndarray
    line_numbers: np.ndarray
    header: list[str]


def read_text(path: Path) -> list[str]:
    """The file's lines; a binary or non-text file is a ``DataFileError``."""
    try:
        return path.read_text(encoding="utf-8", errors="strict").splitlines()
    except UnicodeDecodeError:
        try:
            return path.read_text(encoding="latin-1").splitlines()
        except OSError as exc:
            raise DataFileError(path, "", f"cannot be read ({exc})") from None
    except OSError as exc:
        raise DataFileError(path, "", f"cannot be read ({exc})") from None


def numbers(line: str) -> list[float] | None:
    """The numbers of a line, or None when a token is not a number."""
    tokens = [t for t in _SEPARATORS.split(line.strip()) if t]
    try:
        return [float(t) for t in tokens]
    except ValueError:
        return None


def data_columns(path: Path, lines: list[str], *, comment: str = "#!", expected: str) -> TextColumns:
    """The numeric table of ``lines``: every non-blank line not starting with a ``comment`` character
    must hold the same count of numbers; ``expected`` (e.g. "2 or 3 numbers: 2θ (deg), intensity, esd")
    is said in the error naming a line that does not."""
    rows, line_numbers, header = [], [], []
    width = None
    for number, line in enumerate(lines, start=1):
        stripped = line.strip()
        if not stripped:
            continue
        if stripped[0] in comment:
            header.append(stripped.lstrip(comment).strip())
            continue
        values = numbers(stripped)
        if values is None:
            raise DataFileError(path, f"line {number}", f"{_clip(stripped)!r} is not numeric", expected)
        if width is None:
            width = len(values)
        elif len(values) != width:
            raise DataFileError(path, f"line {number}", f"has {len(values)} numbers where the lines above have "
                                f"{width} (a truncated or malformed line)", expected)
        rows.append(values)
        line_numbers.append(number)
    if not rows:
        raise DataFileError(path, "", "holds no data lines", expected)
    return TextColumns(np.asarray(rows, dtype=float), np.asarray(line_numbers), header)


def check_ascii_table(path: Path, lines: list[str], expected: str) -> list[str]:
    """Check an ASCII SAS table the way sasdata will read it, and return its header (text) lines.

    The data block is the longest run of consecutive lines holding the most common count (≥ 2) of
    numbers. After it no line may start like a number (a truncated last row); before it, more than a
    few such rows mean the data were broken by a malformed line, which is named. Text after the block
    (an XML tail, a footer) and a numeric preamble (PDH, Fortran-style headers) are allowed."""
    parsed = [(n, numbers(line)) for n, line in enumerate(lines, start=1) if line.strip()]
    widths = Counter(len(v) for _, v in parsed if v is not None and len(v) >= 2)
    if not widths:
        raise DataFileError(path, "", "holds no data lines of 2 or more numbers", expected)
    width = widths.most_common(1)[0][0]
    is_row = [v is not None and len(v) == width for _, v in parsed]
    first, last = _longest_run(is_row)
    message = f"is not a row of {width} numbers (a truncated or malformed line)"
    for n, _ in parsed[last + 1:]:
        if _STARTS_NUMERIC.match(lines[n - 1]):
            raise DataFileError(path, f"line {n}", f"{_clip(lines[n - 1].strip())!r} {message}", expected)
    if sum(is_row[:first]) > 3:
        n = parsed[first - 1][0]
        raise DataFileError(path, f"line {n}", f"{_clip(lines[n - 1].strip())!r} {message}", expected)
    return [lines[n - 1].strip() for (n, v), row in zip(parsed[:first], is_row[:first]) if v is None]


def _longest_run(flags: list[bool]) -> tuple[int, int]:
    """(first, last) index of the longest run of True in ``flags`` (which holds at least one)."""
    best, start = (0, -1), None
    for i, flag in enumerate([*flags, False]):
        if flag and start is None:
            start = i
        elif not flag and start is not None:
            if i - start > best[1] - best[0] + 1:
                best = (start, i - 1)
            start = None
    return best


def _clip(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[:limit] + "…"
