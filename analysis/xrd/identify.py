"""Probabilistic phase identification from powder diffraction, with weight fractions ± σ.

Every window measured so far on a sample is fitted together (``analysis.xrd.fit``) as a
non-negative mixture of library phases plus a Chebyshev background, with small refinements per
phase (lattice strain, crystallite size) and a common zero shift. Phase *sets* are compared by
their Laplace evidence under the Poisson likelihood, with a prior that prefers fewer phases
(``log_prior_per_phase`` per phase, on top of the Occam factor of each phase's parameters).

The candidate space is searched, not enumerated (``analysis.xrd.search``: screen every candidate,
add to the best, shortlist, rank the shortlist's subsets, refine the best sets); then evidences,
posterior over sets, each phase's marginal probability, weight fractions ± σ of the best set.

Open world. The library may lack a phase the sample holds. Three kinds of evidence say so, and
all enter the probability as an explicit alternative "a phase outside the library" whose log odds
against the best set are computed, not assumed (``missing_log_odds``): intensity clustered where no
phase of the best set has a peak (``analysis.xrd.residuals``), and a phase whose lattice strain
ends on its bound (the best set refitted with that bound three times wider: the likelihood gained,
tempered, against log 3 for the wider prior and the prior cost of a phase), and a phase whose strain
and intensities were both forced to their bounds (a stand-in, ``analysis.xrd.admission``: its set's
posterior over the set without it). A set holding a broad patch (a phase at the smallest crystallite
size allowed) is not an answer at all: flagged ``broad-intensity``. p(missing) scales every
set probability and marginal down; p(missing) ≥ 0.5 → ``not-identified``, and the weight fractions
are reported without values (``fractions-unusable``). Misfit spread over the best set's own peaks
is flagged ``profile-misfit`` and handled by tempering, not as a missing phase.

Calibration: when the best set still misfits (Poisson deviance per degree of freedom T > 1 —
texture, microstrain or an unlisted phase the model lacks), the likelihood is tempered by T (all
σ inflated by √T, the Birge-ratio correction), so model probabilities are not over-confident on
data the model cannot describe. Intensity no phase of the best set accounts for sets the flag
``unexplained-peaks`` and its 2θ in ``details["unexplained_two_theta"]`` (see the open world above).

Interpretation estimates: ``p(best)`` (probability of the most probable set), ``n_phases``,
``p:<phase>`` (marginal probability of every candidate), ``w:<phase>`` (weight fraction ± σ; 0
for phases outside the best set). ``details`` carries ``best_set`` and the refined parameters of
the top hypotheses (``hyp:<i>:…``, ``analysis.xrd.hypotheses``), which the scan planner predicts from.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import signal

from analysis.laplace import posterior_probabilities
from analysis.protocol import Estimate, Interpretation
from analysis.xrd.admission import broad_patches, has_empty_phase, stand_ins
from analysis.xrd.fit import PhaseProfiles, SetFit, refine_set
from analysis.xrd.residuals import ResidualVerdict, missing_log_odds, residual_verdict
from analysis.xrd.hypotheses import SET_SEPARATOR, PhaseSetHypothesis
from analysis.xrd.pattern import Pattern, collect, smoothed
from analysis.xrd.search import search
from analysis.xrd.settings import XRDPhaseIDSettings
from instruments.types import Measurement
from physics.phases import Phase
from physics.xrd import peak_shapes


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
    p_missing: float = 0.0
    """Probability that the sample holds a phase outside the library (module docstring)."""
    verdict: ResidualVerdict = field(default_factory=ResidualVerdict)
    log_posterior: dict[str, float] = field(default_factory=dict)
    """Each set's tempered log posterior (closed world): the ranking of the sets. The probabilities cannot
    rank them once p(missing) is 1 to machine precision — every set is then at 0 and a tie would report
    whichever came first (the mismatch family's sample 10 named a set that was not its most probable)."""

    @property
    def identified(self) -> bool:
        return self.best is not None and self.p_missing < 0.5

    @property
    def best(self) -> SetFit | None:
        return max(self.fits, key=self.rank, default=None)

    def rank(self, fit: SetFit) -> float:
        """The sort key of ``fit`` among the sets (larger first)."""
        return self.log_posterior[fit.label]


class XRDPhaseIdentification:
    """The analysis kind ``xrd``: plain class, testable without Ray."""

    name = "xrd"

    def __init__(self, settings: XRDPhaseIDSettings) -> None:
        self.settings = settings
        library = settings.phase_library()
        self.phases: dict[str, Phase] = {n: library.phase(n) for n in settings.candidate_names()}

    def identify(self, pattern: Pattern) -> PhaseIDReport:
        """Search the phase sets (module docstring). If the best set leaves intensity unexplained,
        the search runs again with twice the shortlist and twice the refined sets; what is still
        unexplained then is evidence of a phase outside the library (``p_missing``)."""
        s = self.settings
        profiles = PhaseProfiles(self.phases, s.optics(), pattern, s.d_min())
        weight = 1.0 / np.sqrt(np.maximum(smoothed(pattern.counts), 0.5))
        fits, n_sets = search(s, profiles, weight, s.shortlist, s.refine_sets)
        report = self._report(pattern, fits, n_sets)
        if report.verdict.unexplained:
            more, n_more = search(s, profiles, weight, min(2 * s.shortlist, 12), 2 * s.refine_sets)
            known = {f.label for f in fits}
            report = self._report(pattern, fits + [f for f in more if f.label not in known], n_sets + n_more)
            report.flags.append("search-widened")
        self._open_world(profiles, report)
        return report

    def _report(self, pattern: Pattern, fits: list[SetFit], n_sets: int) -> PhaseIDReport:
        """Posterior over the refined sets (tempered by the best set's misfit), marginals, residual tests."""
        s = self.settings
        flags = [f"fit-not-converged:{f.label}: {f.message}" for f in fits if not f.converged]
        finite = [f for f in fits if np.isfinite(f.log_likelihood) and np.isfinite(f.log_occam) and not has_empty_phase(f)]
        usable = [f for f in finite if not broad_patches(f)]
        if usable:
            # A broad patch is not a phase (analysis.xrd.admission); say so where it fitted better than the answer.
            answer = max(f.log_likelihood for f in usable)
            flags += sorted({f"broad-intensity:{n}"
                             for f in finite if f.log_likelihood > answer for n in broad_patches(f)})
        temperature = 1.0
        if usable and s.temper:
            temperature = self._misfit_temperature(pattern, min(usable, key=lambda f: f.deviance))
        log_post = {f.label: f.log_evidence(temperature) + s.phase_log_prior() * len(f.phases) for f in usable}
        probabilities = posterior_probabilities(log_post) if log_post else {}
        marginals = {n: sum(p for label, p in probabilities.items() if n in label.split(SET_SEPARATOR)) for n in self.phases}
        report = PhaseIDReport(fits=usable, probabilities=probabilities, marginals=marginals, temperature=temperature,
                               flags=flags, unexplained=[], n_points=pattern.n, n_sets_screened=n_sets,
                               log_posterior=log_post)
        best = report.best
        if best is not None:
            report.verdict = self._residual_verdict(pattern, best)
            report.unexplained = [x for x, _, _ in report.verdict.unexplained]
        return report

    def _residual_verdict(self, pattern: Pattern, fit: SetFit) -> ResidualVerdict:
        s = self.settings
        background = pattern.dwell * s.optics().background_rate(pattern.two_theta, fit.background)
        width = float(np.median(peak_shapes(pattern.two_theta, s.lines()[0][0], s.optics().caglioti, None, 0.0)[0]))
        return residual_verdict(pattern.two_theta, pattern.counts, fit.mu, background, max(width, 0.05),
                                s.unexplained_min_fraction)

    def _open_world(self, profiles: PhaseProfiles, report: PhaseIDReport) -> None:
        """p(a phase outside the library) from the residual clusters and strains at their bound;
        scales the probabilities down and sets the flags (module docstring)."""
        best, s = report.best, self.settings
        if best is None:
            return
        verdict = report.verdict
        odds = [missing_log_odds(verdict, report.temperature, s.phase_log_prior()),
                self._strain_bound_log_odds(profiles, best, report.temperature),
                self._stand_in_log_odds(report, best)]
        log_odds = max(odds)
        report.p_missing = 0.0 if log_odds == -math.inf else 1.0 / (1.0 + math.exp(-min(log_odds, 700.0)))
        keep = 1.0 - report.p_missing
        report.probabilities = {k: keep * v for k, v in report.probabilities.items()}
        report.marginals = {k: keep * v for k, v in report.marginals.items()}
        report.flags += [f"at-bound:{name}" for name in best.at_bound]
        if verdict.unexplained:
            report.flags.append("unexplained-peaks")
        if verdict.traces:
            report.flags.append("trace-peaks")
        if verdict.profile_misfit:
            report.flags.append("profile-misfit")
        if odds[1] > 0:
            report.flags.append("strain-at-bound: a phase outside the library?")
        report.flags += [f"stand-in:{n}" for n in stand_ins(best)]
        if not report.identified:
            report.flags += ["not-identified", "fractions-unusable"]

    def _strain_bound_log_odds(self, profiles: PhaseProfiles, best: SetFit, temperature: float) -> float:
        """log odds of "the phase at its strain bound is a related phase outside the library": the
        best set refitted with the strain bounds three times wider (−inf when no strain is at its bound)."""
        pinned = [name for name in best.at_bound if name.split(":")[0] in ("strain", "axial_strain")]
        if not pinned or best.bounds is None:
            return -math.inf
        wide = dataclasses.replace(best.bounds, strain=3 * best.bounds.strain, axial_strain=3 * best.bounds.axial_strain)
        start = {k: list(map(float, v)) for k, v in best.refined.items()}
        refit = refine_set(profiles, best.phases, best.poles, start, wide, np.maximum(best.mu, 0.5))
        gain = (refit.log_likelihood - best.log_likelihood) / temperature
        return gain - len(pinned) * math.log(3.0) + self.settings.phase_log_prior()

    def _stand_in_log_odds(self, report: PhaseIDReport, best: SetFit) -> float:
        """log odds of "a phase outside the library" from the best set's stand-ins (``analysis.xrd.admission``):
        what a stand-in explains is someone else's intensity, so the best set's tempered log posterior over the
        same set without it is evidence for the unlisted phase, not for the stand-in (−inf when there is none,
        or when that subset was not refined: then only the strain-bound refit speaks)."""
        log_post, out = report.log_posterior, -math.inf
        for name in stand_ins(best):
            rest = SET_SEPARATOR.join(p for p in best.phases if p != name)
            if rest in log_post:
                out = max(out, log_post[best.label] - log_post[rest])
        return out

    def _misfit_temperature(self, pattern: Pattern, fit: SetFit) -> float:
        """T ≥ 1: how much the best set's misfit inflates χ² differences — the larger of its Poisson
        deviance per degree of freedom over all steps, and the *block* dispersion on its peaks: the
        mean square of sums of Pearson residuals over blocks of two fitted FWHM (``_block_steps``),
        divided by the block length (batch means). Misfit from what the model lacks (a peak
        shape, anisotropic broadening) is correlated along a peak; step by step it looks like
        T ≈ 1.5, yet a rival set can buy hundreds of χ² by patching it, and the set
        probabilities would be over-confident. On independent residuals both are ≈ 1."""
        mu = np.maximum(fit.mu, 1e-9)
        n = pattern.counts
        deviance = 2 * (np.where(n > 0, n * np.log(np.maximum(n, 1e-300) / mu), 0.0) - (n - mu))
        background = pattern.dwell * self.settings.optics().background_rate(pattern.two_theta, fit.background)
        peaks = (mu - background) > 2 * np.sqrt(np.maximum(background, 1.0))
        overall = float(deviance.sum()) / max(pattern.n - fit.n_parameters, 1)
        w = self._block_steps(mu - background, background)
        k = pattern.n // w
        r = ((n - mu) / np.sqrt(mu))[: k * w].reshape(k, w)
        on_peak = peaks[: k * w].reshape(k, w).mean(axis=1) > 0.5
        if int(on_peak.sum()) < 5:
            on_peaks = float(deviance[peaks].sum()) / int(peaks.sum()) if int(peaks.sum()) >= 20 else 1.0
        else:
            on_peaks = float(np.mean(r[on_peak].sum(axis=1) ** 2)) / w
        return max(1.0, overall, on_peaks)

    @staticmethod
    def _block_steps(diffracted: np.ndarray, background: np.ndarray) -> int:
        """Twice the median FWHM, in steps, of the fitted peaks (``diffracted``: the model's counts above
        ``background``, (n,)), at least 2: the block length of ``_misfit_temperature``."""
        floor = 2 * float(np.sqrt(max(float(np.median(background)), 1.0)))
        _, props = signal.find_peaks(diffracted, height=floor, width=1, rel_height=0.5)
        return max(int(round(2 * float(np.median(props["widths"])))), 2) if len(props["widths"]) else 2

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
            # Not identified: the fractions of a set that cannot explain the data mean nothing.
            estimates[f"w:{n}"] = (Estimate(value=w, sigma=sw, units="weight fraction") if report.identified
                                   else Estimate(value=None, units="weight fraction"))
        ranked = sorted(report.fits, key=report.rank, reverse=True)
        details: dict[str, float | str | bool | None] = {
            "best_set": label, "temperature": report.temperature,
            "chi2_reduced": best.deviance / max(report.n_points - best.n_parameters, 1),
            "n_points": float(report.n_points), "n_sets_screened": float(report.n_sets_screened),
            "n_sets_refined": float(len(report.fits)),
            "unexplained_two_theta": ",".join(f"{x:g}" for x in report.unexplained) or None,
            "trace_two_theta": ",".join(f"{x:g}" for x, _, _ in report.verdict.traces) or None,
            "p_missing_phase": report.p_missing, "identified": report.identified,
            "profile_misfit_ratio": report.verdict.profile_ratio,
            "at_bound": ",".join(best.at_bound) or None,
        }
        for i, f in enumerate(ranked[: self.settings.hypotheses_reported]):
            details |= PhaseSetHypothesis.of(f, report.probabilities[f.label], report.temperature).to_details(i)
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
