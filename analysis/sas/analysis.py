"""The SAS analysis: every exposure of a sample → estimates, model probabilities and flags.

:meth:`SASFitAnalysis.fit` merges (:mod:`analysis.sas.merge`) and fits every candidate
(:mod:`analysis.sas.fit`); posterior model probabilities are ``p(m) ∝ prior(m) Z_m``, normalised
over the candidates with a finite evidence (:func:`analysis.laplace.posterior_probabilities`).
:meth:`SASFitAnalysis.interpret` turns that into an :class:`~analysis.protocol.Interpretation`:

- estimates for ``report`` (default: the fitted parameters of all candidates, taken from the best
  model; a name the best model lacks has value None), plus ``p(<candidate>)`` for each candidate
  and ``p(best)``;
- details ``best_model``, ``best_model_probability``, ``chi2_reduced``, ``n_points``, ``converged``
  and per-candidate ``log_evidence:<m>``, ``chi2_reduced:<m>``, ``converged:<m>``, and every usable
  fit's values and 1-σ errors ``fit:<m>:<param>``, ``sigma:<m>:<param>``.

Errors are **not** rescaled by χ²_red by default: the instrument's σ are Poisson-honest, so a large
χ²_red means the *model* is wrong, which is flagged (``poor-fit``) rather than hidden by inflated
errors. ``scale_errors=True`` multiplies σ by √χ²_red when χ²_red > 1; ``details["errors_scaled"]``
always says which happened.

``valid`` is False when there is no usable data, when no candidate converged, or when the data are
consistent with a flat line (``no-signal``: χ² of a constant has p > 0.001) — a radius fitted to
flat noise is not a measurement and must not train a model; it is still kept and shown.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
from scipy import stats

from analysis.laplace import posterior_probabilities
from analysis.protocol import Estimate, Interpretation
from analysis.sas.fit import FitResult, failed_fit, fit_candidate
from analysis.sas.merge import MergedBlock, merge_measurements
from analysis.sas.settings import CandidateModel, SASFitSettings
from instruments.types import Measurement, finite_or_none

Details = dict[str, float | str | bool | None]


@dataclass(frozen=True)
class SASFitReport:
    """Everything :meth:`SASFitAnalysis.fit` found: merged data, per-candidate fits, probabilities."""

    blocks: list[MergedBlock]
    fits: dict[str, FitResult]
    probabilities: dict[str, float]
    flags: list[str]
    counts: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    @cached_property
    def best(self) -> FitResult | None:
        """The most probable candidate with a usable fit (None if no candidate has one)."""
        usable = [m for m, f in self.fits.items() if np.isfinite(f.chi2) and np.isfinite(f.log_evidence)]
        if not usable:
            return None
        return self.fits[max(usable, key=lambda m: (self.probabilities[m], self.fits[m].log_evidence))]


def probability_temperature(
    fits: Mapping[str, FitResult], log_prior: Mapping[str, float], p_value: float = 1e-3
) -> float:
    """χ²_red of the candidate with the highest untempered posterior when its χ² is improbable
    (survival p < ``p_value``) and χ²_red > 1; else 1 (no tempering where the model fits).

    When even the best model misses the data (χ²_red ≫ 1) the Gaussian likelihood is too sharp: log
    evidences differ by hundreds of nats between models that are all wrong, and the winner's
    probability rounds to 1. Dividing every log evidence by this temperature is the usual correction
    (it is the likelihood with σ scaled by √χ²_red, the "learning-rate" / safe-Bayes tempering), so
    model probabilities spread as far as the misfit warrants.
    """
    usable = {m: log_prior[m] + f.log_evidence for m, f in fits.items() if np.isfinite(f.log_evidence)}
    if not usable:
        return 1.0
    best = fits[max(usable, key=usable.__getitem__)]
    dof = best.n_points - best.k
    if dof <= 0 or not np.isfinite(best.chi2) or best.chi2_reduced <= 1:
        return 1.0
    return float(best.chi2_reduced) if stats.chi2.sf(best.chi2, dof) < p_value else 1.0


def _model_probabilities(
    fits: Mapping[str, FitResult], log_prior: Mapping[str, float], p_value: float = 1e-3
) -> dict[str, float]:
    """p(m) ∝ prior(m) · Z_m^(1/T), T = :func:`probability_temperature`."""
    temperature = probability_temperature(fits, log_prior, p_value)
    return posterior_probabilities({m: log_prior[m] + f.log_evidence / temperature for m, f in fits.items()})



class SASFitAnalysis:
    """Fits candidate sasmodels models to all SAS exposures of a sample; see :mod:`analysis.sas`."""

    name = "sas"

    def __init__(self, settings: SASFitSettings) -> None:
        self.settings = settings

    def fit(self, measurements: Sequence[Measurement]) -> SASFitReport:
        """Merge and fit every candidate; never raises on data."""
        t0 = time.perf_counter()
        st = self.settings
        blocks, flags, counts = merge_measurements(measurements, st.q_min, st.q_max, st.merge)
        fits: dict[str, FitResult] = {}
        n = sum(b.q.size for b in blocks)
        for c in st.candidates:
            if n <= len(c.parameters):
                fits[c.name] = failed_fit(c, n, "fewer points than parameters")
            else:
                fits[c.name] = fit_candidate(c, blocks, st)
        probs = _model_probabilities(fits, st.log_model_prior(), st.poor_fit_p_value)
        return SASFitReport(blocks, fits, probs, flags, counts, time.perf_counter() - t0)

    def interpret(self, measurements: Sequence[Measurement]) -> Interpretation:
        if not measurements:
            raise ValueError("interpret() needs at least one measurement")
        newest = measurements[-1]
        st = self.settings
        report = self.fit(measurements)
        flags = list(report.flags)
        n = sum(b.q.size for b in report.blocks)
        details: Details = {
            "n_points": n,
            "n_measurements": len(measurements),
            "n_configurations": len(report.blocks),
            "n_dropped_points": report.counts.get("n_dropped", 0),
            "evidence_method": st.evidence,
            "errors_scaled": False,
        }
        estimates: dict[str, Estimate] = {f"p({c.name})": Estimate(value=None) for c in st.candidates}
        estimates["p(best)"] = Estimate(value=None)
        report_names = [e for e in st.estimate_names() if not e.startswith("p(")]
        if n == 0:
            return self._invalid(newest, estimates, flags, details, report_names, "no-data")
        _candidate_details(report, details, estimates, flags)
        details["fit_seconds"] = report.seconds
        best = report.best
        if best is None or not np.isfinite(best.chi2):
            reason = "too-few-points" if n <= min(len(c.parameters) for c in st.candidates) else "no-fit"
            return self._invalid(newest, estimates, flags, details, report_names, reason)
        factor = self._best_model_details(report, best, n, details, estimates, flags)
        _signal_check(report.blocks, details, flags)
        self._parameter_estimates(best, factor, report_names, estimates, flags)
        any_converged = any(f.converged for f in report.fits.values())
        valid = any_converged and "no-signal" not in flags
        return Interpretation(
            attempt_id=newest.attempt_id, sample_id=newest.sample_id or newest.attempt_id, analysis=self.name,
            estimates=estimates, flags=sorted(set(flags)), valid=valid, details=details,
        )

    def _invalid(
        self, newest: Measurement, estimates: dict[str, Estimate], flags: list[str], details: Details,
        report_names: list[str], reason: str,
    ) -> Interpretation:
        """An invalid interpretation (no data, or no usable fit): every reported estimate without a value."""
        for name in report_names:
            estimates.setdefault(name, Estimate(value=None, units=self._units(name)))
        return Interpretation(
            attempt_id=newest.attempt_id, sample_id=newest.sample_id or newest.attempt_id,
            analysis=self.name, estimates=estimates, flags=sorted(set(flags + [reason])), valid=False,
            details=details,
        )

    def _best_model_details(
        self, report: SASFitReport, best: FitResult, n: int, details: Details, estimates: dict[str, Estimate],
        flags: list[str],
    ) -> float:
        """p(best), the best model's χ² details and flags (``n`` merged points); returns the factor σ
        are scaled by (1 unless ``scale_errors``)."""
        st = self.settings
        chi2_red = best.chi2_reduced
        estimates["p(best)"] = Estimate(value=report.probabilities[best.model], sigma=None)
        details.update(
            best_model=best.model, best_model_probability=report.probabilities[best.model],
            chi2=best.chi2, chi2_reduced=finite_or_none(chi2_red), converged=best.converged,
        )
        details["probability_temperature"] = probability_temperature(
            report.fits, st.log_model_prior(), st.poor_fit_p_value
        )
        dof = n - best.k
        if dof > 0 and chi2_red > st.poor_fit_chi2_reduced and stats.chi2.sf(best.chi2, dof) < st.poor_fit_p_value:
            flags.append("poor-fit")
        _search_details(best, details, flags)
        _block_details(report.blocks, best, self.settings.candidate(best.model), details)
        flags.extend(_unexplained(report.blocks, details, st.poor_fit_chi2_reduced, st.poor_fit_p_value, chi2_red))
        factor = 1.0
        if st.scale_errors and dof > 0 and chi2_red > 1:
            factor = math.sqrt(chi2_red)
            details["errors_scaled"] = True
        for pname in best.at_bounds:
            flags.append(f"at-bound:{pname}")
        return factor

    def _parameter_estimates(
        self, best: FitResult, factor: float, report_names: list[str], estimates: dict[str, Estimate], flags: list[str]
    ) -> None:
        """The reported parameters from the best model: fitted (value ± σ·factor), fixed, or absent."""
        candidate = self.settings.candidate(best.model)
        explicit = self.settings.report is not None
        values, sigmas = best.params, best.sigmas
        for pname in report_names:
            units = self._units(pname, candidate)
            if pname in values:
                sd = sigmas[pname] * factor
                spec = candidate.parameters[pname]
                if np.isfinite(sd) and sd > 0.5 * (spec.bounds[1] - spec.bounds[0]):
                    flags.append(f"unconstrained:{pname}")
                estimates[pname] = Estimate(value=values[pname], sigma=finite_or_none(sd), units=units)
            elif pname in candidate.fixed and not isinstance(candidate.fixed[pname], str):
                # Fixed by assumption in this model: the value is known, its uncertainty is not.
                estimates[pname] = Estimate(value=float(candidate.fixed[pname]), sigma=None, units=units)
            else:
                # Not a parameter of the best model (e.g. `length` when a sphere wins): no value.
                if explicit:
                    flags.append(f"not-in-model:{pname}")
                estimates[pname] = Estimate(value=None, units=units)

    def _units(self, pname: str, preferred: CandidateModel | None = None) -> str:
        return self.settings.parameter_units(pname, preferred)


def _candidate_details(
    report: SASFitReport, details: Details, estimates: dict[str, Estimate], flags: list[str]
) -> None:
    """Every candidate's evidence, χ², convergence, fitted values and σ, p(<m>) and failure flags."""
    for m, f in report.fits.items():
        details[f"log_evidence:{m}"] = finite_or_none(f.log_evidence)
        details[f"chi2_reduced:{m}"] = finite_or_none(f.chi2_reduced)
        details[f"converged:{m}"] = f.converged
        if np.isfinite(f.chi2):
            # Every candidate's fitted values, not only the best's: a planner weighs the rivals.
            details.update({f"fit:{m}:{p}": float(v) for p, v in f.params.items()})
            details.update({f"sigma:{m}:{p}": finite_or_none(v) for p, v in f.sigmas.items()})
        if f.message.startswith(("fit failed", "model setup failed", "no local fit")):
            flags.append(f"fit-failed:{m}")
            details[f"error:{m}"] = f.message[:500]
        elif not f.converged:
            flags.append(f"fit-not-converged:{m}")
        if f.ill_conditioned:
            flags.append(f"ill-conditioned:{m}")
        estimates[f"p({m})"] = Estimate(value=report.probabilities[m], sigma=None)


