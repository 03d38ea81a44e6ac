"""A library of crystalline phases (CIF files) and their reflection lists, through pymatgen.

Both the simulated diffractometer and the phase-identification analysis see a phase the same way:
its structure read from a CIF by pymatgen, and its reflections as pymatgen's ``XRDCalculator``
computes them — d-spacing and |F|²·multiplicity per peak, with the Lorentz–polarisation factor of
pymatgen's calculation divided out, so that one list serves every wavelength (``physics.xrd``
applies the LP factor at the 2θ of each line). Peaks pymatgen merges (equal d within its
tolerance, e.g. cubic (333)/(511)) stay one reflection, with the families listed.

A library is a folder of ``<name>.cif`` files; the phase's name is the file's stem. The default
is ``physics/phases`` beside this module: package data, so an installed wheel has it too.
"""

from __future__ import annotations

import functools
import math
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

DEFAULT_LIBRARY = Path(__file__).resolve().parent / "phases"
"""The phase library shipped with labpilot (``physics/phases``, package data)."""

REFERENCE_WAVELENGTH = 0.5
"""Å: reflections are computed at this wavelength, out to d = λ/2 = 0.25 Å at 2θ = 180°."""


class PhaseLibraryError(ValueError):
    """A CIF is missing, malformed or unusable, or a phase is not in the library; says which."""


@dataclass(frozen=True)
class Reflections:
    """One phase's powder reflections, strongest-first order not implied (d descending).

    ``d``: spacing, Å; ``f2m``: |F|² × multiplicity per unit cell, electrons²; ``hkls``: the
    families of each reflection, as (h, k, l) tuples with their multiplicities.
    """

    d: np.ndarray
    f2m: np.ndarray
    hkls: tuple[tuple[tuple[tuple[int, int, int], int], ...], ...]


@dataclass(frozen=True)
class Phase:
    """A crystalline phase of the library."""

    name: str
    path: Path
    formula: str
    density: float
    """g/cm³, from the structure (cell mass / cell volume)."""
    volume: float
    """Unit-cell volume, Å³."""
    structure: object
    """The pymatgen ``Structure``."""
    b_iso: float | None = None
    """Mean isotropic Debye–Waller B of the CIF's atom sites, Å² (``_atom_site_B_iso_or_equiv``, or
    8π² × ``_atom_site_U_iso_or_equiv``); None when the CIF gives neither."""

    def reflections(self, d_min: float) -> Reflections:
        """Reflections with d ≥ ``d_min`` (Å)."""
        return _reflections(self.path, _mtime(self.path), round(float(d_min), 4))

    def plane_normals(self, d_min: float) -> tuple[np.ndarray, np.ndarray]:
        """Unit normals (Cartesian) of every symmetry-equivalent plane of the reflections with
        d ≥ ``d_min``, and the index of the reflection each belongs to: (M, 3), (M,).

        What texture acts on: a March–Dollase factor averages over a reflection's planes.
        """
        return _plane_normals(self.path, _mtime(self.path), round(float(d_min), 4))

    def pole(self, hkl: tuple[int, int, int]) -> np.ndarray:
        """Unit Cartesian normal of the plane (hkl)."""
        g = np.asarray(hkl, dtype=float) @ self.structure.lattice.reciprocal_lattice_crystallographic.matrix  # type: ignore[attr-defined]
        return g / np.linalg.norm(g)

    def has_unique_axis(self) -> bool:
        """True for a cell with a = b and α = β = 90° (tetragonal, hexagonal, trigonal in the hexagonal
        setting): its c axis can strain apart from a (``axial_fraction``)."""
        lat = self.structure.lattice  # type: ignore[attr-defined]
        return (abs(lat.a - lat.b) < 1e-4 * lat.a and abs(lat.alpha - 90) < 1e-3 and abs(lat.beta - 90) < 1e-3
                and not (abs(lat.c - lat.a) < 1e-4 * lat.a and abs(lat.gamma - 90) < 1e-3))

    def axial_fraction(self, d_min: float) -> np.ndarray:
        """Per reflection with d ≥ ``d_min``: the fraction of 1/d² along c*, (l c*)² d² — what a
        strain of c alone acts on (a cell with ``has_unique_axis``)."""
        reflections = self.reflections(d_min)
        lat = self.structure.lattice  # type: ignore[attr-defined]
        c_star = 1.0 / lat.c  # α = β = 90°: c* ∥ c, |c*| = 1/c
        l_index = np.array([families[0][0][2] for families in reflections.hkls], dtype=float)
        return np.clip((l_index * c_star * reflections.d) ** 2, 0.0, 1.0)

    def distinct_poles(self) -> list[tuple[int, int, int]]:
        """The low-index poles (100, 010, 001, 110, 101, 011, 111 and their signed variants) that
        are not equivalent by the point group: the texture directions worth testing."""
        return _distinct_poles(self.path, _mtime(self.path))


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


