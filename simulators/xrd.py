"""A simulated powder diffractometer (Bragg–Brentano, point or strip detector) on crystal structures.

The sample is a mixture of library phases (``physics.phases``: CIFs read by pymatgen, reflection
lists from pymatgen's XRD calculator) with weight fractions, and per phase a crystallite size
(Scherrer broadening), microstrain, lattice strain (peak shifts) and preferred orientation
(March–Dollase); the sample may sit off the goniometer axis (displacement). The instrument has its
wavelength lines (Cu Kα1 + Kα2 by default, or a synchrotron energy), Caglioti U, V, W, a Chebyshev
background, a zero shift and its goniometer range. The profile physics is
``physics.xrd.phase_rate`` — the same function the analysis fits; the request fields and their
check are the diffractometer contract's (``instruments.xrd``), shared with real drivers.

Counting model, per step at 2θ_i with dwell t::

    rate(2θ)   = flux · Σ_p v_p · phase_rate_p(2θ) + Σ_k b_k T_k(u)         counts/s
    v_p        = (w_p / ρ_p) / Σ_q (w_q / ρ_q)                              volume fraction from weight fractions
    N_i        ~ Poisson(t · rate(2θ_i))                                     counts, σ_i = sqrt(max(N_i, 1))

(no microabsorption or absorption contrast between phases: the intensity of a phase is
proportional to its volume fraction).

Model mismatch — physics the analysis does not share, or starts from elsewhere, so benchmarks are
no inverse crime: per phase an isotropic Debye–Waller B (``b_iso``); per sample an amorphous hump
(a broad Gaussian, ``amorphous``), thin-sample absorption 1 − exp(−2 μt / sin θ) (``mu_t``) and
Suortti surface roughness 1 − p e^(−q) + p e^(−q / sin θ) (``roughness_p``, ``roughness_q``); per
instrument the axial-divergence asymmetry A (``asymmetry``) and its own U, V, W. A phase outside the
analysis' library is simply a sample phase from a library (``library``) the analysis does not use. A request is one window: ``two_theta_start``,
``two_theta_stop``, ``two_theta_step`` (degrees) and ``dwell_seconds`` per step. Its instrument
time is set-up + slew from where the goniometer stands + steps × (dwell + dead time), on a
virtual clock.

The sample is either fixed (``sample:``) or made by a materials system (``materials_system:``, kind
``oxide``, ``simulators.materials``): then every request must carry the sample's ``recipe`` (refused
otherwise, before anything moves), and the phases, weight fractions, Vegard lattice strains and
crystallite sizes measured are the system's truth for that recipe, drawn once per ``sample_id``.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone

import numpy as np
from pydantic import Field, field_validator, model_validator

from instruments.types import DataKey, Measurement, MeasurementRequest, Record, Timing
from instruments.xrd import XRDInstrumentModel, check_xrd_request
from physics.phases import Phase, PhaseLibrary, open_library
from physics.xrd import chebyshev_background, march_dollase, phase_rate, resolve_lines, scan_points, source_name
from simulators.clock import VirtualClock
from simulators.journal import JournalledDriver, MeasurementJournal
from simulators.materials import MaterialsSystemSettings, OxideSystemSettings, PhaseMixtureTruth, SampleTruth
from simulators.materials import materials_system_from_settings
from simulators.materials.samples import MadeSamples
from simulators.noise import attempt_seed


class PreferredOrientation(Record):
    """March–Dollase texture: platelets (r < 1) or needles (r > 1) along the pole ``hkl``."""

    hkl: tuple[int, int, int] = Field(description="the preferred pole, Miller indices")
    march_r: float = Field(gt=0.05, le=20, description="March parameter r; 1 = random powder")

    @field_validator("hkl")
    @classmethod
    def _not_zero(cls, value: tuple[int, int, int]) -> tuple[int, int, int]:
        if not any(value):
            raise ValueError("hkl: (0, 0, 0) is not a direction")
        return value


class SamplePhase(Record):
    """One phase of the sample."""

    phase: str = Field(min_length=1, description="name of a library phase (the CIF's file stem)")
    weight_fraction: float = Field(gt=0, le=1, description="mass fraction of the phase in the sample")
    crystallite_size_nm: float | None = Field(default=200.0, gt=1, description="Scherrer size, nm; None: no size broadening")
    microstrain: float = Field(default=0.0, ge=0, le=0.02, description="root-mean-square strain ε (dimensionless)")
    lattice_strain: float = Field(default=0.0, ge=-0.03, le=0.03, description="relative change of every d-spacing")
    preferred_orientation: PreferredOrientation | None = None
    b_iso: float = Field(default=0.0, ge=0, le=10, description="isotropic Debye–Waller B, Å²")


class AmorphousHump(Record):
    """Diffuse scattering of an amorphous component: a Gaussian in 2θ."""

    centre_deg: float = Field(gt=0, lt=180, description="degrees 2θ")
    fwhm_deg: float = Field(gt=0.5, le=40, description="degrees")
    rate: float = Field(ge=0, description="counts/s at the maximum")


class XRDSample(Record):
    phases: list[SamplePhase] = Field(min_length=1)
    displacement_mm: float = Field(default=0.0, ge=-1, le=1, description="sample height error, mm (shifts peaks ∝ cos θ)")
    amorphous: AmorphousHump | None = None
    mu_t: float | None = Field(default=None, gt=0, description="linear absorption × thickness of a thin sample; None: infinitely thick")
    roughness_p: float = Field(default=0.0, ge=0, lt=1, description="Suortti surface-roughness p (0: smooth)")
    roughness_q: float = Field(default=0.5, gt=0, le=10, description="Suortti surface-roughness q")

    @model_validator(mode="after")
    def _fractions(self) -> XRDSample:
        total = sum(p.weight_fraction for p in self.phases)
        if abs(total - 1.0) > 1e-3:
            raise ValueError(f"sample.phases: weight fractions must sum to 1, they sum to {total:.6g}")
        names = [p.phase for p in self.phases]
        if len(set(names)) != len(names):
            raise ValueError(f"sample.phases: a phase is listed twice: {names}")
        return self


class XRDSettings(Record):
    """Settings of the simulated diffractometer (campaign file: ``instruments[].settings``)."""

    sample: XRDSample | None = Field(default=None, description="the one sample measured; or give materials_system")
    materials_system: MaterialsSystemSettings | None = Field(
        default=None, description="a materials system (kind 'oxide') whose samples are measured, one per recipe"
    )
    library: str | None = Field(default=None, description="folder of phase CIFs; default: physics/phases (shipped)")
    wavelength: str | float = Field(default="CuKa", description="'CuKa' (Kα1+Kα2), 'CuKa1', 'CoKa', 'MoKa', … or Å")
    energy_kev: float | None = Field(default=None, gt=1, le=200, description="synchrotron energy, keV (replaces wavelength)")
    caglioti_u: float = Field(default=0.010, description="Caglioti U, deg²")
    caglioti_v: float = Field(default=-0.003, description="Caglioti V, deg²")
    caglioti_w: float = Field(default=0.004, ge=0, description="Caglioti W, deg²")
    background: list[float] = Field(
        default_factory=lambda: [40.0, -15.0, 8.0], min_length=1, max_length=12,
        description="Chebyshev coefficients of the background over the goniometer range, counts/s",
    )
    zero_shift_deg: float = Field(default=0.0, ge=-0.5, le=0.5, description="goniometer zero error, degrees 2θ")
    asymmetry: float = Field(default=0.0, ge=0, le=1, description="axial-divergence asymmetry A (physics.xrd split pseudo-Voigt)")
    flux: float = Field(default=10.0, gt=0, description="counts/s per unit of phase_rate (source, optics, detector)")
    goniometer_min_deg: float = Field(default=5.0, ge=0.5, description="degrees 2θ")
    goniometer_max_deg: float = Field(default=140.0, le=170.0, description="degrees 2θ")
    goniometer_radius_mm: float = Field(default=240.0, gt=0)
    setup_seconds: float = Field(default=15.0, ge=0, description="per window: shutter, detector start, s")
    motion_deg_per_second: float = Field(default=5.0, gt=0, description="slew speed between windows, degrees/s")
    step_overhead_seconds: float = Field(default=0.0, ge=0, description="dead time per step, s")
    min_step_deg: float = Field(default=0.005, gt=0)
    max_points: int = Field(default=20000, ge=2)
    realtime_factor: float = Field(default=0.0, ge=0)
    journal_dir: str | None = None
    seed: int = 0

    @model_validator(mode="after")
    def _consistent(self) -> XRDSettings:
        if not self.goniometer_min_deg < self.goniometer_max_deg:
            raise ValueError("goniometer_min_deg must be below goniometer_max_deg")
        self.lines()  # an unknown line name is reported now
        if (self.sample is None) == (self.materials_system is None):
            raise ValueError("sample, materials_system: give exactly one (a fixed sample, or a system making one per recipe)")
        if self.materials_system is not None and not isinstance(self.materials_system, OxideSystemSettings):
            raise ValueError(
                f"materials_system: kind {self.materials_system.kind!r} makes no crystalline phases; the XRD simulator needs kind 'oxide'"
            )
        where, names = (
            ("sample.phases", [p.phase for p in self.sample.phases]) if self.sample is not None
            else ("materials_system.components", self.materials_system.phases())  # type: ignore[union-attr]
        )
        library = self.phase_library()
        library.check(names, where)
        for name in names:
            library.phase(name)  # a malformed CIF is reported now, naming the file
        return self

    def lines(self) -> tuple[tuple[float, float], ...]:
        return resolve_lines(self.wavelength, self.energy_kev)

    def phase_library(self) -> PhaseLibrary:
        return open_library(self.library)


@dataclass(frozen=True)
class _PreparedSample:
    """A sample ready to draw: its phases with their library entries, volume fractions and textures."""

    sample: XRDSample
    phases: list[tuple[SamplePhase, Phase]]
    volume_fractions: dict[str, float]
    orientation: dict[str, np.ndarray | None]


def sample_from_truth(truth: SampleTruth) -> XRDSample:
    """The XRD sample of a materials system's truth (phase mixture: fractions, Vegard strains, sizes)."""
    if not isinstance(truth, PhaseMixtureTruth):
        raise TypeError(f"materials_system: the XRD simulator measures phase mixtures, not {truth.kind!r}")
    return XRDSample(phases=[
        SamplePhase(phase=p.phase, weight_fraction=p.weight_fraction, crystallite_size_nm=p.crystallite_size_nm,
                    lattice_strain=p.lattice_strain)
        for p in truth.phases
    ])