def _search_details(best: FitResult, details: Details, flags: list[str]) -> None:
    """The global search's record of the best model: near-equivalent minima and a widened search."""
    details["n_local_fits"] = best.n_local_fits
    details["search_widened"] = best.search_widened
    if best.search_widened:
        # The first round of starts missed the optimum that the check found: worth knowing, not a fault.
        flags.append("search-widened")
    if best.second_minimum:
        flags.append("second-minimum")
        own = np.sqrt(np.clip(np.diag(best.covariance), 0, None))
        spread = best.minima_spread if best.minima_spread is not None else np.zeros(best.k)
        # Per parameter: which estimates the near-equivalent minima disagree on (a target on one of
        # them is not met; one on a parameter they agree on may be).
        flags.extend(f"second-minimum:{n}" for n, d, sd in zip(best.names, spread, own) if d > 2 * sd)
        details["second_minimum_chi2"] = best.alternative_chi2[0]
        details["second_minimum_delta_chi2"] = best.alternative_chi2[0] - best.chi2


def _block_details(blocks: Sequence[MergedBlock], best: FitResult, candidate: CandidateModel, details: Details) -> None:
    """Per block: its resolution kind, χ²_red, and the scale factor the block alone would want.

    The blocks share one ``scale`` (SANS and USANS on one absolute scale, as SasView fits them by
    default); ``block_scale:<configuration>`` = Σ w·f·(y−b) / Σ w·f², f the best model without
    background, is how far a block's own calibration is from the shared one (1 = consistent).
    """
    if len(blocks) < 2:
        return
    from analysis.sas.fit import block_evaluator

    ev = block_evaluator(candidate, blocks)
    try:
        model = ev(best.values)
    finally:
        ev.release()
    params = best.params
    bg = params.get("background", float(candidate.fixed.get("background", 0.0)))  # type: ignore[arg-type]
    start = 0
    for b in blocks:
        f, y, w = model[start : start + b.q.size] - bg, b.intensity - bg, 1 / np.square(b.sigma)
        start += b.q.size
        details[f"resolution:{b.configuration}"] = "slit" if b.is_slit else "pinhole"
        details[f"chi2_reduced_block:{b.configuration}"] = float(np.mean(np.square((f - y) / b.sigma)))
        swff = float(np.sum(w * f * f))
        details[f"block_scale:{b.configuration}"] = float(np.sum(w * f * y) / swff) if swff > 0 else None


