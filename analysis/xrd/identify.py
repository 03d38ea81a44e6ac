"""Probabilistic phase identification from powder diffraction, with weight fractions ± σ.

Every window measured so far on a sample is fitted together (``analysis.xrd.fit``) as a
non-negative mixture of library phases plus a Chebyshev background, with small refinements per
phase (lattice strain, crystallite size) and a common zero shift. Phase *sets* are compared by
their Laplace evidence under the Poisson likelihood, with a prior that prefers fewer phases
(``log_prior_per_phase`` per phase, on top of the Occam factor of each phase's parameters).

The candidate space is searched, not enumerated (``analysis.xrd.search``: screen every candidate,
add to the best, shortlist, rank the shortlist's subsets, refine the best sets); then evidences,
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
the top hypotheses (``hyp:<i>:…``, ``analysis.xrd.hypotheses``), which the scan planner predicts from.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from analysis.laplace import posterior_probabilities
from analysis.protocol import Estimate, Interpretation
from analysis.xrd.fit import PhaseProfiles, SetFit
from analysis.xrd.hypotheses import SET_SEPARATOR, PhaseSetHypothesis
from analysis.xrd.pattern import Pattern, collect, smoothed
from analysis.xrd.search import search
from analysis.xrd.settings import XRDPhaseIDSettings
from instruments.types import Measurement
from physics.phases import Phase
from physics.xrd import chebyshev_background, peak_shapes


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


class XRDPhaseIdentification:
    """The analysis kind ``xrd``: plain class, testable without Ray."""

    name = "xrd"

    def __init__(self, settings: XRDPhaseIDSettings) -> None:
        self.settings = settings
        library = settings.phase_library()
        self.phases: dict[str, Phase] = {n: library.phase(n) for n in settings.candidate_names()}

    def identify(self, pattern: Pattern) -> PhaseIDReport:
        """Search the phase sets (module docstring). If the best set leaves peaks unexplained, the
        search runs again with twice the shortlist and twice the refined sets; if peaks are still
        unexplained, the data hold intensity the candidates do not account for (an unlisted
        phase, or one beyond the refinements' bounds): the open-world rule then keeps at least
        half the probability for "none of these", so no set is reported with more than 0.5."""
        s = self.settings
        profiles = PhaseProfiles(self.phases, s.optics(), pattern, s.d_min())
        weight = 1.0 / np.sqrt(np.maximum(smoothed(pattern.counts), 0.5))
        fits, n_sets = search(s, profiles, weight, s.shortlist, s.refine_sets)
        report = self._report(pattern, fits, n_sets)
        if report.unexplained:
            more, n_more = search(s, profiles, weight, min(2 * s.shortlist, 12), 2 * s.refine_sets)
            known = {f.label for f in fits}
            report = self._report(pattern, fits + [f for f in more if f.label not in known], n_sets + n_more)
            report.flags.append("search-widened")
            if report.unexplained:
                report.probabilities = {k: 0.5 * v for k, v in report.probabilities.items()}
                report.marginals = {k: 0.5 * v for k, v in report.marginals.items()}
                report.flags.append("open-world: p halved")
        return report

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