def _sample_factor(two_theta: np.ndarray, sample: XRDSample) -> np.ndarray:
    """Angle-dependent intensity factor of ``sample``: thin-sample absorption × surface roughness, (n,)."""
    sin_theta = np.sin(np.radians(np.clip(two_theta, 0.5, 179.5) / 2))
    factor = np.ones_like(sin_theta)
    if sample.mu_t is not None:
        factor = factor * (1.0 - np.exp(-2.0 * sample.mu_t / sin_theta))
    if sample.roughness_p > 0:
        p, q = sample.roughness_p, sample.roughness_q
        factor = factor * (1.0 - p * math.exp(-q) + p * np.exp(-q / sin_theta))
    return factor


class XRDDriver(JournalledDriver):
    """Driver of the simulated diffractometer. Plain class; Ray wraps it in ``InstrumentActor``.

    Request params: ``two_theta_start``, ``two_theta_stop``, ``two_theta_step`` (degrees) and
    ``dwell_seconds`` (per step). Data: ``two_theta`` (degrees) and ``counts`` with
    σ = sqrt(max(counts, 1)) in ``sigma["counts"]``.
    """

    def __init__(self, name: str, settings: XRDSettings) -> None:
        self.name = name
        self.settings = settings
        self.clock = VirtualClock(settings.realtime_factor)
        self.position: float | None = None
        self.stopped: bool | None = None
        self._lock = threading.Lock()
        self._lines = settings.lines()
        self._model = self.planning_model()
        d_min = min(lam for lam, _ in self._lines) / (2 * math.sin(math.radians(settings.goniometer_max_deg / 2)))
        self._d_min = max(d_min * 0.98, 0.25)
        self._library = settings.phase_library()
        self._fixed = self._prepare(settings.sample) if settings.sample is not None else None
        self.volume_fractions = self._fixed.volume_fractions if self._fixed is not None else {}
        """Volume fraction of each phase of the fixed sample (what the diffracted intensity is proportional to)."""
        self._made: MadeSamples[_PreparedSample] | None = None
        if settings.materials_system is not None:
            system = materials_system_from_settings(settings.materials_system)
            self._made = MadeSamples(system, name, lambda truth: self._prepare(sample_from_truth(truth)))
        self._journal = MeasurementJournal(settings.journal_dir) if settings.journal_dir else None

    def _prepare(self, sample: XRDSample) -> _PreparedSample:
        phases = [(p, self._library.phase(p.phase)) for p in sample.phases]
        per_volume = [p.weight_fraction / ph.density for p, ph in phases]
        return _PreparedSample(
            sample=sample, phases=phases,
            volume_fractions={p.phase: v / sum(per_volume) for (p, _), v in zip(phases, per_volume)},
            orientation={p.phase: self._texture(p, ph) for p, ph in phases},
        )

    def _sample_for(self, request: MeasurementRequest | None) -> _PreparedSample:
        if self._made is None:
            assert self._fixed is not None
            return self._fixed
        return self._made.of_request(request)[1]

    def sample_truth(self, request: MeasurementRequest) -> SampleTruth:
        """The materials system's truth of the request's sample (tests and benchmarks only)."""
        if self._made is None:
            raise ValueError(f"{self.name}: no materials_system; the sample is settings.sample")
        return self._made.get(request)[0]

    def _texture(self, sample_phase: SamplePhase, phase: Phase) -> np.ndarray | None:
        texture = sample_phase.preferred_orientation
        if texture is None:
            return None
        normals, index = phase.plane_normals(self._d_min)
        return march_dollase(normals, index, len(phase.reflections(self._d_min).d), phase.pole(texture.hkl), texture.march_r)

    # -- ground truth ------------------------------------------------------------------------------
    def true_rate(self, two_theta: np.ndarray, request: MeasurementRequest | None = None) -> np.ndarray:
        """Expected counts per second at ``two_theta`` (degrees), background included, of the fixed
        sample or, with a materials system, of the sample ``request`` names (its recipe)."""
        s = self.settings
        sample = self._sample_for(request)
        x = np.asarray(two_theta, dtype=float)
        rate = chebyshev_background(x, s.background, s.goniometer_min_deg, s.goniometer_max_deg)
        hump = sample.sample.amorphous
        if hump is not None:
            rate = rate + hump.rate * np.exp(-4 * math.log(2) * ((x - hump.centre_deg) / hump.fwhm_deg) ** 2)
        diffracted = np.zeros_like(x)
        for p, ph in sample.phases:
            diffracted = diffracted + s.flux * sample.volume_fractions[p.phase] * phase_rate(
                x, ph.reflections(self._d_min), ph.volume, self._lines, self._model.caglioti,
                size_nm=p.crystallite_size_nm, microstrain=p.microstrain, lattice_strain=p.lattice_strain,
                zero_shift_deg=s.zero_shift_deg, displacement_mm=sample.sample.displacement_mm,
                radius_mm=s.goniometer_radius_mm, orientation=sample.orientation[p.phase], b_iso=p.b_iso,
                asymmetry=s.asymmetry,
            )
        return np.maximum(rate + diffracted * _sample_factor(x, sample.sample), 0.0)

    # -- the driver protocol -----------------------------------------------------------------------
    def describe(self) -> dict[str, DataKey]:
        n = self.settings.max_points
        return {
            "two_theta": DataKey(dtype="array", shape=[n], units="deg", description="2θ of each step (shape: up to max_points)"),
            "counts": DataKey(dtype="array", shape=[n], units="counts", description="detector counts per step; σ = sqrt(max(counts, 1))"),
        }

    def planning_model(self) -> XRDInstrumentModel:
        s = self.settings
        return XRDInstrumentModel(
            lines=list(self.settings.lines()), wavelength_name=source_name(s.wavelength, s.energy_kev), caglioti_u=s.caglioti_u, caglioti_v=s.caglioti_v, caglioti_w=s.caglioti_w,
            goniometer_min_deg=s.goniometer_min_deg, goniometer_max_deg=s.goniometer_max_deg,
            goniometer_radius_mm=s.goniometer_radius_mm, setup_seconds=s.setup_seconds,
            motion_deg_per_second=s.motion_deg_per_second, step_overhead_seconds=s.step_overhead_seconds,
            min_step_deg=s.min_step_deg, max_points=s.max_points,
        )

    def check(self, request: MeasurementRequest) -> None:
        check_xrd_request(self._model, request, instrument=self.name)
        if self._made is not None:
            self._made.check(request)

    def measure(self, request: MeasurementRequest) -> Measurement:
        self.check(request)
        wall_start = time.perf_counter()
        s, p = self.settings, request.params
        start, stop = float(p["two_theta_start"]), float(p["two_theta_stop"])
        step, dwell = float(p["two_theta_step"]), float(p["dwell_seconds"])
        x = scan_points(start, stop, step)
        started = datetime.now(timezone.utc)
        with self._lock:
            slew = 0.0 if self.position is None else abs(start - self.position) / s.motion_deg_per_second
            self.position = float(x[-1])
        exposure = len(x) * dwell
        overhead = s.setup_seconds + len(x) * s.step_overhead_seconds
        self.clock.advance(exposure + slew + overhead)
        rng = np.random.default_rng(attempt_seed(s.seed, request))
        counts = rng.poisson(dwell * self.true_rate(x, request)).astype(np.float64)
        measurement = Measurement(
            attempt_id=request.attempt_id, instrument=self.name, params=dict(p), sample_id=request.sample_id,
            data={"two_theta": x, "counts": counts}, sigma={"counts": np.sqrt(np.maximum(counts, 1.0))},
            timing=Timing(exposure_seconds=exposure, motion_seconds=slew, overhead_seconds=overhead,
                          started_at=started, wall_seconds=time.perf_counter() - wall_start),
        )
        return self._journalled(measurement)
