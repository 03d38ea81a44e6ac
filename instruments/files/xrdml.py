"""PANalytical ``.xrdml`` (XML) powder scans → ``Measurement`` records, read with the standard library.

Per ``xrdMeasurement``: the wavelength from ``usedWavelength`` (``kAlpha1``, ``kAlpha2`` and
``ratioKAlpha2KAlpha1``, in Å; ``intended="K-Alpha 1"`` means a Kα1-only beam), and per ``scan`` the
``2Theta`` positions (``startPosition``/``endPosition`` spread evenly, or ``listPositions``), the
``commonCountingTime`` (s per step) and ``intensities`` or ``counts`` (counts). One record per scan.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

from instruments.files.errors import DataFileError
from instruments.files.powder import check_two_theta, powder_record, resolve_wavelength
from instruments.types import Measurement
from physics.xrd import WAVELENGTH_LINES

XRDML_EXPECTED = "an XRDML file: xrdMeasurement/usedWavelength and scan/dataPoints with 2Theta positions and intensities"


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _child(node: ET.Element, name: str) -> ET.Element | None:
    return next((c for c in node if _local(c.tag) == name), None)


def _floats(path: Path, node: ET.Element | None, field: str) -> np.ndarray:
    if node is None or not (node.text or "").strip():
        raise DataFileError(path, field, "is missing", XRDML_EXPECTED)
    try:
        return np.asarray([float(v) for v in node.text.split()], dtype=float)  # type: ignore[union-attr]
    except ValueError:
        raise DataFileError(path, field, "holds a value that is not a number", XRDML_EXPECTED) from None


def _radiation(path: Path, measurement: ET.Element) -> tuple[str | float, float]:
    """(a known line name when the file's lines match one within 1e-4 Å, else Kα1 in Å; the file's Kα1 in Å)."""
    used = _child(measurement, "usedWavelength")
    if used is None:
        raise DataFileError(path, "usedWavelength", "is missing: the file does not give the wavelength", XRDML_EXPECTED)
    alpha1 = float(_floats(path, _child(used, "kAlpha1"), "usedWavelength/kAlpha1")[0])
    alpha2_node, ratio_node = _child(used, "kAlpha2"), _child(used, "ratioKAlpha2KAlpha1")
    single = "1" in (used.get("intended") or "").replace("K-Alpha", "").strip() or alpha2_node is None
    lines = [(alpha1, 1.0)]
    if not single and ratio_node is not None:
        lines.append((float(_floats(path, alpha2_node, "kAlpha2")[0]), float(_floats(path, ratio_node, "ratio")[0])))
    for name, known in WAVELENGTH_LINES.items():
        if len(known) == len(lines) and all(abs(a - b) < 1e-4 and abs(w - v) < 1e-3 for (a, w), (b, v) in zip(lines, known)):
            return name, alpha1
    return alpha1, alpha1


def _two_theta(path: Path, points: ET.Element, n: int) -> np.ndarray:
    axis = next((p for p in points if _local(p.tag) == "positions" and p.get("axis") == "2Theta"), None)
    if axis is None:
        raise DataFileError(path, "dataPoints/positions", "has no axis='2Theta'", XRDML_EXPECTED)
    listed = _child(axis, "listPositions")
    if listed is not None:
        return _floats(path, listed, "2Theta/listPositions")
    start = float(_floats(path, _child(axis, "startPosition"), "2Theta/startPosition")[0])
    end = float(_floats(path, _child(axis, "endPosition"), "2Theta/endPosition")[0])
    return np.linspace(start, end, n)


def _scan(path: Path, scan: ET.Element, radiation: tuple[str | float, str, float | None], index: int, count: int,
          sample_id: str | None) -> Measurement:
    points = _child(scan, "dataPoints")
    if points is None:
        raise DataFileError(path, f"scan {index + 1}", "has no dataPoints", XRDML_EXPECTED)
    node = _child(points, "intensities")
    node = _child(points, "counts") if node is None else node
    y = _floats(path, node, f"scan {index + 1} intensities")
    two_theta = _two_theta(path, points, y.size)
    if two_theta.size != y.size:
        raise DataFileError(path, f"scan {index + 1}", f"{two_theta.size} 2θ positions for {y.size} intensities",
                            XRDML_EXPECTED)
    check_two_theta(path, two_theta, None)
    time_node = _child(points, "commonCountingTime")
    dwell = float(_floats(path, time_node, "commonCountingTime")[0]) if time_node is not None else None
    record = powder_record(path, two_theta, y, None, radiation=radiation[0], wavelength_source=radiation[1], header=[],
                           format_name="XRDML", dwell=dwell, counts_declared=True, sample_id=sample_id,
                           attempt_id=path.stem if count == 1 else f"{path.stem}#scan{index + 1}")
    if radiation[2] is not None:
        record.params["wavelength_angstrom"] = radiation[2]  # the file's own Kα1, not the named line's tabulated one
    return record


def read_xrdml(path: str | Path, *, wavelength_angstrom: str | float | None = None,
               sample_id: str | None = None) -> list[Measurement]:
    """One record per scan of the XRDML file at ``path``; ``wavelength_angstrom`` overrides the file's."""
    path = Path(path)
    try:
        root = ET.parse(path).getroot()
    except (ET.ParseError, OSError) as exc:
        raise DataFileError(path, "", f"is not well-formed XML ({exc})", XRDML_EXPECTED) from None
    out: list[Measurement] = []
    measurements = [m for m in root.iter() if _local(m.tag) == "xrdMeasurement"]
    if not measurements:
        raise DataFileError(path, "xrdMeasurement", "is missing", XRDML_EXPECTED)
    for measurement in measurements:
        if wavelength_angstrom is not None:
            radiation: tuple[str | float, str, float | None] = (*resolve_wavelength(path, wavelength_angstrom, []), None)
        else:
            named, alpha1 = _radiation(path, measurement)
            radiation = (named, "file", alpha1)
        scans = [s for s in measurement if _local(s.tag) == "scan"]
        out.extend(_scan(path, s, radiation, i, len(scans), sample_id) for i, s in enumerate(scans))
    if not out:
        raise DataFileError(path, "scan", "no scan in the file", XRDML_EXPECTED)
    return out