@functools.lru_cache(maxsize=512)
def _read(path: Path, mtime: float) -> Phase:
    from pymatgen.core import Structure

    if not path.is_file():
        raise PhaseLibraryError(f"{path}: no such CIF file")
    try:
        with warnings.catch_warnings():
            # pymatgen warns about rounding of fractional coordinates and the like; a CIF it cannot
            # read raises below, which is what matters.
            warnings.simplefilter("ignore")
            structure = Structure.from_file(str(path))
    except Exception as exc:  # noqa: BLE001 — pymatgen's CIF parser raises many kinds
        raise PhaseLibraryError(f"{path}: not a readable CIF structure: {exc}") from exc
    if len(structure) == 0 or structure.volume <= 0:
        raise PhaseLibraryError(f"{path}: the CIF holds no atoms or no cell")
    return Phase(
        name=path.stem,
        path=path,
        formula=structure.composition.reduced_formula,
        density=float(structure.density),
        volume=float(structure.volume),
        structure=structure,
        b_iso=cif_b_iso(path),
    )


def cif_b_iso(path: Path) -> float | None:
    """Mean isotropic B (Å²) of a CIF's atom sites, or None when it lists no B_iso nor U_iso.

    Read from the CIF text because pymatgen's ``Structure`` drops thermal parameters."""
    from pymatgen.io.cif import CifParser

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        blocks = CifParser(str(path)).as_dict()
    for block in blocks.values():
        for key, factor in (("_atom_site_B_iso_or_equiv", 1.0), ("_atom_site_U_iso_or_equiv", 8 * math.pi**2)):
            raw = block.get(key)
            if raw is None:
                continue
            values = [_cif_number(v) for v in (raw if isinstance(raw, list) else [raw])]
            finite = [v for v in values if v is not None and math.isfinite(v) and v >= 0]
            if finite:
                return factor * sum(finite) / len(finite)
    return None


def _cif_number(text: str) -> float | None:
    """A CIF number without its esd, ``0.52(3)`` → 0.52; None for ``?`` or ``.``."""
    try:
        return float(str(text).split("(")[0])
    except ValueError:
        return None


def read_phase(path: str | Path) -> Phase:
    """Read one CIF; ``PhaseLibraryError`` naming the file if it is missing or malformed."""
    path = Path(path).resolve()
    return _read(path, _mtime(path))


@functools.lru_cache(maxsize=512)
def _reflections(path: Path, mtime: float, d_min: float) -> Reflections:
    if not d_min >= REFERENCE_WAVELENGTH / 2:
        raise ValueError(f"d_min={d_min} Å is below the reference limit {REFERENCE_WAVELENGTH / 2} Å")
    key = _cache_key(path, d_min)
    cached = _cached_reflections(key)
    if cached is not None:
        return cached
    reflections = _computed_reflections(path, mtime, d_min)
    _cache_reflections(key, reflections)
    return reflections


CACHE_FORMAT = 1
"""Version of the reflections cache files' layout (a new one ignores the old files)."""


