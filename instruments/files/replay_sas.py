"""SAS replay: recorded blocks per (sample, configuration), shorter exposures split off as independent parts."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timezone

import numpy as np

from instruments.files.errors import DataFileError
from instruments.files.read import read_measurements
from instruments.files.replay import ReplayRecording, ReplaySAS, attempt_seed, resolve_file
from instruments.protocol import InstrumentLimitError
from instruments.sas import SASConfigurationModel, SASInstrumentModel, check_sas_request
from instruments.types import Measurement, MeasurementRequest, Timing


@dataclass
class _Left:
    """What is left of one recording: its estimate (n,), σ (n,) and exposure (s)."""

    recording: ReplayRecording
    measurement: Measurement
    intensity: np.ndarray
    sigma: np.ndarray
    exposure: float


def load_recording(recording: ReplayRecording) -> _Left:
    """The recorded block of ``recording``; ``DataFileError`` naming the file for anything unusable."""
    path = resolve_file(recording.file)
    blocks = read_measurements(path, kind="sas", q_units=recording.q_units)
    names = [str(b.params["configuration"]) for b in blocks]
    if recording.block is None and len(blocks) > 1:
        raise DataFileError(path, "block", f"the file has {len(blocks)} blocks {names}", "block: one of them")
    chosen = blocks[0] if recording.block is None else next((b for b, n in zip(blocks, names) if n == recording.block), None)
    if chosen is None:
        raise DataFileError(path, "block", f"no block {recording.block!r}", f"one of {names}")
    if "intensity" not in chosen.sigma:
        raise DataFileError(path, "σ(I)", "the file gives no intensity uncertainties", "a σ column: replay needs it")
    return _Left(recording, chosen, chosen.data["intensity"].copy(), chosen.sigma["intensity"].copy(),
                 recording.exposure_seconds)


class SASReplay:
    """Recorded SAS blocks served per request (see ``instruments.files.replay``)."""

    def __init__(self, name: str, settings: ReplaySAS, seed: int) -> None:
        self.name, self.settings, self.seed = name, settings, seed
        self.left = {(r.sample, r.configuration): load_recording(r) for r in settings.recordings}
        self.model = self._planning_model()

    def _configuration(self, name: str) -> SASConfigurationModel:
        # One planning configuration per name: the first recording of that name stands for all samples.
        left = next(v for (_, c), v in self.left.items() if c == name)
        m, t0 = left.measurement, left.recording.exposure_seconds
        y, s = m.data["intensity"], m.sigma["intensity"]
        positive = y[(y > 0) & np.isfinite(y)]
        floor = float(np.median(positive)) * 1e-3 if positive.size else 1.0
        k = np.maximum(y, floor) / np.maximum(s, 1e-300) ** 2 / t0
        k = np.where(np.isfinite(k) & (k > 0), k, float(np.nanmedian(k[np.isfinite(k) & (k > 0)])) if np.any(k > 0) else 1.0)
        dq = m.data["dq"] if "dq" in m.data else np.zeros_like(y)
        slit = [np.broadcast_to(np.asarray(m.data.get(key, 0.0), dtype=float), y.shape).copy()
                for key in ("dq_slit_length", "dq_slit_width")] if "dq" not in m.data and "dq_slit_length" in m.data else [None, None]
        wavelength = m.params.get("wavelength_angstrom")
        return SASConfigurationModel(
            name=name, q=m.data["q"], dq=dq, counts_per_second=k, background=np.zeros_like(y),
            slit_length=slit[0], slit_width=slit[1],
            min_exposure_seconds=t0 * self.settings.min_exposure_fraction,
            wavelength_angstrom=float(wavelength) if isinstance(wavelength, (int, float)) else None)

    def _planning_model(self) -> SASInstrumentModel:
        names = list(dict.fromkeys(c for _, c in self.left))
        return SASInstrumentModel(configurations=[self._configuration(n) for n in names], radiation=self.settings.radiation,
                                  change_seconds=self.settings.change_seconds, overhead_seconds=self.settings.overhead_seconds)

    def _recording(self, request: MeasurementRequest) -> _Left:
        configuration = str(request.params.get("configuration"))
        left = self.left.get((request.sample_id, configuration)) or self.left.get((None, configuration))
        if left is None:
            raise InstrumentLimitError(f"{self.name}: no recording of sample {request.sample_id!r} in configuration "
                                       f"{configuration!r}; recorded: {sorted(map(str, self.left))}")
        return left

    def check(self, request: MeasurementRequest) -> None:
        check_sas_request(self.model, request, instrument=self.name)
        left = self._recording(request)
        exposure = float(request.params["exposure_seconds"])
        if exposure > left.exposure * (1 + 1e-9):
            raise InstrumentLimitError(
                f"{self.name}: exposure_seconds={exposure:g} exceeds the recorded exposure left ({left.exposure:g} s of "
                f"{left.recording.exposure_seconds:g} s): a replay cannot count longer than the recording did")

    def measure(self, request: MeasurementRequest) -> Measurement:
        self.check(request)
        wall = time.perf_counter()
        left = self._recording(request)
        t = float(request.params["exposure_seconds"])
        f = min(t / left.exposure, 1.0)
        rng = np.random.default_rng(attempt_seed(self.seed, request))
        # Gaussian splitting: the part has σ/√f and, with the rest, averages back to the recorded value.
        part = left.intensity + (rng.normal(size=left.sigma.size) * left.sigma * np.sqrt((1 - f) / f) if f < 1 else 0.0)
        sigma = left.sigma / np.sqrt(f)
        if f < 1:
            left.intensity = (left.intensity - f * part) / (1 - f)
            left.sigma = left.sigma / np.sqrt(1 - f)
        left.exposure -= t
        m = left.measurement
        data = {k: v.copy() for k, v in m.data.items()}
        data["intensity"] = np.asarray(part, float)
        return Measurement(
            attempt_id=request.attempt_id, instrument=self.name, params=dict(request.params), sample_id=request.sample_id,
            data=data, sigma={"intensity": sigma},
            timing=Timing(exposure_seconds=t, overhead_seconds=self.settings.overhead_seconds,
                          started_at=datetime.now(timezone.utc), wall_seconds=time.perf_counter() - wall),
        )