def _unexplained(
    blocks: Sequence[MergedBlock], details: Details, chi2_reduced_limit: float, p_value: float, chi2_reduced: float,
) -> list[str]:
    """``unexplained:<configuration>`` for every configuration the best candidate — hence no candidate —
    fits: its χ²_red there above ``chi2_reduced_limit`` and that improbable (p < ``p_value``). A
    misfit confined to one configuration (aggregates or large-scale structure at low Q) is evidence
    the candidate set is wrong, which more precision elsewhere does not cure."""
    out = []
    for b in blocks:
        red = details.get(f"chi2_reduced_block:{b.configuration}", chi2_reduced if len(blocks) == 1 else None)
        if isinstance(red, float) and math.isfinite(red) and red > chi2_reduced_limit \
                and stats.chi2.sf(red * b.q.size, b.q.size) < p_value:
            out.append(f"unexplained:{b.configuration}")
    return out


def _signal_check(blocks: Sequence[MergedBlock], details: Details, flags: list[str]) -> None:
    """Flag ``no-signal`` when a constant (the weighted mean) is an acceptable description of the data."""
    y = np.concatenate([b.intensity for b in blocks])
    s = np.concatenate([b.sigma for b in blocks])
    n = y.size
    wgt = 1 / s**2
    chi2_flat = float(np.sum(wgt * (y - np.sum(wgt * y) / np.sum(wgt)) ** 2))
    if n > 1 and stats.chi2.sf(chi2_flat, n - 1) > 1e-3:
        flags.append("no-signal")
    details["chi2_reduced_flat"] = chi2_flat / (n - 1) if n > 1 else None