def cache_dir() -> Path | None:
    """Where computed reflections are kept between processes: ``$LABPILOT_CACHE_DIR/reflections``, else
    ``~/.cache/labpilot/reflections``; None when ``LABPILOT_CACHE_DIR`` is set empty (no cache).

    Why: every process that sees a phase — the simulated diffractometer, the analysis, the planner —
    computed its reflections with pymatgen again at every start (≈ 0.1 s of CPU a phase), which a
    resumed XRD campaign paid three times over before its first decision."""
    import os

    root = os.environ.get("LABPILOT_CACHE_DIR")
    if root == "":
        return None
    return (Path(root) if root else Path.home() / ".cache" / "labpilot") / "reflections"


def _cache_key(path: Path, d_min: float) -> str | None:
    """The CIF's content, ``d_min``, the reference wavelength and pymatgen's version, hashed: a file
    edited in place, or another pymatgen, gets reflections of its own. None if the CIF cannot be read."""
    import hashlib
    from importlib.metadata import version

    try:
        content = path.read_bytes()
    except OSError:
        return None
    tag = f"{CACHE_FORMAT}|{d_min!r}|{REFERENCE_WAVELENGTH!r}|{version('pymatgen')}|".encode()
    return hashlib.sha256(tag + content).hexdigest()


def _cached_reflections(key: str | None) -> Reflections | None:
    """The reflections kept under ``key`` (JSON: floats round-trip exactly), or None (none, unreadable)."""
    import json

    folder = cache_dir()
    if key is None or folder is None:
        return None
    try:
        data = json.loads((folder / f"{key}.json").read_text())
        hkls = tuple(tuple((tuple(int(i) for i in hkl), int(m)) for hkl, m in fams) for fams in data["hkls"])
        d, f2m = np.asarray(data["d"], dtype=float), np.asarray(data["f2m"], dtype=float)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not (len(d) == len(f2m) == len(hkls)):
        return None
    return Reflections(d=d, f2m=f2m, hkls=hkls)  # type: ignore[arg-type]


def _cache_reflections(key: str | None, reflections: Reflections) -> None:
    """Keep ``reflections`` under ``key`` (written aside, then renamed: readers see whole files only);
    a cache that cannot be written is no error."""
    import json
    import os
    import tempfile

    folder = cache_dir()
    if key is None or folder is None:
        return
    data = {"d": reflections.d.tolist(), "f2m": reflections.f2m.tolist(),
            "hkls": [[[list(hkl), m] for hkl, m in fams] for fams in reflections.hkls]}
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", dir=folder, suffix=".tmp", delete=False) as out:
            json.dump(data, out)
        os.replace(out.name, folder / f"{key}.json")
    except OSError:
        pass


