"""Export one recorded measurement in the file format its community reads.

- ``nxcansas``: reduced 1-D small-angle scattering, I(Q), as NXcanSAS (HDF5, the canSAS/NeXus
  application definition that SasView, sasdata, Mantid and facility pipelines read). Needs data keys
  ``q`` (1/Å) and ``intensity`` (1/cm); ``sigma["intensity"]`` becomes ``Idev`` and ``dq`` (the
  1-σ Gaussian Q resolution) becomes ``Qdev`` when present.
- ``xye``: a powder pattern as three columns, 2θ (degrees), counts, σ (counts), under a ``#`` header
  with the wavelength(s) in Å, the 2θ window and the dwell — what Rietveld and search-match
  programs read. Needs data keys ``two_theta`` and ``counts`` and ``sigma["counts"]``.

Instrument facts (wavelengths) come from what the instrument said about itself when the campaign ran
(its planning model, kept in the store), never from a simulator: a real instrument's export has them too.

Files are written next to their destination and renamed into place, so a crash never leaves a
half-written file under the requested name.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from enum import Enum
from pathlib import Path
from typing import Any

import numpy as np

from agent.store import InstrumentRecord, Store, json_safe
from instruments.protocol import planning_model_of_kind
from instruments.types import Measurement


class ExportFormat(str, Enum):
    nxcansas = "nxcansas"
    xye = "xye"


class ExportError(ValueError):
    """The measurement cannot be exported in the requested format; the message names the attempt and why."""


def export_measurement(store: Store, attempt_id: str, path: str | os.PathLike[str], format: str | ExportFormat) -> Path:
    """Write the measurement of ``attempt_id`` to ``path`` as ``format`` ('nxcansas' | 'xye'); returns the path.

    Raises ``KeyError`` for an attempt the store does not know and ``ExportError`` when the attempt
    has no measurement or the measurement is not of the kind the format holds.
    """
    try:
        kind = ExportFormat(format)
    except ValueError:
        raise ExportError(f"format {format!r} is not one of {[f.value for f in ExportFormat]}") from None
    attempt = store.attempt(attempt_id)  # KeyError names an unknown attempt
    measurement = store.measurement(attempt_id)
    if measurement is None:
        raise ExportError(f"attempt {attempt_id}: no measurement recorded (the attempt is {attempt.state.value!r})")
    config = store.campaign(attempt.campaign_id).config
    instrument = _instrument_config(config, measurement.instrument)
    model = _planning_model(store.instruments(attempt.campaign_id).get(measurement.instrument))
    target = Path(path)
    if kind is ExportFormat.nxcansas:
        _write_nxcansas(target, measurement, attempt.campaign_id, config, instrument, model)
    else:
        _write_xye(target, measurement, attempt.campaign_id, model)
    return target


# -- shared ------------------------------------------------------------------------------------------
def _instrument_config(config: dict[str, Any], actor_name: str) -> dict[str, Any] | None:
    """The campaign file's entry for the instrument that measured: 'name', or 'name-<i>' of a count > 1."""
    for entry in config.get("instruments", []):
        name, count = entry.get("name"), int(entry.get("count", 1))
        names = {name} if count == 1 else {f"{name}-{i + 1}" for i in range(count)}
        if actor_name in names:
            return dict(entry)
    return None


def _planning_model(record: InstrumentRecord | None) -> Any:
    """The instrument's stored planning model, or None (none stored, or none it could describe)."""
    if record is None or record.model_kind is None or record.model is None:
        return None
    return planning_model_of_kind(record.model_kind, record.model)


def _require(measurement: Measurement, what: str, keys: tuple[str, ...], sigma: tuple[str, ...] = ()) -> None:
    missing = [f"data key {k!r}" for k in keys if k not in measurement.data]
    missing += [f"sigma[{k!r}]" for k in sigma if k not in measurement.sigma]
    if missing:
        raise ExportError(
            f"attempt {measurement.attempt_id} is not {what}: it lacks {', '.join(missing)} "
            f"(it has data keys {sorted(measurement.data)} and sigma {sorted(measurement.sigma)})"
        )


