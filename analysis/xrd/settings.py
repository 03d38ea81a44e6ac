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
    two_theta_range: tuple[float, float] = Field(default=(5.0, 140.0), description="background domain, degrees 2θ")
    goniometer_radius_mm: float = Field(default=240.0, gt=0)
    background_terms: int = Field(default=4, ge=1, le=12, description="Chebyshev terms of the background")
    max_phases: int = Field(default=3, ge=1, le=4)
    shortlist: int = Field(default=6, ge=1, le=10, description="phases carried from screening to the set search")
    refine_sets: int = Field(default=8, ge=1, le=30, description="phase sets refined in full")
    log_prior_per_phase: float | None = Field(
        default=None, le=0,
        description="log prior odds per phase in a set; default −ln(number of candidates): each candidate "
        "is present with prior probability about 1/N, so a set of k phases among N costs k ln N",
    )
    lattice_strain_bound: float = Field(default=0.005, gt=0, le=0.03, description="|Δd/d| allowed per phase")
    max_inverse_size: float = Field(default=0.1, gt=0, description="largest 1/L, 1/nm (L ≥ 1/this)")
    max_microstrain: float = Field(default=0.003, gt=0, le=0.02, description="largest microstrain refined")
    max_march_r: float = Field(default=2.0, gt=1, le=5, description="texture: March r refined within [1/this, this]")
    zero_shift_bound_deg: float = Field(default=0.05, ge=0, le=0.5)
    displacement_bound_mm: float = Field(default=0.1, ge=0, le=1, description="sample displacement refined within ±this, mm")
    temper: bool = Field(default=True, description="inflate σ by the best set's misfit (see analysis.xrd.identify)")
    unexplained_sigma: float = Field(default=6.0, gt=0)
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
        return self

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
                      background_terms=self.background_terms)

    def d_min(self) -> float:
        lam = min(lam for lam, _ in self.lines())
        return max(0.98 * lam / (2 * math.sin(math.radians(min(self.two_theta_range[1], 170.0) / 2))), 0.25)
