"""Probabilistic phase identification from powder diffraction, with weight fractions ± σ.

Every window measured so far on a sample is fitted together (``analysis.xrd_fit``) as a
non-negative mixture of library phases plus a Chebyshev background, with small refinements per
phase (lattice strain, crystallite size) and a common zero shift. Phase *sets* are compared by
their Laplace evidence under the Poisson likelihood, with a prior that prefers fewer phases
(``log_prior_per_phase`` per phase, on top of the Occam factor of each phase's parameters).

The candidate space is searched, not enumerated (36 phases give ~8 000 sets of up to three):

1. *screen*: every candidate alone, on a grid of lattice strains, scale and background solved
   exactly; score = χ² drop over background only;
2. *add*: every candidate added to the best single phase, then to the best pair (finds minor
   phases whose peaks sit beside a major one's);
3. *shortlist*: the best of each stage; *sets*: every subset of the shortlist up to
   ``max_phases``, fitted linearly at the screened refinements and ranked;
4. *refine*: the ``refine_sets`` best sets (and the best of each size) refined jointly, evidences,
   posterior over sets, each phase's marginal probability, weight fractions ± σ of the best set.

Calibration: when the best set still misfits (Poisson deviance per degree of freedom T > 1 —
texture, microstrain or an unlisted phase the model lacks), the likelihood is tempered by T (all
σ inflated by √T, the Birge-ratio correction), so model probabilities are not over-confident on
data the model cannot describe. Intensity that no library phase accounts for — a run of residuals
above ``unexplained_sigma`` σ over about one peak width — sets the flag ``unexplained-peaks`` and
its 2θ in ``details["unexplained_two_theta"]``.

Interpretation estimates: ``p(best)`` (probability of the most probable set), ``n_phases``,
``p:<phase>`` (marginal probability of every candidate), ``w:<phase>`` (weight fraction ± σ; 0
for phases outside the best set). ``details`` carries ``best_set`` and the refined parameters of
the top hypotheses (``hyp:<i>:…``), which the scan planner predicts from.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from analysis.laplace import posterior_probabilities
from analysis.protocol import Estimate, Interpretation
from analysis.xrd_fit import (
    PER_PHASE,
    Bounds,
    Optics,
    Pattern,
    PhaseProfiles,
    SetFit,
    choose_pole,
    linear_fit,
    rate_on,
    refine_set,
)
from instruments.phases import Phase, PhaseLibrary, PhaseLibraryError, open_library
from instruments.types import Measurement
from instruments.xrd import chebyshev_background, peak_shapes, resolve_lines

SET_SEPARATOR = "+"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, frozen=True)


class XRDPhaseIDSettings(_Strict):
    """Settings of the phase identification (campaign file: ``analysis.settings``)."""

    library: str | None = Field(default=None, description="folder of phase CIFs; default: experiments/phases")
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
    temper: bool = Field(default=True, description="inflate σ by the best set's misfit (see module docstring)")
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

    def optics(self) -> Optics:
        return Optics(lines=self.lines(), caglioti=(self.caglioti_u, self.caglioti_v, self.caglioti_w),
                      radius_mm=self.goniometer_radius_mm, two_theta_range=tuple(self.two_theta_range),  # type: ignore[arg-type]
                      background_terms=self.background_terms)

    def d_min(self) -> float:
        lam = min(lam for lam, _ in self.lines())
        return max(0.98 * lam / (2 * math.sin(math.radians(min(self.two_theta_range[1], 170.0) / 2))), 0.25)


# -- hypotheses (what the planner predicts from) -----------------------------------------------------


@dataclass(frozen=True)
class Hypothesis:
    """A refined phase set: enough to predict its pattern anywhere on the goniometer.

    Per-phase tuples follow ``phases``; ``refined`` maps each of ``PER_PHASE`` to them."""

    phases: tuple[str, ...]
    probability: float
    scales: tuple[float, ...]
    scale_sigmas: tuple[float, ...]
    refined: dict[str, tuple[float, ...]]
    poles: tuple[tuple[int, int, int], ...]
    zero: float
    displacement: float
    background: tuple[float, ...]

    @property
    def label(self) -> str:
        return SET_SEPARATOR.join(self.phases)

    @classmethod
    def of(cls, fit: SetFit, probability: float, temperature: float) -> Hypothesis:
        return cls(
            phases=fit.phases, probability=probability, scales=tuple(map(float, fit.scales)),
            scale_sigmas=tuple(map(float, fit.scale_sigmas * math.sqrt(temperature))),
            refined={k: tuple(map(float, v)) for k, v in fit.refined.items()}, poles=fit.poles, zero=fit.zero,
            displacement=fit.displacement,
            background=tuple(map(float, fit.background)),
        )

    def to_details(self, i: int) -> dict[str, float | str]:
        out: dict[str, float | str] = {f"hyp:{i}:set": self.label, f"hyp:{i}:p": self.probability,
                                       f"hyp:{i}:zero": self.zero, f"hyp:{i}:displacement": self.displacement}
        for j, name in enumerate(self.phases):
            out |= {f"hyp:{i}:scale:{name}": self.scales[j], f"hyp:{i}:scale_sigma:{name}": self.scale_sigmas[j],
                    f"hyp:{i}:pole:{name}": " ".join(map(str, self.poles[j]))}
            out |= {f"hyp:{i}:{k}:{name}": self.refined[k][j] for k in PER_PHASE}
        out |= {f"hyp:{i}:bg:{k}": c for k, c in enumerate(self.background)}
        return out

    @classmethod
    def from_details(cls, details: Mapping[str, Any], i: int) -> Hypothesis | None:
        label = details.get(f"hyp:{i}:set")
        if not isinstance(label, str):
            return None
        phases = tuple(label.split(SET_SEPARATOR))
        k = 0
        while f"hyp:{i}:bg:{k}" in details:
            k += 1
        return cls(
            phases=phases, probability=float(details[f"hyp:{i}:p"]),
            scales=tuple(float(details[f"hyp:{i}:scale:{n}"]) for n in phases),
            scale_sigmas=tuple(float(details[f"hyp:{i}:scale_sigma:{n}"]) for n in phases),
            refined={key: tuple(float(details[f"hyp:{i}:{key}:{n}"]) for n in phases) for key in PER_PHASE},
            poles=tuple(tuple(int(v) for v in str(details[f"hyp:{i}:pole:{n}"]).split()) for n in phases),  # type: ignore[misc]
            zero=float(details[f"hyp:{i}:zero"]), displacement=float(details[f"hyp:{i}:displacement"]),
            background=tuple(float(details[f"hyp:{i}:bg:{j}"]) for j in range(k)),
        )


def hypotheses_of(details: Mapping[str, Any]) -> list[Hypothesis]:
    """The hypotheses an interpretation reported, most probable first."""
    out, i = [], 0
    while (h := Hypothesis.from_details(details, i)) is not None:
        out.append(h)
        i += 1
    return out


def predict_rate(settings: XRDPhaseIDSettings, hypothesis: Hypothesis, two_theta: np.ndarray,
                 scales: Sequence[float] | None = None) -> np.ndarray:
    """Expected counts per second of ``hypothesis`` at ``two_theta`` (degrees); ``scales`` override."""
    library, optics = settings.phase_library(), settings.optics()
    rate = chebyshev_background(two_theta, hypothesis.background, *optics.two_theta_range)
    for j, (name, s) in enumerate(zip(hypothesis.phases, scales or hypothesis.scales)):
        v = {k: hypothesis.refined[k][j] for k in PER_PHASE}
        rate = rate + s * rate_on(library.phase(name), optics, two_theta, settings.d_min(), v["strain"], v["inverse_size"],
                                  hypothesis.zero, v["microstrain"], hypothesis.poles[j], v["log_r"], hypothesis.displacement)
    return np.maximum(rate, 1e-9)


# -- the analysis ------------------------------------------------------------------------------------


@dataclass
class PhaseIDReport:
    """Everything the identification concluded (``interpret`` turns it into an Interpretation)."""

    fits: list[SetFit]
    probabilities: dict[str, float]
    marginals: dict[str, float]
    temperature: float
    flags: list[str]
    unexplained: list[float]
    n_points: int
    n_sets_screened: int

    @property
    def best(self) -> SetFit | None:
        return max(self.fits, key=lambda f: self.probabilities[SET_SEPARATOR.join(f.phases)], default=None)


def collect(measurements: Sequence[Measurement], dwell_parameter: str) -> tuple[Pattern | None, list[str]]:
    """Concatenate the usable windows; flag (and skip) the others, naming the attempt."""
    xs, ns, ts, flags = [], [], [], []
    for m in measurements:
        x, n = m.data.get("two_theta"), m.data.get("counts")
        dwell = m.params.get(dwell_parameter)
        problem = None
        if x is None or n is None:
            problem = "lacks two_theta or counts"
        elif x.shape != n.shape or x.ndim != 1:
            problem = "two_theta and counts differ in shape"
        elif not (np.all(np.isfinite(x)) and np.all(np.isfinite(n))):
            problem = "non-finite data"
        elif np.any(n < 0):
            problem = "negative counts"
        elif isinstance(dwell, (str, bool)) or dwell is None or not (math.isfinite(float(dwell)) and float(dwell) > 0):
            problem = f"{dwell_parameter}={dwell!r} is not a positive number"
        if problem:
            flags.append(f"bad-data:{m.attempt_id}: {problem}")
            continue
        xs.append(np.asarray(x, float))
        ns.append(np.rint(np.asarray(n, float)))
        ts.append(np.full(x.size, float(dwell)))  # type: ignore[arg-type]
    if not xs:
        return None, flags
    return Pattern(np.concatenate(xs), np.concatenate(ns), np.concatenate(ts)), flags


def _smoothed(counts: np.ndarray, width: int = 5) -> np.ndarray:
    kernel = np.ones(width) / width
    return np.convolve(counts, kernel, mode="same")


class XRDPhaseIdentification:
    """The analysis kind ``xrd``: plain class, testable without Ray."""

    name = "xrd"

    def __init__(self, settings: XRDPhaseIDSettings) -> None:
        self.settings = settings
        library = settings.phase_library()
        self.phases: dict[str, Phase] = {n: library.phase(n) for n in settings.candidate_names()}

    # -- search ------------------------------------------------------------------------------------
    def identify(self, pattern: Pattern) -> PhaseIDReport:
        """Search the phase sets (module docstring). If the best set leaves peaks unexplained, the
        search runs again with twice the shortlist and twice the refined sets; if peaks are still
        unexplained, the data hold intensity the candidates do not account for (an unlisted
        phase, or one beyond the refinements' bounds): the open-world rule then keeps at least
        half the probability for "none of these", so no set is reported with more than 0.5."""
        s = self.settings
        profiles = PhaseProfiles(self.phases, s.optics(), pattern, s.d_min())
        weight = 1.0 / np.sqrt(np.maximum(_smoothed(pattern.counts), 0.5))
        fits, n_sets = self._search(profiles, weight, s.shortlist, s.refine_sets)
        report = self._report(pattern, fits, n_sets)
        if report.unexplained:
            more, n_more = self._search(profiles, weight, min(2 * s.shortlist, 12), 2 * s.refine_sets)
            known = {f.label for f in fits}
            report = self._report(pattern, fits + [f for f in more if f.label not in known], n_sets + n_more)
            report.flags.append("search-widened")
            if report.unexplained:
                report.probabilities = {k: 0.5 * v for k, v in report.probabilities.items()}
                report.marginals = {k: 0.5 * v for k, v in report.marginals.items()}
                report.flags.append("open-world: p halved")
        return report

    def _search(self, profiles: PhaseProfiles, weight: np.ndarray, shortlist_size: int, refine_sets: int) -> tuple[list[SetFit], int]:
        """Screen, shortlist, rank sets, refine the best; (refined fits, sets ranked)."""
        s, pattern = self.settings, profiles.pattern
        strains = np.linspace(-s.lattice_strain_bound, s.lattice_strain_bound, 2 * round(s.lattice_strain_bound / 0.0008) + 1)
        u_start = min(0.01, s.max_inverse_size / 2)

        def best_addition(base: list[tuple[str, float]], exclude: set[str]) -> dict[str, tuple[float, float]]:
            # χ² of base + candidate, best over the strain grid, per candidate (χ², strain).
            columns = [profiles.rate(n, e, u_start, 0.0) for n, e in base]
            out = {}
            for name in self.phases:
                if name in exclude:
                    continue
                chi2 = [linear_fit(profiles, [*columns, profiles.rate(name, e, u_start, 0.0)], weight)[1] for e in strains]
                j = int(np.argmin(chi2))
                best = (chi2[j], float(strains[j]))
                if 0 < j < len(strains) - 1:
                    # The grid is coarser than a sharp peak: refine the strain at the parabola's vertex.
                    c0, c1, c2 = chi2[j - 1], chi2[j], chi2[j + 1]
                    curvature = c0 - 2 * c1 + c2
                    if curvature > 0:
                        e = float(strains[j] + 0.5 * (c0 - c2) / curvature * (strains[1] - strains[0]))
                        best = min(best, (linear_fit(profiles, [*columns, profiles.rate(name, e, u_start, 0.0)], weight)[1], e))
                out[name] = best
            return out

        per_stage = max(2, shortlist_size // 3)
        log_prior = s.phase_log_prior()
        chosen: dict[str, float] = {}  # shortlisted phase → screened strain
        near_best: list[list[str]] = []  # per stage, the phases that did nearly as well as its best

        def take(scores: dict[str, tuple[float, float]], reference: float) -> str:
            # The stage's best few, and every phase that does nearly as well as its best: an
            # isostructural rival (Au/Ag, the spinels) must not be crowded out by junk.
            order = sorted(scores, key=lambda n: scores[n][0])
            gain = reference - scores[order[0]][0]
            close = [n for n in order if reference - scores[n][0] >= 0.8 * gain][:6]
            for n in dict.fromkeys(order[:per_stage] + close):
                chosen.setdefault(n, scores[n][1])
            near_best.append(close)
            return order[0]

        single = best_addition([], set())
        chi2_background = linear_fit(profiles, [], weight)[1]
        first = take(single, chi2_background)
        base = [(first, single[first][1])]
        for _ in range(s.max_phases - 1):
            added = best_addition(base, {n for n, _ in base})
            if not added:
                break
            columns = [profiles.rate(n, e, u_start, 0.0) for n, e in base]
            nxt = take(added, linear_fit(profiles, columns, weight)[1])
            base.append((nxt, added[nxt][1]))
        # Stage by stage (the order they were taken in), at most twice the shortlist size; the
        # greedy path always competes.
        shortlist = list(chosen)[: 2 * max(shortlist_size, 1)]
        shortlist += [n for n, _ in base if n not in shortlist]

        def screened(n: str) -> float:
            return chosen.get(n, single[n][1])

        # Sets from the shortlist, ranked by a quick linear fit at the screened refinements.
        quick: list[tuple[float, tuple[str, ...]]] = []
        for size in range(1, min(s.max_phases, len(shortlist)) + 1):
            for combo in itertools.combinations(shortlist, size):
                chi2 = linear_fit(profiles, [profiles.rate(n, screened(n), u_start, 0.0) for n in combo], weight)[1]
                quick.append((-0.5 * chi2 + (log_prior - 3.0) * size, tuple(sorted(combo))))
        quick.sort(reverse=True)
        to_refine = [c for _, c in quick[:refine_sets]]
        for size in range(1, s.max_phases + 1):  # the best of each size competes too
            best_of_size = next((c for _, c in quick if len(c) == size), None)
            if best_of_size is not None and best_of_size not in to_refine:
                to_refine.append(best_of_size)
        # Near-equals of the best single phase compete alone (Au for Ag, one spinel for another).
        to_refine += [(n,) for n in near_best[0] if (n,) not in to_refine]
        # Every simpler version of the three leading sets competes as well: the quick fit (no texture,
        # fixed widths) lets extra phases soak up profile misfit, and only a refined simpler set can
        # show that they were not needed.
        for combo in list(to_refine[:3]):
            for size in range(1, len(combo)):
                to_refine += [c for c in itertools.combinations(combo, size) if c not in to_refine]

        # Prior box of each scale: the scale at which that phase alone would carry all net counts, × 3.
        background_only = linear_fit(profiles, [], np.ones(pattern.n))[0]
        net = float(np.sum(np.maximum(pattern.counts - pattern.dwell * (profiles.background @ background_only), 0.0) / pattern.dwell))
        scale_max = {n: 3.0 * max(net, 1.0) / max(float(np.sum(profiles.rate(n, 0.0, u_start, 0.0))), 1e-12) for n in shortlist}
        bounds = Bounds(strain=s.lattice_strain_bound, inverse_size=s.max_inverse_size, microstrain=s.max_microstrain,
                        log_r=math.log(s.max_march_r), zero=s.zero_shift_bound_deg,
                        displacement=s.displacement_bound_mm, scale_max=scale_max,
                        background=10.0 * (float(np.max(pattern.counts / pattern.dwell)) + 1.0))

        # Texture pole of each phase, chosen once beside the other phases of the best set holding it.
        poles: dict[str, tuple[tuple[int, int, int], float]] = {}
        for combo in to_refine:
            for n in combo:
                if n not in poles:
                    others = [profiles.rate(m, screened(m), u_start, 0.0) for m in combo if m != n]
                    poles[n] = choose_pole(profiles, n, screened(n), u_start, others, weight)
        fits = []
        for combo in to_refine:
            strain = self._strains_in_context(profiles, combo, [screened(n) for n in combo], strains, u_start, weight)
            columns = [profiles.rate(n, e, u_start, 0.0) for n, e in zip(combo, strain)]
            quick_fit, _ = linear_fit(profiles, columns, weight)
            mu0 = pattern.dwell * (sum((a * g for a, g in zip(quick_fit[: len(combo)], columns)), np.zeros(pattern.n))
                                   + profiles.background @ quick_fit[len(combo):])
            start = {"strain": strain, "inverse_size": [u_start] * len(combo),
                     "microstrain": [0.0] * len(combo), "log_r": [poles[n][1] for n in combo]}
            fits.append(refine_set(profiles, combo, [poles[n][0] for n in combo], start, bounds, np.maximum(mu0, 0.5)))
        return fits, len(quick)

    @staticmethod
    def _strains_in_context(profiles: PhaseProfiles, combo: tuple[str, ...], strains: list[float], grid: np.ndarray,
                            u_start: float, weight: np.ndarray) -> list[float]:
        """Each phase's starting strain re-screened beside the set's other phases, one pass.

        A minor phase's strain screened alone (or beside other phases) may have lined its peaks up
        with a major phase's; a local refinement cannot leave that valley, and the set would lose
        evidence it deserves."""
        strains = list(strains)
        for i, name in enumerate(combo):
            if len(combo) == 1:
                break
            others = [profiles.rate(m, strains[j], u_start, 0.0) for j, m in enumerate(combo) if j != i]
            trials = [(linear_fit(profiles, [*others, profiles.rate(name, float(e), u_start, 0.0)], weight)[1], float(e))
                      for e in [*grid, strains[i]]]
            strains[i] = min(trials)[1]
        return strains

    def _report(self, pattern: Pattern, fits: list[SetFit], n_sets: int) -> PhaseIDReport:
        """Posterior over the refined sets (tempered by the best set's misfit), marginals, flags."""
        s = self.settings
        flags = [f"fit-not-converged:{f.label}: {f.message}" for f in fits if not f.converged]
        usable = [f for f in fits if np.isfinite(f.log_likelihood) and np.isfinite(f.log_occam)]
        temperature = 1.0
        if usable and s.temper:
            temperature = self._misfit_temperature(pattern, min(usable, key=lambda f: f.deviance))
        log_post = {f.label: f.log_evidence(temperature) + s.phase_log_prior() * len(f.phases) for f in usable}
        probabilities = posterior_probabilities(log_post) if log_post else {}
        marginals = {n: sum(p for label, p in probabilities.items() if n in label.split(SET_SEPARATOR)) for n in self.phases}
        report = PhaseIDReport(fits=usable, probabilities=probabilities, marginals=marginals, temperature=temperature,
                               flags=flags, unexplained=[], n_points=pattern.n, n_sets_screened=n_sets)
        best = report.best
        if best is not None:
            report.unexplained = self._unexplained(pattern, best)
            if report.unexplained:
                report.flags.append("unexplained-peaks")
        return report

    def _misfit_temperature(self, pattern: Pattern, fit: SetFit) -> float:
        """T ≥ 1: the best set's Poisson deviance per degree of freedom, over all steps and over the
        steps where its peaks stand above the background (≥ 20 of them) — the larger. Misfit from
        what the model lacks concentrates on the peaks; averaged with the background steps it
        would be diluted away, and the set probabilities would be over-confident."""
        mu = np.maximum(fit.mu, 1e-9)
        n = pattern.counts
        deviance = 2 * (np.where(n > 0, n * np.log(np.maximum(n, 1e-300) / mu), 0.0) - (n - mu))
        background = pattern.dwell * chebyshev_background(pattern.two_theta, fit.background, *self.settings.two_theta_range)
        peaks = (mu - background) > 2 * np.sqrt(np.maximum(background, 1.0))
        overall = float(deviance.sum()) / max(pattern.n - fit.n_parameters, 1)
        on_peaks = float(deviance[peaks].sum()) / int(peaks.sum()) if int(peaks.sum()) >= 20 else 1.0
        return max(1.0, overall, on_peaks)

    def _unexplained(self, pattern: Pattern, fit: SetFit) -> list[float]:
        """2θ of runs of positive residuals above ``unexplained_sigma`` over about a peak width."""
        r = (pattern.counts - fit.mu) / np.sqrt(np.maximum(fit.mu, 1.0))
        lines = self.settings.lines()
        width = float(np.median(peak_shapes(pattern.two_theta, lines[0][0], self.settings.optics().caglioti, None, 0.0)[0]))
        bins = np.floor(pattern.two_theta / width).astype(int)
        sums = np.bincount(bins - bins.min(), weights=r)
        counts = np.bincount(bins - bins.min())
        z = np.divide(sums, np.sqrt(np.maximum(counts, 1)))
        # Pairs of neighbouring bins too, so a peak split across two bins is not diluted.
        z2 = (sums[:-1] + sums[1:]) / np.sqrt(np.maximum(counts[:-1] + counts[1:], 1))
        hits = set(np.flatnonzero(z > self.settings.unexplained_sigma)) | set(np.flatnonzero(z2 > self.settings.unexplained_sigma))
        return sorted({round((h + bins.min() + 0.5) * width, 2) for h in hits})

    # -- the analysis protocol ----------------------------------------------------------------------
    def interpret(self, measurements: Sequence[Measurement]) -> Interpretation:
        last = measurements[-1]
        pattern, flags = collect(measurements, self.settings.dwell_parameter)
        sample = last.sample_id or last.attempt_id
        if pattern is None or pattern.n < 10:
            return Interpretation(attempt_id=last.attempt_id, sample_id=sample, analysis=self.name, estimates={
                "p(best)": Estimate(value=None)}, flags=[*flags, "no-usable-data"], valid=False)
        report = self.identify(pattern)
        best = report.best
        if best is None:
            return Interpretation(attempt_id=last.attempt_id, sample_id=sample, analysis=self.name, estimates={
                "p(best)": Estimate(value=None)}, flags=[*flags, *report.flags, "no-fit"], valid=False)
        label = SET_SEPARATOR.join(best.phases)
        estimates = {
            "p(best)": Estimate(value=report.probabilities[label], units="probability"),
            "n_phases": Estimate(value=float(len(best.phases))),
        }
        for n in self.phases:
            estimates[f"p:{n}"] = Estimate(value=report.marginals.get(n, 0.0), units="probability")
            estimates[f"w:{n}"] = Estimate(value=0.0, sigma=None, units="weight fraction")
        for n, w, sw in zip(best.phases, *self.weight_fractions(best, report.temperature)):
            estimates[f"w:{n}"] = Estimate(value=w, sigma=sw, units="weight fraction")
        ranked = sorted(report.fits, key=lambda f: -report.probabilities[SET_SEPARATOR.join(f.phases)])
        details: dict[str, float | str | bool | None] = {
            "best_set": label, "temperature": report.temperature,
            "chi2_reduced": best.deviance / max(report.n_points - best.n_parameters, 1),
            "n_points": float(report.n_points), "n_sets_screened": float(report.n_sets_screened),
            "n_sets_refined": float(len(report.fits)),
            "unexplained_two_theta": ",".join(f"{x:g}" for x in report.unexplained) or None,
        }
        for i, f in enumerate(ranked[: self.settings.hypotheses_reported]):
            details |= Hypothesis.of(f, report.probabilities[f.label], report.temperature).to_details(i)
        return Interpretation(attempt_id=last.attempt_id, sample_id=sample, analysis=self.name, estimates=estimates,
                              flags=[*flags, *report.flags], valid=True, details=details)

    def weight_fractions(self, fit: SetFit, temperature: float) -> tuple[list[float], list[float]]:
        """Weight fractions of a set's phases and their σ (delta method on the scales' covariance)."""
        rho = np.array([self.phases[n].density for n in fit.phases])
        m = fit.scales * rho
        total = float(m.sum())
        if total <= 0:
            return [0.0] * len(fit.phases), [0.0] * len(fit.phases)
        w = m / total
        # w_p = S_p ρ_p / Σ S ρ  ⇒  ∂w_p/∂S_q = (δ_pq ρ_p − w_p ρ_q) / Σ S ρ
        jac = (np.diag(rho) - np.outer(w, rho)) / total
        cov = jac @ (fit.covariance * temperature) @ jac.T
        return list(map(float, w)), list(map(float, np.sqrt(np.clip(np.diag(cov), 0, None))))