def _computed_reflections(path: Path, mtime: float, d_min: float) -> Reflections:
    from pymatgen.analysis.diffraction.xrd import XRDCalculator

    phase = _read(path, mtime)
    two_theta_max = math.degrees(2 * math.asin(REFERENCE_WAVELENGTH / (2 * d_min)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pattern = XRDCalculator(wavelength=REFERENCE_WAVELENGTH).get_pattern(
            phase.structure, scaled=False, two_theta_range=(0.0, two_theta_max)
        )
    two_theta = np.asarray(pattern.x, dtype=float)
    theta = np.radians(two_theta / 2)
    # pymatgen's intensity = |F|² · multiplicity · LP with LP = (1 + cos² 2θ) / (sin² θ cos θ).
    lp = (1 + np.cos(2 * theta) ** 2) / (np.sin(theta) ** 2 * np.cos(theta))
    f2m = np.asarray(pattern.y, dtype=float) / lp
    d = np.asarray(pattern.d_hkls, dtype=float)
    hkls = tuple(
        tuple((tuple(int(i) for i in fam["hkl"][-3:]), int(fam["multiplicity"])) for fam in families)  # type: ignore[misc]
        for families in pattern.hkls
    )
    keep = f2m > 1e-9 * max(float(f2m.max(initial=0.0)), 1e-300)  # systematic absences pymatgen kept at ~0
    index = np.flatnonzero(keep)[np.argsort(-d[keep], kind="stable")]
    return Reflections(d=d[index], f2m=f2m[index], hkls=tuple(hkls[i] for i in index))


def _point_group_rotations(phase: Phase) -> list[np.ndarray]:
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

    ops = SpacegroupAnalyzer(phase.structure, symprec=0.01).get_point_group_operations(cartesian=True)
    rotations = [np.asarray(op.rotation_matrix, dtype=float) for op in ops]
    return rotations + [-r for r in rotations]  # Friedel: a plane and its opposite are one normal


@functools.lru_cache(maxsize=256)
def _plane_normals(path: Path, mtime: float, d_min: float) -> tuple[np.ndarray, np.ndarray]:
    phase = _read(path, mtime)
    reflections = _reflections(path, mtime, d_min)
    rotations = np.stack(_point_group_rotations(phase))  # (R, 3, 3)
    reciprocal = phase.structure.lattice.reciprocal_lattice_crystallographic.matrix  # type: ignore[attr-defined]
    normals, index = [], []
    for i, families in enumerate(reflections.hkls):
        members = []
        for hkl, _ in families:
            g = np.asarray(hkl, dtype=float) @ reciprocal
            members.append(np.einsum("rij,j->ri", rotations, g / np.linalg.norm(g)))
        unique = np.unique(np.round(np.concatenate(members), 8), axis=0)
        normals.append(unique)
        index.append(np.full(len(unique), i))
    return np.concatenate(normals), np.concatenate(index)


@functools.lru_cache(maxsize=256)
def _distinct_poles(path: Path, mtime: float) -> list[tuple[int, int, int]]:
    phase = _read(path, mtime)
    rotations = _point_group_rotations(phase)
    candidates = [(1, 0, 0), (0, 1, 0), (0, 0, 1), (1, 1, 0), (1, -1, 0), (1, 0, 1), (1, 0, -1),
                  (0, 1, 1), (0, 1, -1), (1, 1, 1), (1, 1, -1), (1, -1, 1), (-1, 1, 1)]
    kept: list[tuple[int, int, int]] = []
    seen: list[np.ndarray] = []
    for hkl in candidates:
        n = phase.pole(hkl)
        images = np.array([r @ n for r in rotations])
        if any(np.min(np.linalg.norm(images - s, axis=1)) < 1e-6 for s in seen):
            continue
        kept.append(hkl)
        seen.append(n)
    return kept


def open_library(folder: str | Path | None) -> PhaseLibrary:
    """The library in ``folder`` (default: ``physics/phases``); ValueError naming the field
    ``library`` when it is missing or empty, for settings validators."""
    try:
        return PhaseLibrary(folder or DEFAULT_LIBRARY)
    except PhaseLibraryError as exc:
        raise ValueError(f"library: {exc}") from exc


class PhaseLibrary:
    """The phases of a folder of CIF files, read lazily; names are the files' stems."""

    def __init__(self, folder: str | Path | None = None) -> None:
        self.folder = Path(folder).resolve() if folder is not None else DEFAULT_LIBRARY
        if not self.folder.is_dir():
            raise PhaseLibraryError(f"phase library {self.folder}: no such folder")
        self._paths = {p.stem: p for p in sorted(self.folder.glob("*.cif"))}
        if not self._paths:
            raise PhaseLibraryError(f"phase library {self.folder}: holds no .cif files")

    def names(self) -> list[str]:
        return list(self._paths)

    def __contains__(self, name: object) -> bool:
        return name in self._paths

    def phase(self, name: str) -> Phase:
        """The phase ``name``; ``PhaseLibraryError`` listing the library if it is not there."""
        if name not in self._paths:
            raise PhaseLibraryError(
                f"unknown phase {name!r}; the library {self.folder} has: {', '.join(self._paths)}"
            )
        return read_phase(self._paths[name])

    def check(self, names: list[str], where: str) -> None:
        """Raise ``PhaseLibraryError`` naming ``where`` for any name not in the library."""
        unknown = [n for n in names if n not in self._paths]
        if unknown:
            raise PhaseLibraryError(
                f"{where}: unknown phase(s) {unknown}; the library {self.folder} has: {', '.join(self._paths)}"
            )
