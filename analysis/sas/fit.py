"""Fitting one candidate model to all merged blocks of a sample, with uncertainty and evidence.

- **Fit**: weighted least squares (:func:`scipy.optimize.least_squares`, trust-region reflective,
  bounds from the settings) of all blocks jointly, each with its own resolution (pinhole or slit),
  one shared ``scale`` and ``background``. Starts: :func:`analysis.sas.search.global_search` — a
  quasi-random (Halton) scan of the non-linear parameters whose size grows with their number and
  log-range, ``scale`` and ``background`` solved linearly at each scan point, local fits from the best
  distinct scan points, then an independent check scan (widened once more if it finds a lower χ²);
  the lowest cost wins. Optional Gaussian priors enter as extra residuals (the optimum is the MAP).
- **Uncertainty**: covariance ``C = (JᵀWJ + P)⁻¹`` at the optimum, J the Jacobian of the model
  (central differences, one-sided at a bound), ``W = diag(1/σ²)``, ``P`` the Gaussian priors'
  precision (zero for uniform priors). Other local optima within Δχ² < 4 that lie more than 2 σ
  away in some parameter are near-equivalent answers: ``second_minimum`` is set and the reported σ
  (:attr:`FitResult.sigmas`) become ``√(C_ii + Δ_i²)``, Δ_i the largest distance of such an optimum
  from the best in parameter i, so a 95 % interval covers every near-equivalent minimum.
- **Evidence** (``evidence="laplace"``): ``log Z = log L(θ*) + log π(θ*) + (k/2) log 2π − ½ log det H̃
  + Σᵢ log Mᵢ`` (:func:`analysis.laplace.log_occam`, see :func:`_log_occam_laplace`), with
  ``log L = −χ²/2 − Σ log σ − (n/2) log 2π``; ``evidence="bic"``: ``log Z ≈ log L(θ*) − (k/2) log n``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from scipy import special, stats

from analysis.laplace import invert_information, log_occam
from analysis.sas.evaluator import CandidateEvaluator, interior, jacobian
from analysis.sas.merge import MergedBlock
from analysis.sas.search import SearchOutcome, global_search, near_optima
from analysis.sas.settings import CandidateModel, FitParameter, SASFitSettings
from physics.sas import parameter_table


@dataclass(frozen=True)
class FitResult:
    """The fit of one candidate model to all merged data of a sample.

    ``names``: fitted parameters (k,); ``values`` (k,) at the optimum (MAP with Gaussian priors);
    ``covariance`` (k, k) = (JᵀWJ + P)⁻¹, unscaled; ``information`` (k, k) = JᵀWJ of the data alone
    (a planner adds a prospective configuration's JᵀWJ, from
    :func:`analysis.sas.predict.predict_with_jacobian`, to it);
    ``chi2`` of the data residuals over ``n_points``; ``log_evidence`` by the settings' method.
    """

    model: str
    sasmodel: str
    names: tuple[str, ...]
    values: np.ndarray
    covariance: np.ndarray
    information: np.ndarray
    chi2: float
    n_points: int
    log_likelihood: float
    log_evidence: float
    converged: bool
    at_bounds: tuple[str, ...] = ()
    ill_conditioned: bool = False
    message: str = ""
    n_evaluations: int = 0
    minima_spread: np.ndarray | None = None  # (k,) Δ_i over near-equivalent distinct optima, or None
    alternative_chi2: tuple[float, ...] = ()  # χ² of those optima
    search_widened: bool = False  # the check scan found a lower χ² than the first round
    n_local_fits: int = 0

    @property
    def second_minimum(self) -> bool:
        """Another optimum within Δχ² < 4, distinct from the best by more than 2 σ in some parameter."""
        return len(self.alternative_chi2) > 0

    @property
    def k(self) -> int:
        return len(self.names)

    @property
    def chi2_reduced(self) -> float:
        dof = self.n_points - self.k
        return self.chi2 / dof if dof > 0 else math.nan

    @property
    def params(self) -> dict[str, float]:
        return {n: float(v) for n, v in zip(self.names, self.values)}

    @property
    def sigmas(self) -> dict[str, float]:
        """1-σ per parameter: √C_ii, widened to √(C_ii + Δ_i²) over near-equivalent minima."""
        var = np.diag(self.covariance).copy()
        if self.minima_spread is not None:
            var = var + np.square(self.minima_spread)
        return {n: float(math.sqrt(max(v, 0.0))) for n, v in zip(self.names, var)}


def failed_fit(candidate: CandidateModel, n_points: int, message: str) -> FitResult:
    """The result of a candidate that could not be fitted: its initial values, NaN χ², −inf evidence."""
    k = len(candidate.parameters)
    return FitResult(
        model=candidate.name, sasmodel=candidate.model, names=tuple(candidate.parameters),
        values=np.array([p.value for p in candidate.parameters.values()], dtype=float),
        covariance=np.full((k, k), np.nan), information=np.full((k, k), np.nan), chi2=math.nan,
        n_points=n_points, log_likelihood=-math.inf, log_evidence=-math.inf, converged=False, message=message,
    )


def fit_candidate(
    candidate: CandidateModel, blocks: Sequence[MergedBlock], settings: SASFitSettings
) -> FitResult:
    """Fit one candidate to the merged blocks (joint, σ-weighted). Never raises on data."""
    y = np.concatenate([b.intensity for b in blocks])
    s = np.concatenate([b.sigma for b in blocks])
    n = y.size
    try:
        ev = block_evaluator(candidate, blocks)
    except Exception as exc:  # a kernel that cannot be built on this data is a failed fit
        return failed_fit(candidate, n, f"model setup failed: {exc}")
    q_max = max(float(np.max(b.q)) for b in blocks)
    try:
        return _fit(candidate, ev, y, s, settings, q_max)
    except Exception as exc:  # never raise on data: the failure is flagged with its message
        return failed_fit(candidate, n, f"fit failed: {type(exc).__name__}: {exc}")
    finally:
        ev.release()


def block_evaluator(candidate: CandidateModel, blocks: Sequence[MergedBlock]) -> CandidateEvaluator:
    """The candidate's evaluator on the merged blocks, each block with its own resolution."""
    slits = [(b.slit_length, b.slit_width) if b.slit_length is not None else None for b in blocks]
    return CandidateEvaluator(candidate, [b.q for b in blocks], [b.dq for b in blocks], slits)  # type: ignore[misc]


