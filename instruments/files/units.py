"""Unit strings as data files write them → factors to labpilot's units (q in 1/Å, intensity in 1/cm)."""

from __future__ import annotations

import re

Q_UNITS_TO_PER_ANGSTROM = {"1/a": 1.0, "1/nm": 0.1, "1/m": 1e-10}
"""Canonical q units → factor to 1/Å (q in 1/nm × 0.1 = q in 1/Å)."""
INTENSITY_UNITS_TO_PER_CM = {"1/cm": 1.0, "1/m": 0.01, "1/mm": 10.0}
"""Canonical absolute-intensity units → factor to 1/cm."""

_SPELLINGS = {
    "1/a": ("a^-1", "1/a", "1/angstrom", "angstrom^-1", "1/angstroms", "å^-1", "1/å", "ang^-1", "1/ang", "a-1", "å-1",
            "invang", "1/angstrom^1"),
    "1/nm": ("nm^-1", "1/nm", "1/nanometer", "nanometer^-1", "nm-1", "1/nanometre"),
    "1/m": ("m^-1", "1/m", "m-1"),
    "1/cm": ("cm^-1", "1/cm", "cm-1"),
    "1/mm": ("mm^-1", "1/mm", "mm-1"),
}


def canonical_unit(text: str | None) -> str | None:
    """``'A^{-1}'``, ``'1/angstrom'``, ``'Å⁻¹'`` → ``'1/a'``; ``'nm^-1'`` → ``'1/nm'``; None for anything else."""
    if not text:
        return None
    s = text.strip().lower().replace("{", "").replace("}", "").replace(" ", "").replace("⁻¹", "^-1")
    for canonical, spellings in _SPELLINGS.items():
        if s in spellings:
            return canonical
    return None


def q_factor(text: str | None) -> float | None:
    """Factor from the q unit ``text`` to 1/Å, or None if ``text`` is not a known q unit."""
    unit = canonical_unit(text)
    return Q_UNITS_TO_PER_ANGSTROM.get(unit) if unit else None


def intensity_factor(text: str | None) -> float | None:
    """Factor from the intensity unit ``text`` to 1/cm, or None if it is not an absolute unit."""
    unit = canonical_unit(text)
    return INTENSITY_UNITS_TO_PER_CM.get(unit) if unit else None


_Q_HEADER = {
    "1/a": re.compile(r"(1\s*/\s*(a|å|ang|angstrom)s?\b)|((a|å|ang|angstrom)\s*(\^\s*-\s*1|⁻¹|-1))", re.IGNORECASE),
    "1/nm": re.compile(r"(1\s*/\s*(nm|nanometer|nanometre)\b)|(nm\s*(\^\s*-\s*1|⁻¹|-1))", re.IGNORECASE),
}


def q_unit_in_header(lines: list[str]) -> str | None:
    """The q unit a text header names (``'1/a'`` or ``'1/nm'``), None when it names none or both."""
    found = {unit for unit, pattern in _Q_HEADER.items() if any(pattern.search(line) for line in lines)}
    return found.pop() if len(found) == 1 else None