def _columns(measurement: Measurement, what: str, arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    shapes = {name: np.asarray(a).shape for name, a in arrays.items()}
    if any(len(s) != 1 for s in shapes.values()) or len(set(shapes.values())) != 1:
        raise ExportError(f"attempt {measurement.attempt_id} is not {what}: its arrays are not 1-D of one length ({shapes})")
    return {name: np.asarray(a, dtype=np.float64) for name, a in arrays.items()}


@contextmanager
def _atomic(path: Path, suffix: str) -> Iterator[Path]:
    """A temporary file in the destination's folder, renamed onto ``path`` only if the block succeeds."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


# -- NXcanSAS ----------------------------------------------------------------------------------------
def _sas_wavelength(model: Any, configuration: Any) -> float | None:
    """The configuration's incident wavelength (Å) as the instrument told it, or None if it did not."""
    from instruments.sas import SASInstrumentModel  # on use: `labpilot status` need not load the SAS contract

    if not isinstance(model, SASInstrumentModel) or configuration is None:
        return None
    try:
        return model.configuration(str(configuration)).wavelength_angstrom
    except KeyError:
        return None


def _group(parent: Any, name: str, nx_class: str, cansas_class: str) -> Any:
    g = parent.create_group(name)
    g.attrs["NX_class"] = nx_class
    g.attrs["canSAS_class"] = cansas_class
    return g


def _dataset(parent: Any, name: str, value: Any, units: str | None = None) -> Any:
    d = parent.create_dataset(name, data=value)
    if units is not None:
        d.attrs["units"] = units
    return d


def _sas_columns(m: Measurement) -> dict[str, np.ndarray]:
    what = "reduced SAS data (NXcanSAS needs q in 1/Å and intensity in 1/cm)"
    _require(m, what, ("q", "intensity"))
    arrays = {"Q": m.data["q"], "I": m.data["intensity"]}
    if "intensity" in m.sigma:
        arrays["Idev"] = m.sigma["intensity"]
    if "dq" in m.data:
        arrays["Qdev"] = m.data["dq"]
    return _columns(m, what, arrays)


def _write_nxcansas(
    path: Path, m: Measurement, campaign_id: str, config: dict[str, Any], instrument: dict[str, Any] | None, model: Any
) -> None:
    import h5py

    from instruments.sas import SASInstrumentModel  # on use: `labpilot status` need not load the SAS contract

    columns = _sas_columns(m)
    settings = (instrument or {}).get("settings", {})
    configuration = m.params.get("configuration")
    with _atomic(path, ".h5") as tmp, h5py.File(tmp, "w") as f:
        f.attrs["default"] = "sasentry01"
        f.attrs["file_name"] = path.name
        f.attrs["file_time"] = datetime.now(timezone.utc).isoformat()
        f.attrs["creator"] = "labpilot"
        f.attrs["HDF5_Version"] = h5py.version.hdf5_version
        f.attrs["h5py_version"] = h5py.version.version
        entry = _sas_entry(f, m, campaign_id, config)
        _sas_data(entry, m, columns)
        radiation = model.radiation if isinstance(model, SASInstrumentModel) else None
        _sas_instrument(entry, m, radiation, _sas_wavelength(model, configuration))
        _sas_sample(entry, m, settings)
        _sas_process(entry, m, campaign_id, instrument, settings)


def _sas_entry(f: Any, m: Measurement, campaign_id: str, config: dict[str, Any]) -> Any:
    configuration = m.params.get("configuration")
    entry = _group(f, "sasentry01", "NXentry", "SASentry")
    entry.attrs["version"] = "1.1"
    entry.attrs["default"] = "sasdata01"
    _dataset(entry, "definition", "NXcanSAS")
    title = f"{config.get('name', campaign_id)}: sample {m.sample_id or m.attempt_id}" + (
        f", configuration {configuration}" if configuration else "")
    _dataset(entry, "title", title)
    run = _dataset(entry, "run", m.attempt_id)
    run.attrs["name"] = campaign_id
    return entry


def _sas_data(entry: Any, m: Measurement, columns: dict[str, np.ndarray]) -> None:
    data = _group(entry, "sasdata01", "NXdata", "SASdata")
    data.attrs["signal"] = "I"
    data.attrs["I_axes"] = "Q"
    data.attrs["Q_indices"] = np.array([0], dtype=np.int32)
    data.attrs["timestamp"] = m.timing.started_at.isoformat()
    q = _dataset(data, "Q", columns["Q"], "1/angstrom")
    i = _dataset(data, "I", columns["I"], "1/cm")
    if "Idev" in columns:
        # Both spellings: the application definition's (on I) and the group-level one older readers use.
        i.attrs["uncertainties"] = "Idev"
        data.attrs["I_uncertainties"] = "Idev"
        _dataset(data, "Idev", columns["Idev"], "1/cm")
    if "Qdev" in columns:
        # dq is the pinhole resolution (1-σ of a Gaussian), which NXcanSAS files under Q@resolutions.
        q.attrs["resolutions"] = "Qdev"
        q.attrs["resolutions_description"] = "Gaussian"
        data.attrs["Q_uncertainties"] = "Qdev"
        _dataset(data, "Qdev", columns["Qdev"], "1/angstrom")


def _sas_instrument(entry: Any, m: Measurement, radiation: Any, wavelength: float | None) -> None:
    configuration = m.params.get("configuration")
    inst = _group(entry, "sasinstrument", "NXinstrument", "SASinstrument")
    _dataset(inst, "name", m.instrument)
    source = _group(inst, "sassource", "NXsource", "SASsource")
    if radiation in ("neutron", "xray"):
        probe = "neutron" if radiation == "neutron" else "x-ray"
        _dataset(source, "radiation", probe)
        _dataset(source, "probe", probe)
    if wavelength is not None:
        _dataset(source, "incident_wavelength", float(wavelength), "angstrom")
    collimation = _group(inst, "sascollimation01", "NXcollimator", "SAScollimation")
    if configuration is not None:
        _dataset(collimation, "name", str(configuration))
    detector = _group(inst, "sasdetector01", "NXdetector", "SASdetector")
    _dataset(detector, "name", str(configuration) if configuration is not None else m.instrument)


def _sas_sample(entry: Any, m: Measurement, settings: dict[str, Any]) -> None:
    sample = _group(entry, "sassample", "NXsample", "SASsample")
    _dataset(sample, "name", m.sample_id or m.attempt_id)
    sample_settings = settings.get("sample") if isinstance(settings.get("sample"), dict) else {}
    if "thickness_cm" in sample_settings:
        _dataset(sample, "thickness", float(sample_settings["thickness_cm"]), "cm")
    if "transmission" in sample_settings:
        _dataset(sample, "transmission", float(sample_settings["transmission"]))


def _sas_process(entry: Any, m: Measurement, campaign_id: str, instrument: dict[str, Any] | None,
                 settings: dict[str, Any]) -> None:
    process = _group(entry, "sasprocess01", "NXprocess", "SASprocess")
    _dataset(process, "name", "labpilot")
    _dataset(process, "date", datetime.now(timezone.utc).isoformat())
    _dataset(process, "description", f"exported from campaign {campaign_id}, attempt {m.attempt_id}")
    configuration = m.params.get("configuration")
    configuration_settings = next(
        (c for c in settings.get("configurations", []) if isinstance(c, dict) and c.get("name") == configuration), None
    )
    # The instrument configuration and the request in full, so the file stands on its own.
    note = _group(entry, "sasnote01", "NXnote", "SASnote")
    _dataset(note, "type", "application/json")
    _dataset(note, "data", json.dumps(json_safe({
        "campaign_id": campaign_id, "attempt_id": m.attempt_id, "instrument": m.instrument,
        "params": m.params, "timing": m.timing.model_dump(mode="json"),
        "instrument_kind": (instrument or {}).get("kind"), "configuration": configuration_settings,
        "instrument_settings": settings,
    }), sort_keys=True))


# -- .xye ----------------------------------------------------------------------------------------------
def _xrd_lines(m: Measurement, model: Any, campaign_id: str) -> tuple[str, tuple[tuple[float, float], ...]]:
    """(how the wavelength was named, ((λ Å, relative intensity), ...)) from the instrument's stored model."""
    from instruments.xrd import XRDInstrumentModel  # on use: it pulls in the profile physics

    if not isinstance(model, XRDInstrumentModel):
        raise ExportError(
            f"attempt {m.attempt_id}: no wavelength: instrument {m.instrument!r} of campaign {campaign_id} "
            "did not describe its wavelength (no diffractometer planning model was recorded)"
        )
    lines = tuple((float(lam), float(w)) for lam, w in model.lines)
    name = model.wavelength_name or " + ".join(f"{lam:.7f} angstrom" for lam, _ in lines)
    return name, lines


def _write_xye(path: Path, m: Measurement, campaign_id: str, model: Any) -> None:
    what = "a powder pattern (.xye needs two_theta in degrees, counts and their σ)"
    _require(m, what, ("two_theta", "counts"), ("counts",))
    columns = _columns(m, what, {"two_theta": m.data["two_theta"], "counts": m.data["counts"], "sigma": m.sigma["counts"]})
    name, lines = _xrd_lines(m, model, campaign_id)
    two_theta = columns["two_theta"]
    finite = two_theta[np.isfinite(two_theta)]
    p = m.params

    def param(key: str, fallback: float) -> float:
        value = p.get(key)
        return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else fallback

    start = param("two_theta_start", float(finite.min()) if finite.size else math.nan)
    stop = param("two_theta_stop", float(finite.max()) if finite.size else math.nan)
    step = param("two_theta_step", float(np.median(np.diff(finite))) if finite.size > 1 else math.nan)
    dwell = p.get("dwell_seconds")
    header = [
        f"labpilot export of attempt {m.attempt_id} (campaign {campaign_id}, instrument {m.instrument}, "
        f"sample {m.sample_id or m.attempt_id})",
        f"wavelength: {name}; " + ", ".join(f"{lam:.7f} angstrom (relative intensity {w:g})" for lam, w in lines),
        f"wavelength_angstrom: {' '.join(f'{lam:.7f}' for lam, _ in lines)}",
        f"wavelength_weights: {' '.join(f'{w:g}' for _, w in lines)}",
        f"window: two_theta_start {start:g} deg, two_theta_stop {stop:g} deg, two_theta_step {step:g} deg, {two_theta.size} steps",
        f"dwell: {float(dwell):g} s per step" if isinstance(dwell, (int, float)) else "dwell: not recorded",
        f"started_at: {m.timing.started_at.isoformat()}",
        "columns: 2theta (deg)  counts  sigma (counts, 1-sigma)",
    ]
    # The header stays ASCII ("angstrom", "2theta"): numpy writes latin-1, and many Rietveld programs read ASCII only.
    with _atomic(path, ".xye") as tmp:
        # %.17g round-trips every float64 exactly (integer counts print as integers).
        np.savetxt(
            tmp, np.column_stack([columns["two_theta"], columns["counts"], columns["sigma"]]),
            fmt="%.17g", header="\n".join(header), comments="# ",
        )
