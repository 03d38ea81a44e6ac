"""Fitting powder patterns as non-negative mixtures of phase profiles, with small refinements.

The model of the counts at step *i* (2θ_i, dwell t_i), for a set of phases P::

    μ_i = t_i · ( Σ_{p∈P} S_p · g_p(2θ_i; ε_p, u_p, e_p, r_p, z) + Σ_k c_k T_k(2θ_i) )

with g_p the phase's rate per unit scale (``physics.xrd.phase_rate``), S_p ≥ 0 its scale
(∝ volume fraction), ε_p its lattice strain (peak positions), u_p = 1/L its inverse crystallite
size (nm⁻¹, Lorentzian width), e_p its microstrain (Gaussian width ∝ tan θ), r_p its March–Dollase
texture parameter along a pole chosen per phase (``choose_pole``; texture is the rule, not the
exception, in a packed powder, and a model without it explains a textured phase's intensities
with spurious extra phases), z a common zero shift and s the sample displacement (peaks shift
by −2 s cos θ / R), and a Chebyshev background. Scales and
background enter linearly and are solved exactly for given (ε, u, z) in the screening stages; the
refinement moves everything together (trust-region least squares with bounds) on Pearson residuals
(N − μ)/sqrt(v), and the Laplace evidence (``analysis.laplace``) is computed from the Poisson
likelihood at the optimum with the information JᵀJ at v = μ.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import optimize, special

from analysis.laplace import log_occam
from analysis.xrd.pattern import Pattern
from physics.phases import Phase
from physics.xrd import chebyshev_basis, march_dollase, phase_rate

FD_STEP = {"strain": 2e-5, "inverse_size": 2e-4, "microstrain": 2e-5, "log_r": 1e-3, "zero": 2e-3, "displacement": 2e-3}
"""Finite-difference steps of the nonlinear parameters (strain, microstrain: relative; u: 1/nm;
log r: March parameter, natural log; zero: degrees; displacement: mm)."""
GLOBAL = ("zero", "displacement")
"""Nonlinear parameters common to all phases (zero shift, degrees; sample displacement, mm)."""
PER_PHASE = ("strain", "inverse_size", "microstrain", "log_r")
"""Nonlinear parameters refined per phase, in this order."""


@dataclass(frozen=True)
class Optics:
    """What the fit needs to know about the diffractometer."""

    lines: tuple[tuple[float, float], ...]
    caglioti: tuple[float, float, float]
    radius_mm: float
    two_theta_range: tuple[float, float]
    """Domain of the Chebyshev background, degrees."""
    background_terms: int


class PhaseProfiles:
    """g_p on the measured steps, cached by (phase, ε, u, z)."""

    def __init__(self, phases: dict[str, Phase], optics: Optics, pattern: Pattern, d_min: float) -> None:
        self.phases, self.optics, self.pattern, self.d_min = phases, optics, pattern, d_min
        self._cache: dict[tuple[str, float, float, float], np.ndarray] = {}
        self.background = chebyshev_basis(pattern.two_theta, optics.background_terms, *optics.two_theta_range)

    def rate(self, name: str, strain: float, inverse_size: float, zero: float, microstrain: float = 0.0,
             pole: tuple[int, int, int] | None = None, log_r: float = 0.0, displacement: float = 0.0) -> np.ndarray:
        key = (name, round(strain, 9), round(inverse_size, 9), round(zero, 9), round(microstrain, 9), pole, round(log_r, 9),
               round(displacement, 9))
        if key not in self._cache:
            if len(self._cache) > 4000:
                self._cache.clear()
            self._cache[key] = rate_on(self.phases[name], self.optics, self.pattern.two_theta, self.d_min,
                                       strain, inverse_size, zero, microstrain, pole, log_r, displacement)
        return self._cache[key]


def rate_on(
    phase: Phase, optics: Optics, two_theta: np.ndarray, d_min: float, strain: float, inverse_size: float, zero: float,
    microstrain: float = 0.0, pole: tuple[int, int, int] | None = None, log_r: float = 0.0, displacement: float = 0.0,
) -> np.ndarray:
    """g_p at ``two_theta`` (degrees) for these refinements (u ≤ 0: no size broadening; no pole or
    log r = 0: a random powder)."""
    reflections = phase.reflections(d_min)
    orientation = None
    if pole is not None and log_r != 0.0:
        normals, index = phase.plane_normals(d_min)
        orientation = march_dollase(normals, index, len(reflections.d), phase.pole(pole), math.exp(log_r))
    return phase_rate(
        two_theta, reflections, phase.volume, optics.lines, optics.caglioti,
        size_nm=None if inverse_size <= 1e-9 else 1.0 / inverse_size, microstrain=max(microstrain, 0.0),
        lattice_strain=strain, zero_shift_deg=zero, displacement_mm=displacement, radius_mm=optics.radius_mm,
        orientation=orientation,
    )


def nonnegative_lstsq(a: np.ndarray, b: np.ndarray, n_nonneg: int) -> tuple[np.ndarray, float]:
    """min ‖a x − b‖² with x[:n_nonneg] ≥ 0 (the phase scales); returns (x, residual sum of squares).

    Normal equations on unit-norm columns (a has a handful of columns and thousands of rows, and
    this runs thousands of times per interpretation); bounded least squares only when a scale
    comes out negative.
    """
    norms = np.linalg.norm(a, axis=0)
    norms[norms == 0] = 1.0
    scaled = a / norms
    gram = scaled.T @ scaled
    gram[np.diag_indices_from(gram)] += 1e-12
    try:
        x = np.linalg.solve(gram, scaled.T @ b)
    except np.linalg.LinAlgError:
        x = np.linalg.lstsq(scaled, b, rcond=None)[0]
    if np.any(x[:n_nonneg] < 0):
        lower = np.full(a.shape[1], -np.inf)
        lower[:n_nonneg] = 0.0
        x = optimize.lsq_linear(scaled, b, bounds=(lower, np.full(a.shape[1], np.inf)), method="bvls").x
    x = x / norms
    r = a @ x - b
    return x, float(r @ r)


def projected_levenberg_marquardt(
    residual: Callable[[np.ndarray], np.ndarray], jacobian: Callable[[np.ndarray], np.ndarray],
    x0: np.ndarray, lo: np.ndarray, hi: np.ndarray, max_iterations: int = 30, tolerance: float = 1e-6,
) -> tuple[np.ndarray, bool, str]:
    """Minimise ½‖residual(x)‖² inside the box [lo, hi]: Levenberg–Marquardt steps on the k×k
    normal equations, clipped to the box. (x, converged, message).

    The problems here have a few thousand residuals and ≤ 25 parameters; working on JᵀJ instead of
    an SVD of J is what makes refining a dozen phase sets per interpretation affordable.
    """
    x = np.clip(x0, lo, hi)
    r = residual(x)
    cost = float(r @ r)
    damping = 1e-3
    for iteration in range(max_iterations):
        j = jacobian(x)
        g = j.T @ r
        h = j.T @ j
        scale = np.sqrt(np.maximum(np.diag(h), 1e-300))
        hs = h / np.outer(scale, scale)
        gs = g / scale
        improved = False
        for _ in range(12):
            try:
                step = -np.linalg.solve(hs + damping * np.eye(len(x)), gs) / scale
            except np.linalg.LinAlgError:
                damping *= 10
                continue
            trial = np.clip(x + step, lo, hi)
            r_trial = residual(trial)
            cost_trial = float(r_trial @ r_trial)
            if np.isfinite(cost_trial) and cost_trial < cost:
                # χ² units: a gain under 0.05 moves a log evidence by 0.025 nats, below its accuracy.
                converged = cost - cost_trial <= max(tolerance * cost, 0.05)
                x, r, cost = trial, r_trial, cost_trial
                damping = max(damping / 3, 1e-9)
                improved = True
                if converged:
                    return x, True, ""
                break
            damping *= 4
        if not improved:
            return x, True, ""  # no descent direction left inside the box: a (bounded) minimum
    return x, False, f"no convergence in {max_iterations} iterations"


def linear_fit(profiles: PhaseProfiles, columns: Sequence[np.ndarray], weight: np.ndarray) -> tuple[np.ndarray, float]:
    """Scales and background for fixed profiles ``columns`` (rates per unit scale); (params, χ²)."""
    p = profiles.pattern
    design = np.column_stack([*(c * p.dwell for c in columns), profiles.background * p.dwell[:, None]])
    return nonnegative_lstsq(design * weight[:, None], p.counts * weight, len(columns))


@dataclass
class SetFit:
    """A refined fit of one phase set. Per-phase arrays follow ``phases``; ``refined`` maps each
    name of ``PER_PHASE`` to its values; ``poles`` the texture pole of each phase."""

    phases: tuple[str, ...]
    poles: tuple[tuple[int, int, int], ...]
    scales: np.ndarray
    scale_sigmas: np.ndarray
    refined: dict[str, np.ndarray]
    zero: float
    displacement: float
    background: np.ndarray
    log_likelihood: float
    deviance: float
    n_parameters: int
    log_occam: float
    covariance: np.ndarray
    """Covariance of the scales (untempered), (n_phases, n_phases)."""
    converged: bool
    message: str = ""
    mu: np.ndarray = field(repr=False, default_factory=lambda: np.zeros(0))

    @property
    def label(self) -> str:
        return "+".join(self.phases)

    def log_evidence(self, temperature: float) -> float:
        """Laplace log evidence of the likelihood tempered by ``temperature`` (L^(1/T))."""
        # Tempering divides the information by T: the Occam term gains (k/2) log T, to first order.
        return self.log_likelihood / temperature + self.log_occam + 0.5 * self.n_parameters * math.log(temperature)


@dataclass(frozen=True)
class Bounds:
    """The prior box: |strain| ≤ strain, 0 ≤ u ≤ inverse_size, 0 ≤ microstrain ≤ microstrain,
    |log r| ≤ log_r, |zero| ≤ zero (degrees), |displacement| ≤ displacement (mm),
    0 ≤ scale ≤ scale_max[phase], |c_k| ≤ background."""

    strain: float
    inverse_size: float
    microstrain: float
    log_r: float
    zero: float
    displacement: float
    scale_max: dict[str, float]
    background: float

    def per_phase(self, name: str) -> tuple[float, float]:
        return {"strain": (-self.strain, self.strain), "inverse_size": (0.0, self.inverse_size),
                "microstrain": (0.0, self.microstrain), "log_r": (-self.log_r, self.log_r)}[name]


def poisson_log_likelihood(counts: np.ndarray, mu: np.ndarray) -> float:
    mu = np.maximum(mu, 1e-9)
    return float(np.sum(counts * np.log(mu) - mu - special.gammaln(counts + 1)))


def poisson_deviance(counts: np.ndarray, mu: np.ndarray) -> float:
    mu = np.maximum(mu, 1e-9)
    term = np.where(counts > 0, counts * np.log(np.maximum(counts, 1e-300) / mu), 0.0)
    return float(2 * np.sum(term - (counts - mu)))


SCALE_FLOOR = 3e-3
"""S₀ / S_max of the scales' prior (see ``scale_log_prior``): with S_max three times the scale of
a phase carrying all the counts, S₀ is about 1 wt % — below it a phase is a trace, not an answer."""


def scale_log_prior(estimate: float, sigma: float, scale_max: float) -> float:
    """log of the prior density of a phase scale averaged over its (Gaussian, truncated) posterior.

    The prior is log-uniform with a floor, π(S) = 1 / ((S + S₀) ln((S_max + S₀)/S₀)) on [0, S_max],
    S₀ = 3·10⁻³ S_max: a phase is as likely a priori at 3 % as at 10 % or 100 % of the sample, as a lab
    that looks for minor phases believes. A uniform prior on [0, S_max] would instead put most of
    its mass on large amounts, so data that merely exclude a large amount would count as strong
    evidence that the phase is absent — over-confident "no minor phase" decisions.
    """
    s0 = SCALE_FLOOR * scale_max
    norm = math.log((scale_max + s0) / s0)
    if not sigma > 0:
        return -math.log((min(max(estimate, 0.0), scale_max) + s0) * norm)
    grid = np.linspace(max(0.0, estimate - 6 * sigma), min(scale_max, estimate + 6 * sigma), 401)
    if grid[-1] <= grid[0]:
        return -math.log((min(max(estimate, 0.0), scale_max) + s0) * norm)
    weight = np.exp(-0.5 * ((grid - estimate) / sigma) ** 2)
    density = 1.0 / ((grid + s0) * norm)
    return float(math.log(max(np.trapezoid(weight * density, grid) / np.trapezoid(weight, grid), 1e-300)))


def choose_pole(
    profiles: PhaseProfiles, name: str, strain: float, inverse_size: float, others: Sequence[np.ndarray], weight: np.ndarray
) -> tuple[tuple[int, int, int], float]:
    """The texture pole of phase ``name`` (and a starting log r) that best fits beside ``others``:
    each distinct low-index pole at r = 0.7 and 1.4, linear fit, least χ²."""
    best: tuple[float, tuple[int, int, int], float] | None = None
    for pole in profiles.phases[name].distinct_poles():
        for log_r in (math.log(0.7), math.log(1.4)):
            chi2 = linear_fit(profiles, [*others, profiles.rate(name, strain, inverse_size, 0.0, 0.0, pole, log_r)], weight)[1]
            if best is None or chi2 < best[0]:
                best = (chi2, pole, log_r)
    assert best is not None
    return best[1], best[2]


class SetProblem:
    """The refinement of one phase set: its parameter vector, box and model of the counts.

    Parameter vector x: scales (n_p), background (k_bg), the ``PER_PHASE`` blocks (n_p each), then
    the ``GLOBAL`` parameters whose bound is > 0. ``weight`` (n,): 1/sqrt(variance) per step, the
    Pearson weights of the residuals.
    """

    def __init__(self, profiles: PhaseProfiles, phases: tuple[str, ...], poles: Sequence[tuple[int, int, int]],
                 bounds: Bounds, weight: np.ndarray) -> None:
        self.profiles, self.phases, self.poles, self.weight = profiles, phases, poles, weight
        self.pattern = profiles.pattern
        self.n_p, self.k_bg = len(phases), profiles.optics.background_terms
        self.globals_used = [k for k in GLOBAL if getattr(bounds, k) > 0]
        n_p, k_bg = self.n_p, self.k_bg
        self.per_lo = np.concatenate([np.full(n_p, bounds.per_phase(k)[0]) for k in PER_PHASE])
        self.per_hi = np.concatenate([np.full(n_p, bounds.per_phase(k)[1]) for k in PER_PHASE])
        g_bound = np.array([getattr(bounds, k) for k in self.globals_used])
        self.lo = np.concatenate([np.zeros(n_p), np.full(k_bg, -bounds.background), self.per_lo, -g_bound])
        self.hi = np.concatenate([[bounds.scale_max[n] for n in phases], np.full(k_bg, bounds.background), self.per_hi, g_bound])
        self.i_per, self.i_glob = n_p + k_bg, n_p + k_bg + len(PER_PHASE) * n_p

    def unpack(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray], dict[str, float]]:
        """(scales (n_p,), background (k_bg,), ``PER_PHASE`` name → (n_p,), ``GLOBAL`` name → value)."""
        n_p, i_per, i_glob = self.n_p, self.i_per, self.i_glob
        refined = {k: x[i_per + j * n_p:i_per + (j + 1) * n_p] for j, k in enumerate(PER_PHASE)}
        common = {k: 0.0 for k in GLOBAL} | {k: float(x[i_glob + j]) for j, k in enumerate(self.globals_used)}
        return x[:n_p], x[n_p:i_per], refined, common

    def rate(self, i: int, refined: Mapping[str, np.ndarray], common: Mapping[str, float], bump: str | None = None,
             h: float = 0.0) -> np.ndarray:
        """g of phase ``i`` on the steps, (n,); ``bump`` (a parameter name) moved by ``h``."""
        v = {k: float(refined[k][i]) + (h if k == bump else 0.0) for k in PER_PHASE}
        c = {k: common[k] + (h if k == bump else 0.0) for k in GLOBAL}
        return self.profiles.rate(self.phases[i], v["strain"], v["inverse_size"], c["zero"], v["microstrain"], self.poles[i],
                                  v["log_r"], c["displacement"])

    def mu(self, x: np.ndarray) -> np.ndarray:
        """Expected counts per step at ``x``, (n,)."""
        pat = self.pattern
        scales, bg, refined, common = self.unpack(x)
        return pat.dwell * (sum((scales[i] * self.rate(i, refined, common) for i in range(self.n_p)), np.zeros(pat.n))
                            + self.profiles.background @ bg)

    def jacobian_of_mu(self, x: np.ndarray) -> np.ndarray:
        """∂μ/∂x, (n, len(x)): exact for scales and background, one-sided differences (``FD_STEP``,
        stepping back at the upper bound) for the nonlinear parameters."""
        pat, n_p, hi = self.pattern, self.n_p, self.hi
        scales, _, refined, common = self.unpack(x)
        g = [self.rate(i, refined, common) for i in range(n_p)]
        cols = [pat.dwell * gi for gi in g] + [pat.dwell * self.profiles.background[:, j] for j in range(self.k_bg)]
        for j, k in enumerate(PER_PHASE):
            for i in range(n_p):
                h = FD_STEP[k] * (-1 if refined[k][i] + FD_STEP[k] > hi[self.i_per + j * n_p + i] else 1)
                cols.append(pat.dwell * scales[i] * (self.rate(i, refined, common, k, h) - g[i]) / h)
        for j, k in enumerate(self.globals_used):
            h = FD_STEP[k] * (-1 if common[k] + FD_STEP[k] > hi[self.i_glob + j] else 1)
            cols.append(pat.dwell * sum((scales[i] * (self.rate(i, refined, common, k, h) - g[i]) / h for i in range(n_p)),
                                        np.zeros(pat.n)))
        return np.column_stack(cols)

    def residual(self, x: np.ndarray) -> np.ndarray:
        """Pearson residuals (μ − N)·weight, (n,)."""
        return (self.mu(x) - self.pattern.counts) * self.weight

    def weighted_jacobian(self, x: np.ndarray) -> np.ndarray:
        """∂ residual / ∂x, (n, len(x))."""
        return self.jacobian_of_mu(x) * self.weight[:, None]

    def start(self, start: Mapping[str, Sequence[float]], common: Mapping[str, float] | None = None) -> np.ndarray:
        """The starting vector: ``start`` per phase pulled just inside the box, the scales and
        background solved linearly there, the global parameters at ``common`` (default 0)."""
        n_p, lo, hi, per_lo, per_hi = self.n_p, self.lo, self.hi, self.per_lo, self.per_hi
        per0 = np.clip(np.concatenate([np.asarray(start[k], dtype=float) for k in PER_PHASE]),
                       per_lo + 1e-3 * (per_hi - per_lo), per_hi - 1e-3 * (per_hi - per_lo))
        refined0 = {k: per0[j * n_p:(j + 1) * n_p] for j, k in enumerate(PER_PHASE)}
        common0 = {k: 0.0 for k in GLOBAL} | {k: float(v) for k, v in (common or {}).items() if k in self.globals_used}
        linear, _ = linear_fit(self.profiles, [self.rate(i, refined0, common0) for i in range(n_p)], self.weight)
        x0 = np.concatenate([linear, per0, [common0[k] for k in self.globals_used]])
        return np.clip(x0, lo + 1e-9 * (hi - lo), hi - 1e-9 * (hi - lo))


def refine_set(
    profiles: PhaseProfiles,
    phases: tuple[str, ...],
    poles: Sequence[tuple[int, int, int]],
    start: Mapping[str, Sequence[float]],
    bounds: Bounds,
    variance: np.ndarray,
    common: Mapping[str, float] | None = None,
) -> SetFit:
    """Refine scales, background, the ``PER_PHASE`` and ``GLOBAL`` parameters of ``phases``
    together (starting values ``start[name]`` per phase, ``common[name]`` of the ``GLOBAL`` ones,
    default 0), then the Laplace Occam term of the result. ``variance`` (n,): the counts' variance per step, the weights of the residuals. Never
    raises on data: a failure is in ``message`` and ``converged`` is False."""
    problem = SetProblem(profiles, phases, poles, bounds, 1.0 / np.sqrt(np.maximum(variance, 0.5)))
    x0 = problem.start(start, common)
    try:
        x, converged, message = projected_levenberg_marquardt(problem.residual, problem.weighted_jacobian, x0,
                                                              problem.lo, problem.hi)
    except (ValueError, FloatingPointError, np.linalg.LinAlgError) as exc:
        x, converged, message = x0, False, f"refinement failed: {exc}"
    return _set_fit(problem, x, converged, message)


def _set_fit(problem: SetProblem, x: np.ndarray, converged: bool, message: str) -> SetFit:
    """The ``SetFit`` at ``x``: Poisson likelihood, deviance, Occam term and the scales' covariance."""
    pat, n_p, lo, hi = problem.pattern, problem.n_p, problem.lo, problem.hi
    mu = np.maximum(problem.mu(x), 1e-9)
    jac = problem.jacobian_of_mu(x) / np.sqrt(mu)[:, None]
    occam, cov, _ = log_occam(x, jac.T @ jac, lo, hi, np.ones(x.size, dtype=bool), -float(np.sum(np.log(hi - lo))))
    # The scales' prior is not uniform but log-uniform with a floor (``scale_log_prior``): replace
    # the uniform density of the Laplace term by the prior density averaged over each scale's posterior.
    for i in range(n_p):
        occam += scale_log_prior(float(x[i]), math.sqrt(max(float(cov[i, i]), 0.0)), float(hi[i])) + math.log(float(hi[i]))
    scales, bg, refined, common = problem.unpack(x)
    return SetFit(
        phases=problem.phases, poles=tuple(problem.poles), scales=scales.copy(),
        scale_sigmas=np.sqrt(np.clip(np.diag(cov)[:n_p], 0, None)),
        refined={k: v.copy() for k, v in refined.items()}, zero=common["zero"], displacement=common["displacement"],
        background=bg.copy(),
        log_likelihood=poisson_log_likelihood(pat.counts, mu), deviance=poisson_deviance(pat.counts, mu),
        n_parameters=int(x.size), log_occam=occam, covariance=cov[:n_p, :n_p], converged=converged,
        message=message, mu=mu,
    )
