"""Settings of the phase identification (campaign file: ``analysis.settings`` of kind ``xrd``)."""

from __future__ import annotations

import math

from pydantic import Field, model_validator

from analysis.xrd.fit import Optics
from instruments.types import Record
from physics.phases import PhaseLibrary, PhaseLibraryError, open_library
from physics.xrd import resolve_lines


class XRDPhaseIDSettings(Record):
    """Settings of the phase identification (campaign file: ``analysis.settings``)."""

    library: str | None = Field(default=None, description="folder of phase CIFs; default: physics/phases (shipped)")
    candidates: list[str] | None = Field(default=None, description="library phases to consider; default: all")
    wavelength: str | float = Field(default="CuKa", description="as the instrument's: 'CuKa', 'CuKa1', … or Å")
    energy_kev: float | None = Field(default=None, gt=1, le=200, description="synchrotron energy, keV")
    caglioti_u: float = Field(default=0.010, description="instrument profile (from a standard), deg²")
    caglioti_v: float = Field(default=-0.003, description="deg²")
    caglioti_w: float = Field(default=0.004, ge=0, description="deg²")
    asymmetry: float = Field(default=0.0, ge=0, le=1, description="axial-divergence asymmetry A (physics.xrd), start")
    refine_instrument: bool = Field(
        default=True, description="refine asymmetry and Caglioti U, V, W within the ranges below; false: hold the "
        "values above (an instrument calibrated once on a standard)")
    asymmetry_range: tuple[float, float] = Field(default=(0.0, 0.5), description="A refined within")
    caglioti_u_range: tuple[float, float] = Field(default=(0.0, 0.1), description="deg²")
    caglioti_v_range: tuple[float, float] = Field(default=(-0.1, 0.05), description="deg²")
    caglioti_w_range: tuple[float, float] = Field(default=(0.0, 0.05), description="deg²")
    b_iso_range: tuple[float, float] = Field(
        default=(0.0, 3.0), description="isotropic Debye–Waller B refined within, Å², for a phase whose CIF gives none")
    two_theta_range: tuple[float, float] = Field(default=(5.0, 140.0), description="background domain, degrees 2θ")
    goniometer_radius_mm: float = Field(default=240.0, gt=0)
    background_terms: int = Field(default=4, ge=1, le=12, description="Chebyshev terms of the background")
    diffuse_fwhm_deg: float | None = Field(
        default=None, gt=1, le=30,
        description="add diffuse humps of this FWHM (degrees) to the background (amorphous content, stacking-fault "
        "scattering), so no broad crystalline phase is invented for them; None: Chebyshev background only")
    max_phases: int = Field(default=3, ge=1, le=4)
    shortlist: int = Field(default=6, ge=1, le=10, description="phases carried from screening to the set search")
    refine_sets: int = Field(default=8, ge=1, le=30, description="phase sets refined in full")
    log_prior_per_phase: float | None = Field(
        default=None, le=0,
        description="log prior odds per phase in a set; default −ln(number of candidates): each candidate "
        "is present with prior probability about 1/N, so a set of k phases among N costs k ln N",
    )
    lattice_strain_bound: float = Field(default=0.005, gt=0, le=0.03, description="|Δd/d| allowed per phase")
    axial_strain_bound: float = Field(
        default=0.0, ge=0, le=0.03,
        description="|Δc/c| beyond the isotropic strain, and anisotropic size broadening along c, for a phase with a "
        "unique axis (tetragonal, hexagonal, trigonal); 0: off. Off by default: the extra freedom lets a major phase "
        "absorb an overlapping minor phase (a 5 wt % brookite beside anatase); turn it on (e.g. 0.01) for real "
        "samples whose c/a differs from the CIF's")
    max_inverse_size: float = Field(default=0.25, gt=0, description="largest 1/L, 1/nm (L ≥ 1/this; 4 nm: nanocrystals)")
    max_microstrain: float = Field(default=0.003, gt=0, le=0.02, description="largest microstrain refined")
    max_march_r: float = Field(default=2.0, gt=1, le=5, description="texture: March r refined within [1/this, this]")
    zero_shift_bound_deg: float = Field(default=0.15, ge=0, le=0.5)
    displacement_bound_mm: float = Field(default=0.3, ge=0, le=1, description="sample displacement refined within ±this, mm")
    temper: bool = Field(default=True, description="inflate σ by the best set's misfit (see analysis.xrd.identify)")
    unexplained_min_fraction: float = Field(
        default=0.01, gt=0, lt=1,
        description="a cluster of unexplained intensity flags a missing phase when it holds at least this fraction "
        "of the diffracted counts (smaller ones are reported as trace peaks)")
    hypotheses_reported: int = Field(default=4, ge=1, le=10)
    dwell_parameter: str = Field(default="dwell_seconds", description="request parameter holding the dwell per step, s")

    @model_validator(mode="after")
    def _check(self) -> XRDPhaseIDSettings:
        self.lines()
        library = self.phase_library()
        if self.candidates is not None:
            library.check(self.candidates, "candidates")
            if len(set(self.candidates)) != len(self.candidates):
                raise ValueError(f"candidates: a phase is listed twice: {self.candidates}")
        for name in self.candidate_names():
            try:
                library.phase(name)  # a malformed CIF is reported now, naming the file
            except PhaseLibraryError as exc:
                raise ValueError(f"library: {exc}") from exc
        if not self.two_theta_range[0] < self.two_theta_range[1]:
            raise ValueError("two_theta_range: the low end must be below the high end")
        for name, start in self.optics().instrument().items():
            lo, hi = getattr(self, f"{name}_range")
            if self.refine_instrument and not lo <= start <= hi:
                raise ValueError(f"{name}={start} lies outside {name}_range=({lo}, {hi})")
        return self

    def instrument_ranges(self) -> dict[str, tuple[float, float]]:
        """Ranges of the refined instrument parameters (none when ``refine_instrument`` is false)."""
        if not self.refine_instrument:
            return {}
        return {name: tuple(getattr(self, f"{name}_range")) for name in ("asymmetry", "caglioti_u", "caglioti_v", "caglioti_w")}  # type: ignore[misc]

    def lines(self) -> tuple[tuple[float, float], ...]:
        return resolve_lines(self.wavelength, self.energy_kev)

    def phase_library(self) -> PhaseLibrary:
        return open_library(self.library)

    def candidate_names(self) -> list[str]:
        return list(self.candidates) if self.candidates is not None else self.phase_library().names()

    def phase_log_prior(self) -> float:
        if self.log_prior_per_phase is not None:
            return self.log_prior_per_phase
        return -math.log(max(len(self.candidate_names()), 2))

    def estimate_names(self) -> list[str]:
        names = self.candidate_names()
        return ["p(best)", "n_phases"] + [f"p:{n}" for n in names] + [f"w:{n}" for n in names]

    def estimate_units(self) -> dict[str, str]:
        """Every estimate name → its units: probabilities, the phase count and weight (mass)
        fractions are all dimensionless (``""``)."""
        return dict.fromkeys(self.estimate_names(), "")

    def optics(self) -> Optics:
        return Optics(lines=self.lines(), caglioti=(self.caglioti_u, self.caglioti_v, self.caglioti_w),
                      radius_mm=self.goniometer_radius_mm, two_theta_range=tuple(self.two_theta_range),  # type: ignore[arg-type]
                      background_terms=self.background_terms, asymmetry=self.asymmetry,
                      diffuse_fwhm=self.diffuse_fwhm_deg)

    def d_min(self) -> float:
        lam = min(lam for lam, _ in self.lines())
        return max(0.98 * lam / (2 * math.sin(math.radians(min(self.two_theta_range[1], 170.0) / 2))), 0.25)
