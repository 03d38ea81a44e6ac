"""``labpilot analyse``: one interpretation of data a user already has, from files.

Files are read by ``instruments.files`` (explicit units, errors naming file and line), the analysis
is built from the kind registry exactly as a campaign builds it (``analysis: {kind, settings}``), and
``interpret`` runs once on every measurement of every file, as one sample. Bad input — a file of an
unknown format or units, a missing wavelength, a truncated file, an invalid settings file — raises
``AnalyseInputError`` before anything is analysed or written.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from agent.kinds import ANALYSIS_KINDS, resolve
from analysis.protocol import Interpretation
from instruments.files import DataFileError, read_measurements
from instruments.types import Measurement, json_safe


class AnalyseInputError(ValueError):
    """Input ``labpilot analyse`` cannot use; the message names the file, the line or field, and what is expected."""


@dataclass(frozen=True)
class AnalyseResult:
    """What one ``analyse`` call read and concluded."""

    kind: str
    files: list[Path]
    measurements: list[Measurement]
    settings: BaseModel
    interpretation: Interpretation


def read_files(files: list[Path], kind: str, *, wavelength: str | float | None = None, q_units: str | None = None,
               ignore_resolution: bool = False) -> list[Measurement]:
    """Every measurement of every file, as one sample (the first file's stem), attempt ids unique."""
    if not files:
        raise AnalyseInputError("no data file given; expected one or more files")
    sample = files[0].stem
    out: list[Measurement] = []
    for path in files:
        try:
            found = read_measurements(path, kind=kind, wavelength_angstrom=wavelength, q_units=q_units,  # type: ignore[arg-type]
                                      ignore_resolution=ignore_resolution, sample_id=sample)
        except DataFileError as exc:
            raise AnalyseInputError(str(exc)) from None
        out.extend(found)
    seen: dict[str, int] = {}
    unique = []
    for m in out:
        seen[m.attempt_id] = seen.get(m.attempt_id, 0) + 1
        name = m.attempt_id if seen[m.attempt_id] == 1 else f"{m.attempt_id}~{seen[m.attempt_id]}"
        unique.append(m if name == m.attempt_id else m.model_copy(update={"attempt_id": name}))
    return unique


def settings_dict(path: Path | None, kind: str) -> dict[str, Any]:
    """The analysis settings of a YAML file: the settings mapping itself, or a campaign-style
    ``analysis: {kind, settings}`` block (a campaign file's can be reused as it is)."""
    if path is None:
        return {}
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise AnalyseInputError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    except yaml.YAMLError as exc:
        raise AnalyseInputError(f"{path}: not valid YAML ({exc}); expected a mapping of {kind} analysis settings") from None
    data = {} if data is None else data
    if not isinstance(data, dict):
        raise AnalyseInputError(f"{path}: holds a {type(data).__name__}; expected a mapping of {kind} analysis settings")
    if isinstance(data.get("analysis"), dict):
        block = data["analysis"]
        if block.get("kind") not in (None, kind):
            raise AnalyseInputError(f"{path}: analysis.kind is {block.get('kind')!r}, but --analysis is {kind!r}")
        data = block.get("settings") or {}
    return dict(data)


def _file_wavelength(measurements: list[Measurement]) -> str | float | None:
    """The radiation the powder files give (all alike), or None when they give none."""
    found = {m.params.get("wavelength") for m in measurements if m.params.get("wavelength") is not None}
    if len(found) > 1:
        files = sorted({str(m.params.get("source_file")) for m in measurements})
        raise AnalyseInputError(f"{', '.join(files)}: the files give different wavelengths {sorted(map(str, found))}; "
                                "expected one radiation for one analysis")
    return found.pop() if found else None  # type: ignore[return-value]


def build_settings(kind: str, raw: dict[str, Any], measurements: list[Measurement], source: str) -> BaseModel:
    """The analysis kind's settings model from ``raw``; a powder analysis takes the files' wavelength
    unless the settings name one (a conflict is an error)."""
    if kind not in ANALYSIS_KINDS or kind == "scalar":
        raise AnalyseInputError(f"--analysis {kind!r}: expected 'sas' or 'xrd'")
    raw = dict(raw)
    if kind == "xrd":
        in_files = _file_wavelength(measurements)
        if in_files is not None and "wavelength" not in raw and "energy_kev" not in raw:
            raw["wavelength"] = in_files
    try:
        return ANALYSIS_KINDS[kind].settings_model().model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or '(settings)'}: {e['msg']}" for e in exc.errors())
        hint = " (a SAS analysis needs 'candidates': the models to fit)" if kind == "sas" and "candidates" not in raw else ""
        raise AnalyseInputError(f"{source}: invalid {kind} analysis settings: {problems}{hint}") from None


def analyse(files: list[Path], kind: str, *, settings_file: Path | None = None, wavelength: str | float | None = None,
            q_units: str | None = None, ignore_resolution: bool = False) -> AnalyseResult:
    """Read ``files``, build the ``kind`` analysis and interpret every measurement once."""
    raw = settings_dict(settings_file, kind)
    measurements = read_files(files, kind, wavelength=wavelength, q_units=q_units, ignore_resolution=ignore_resolution)
    settings = build_settings(kind, raw, measurements, str(settings_file) if settings_file else "default settings")
    analysis = resolve(ANALYSIS_KINDS[kind].analysis)(settings)
    interpretation = analysis.interpret(measurements)
    return AnalyseResult(kind, list(files), measurements, settings, interpretation)


def _is_probability(name: str, units: str) -> bool:
    """Model, phase-set and phase probabilities: 'p(best)', 'p(sphere)', 'p:sic' (units 'probability')."""
    return name.startswith("p(") or name.startswith("p:") or units == "probability"


def answer_json(result: AnalyseResult) -> dict[str, Any]:
    """The answer as plain JSON: estimates ± σ, probabilities, flags, validity, details and what was read."""
    i = result.interpretation
    estimates = {k: {"value": e.value, "sigma": e.sigma, "units": e.units} for k, e in i.estimates.items()}
    return json_safe({
        "analysis": result.kind, "valid": i.valid, "flags": list(i.flags),
        "estimates": {k: v for k, v in estimates.items() if not _is_probability(k, v["units"])},
        "probabilities": {k: v["value"] for k, v in estimates.items() if _is_probability(k, v["units"])},
        "details": dict(i.details),
        "measurements": [{"file": m.params.get("source_file"), "attempt_id": m.attempt_id,
                          "points": int(next(iter(m.data.values())).size), "params": dict(m.params)}
                         for m in result.measurements],
    })