# --------------------------------------------------------------------------------------------------
# The optimisation: variable projection, start scan, local fits
# --------------------------------------------------------------------------------------------------


class _ProjectedProblem:
    """The weighted least-squares problem of one candidate, with scale and background projected out.

    Variable projection: I = scale·f(θ_nl) + background is linear in scale and background, so they
    are solved exactly (bounded linear least squares) for every trial θ_nl, and the optimiser only
    walks the non-linear parameters. Fewer evaluations per Jacobian, and no start can be lost
    because its scale was wrong by a factor of 100. A linear parameter with a Gaussian prior is
    simply treated as non-linear. Arrays: ``y``, ``s`` (n,) data and σ; bounds and ``x_init`` (k,).
    """

    def __init__(self, candidate: CandidateModel, ev: CandidateEvaluator, y: np.ndarray, s: np.ndarray) -> None:
        self.ev, self.y, self.s = ev, y, s
        names = self.names = ev.names
        specs = self.specs = [candidate.parameters[p] for p in names]
        k = len(names)
        self.lo = np.array([p.bounds[0] for p in specs], dtype=float)
        self.hi = np.array([p.bounds[1] for p in specs], dtype=float)
        self.x_init = np.array([p.value for p in specs], dtype=float)
        self.w = 1.0 / np.square(s)
        self.prior_idx = [i for i, p in enumerate(specs) if p.prior is not None]
        prior_mu = np.array([specs[i].prior.mean for i in self.prior_idx])  # type: ignore[union-attr]
        self.prior_sd = np.array([specs[i].prior.sigma for i in self.prior_idx])  # type: ignore[union-attr]
        self.i_scale = names.index("scale") if "scale" in names and specs[names.index("scale")].prior is None else None
        self.i_bg = (
            names.index("background") if "background" in names and specs[names.index("background")].prior is None else None
        )
        self.nl = [i for i in range(k) if i not in (self.i_scale, self.i_bg)]
        self.nl_prior = [
            (j, prior_mu[self.prior_idx.index(i)], self.prior_sd[self.prior_idx.index(i)])
            for j, i in enumerate(self.nl)
            if i in self.prior_idx
        ]
        self.i_bg_nl = names.index("background") if "background" in names and self.i_bg is None else None
        self.lo_nl, self.hi_nl = self.lo[self.nl], self.hi[self.nl]

    def project(self, theta_nl: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """θ_nl → (full parameter vector (k,), model intensity (n,))."""
        names, nl, i_scale, i_bg = self.names, self.nl, self.i_scale, self.i_bg
        values = {names[i]: float(t) for i, t in zip(nl, theta_nl) if i != self.i_bg_nl}
        if i_scale is not None:
            values["scale"] = 1.0
        f = self.ev.raw(values)
        x = self.x_init.copy()
        x[nl] = theta_nl
        bg0 = x[self.i_bg_nl] if self.i_bg_nl is not None else self.ev.background
        scale, bg = _solve_linear(
            f, self.y, self.w, i_scale is not None, i_bg is not None, 1.0, float(bg0),
            (self.lo[i_scale], self.hi[i_scale]) if i_scale is not None else (1.0, 1.0),
            (self.lo[i_bg], self.hi[i_bg]) if i_bg is not None else (bg0, bg0),
        )
        if i_scale is not None:
            x[i_scale] = scale
        if i_bg is not None:
            x[i_bg] = bg
        return x, scale * f + bg

    def residuals(self, theta_nl: np.ndarray) -> np.ndarray:
        """σ-weighted residuals (n,), then one per Gaussian prior on a non-linear parameter."""
        _, model = self.project(theta_nl)
        r = (model - self.y) / self.s
        if self.nl_prior:
            r = np.concatenate([r, [(theta_nl[j] - mu) / sd for j, mu, sd in self.nl_prior]])
        # A non-finite model value (extreme trial point) becomes a large residual, not a crash.
        return np.nan_to_num(r, nan=1e10, posinf=1e10, neginf=-1e10)


def _fit(
    candidate: CandidateModel, ev: CandidateEvaluator, y: np.ndarray, s: np.ndarray, settings: SASFitSettings,
    q_max: float = 0.0,
) -> FitResult:
    problem = _ProjectedProblem(candidate, ev, y, s)
    fringes = _fringes(candidate, problem, q_max)
    near: list[np.ndarray] = []
    outcome = SearchOutcome(best=None)
    if not problem.nl:
        x, _ = problem.project(np.empty(0))
        converged, message = True, "linear parameters only: solved exactly"
    else:
        outcome = global_search(problem, settings.n_scan, settings.n_starts, settings.max_nfev, settings.seed, fringes)
        best = outcome.best
        if best is None or not np.isfinite(best.cost):
            return failed_fit(candidate, y.size, "no local fit succeeded")
        x, _ = problem.project(np.clip(best.x, problem.lo_nl, problem.hi_nl))
        converged, message = bool(best.status > 0), str(best.message)
        near = [problem.project(theta)[0] for theta in near_optima(outcome)]
    x = np.clip(x, problem.lo, problem.hi)
    result = _fit_result(candidate, problem, x, converged, message, settings)
    return _with_near_minima(result, problem, near, outcome)


def _fringes(candidate: CandidateModel, problem: _ProjectedProblem, q_max: float) -> float:
    """Σ (hi − lo)·q_max/π over the non-linear parameters measured in Å: the form-factor fringes the
    search must not skip (a fringe of a size L is Δq ≈ π/L, so of L at fixed q it is ΔL ≈ π/q).
    Only the candidate's ``fringe_parameters`` when it names them."""
    units = {name: entry[2] for name, entry in parameter_table(candidate.model).fittable.items()}
    total = 0.0
    for j, i in enumerate(problem.nl):
        name = problem.names[i]
        if candidate.fringe_parameters is not None and name not in candidate.fringe_parameters:
            continue
        spec = candidate.parameters[name]
        if (spec.units or units.get(name, "")) in ("Ang", "Å", "A"):
            total += (problem.hi_nl[j] - problem.lo_nl[j]) * q_max / math.pi
    return total


def _with_near_minima(
    result: FitResult, problem: _ProjectedProblem, near: list[np.ndarray], outcome: SearchOutcome
) -> FitResult:
    """The result with the search's record: distinct near-equivalent optima widen its σ."""
    sd = np.sqrt(np.clip(np.diag(result.covariance), 0, None))
    spread = np.zeros(result.k)
    chi2s: list[float] = []
    for x_alt in near:
        delta = np.abs(np.clip(x_alt, problem.lo, problem.hi) - result.values)
        if np.any(delta > 2 * sd):  # not the same minimum seen again within its own uncertainty
            spread = np.maximum(spread, delta)
            chi2s.append(float(np.sum(np.square((problem.ev(x_alt) - problem.y) / problem.s))))
    return replace(
        result, minima_spread=spread if chi2s else None, alternative_chi2=tuple(sorted(chi2s)),
        search_widened=outcome.widened, n_local_fits=outcome.n_local_fits,
    )


def _fit_result(
    candidate: CandidateModel, problem: _ProjectedProblem, x: np.ndarray, converged: bool, message: str,
    settings: SASFitSettings,
) -> FitResult:
    """Uncertainty and evidence at the optimum ``x`` (k,)."""
    ev, y, s, lo, hi = problem.ev, problem.y, problem.s, problem.lo, problem.hi
    names, k, n = problem.names, len(problem.names), y.size
    model0 = ev(x)
    jac = jacobian(ev, x, lo, hi, f0=model0) / s[:, None]  # weighted: rows scaled by 1/σ
    info = jac.T @ jac
    h = info.copy()
    for j, i in enumerate(problem.prior_idx):
        h[i, i] += 1.0 / problem.prior_sd[j] ** 2
    cov, _, ill = invert_information(h, hi - lo)
    chi2 = float(np.sum(np.square((model0 - y) / s)))
    log_like = -0.5 * chi2 - float(np.sum(np.log(s))) - 0.5 * n * math.log(2 * math.pi)
    if settings.evidence == "bic":
        log_z = log_like - 0.5 * k * math.log(n)
    else:
        log_z = log_like + _log_occam_laplace(problem.specs, x, h)
    tol = 1e-6 * (hi - lo)
    at_bounds = tuple(names[i] for i in range(k) if x[i] - lo[i] <= tol[i] or hi[i] - x[i] <= tol[i])
    return FitResult(
        model=candidate.name, sasmodel=candidate.model, names=tuple(names), values=x, covariance=cov,
        information=info, chi2=chi2, n_points=n, log_likelihood=log_like,
        log_evidence=float(log_z) if np.isfinite(log_z) else -math.inf, converged=converged,
        at_bounds=at_bounds, ill_conditioned=ill, message=message, n_evaluations=ev.n_evaluations,
    )


# --------------------------------------------------------------------------------------------------
# Helpers: start points, the linear sub-problem, the evidence
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _WeightedSums:
    """Σw, Σwf, Σwf², Σwy, Σwfy of a model f and data y with weights w."""

    sw: float
    swf: float
    swff: float
    swy: float
    swfy: float


def _best_scale(sums: _WeightedSums, b: float, scale_b: tuple[float, float]) -> float:
    v = (sums.swfy - b * sums.swf) / sums.swff if sums.swff > 0 else scale_b[0]
    return float(np.clip(v, *scale_b)) if np.isfinite(v) else scale_b[0]


def _best_bg(sums: _WeightedSums, a: float, bg_b: tuple[float, float]) -> float:
    return float(np.clip((sums.swy - a * sums.swf) / sums.sw, *bg_b))


def _linear_cost(f: np.ndarray, y: np.ndarray, w: np.ndarray, a: float, b: float) -> float:
    return float(np.sum(w * np.square(a * f + b - y)))


def _solve_linear(
    f: np.ndarray, y: np.ndarray, w: np.ndarray, fit_scale: bool, fit_bg: bool,
    scale: float, bg: float, scale_b: tuple[float, float], bg_b: tuple[float, float],
) -> tuple[float, float]:
    """Exact bounded weighted least squares of y ≈ scale·f + bg over the free ones of (scale, bg).

    A convex 2-variable box problem: the optimum is the unconstrained one, or lies on an edge
    (1-D optimum clipped), so comparing those few candidates is exact.
    """
    sums = _WeightedSums(
        float(np.sum(w)), float(np.sum(w * f)), float(np.sum(w * f * f)), float(np.sum(w * y)), float(np.sum(w * f * y))
    )
    with np.errstate(all="ignore"):  # a zero or overflowing f is handled by the checks
        if fit_scale and fit_bg:
            return _solve_scale_and_bg(f, y, w, sums, scale_b, bg_b)
        if fit_scale:
            return _best_scale(sums, bg, scale_b), bg
        if fit_bg:
            return scale, _best_bg(sums, scale, bg_b)
    return scale, bg


def _solve_scale_and_bg(
    f: np.ndarray, y: np.ndarray, w: np.ndarray, sums: _WeightedSums,
    scale_b: tuple[float, float], bg_b: tuple[float, float],
) -> tuple[float, float]:
    det = sums.swff * sums.sw - sums.swf * sums.swf
    if det > 0:
        a = (sums.swfy * sums.sw - sums.swf * sums.swy) / det
        b = (sums.swff * sums.swy - sums.swf * sums.swfy) / det
        if scale_b[0] <= a <= scale_b[1] and bg_b[0] <= b <= bg_b[1]:
            return float(a), float(b)
    options = [(a, _best_bg(sums, a, bg_b)) for a in scale_b] + [(_best_scale(sums, b, scale_b), b) for b in bg_b]
    costs = [_linear_cost(f, y, w, a, b) for a, b in options]
    costs = [c if np.isfinite(c) else math.inf for c in costs]
    return options[int(np.argmin(costs))]


def _log_occam_laplace(specs: Sequence[FitParameter], x: np.ndarray, h: np.ndarray) -> float:
    """log Z − log L(θ*): the Laplace approximation with a prior-box truncation correction.

    ``h`` = JᵀWJ + Gaussian-prior precision at the optimum x, shape (k, k). Returns::

        log π(θ*) + (k/2) log 2π − ½ log det H̃ + Σᵢ log Mᵢ

    H̃ adds to ``h`` the precision 12/w² of each uniform prior of width w (its variance is w²/12),
    and Mᵢ is the mass of N(θᵢ*, C̃ᵢᵢ), C̃ = H̃⁻¹, inside [loᵢ, hiᵢ]. Where the data constrain a
    parameter both additions are negligible and this is the textbook Laplace evidence (a parameter
    on a bound pays half its Occam factor). Where they do not — a flat direction, e.g. the radius
    when the fitted scale is ~0 — plain Laplace gives det H → 0 and an evidence far above L_max;
    here the direction is bounded by the prior, and costs ~0.4–1 nat instead of the exact 0.
    Checked against a quasi-Monte-Carlo evidence (scale and background integrated exactly) on
    low-count data: log-odds within ~1–2 nats, the accuracy of Laplace at such signal-to-noise.
    """
    lo = np.array([p.bounds[0] for p in specs], dtype=float)
    hi = np.array([p.bounds[1] for p in specs], dtype=float)
    uniform = np.array([p.prior is None for p in specs], dtype=bool)
    log_prior = sum(_log_prior_density(p, float(v)) for p, v in zip(specs, x))
    return log_occam(x, h, lo, hi, uniform, log_prior)[0]


def _log_prior_density(spec: FitParameter, x: float) -> float:
    lo, hi = spec.bounds
    if spec.prior is None:
        return -math.log(hi - lo)
    mu, sd = spec.prior.mean, spec.prior.sigma
    trunc = special.ndtr((hi - mu) / sd) - special.ndtr((lo - mu) / sd)
    return float(stats.norm.logpdf(x, mu, sd) - math.log(max(trunc, 1e-300)))
