"""Powder replay: windows of a recorded counted pattern, the dwell emulated by binomial thinning."""

from __future__ import annotations

import time
from datetime import datetime, timezone

import numpy as np

from instruments.files.errors import DataFileError
from instruments.files.read import read_measurements
from instruments.files.replay import ReplayXRD, attempt_seed, resolve_file
from instruments.protocol import InstrumentLimitError
from instruments.types import Measurement, MeasurementRequest, Timing
from instruments.xrd import XRDInstrumentModel, check_xrd_request
from physics.xrd import scan_points, wavelength_lines


def load_pattern(settings: ReplayXRD) -> Measurement:
    """The recorded pattern of ``settings``; ``DataFileError`` naming the file unless it holds counts."""
    path = resolve_file(settings.file)
    m = read_measurements(path, kind="xrd", wavelength_angstrom=settings.wavelength)[0]
    if "counts" not in m.data:
        raise DataFileError(path, "intensity column", "holds scaled intensities, not counts: binomial thinning "
                            "needs counts", "a counted pattern (non-negative integers)")
    return m


class PatternReplay:
    """The recorded pattern and what is left of it: counts (n,) and dwell (n,) s per recorded step."""

    def __init__(self, name: str, settings: ReplayXRD, seed: int) -> None:
        self.name, self.settings, self.seed = name, settings, seed
        m = load_pattern(settings)
        order = np.argsort(m.data["two_theta"])
        self.two_theta = np.asarray(m.data["two_theta"], float)[order]
        self.counts = np.rint(np.asarray(m.data["counts"], float)[order]).astype(np.int64)
        dwell = settings.recorded_dwell_seconds or float(m.params["dwell_seconds"])
        self.dwell_left = np.full(self.two_theta.size, dwell)
        self.recorded_dwell = dwell
        self.step = float(np.median(np.diff(self.two_theta)))
        self.radiation = settings.wavelength if settings.wavelength is not None else m.params["wavelength"]
        self.position: float | None = None
        self.model = self._planning_model()

    def _planning_model(self) -> XRDInstrumentModel:
        s = self.settings
        return XRDInstrumentModel(
            lines=list(wavelength_lines(self.radiation)),  # type: ignore[arg-type]
            wavelength_name=self.radiation if isinstance(self.radiation, str) else None,
            caglioti_u=s.caglioti_u, caglioti_v=s.caglioti_v, caglioti_w=s.caglioti_w,
            goniometer_min_deg=float(self.two_theta[0]), goniometer_max_deg=float(self.two_theta[-1]),
            goniometer_radius_mm=s.goniometer_radius_mm, setup_seconds=s.setup_seconds,
            motion_deg_per_second=s.motion_deg_per_second, step_overhead_seconds=s.step_overhead_seconds,
            min_step_deg=self.step * 0.999, max_points=s.max_points,
        )

    def _indices(self, request: MeasurementRequest) -> tuple[np.ndarray, float]:
        p = request.params
        wanted = scan_points(float(p["two_theta_start"]), float(p["two_theta_stop"]), float(p["two_theta_step"]))
        nearest = np.clip(np.searchsorted(self.two_theta, wanted), 1, self.two_theta.size - 1)
        left = self.two_theta[nearest - 1]
        nearest = np.where(np.abs(wanted - left) <= np.abs(self.two_theta[nearest] - wanted), nearest - 1, nearest)
        return np.unique(nearest), float(p["dwell_seconds"])

    def check(self, request: MeasurementRequest) -> None:
        """The diffractometer contract, then: no step asks more dwell than the recording has left."""
        check_xrd_request(self.model, request, instrument=self.name)
        index, dwell = self._indices(request)
        left = float(self.dwell_left[index].min())
        if dwell > left * (1 + 1e-9):
            raise InstrumentLimitError(
                f"{self.name}: dwell_seconds={dwell:g} exceeds the recorded dwell left at these steps ({left:g} s of "
                f"{self.recorded_dwell:g} s recorded): a replay cannot count longer than the recording did")

    def measure(self, request: MeasurementRequest) -> Measurement:
        self.check(request)
        wall = time.perf_counter()
        index, dwell = self._indices(request)
        rng = np.random.default_rng(attempt_seed(self.seed, request))
        fraction = np.clip(dwell / self.dwell_left[index], 0.0, 1.0)
        drawn = rng.binomial(self.counts[index], fraction)
        self.counts[index] -= drawn
        self.dwell_left[index] -= dwell
        x = self.two_theta[index]
        s = self.settings
        slew = 0.0 if self.position is None else abs(float(x[0]) - self.position) / s.motion_deg_per_second
        self.position = float(x[-1])
        counts = drawn.astype(np.float64)
        return Measurement(
            attempt_id=request.attempt_id, instrument=self.name, params=dict(request.params), sample_id=request.sample_id,
            data={"two_theta": x.copy(), "counts": counts}, sigma={"counts": np.sqrt(np.maximum(counts, 1.0))},
            timing=Timing(exposure_seconds=dwell * x.size, motion_seconds=slew,
                          overhead_seconds=s.setup_seconds + s.step_overhead_seconds * x.size,
                          started_at=datetime.now(timezone.utc), wall_seconds=time.perf_counter() - wall),
        )
