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
background enter linearly and are solved exactly for given (ε, u, z) — in the screening stages and at
every step of the refinement, which iterates the nonlinear parameters only (variable projection,
``LinearlyProjected``; Levenberg–Marquardt within their box) on Pearson residuals
(N − μ)/sqrt(v), and the Laplace evidence is computed from the Poisson likelihood at the optimum with
the information JᵀJ at v = μ, integrated over the prior box (``box_laplace``): a parameter the data
push against an edge of its box pays for the push (``kkt_gradient``), so a phase that can only
patch the data with its strain, size or B pinned at their bounds loses evidence.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import optimize, special

from analysis.laplace import log_occam
from analysis.xrd.pattern import Pattern
from physics.phases import Phase
from physics.xrd import chebyshev_basis, diffuse_basis, march_dollase, phase_rate

FD_STEP = {"strain": 2e-5, "axial_strain": 2e-5, "axial_inverse_size": 2e-4, "inverse_size": 2e-4, "microstrain": 2e-5, "log_r": 1e-3, "b_iso": 0.02, "zero": 2e-3,
           "displacement": 2e-3, "asymmetry": 2e-3, "caglioti_u": 5e-4, "caglioti_v": 5e-4, "caglioti_w": 2e-4}
"""Finite-difference steps of the nonlinear parameters (strain, microstrain: relative; u: 1/nm;
log r: March parameter, natural log; B: Å²; zero: degrees; displacement: mm; asymmetry: A of
``physics.xrd``; Caglioti U, V, W: deg²)."""
GLOBAL = ("zero", "displacement", "asymmetry", "caglioti_u", "caglioti_v", "caglioti_w")
"""Nonlinear parameters common to all phases: zero shift (degrees), sample displacement (mm), and
the instrument profile — axial-divergence asymmetry A and Caglioti U, V, W (deg²)."""
INSTRUMENT = ("asymmetry", "caglioti_u", "caglioti_v", "caglioti_w")
"""The ``GLOBAL`` parameters that describe the instrument's profile."""
PER_PHASE = ("strain", "inverse_size", "microstrain", "log_r", "b_iso", "axial_strain", "axial_inverse_size")
"""Nonlinear parameters refined per phase, in this order (B: isotropic Debye–Waller, Å²; axial
strain: the relative change of c beyond the isotropic strain, for a cell with a unique axis —
``Phase.has_unique_axis`` — held at 0 otherwise; axial inverse size: 1/L of a reflection is
u + u_c f, f its share along c*, so platelets and needles broaden (00l) apart from (hk0); same
phases, held at 0 otherwise)."""
HELD_WIDTH = 1e-6
"""A prior box narrower than this holds its parameter (the settings fix it): no Occam factor, no σ."""
NATURAL_LOWER = frozenset({"inverse_size", "microstrain", "b_iso", "asymmetry", "caglioti_u", "caglioti_w"})
"""Parameters whose lower bound is a physical limit (no broadening, no thermal motion, a symmetric
profile): an estimate there is an answer, not a sign that the prior box is too small."""


@dataclass(frozen=True)
class Optics:
    """What the fit needs to know about the diffractometer."""

    lines: tuple[tuple[float, float], ...]
    caglioti: tuple[float, float, float]
    radius_mm: float
    two_theta_range: tuple[float, float]
    """Domain of the Chebyshev background, degrees."""
    background_terms: int
    asymmetry: float = 0.0
    """The instrument's axial-divergence asymmetry A (``physics.xrd``), the refinement's start."""
    diffuse_fwhm: float | None = None
    """FWHM (degrees) of the diffuse humps added to the background (``physics.xrd.diffuse_basis``); None: none."""

    def background_basis(self, two_theta: np.ndarray) -> np.ndarray:
        """(n, k) basis of the background: Chebyshev terms, then the diffuse humps."""
        cheb = chebyshev_basis(two_theta, self.background_terms, *self.two_theta_range)
        if self.diffuse_fwhm is None:
            return cheb
        return np.hstack([cheb, diffuse_basis(two_theta, *self.two_theta_range, self.diffuse_fwhm)])

    def background_rate(self, two_theta: np.ndarray, coefficients: Sequence[float]) -> np.ndarray:
        """Background counts per second at ``two_theta`` (degrees) for these coefficients (Chebyshev, then
        humps; fewer coefficients than basis functions: the first ones)."""
        c = np.asarray(coefficients, dtype=float)
        return self.background_basis(np.asarray(two_theta, dtype=float))[:, : c.size] @ c

    def instrument(self) -> dict[str, float]:
        """The starting instrument profile, keyed as ``INSTRUMENT``."""
        u, v, w = self.caglioti
        return {"asymmetry": self.asymmetry, "caglioti_u": u, "caglioti_v": v, "caglioti_w": w}


class PhaseProfiles:
    """g_p on the measured steps, cached by (phase, ε, u, z)."""

    def __init__(self, phases: dict[str, Phase], optics: Optics, pattern: Pattern, d_min: float) -> None:
        self.phases, self.optics, self.pattern, self.d_min = phases, optics, pattern, d_min
        self._cache: dict[tuple[object, ...], np.ndarray] = {}
        self.background = optics.background_basis(pattern.two_theta)

    def rate(self, name: str, strain: float, inverse_size: float, zero: float, microstrain: float = 0.0,
             pole: tuple[int, int, int] | None = None, log_r: float = 0.0, displacement: float = 0.0,
             b_iso: float = 0.0, instrument: Mapping[str, float] | None = None, axial_strain: float = 0.0,
             axial_inverse_size: float = 0.0) -> np.ndarray:
        """g_p on the measured steps (see ``rate_on``); ``instrument``: ``INSTRUMENT`` values, None: the optics'."""
        inst = tuple(round(float(v), 9) for v in (instrument or self.optics.instrument()).values())
        key = (name, round(strain, 9), round(inverse_size, 9), round(zero, 9), round(microstrain, 9), pole, round(log_r, 9),
               round(displacement, 9), round(b_iso, 9), inst, round(axial_strain, 9), round(axial_inverse_size, 9))
        if key not in self._cache:
            if len(self._cache) > 4000:
                self._cache.clear()
            self._cache[key] = rate_on(self.phases[name], self.optics, self.pattern.two_theta, self.d_min,
                                       strain, inverse_size, zero, microstrain, pole, log_r, displacement, b_iso, instrument,
                                       axial_strain, axial_inverse_size)
        return self._cache[key]


def rate_on(
    phase: Phase, optics: Optics, two_theta: np.ndarray, d_min: float, strain: float, inverse_size: float, zero: float,
    microstrain: float = 0.0, pole: tuple[int, int, int] | None = None, log_r: float = 0.0, displacement: float = 0.0,
    b_iso: float = 0.0, instrument: Mapping[str, float] | None = None, axial_strain: float = 0.0,
    axial_inverse_size: float = 0.0,
) -> np.ndarray:
    """g_p at ``two_theta`` (degrees) for these refinements (u ≤ 0: no size broadening; no pole or
    log r = 0: a random powder; B in Å²; ``instrument``: ``INSTRUMENT`` values, None: the optics')."""
    inst = dict(instrument or optics.instrument())
    reflections = phase.reflections(d_min)
    size: float | np.ndarray | None = None if inverse_size <= 1e-9 else 1.0 / inverse_size
    if axial_inverse_size != 0.0:
        per_reflection = np.maximum(inverse_size + axial_inverse_size * phase.axial_fraction(d_min), 1e-9)
        size = np.where(per_reflection <= 1e-9, 1e12, 1.0 / per_reflection)
    if axial_strain != 0.0:
        # c → c (1 + ε_c): 1/d² = (1 − f)/d₀² + f/(d₀² (1 + ε_c)²), f the reflection's share along c*.
        f = phase.axial_fraction(d_min)
        reflections = dataclasses.replace(reflections, d=reflections.d / np.sqrt(1.0 - f + f / (1.0 + axial_strain) ** 2))
    orientation = None
    if pole is not None and log_r != 0.0:
        normals, index = phase.plane_normals(d_min)
        orientation = march_dollase(normals, index, len(reflections.d), phase.pole(pole), math.exp(log_r))
    return phase_rate(
        two_theta, reflections, phase.volume, optics.lines,
        (inst["caglioti_u"], inst["caglioti_v"], inst["caglioti_w"]),
        size_nm=size, microstrain=max(microstrain, 0.0),
        lattice_strain=strain, zero_shift_deg=zero, displacement_mm=displacement, radius_mm=optics.radius_mm,
        orientation=orientation, b_iso=max(b_iso, 0.0), asymmetry=max(inst["asymmetry"], 0.0),
    )


UNSUPPORTED_COLUMN = 1e-3
"""A design column whose norm is below this fraction of the largest one's is left out (coefficient 0)."""


def supported_columns(norms: np.ndarray) -> np.ndarray:
    """Which design columns (by their norms, (k,)) the data support: norm ≥ ``UNSUPPORTED_COLUMN`` of the largest."""
    return norms > UNSUPPORTED_COLUMN * max(float(norms.max(initial=0.0)), 1e-300)


def nonnegative_lstsq(a: np.ndarray, b: np.ndarray, n_nonneg: int) -> tuple[np.ndarray, float]:
    """min ‖a x − b‖² with x[:n_nonneg] ≥ 0 (the phase scales); returns (x, residual sum of squares).

    Normal equations on unit-norm columns (a has a handful of columns and thousands of rows, and
    this runs thousands of times per interpretation); bounded least squares only when a scale
    comes out negative.
    """
    norms = np.linalg.norm(a, axis=0)
    # A column with next to no support on the measured steps (a diffuse hump centred beyond them: norms
    # 10⁻⁴³–10⁻⁴ of the largest) gets coefficient 0. Scaled to unit norm it took coefficients up to 10³⁰,
    # which the prior box then clipped, so every refinement started with χ² up to ~100× its optimum
    # (mismatch family sample 4: 356 000 against 3 940).
    unsupported = ~supported_columns(norms)
    norms[unsupported] = 1.0
    scaled = np.where(unsupported[None, :], 0.0, a / norms)
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
    x0: np.ndarray, lo: np.ndarray, hi: np.ndarray, max_iterations: int = 50, tolerance: float = 1e-6,
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


class SetView:
    """What a refined set and the hypothesis reported from it both answer: the global zero (deg) and
    displacement (mm), and the set's label (phase names joined by "+")."""

    common: dict[str, float]
    phases: tuple[str, ...]

    @property
    def zero(self) -> float:
        return self.common["zero"]

    @property
    def displacement(self) -> float:
        return self.common["displacement"]

    @property
    def label(self) -> str:
        return "+".join(self.phases)


@dataclass
class SetFit(SetView):
    """A refined fit of one phase set. Per-phase arrays follow ``phases``; ``refined`` maps each
    name of ``PER_PHASE`` to its values; ``poles`` the texture pole of each phase."""

    phases: tuple[str, ...]
    poles: tuple[tuple[int, int, int], ...]
    scales: np.ndarray
    scale_sigmas: np.ndarray
    refined: dict[str, np.ndarray]
    common: dict[str, float]
    """The ``GLOBAL`` parameters (zero, displacement, instrument profile)."""
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
    bounds: Bounds | None = None
    """The prior box the set was refined in."""
    at_bound: list[str] = field(default_factory=list)
    """Refined parameters that ended on an edge of the prior box that is not a physical limit,
    as ``<parameter>:<phase>`` (per phase) or ``<parameter>`` (global)."""
    occam_terms: OccamTerms | None = field(repr=False, default=None)
    """What the box part of ``log_occam`` was computed from (for diagnostics: the push on pinned parameters,
    the term at another temperature)."""
    scale_prior: float = 0.0
    """The scales' prior part of ``log_occam`` (``scale_log_prior``)."""


    def log_evidence(self, temperature: float) -> float:
        """Laplace log evidence of the likelihood tempered by ``temperature`` (L^(1/T)).

        Tempering divides the information by T: the Occam term gains (k/2) log T, to first order.
        (Recomputing it at T instead — ``OccamTerms.log_occam(T)``, which caps what a parameter the
        data hardly constrain can gain at 0 — was measured and not kept: on the P25 survey, draw 23,
        T = 2.14, it took ½ log T from each of brookite's unconstrained parameters and the pair
        rival became confidently wrong, p 0.894 → 0.957.)"""
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
    b_iso: tuple[float, float] = (0.0, 3.0)
    """Å²: the range of a refined isotropic B."""
    b_iso_fixed: dict[str, float] = field(default_factory=dict)
    """Phases whose CIF gives B (Å²): held there."""
    instrument: dict[str, tuple[float, float]] = field(default_factory=dict)
    """Range of each refined ``INSTRUMENT`` parameter; one left out is held at the optics' value."""
    unique_axis: frozenset[str] = frozenset()
    """Phases whose c may strain apart from a (|axial strain| ≤ ``axial_strain``); the others hold it at 0."""
    axial_strain: float = 0.01

    def per_phase(self, name: str, phase: str = "") -> tuple[float, float]:
        if name == "b_iso":
            if phase in self.b_iso_fixed:
                b = self.b_iso_fixed[phase]
                return b, b + 1e-9  # held: a box of zero width costs no Occam factor (see log_occam)
            return self.b_iso
        if name == "axial_strain":
            free = phase in self.unique_axis and self.axial_strain > 0
            return (-self.axial_strain, self.axial_strain) if free else (0.0, 1e-9)
        if name == "axial_inverse_size":
            free = phase in self.unique_axis and self.axial_strain > 0
            return (-self.inverse_size, self.inverse_size) if free else (0.0, 1e-9)
        return {"strain": (-self.strain, self.strain), "inverse_size": (0.0, self.inverse_size),
                "microstrain": (0.0, self.microstrain), "log_r": (-self.log_r, self.log_r)}[name]

    def global_box(self, name: str) -> tuple[float, float] | None:
        """(low, high) of a ``GLOBAL`` parameter, None when it is not refined."""
        if name in ("zero", "displacement"):
            b = float(getattr(self, name))
            return (-b, b) if b > 0 else None
        return self.instrument.get(name)


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
        self.profiles, self.phases, self.poles, self.weight, self.bounds = profiles, phases, poles, weight, bounds
        self.pattern = profiles.pattern
        self.n_p, self.k_bg = len(phases), profiles.background.shape[1]
        boxes = {k: bounds.global_box(k) for k in GLOBAL}
        self.globals_used = [k for k in GLOBAL if boxes[k] is not None]
        self.fixed_common = {"zero": 0.0, "displacement": 0.0} | profiles.optics.instrument()
        n_p, k_bg = self.n_p, self.k_bg
        self.per_lo = np.array([bounds.per_phase(k, n)[0] for k in PER_PHASE for n in phases])
        self.per_hi = np.array([bounds.per_phase(k, n)[1] for k in PER_PHASE for n in phases])
        g_lo = np.array([boxes[k][0] for k in self.globals_used])  # type: ignore[index]
        g_hi = np.array([boxes[k][1] for k in self.globals_used])  # type: ignore[index]
        self.lo = np.concatenate([np.zeros(n_p), np.full(k_bg, -bounds.background), self.per_lo, g_lo])
        self.hi = np.concatenate([[bounds.scale_max[n] for n in phases], np.full(k_bg, bounds.background), self.per_hi, g_hi])
        self.i_per, self.i_glob = n_p + k_bg, n_p + k_bg + len(PER_PHASE) * n_p

    def natural_lower(self) -> np.ndarray:
        """Which entries of x have a lower bound that is a physical limit (``NATURAL_LOWER``; the scales' 0), (len(x),)."""
        per = [k in NATURAL_LOWER for k in PER_PHASE for _ in self.phases]
        return np.array([True] * self.n_p + [False] * self.k_bg + per + [k in NATURAL_LOWER for k in self.globals_used])

    def unpack(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray], dict[str, float]]:
        """(scales (n_p,), background (k_bg,), ``PER_PHASE`` name → (n_p,), ``GLOBAL`` name → value)."""
        n_p, i_per, i_glob = self.n_p, self.i_per, self.i_glob
        refined = {k: x[i_per + j * n_p:i_per + (j + 1) * n_p] for j, k in enumerate(PER_PHASE)}
        common = dict(self.fixed_common) | {k: float(x[i_glob + j]) for j, k in enumerate(self.globals_used)}
        return x[:n_p], x[n_p:i_per], refined, common

    def rate(self, i: int, refined: Mapping[str, np.ndarray], common: Mapping[str, float], bump: str | None = None,
             h: float = 0.0) -> np.ndarray:
        """g of phase ``i`` on the steps, (n,); ``bump`` (a parameter name) moved by ``h``."""
        v = {k: float(refined[k][i]) + (h if k == bump else 0.0) for k in PER_PHASE}
        c = {k: common[k] + (h if k == bump else 0.0) for k in GLOBAL}
        return self.profiles.rate(self.phases[i], v["strain"], v["inverse_size"], c["zero"], v["microstrain"], self.poles[i],
                                  v["log_r"], c["displacement"], v["b_iso"], {k: c[k] for k in INSTRUMENT}, v["axial_strain"],
                                  v["axial_inverse_size"])

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
        background solved linearly there, the global parameters at ``common`` where given, else zero
        and displacement at 0 and the instrument at the optics'."""
        n_p, lo, hi, per_lo, per_hi = self.n_p, self.lo, self.hi, self.per_lo, self.per_hi
        per0 = np.clip(np.concatenate([np.asarray(start[k], dtype=float) for k in PER_PHASE]),
                       per_lo + 1e-3 * (per_hi - per_lo), per_hi - 1e-3 * (per_hi - per_lo))
        refined0 = {k: per0[j * n_p:(j + 1) * n_p] for j, k in enumerate(PER_PHASE)}
        common0 = dict(self.fixed_common) | {k: float(v) for k, v in (common or {}).items() if k in self.globals_used}
        linear, _ = linear_fit(self.profiles, [self.rate(i, refined0, common0) for i in range(n_p)], self.weight)
        x0 = np.concatenate([linear, per0, [common0[k] for k in self.globals_used]])
        return np.clip(x0, lo + 1e-9 * (hi - lo), hi - 1e-9 * (hi - lo))


class LinearlyProjected:
    """The refinement over the nonlinear parameters θ only (variable projection, Golub–Pereyra): at every θ
    the scales (≥ 0) and background are solved exactly (``linear_fit``), so the iteration never creeps along
    the background's correlated directions (a dozen diffuse humps and Chebyshev terms), which left sets
    unconverged after 50 iterations (mismatch family sample 4: 63 nats short). Jacobian: Kaufman's — the
    fixed-linear Jacobian with the active linear columns projected out."""

    def __init__(self, problem: SetProblem) -> None:
        self.problem = problem
        self._last: tuple[bytes, np.ndarray] | None = None

    def full(self, theta: np.ndarray) -> np.ndarray:
        """x: the linear parameters solved at θ (clipped to their box), then θ."""
        key = theta.tobytes()
        if self._last is not None and self._last[0] == key:
            return self._last[1]
        p, k = self.problem, self.problem.i_per
        x = np.concatenate([np.zeros(k), theta])
        _, _, refined, common = p.unpack(x)
        linear, _ = linear_fit(p.profiles, [p.rate(i, refined, common) for i in range(p.n_p)], p.weight)
        x[:k] = np.clip(linear, p.lo[:k], p.hi[:k])
        self._last = (key, x)
        return x

    def residual(self, theta: np.ndarray) -> np.ndarray:
        return self.problem.residual(self.full(theta))

    def jacobian(self, theta: np.ndarray) -> np.ndarray:
        p, k, n = self.problem, self.problem.i_per, self.problem.pattern.n
        x = self.full(theta)
        j = p.weighted_jacobian(x)
        linear = j[:n, :k]
        norms = np.linalg.norm(linear, axis=0)
        # The columns the linear solve used (``nonnegative_lstsq``): a scale at 0 is held there, and a column
        # without support would add an arbitrary direction to the QR basis.
        active = supported_columns(norms) & np.concatenate(
            [x[: p.n_p] > 0, np.ones(k - p.n_p, dtype=bool)])
        q, _ = np.linalg.qr(linear[:, active])
        out = j[:, k:].copy()
        out[:n] -= q @ (q.T @ out[:n])
        return out


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
    default 0), then the Laplace Occam term of the result. ``variance`` (n,): the counts' variance per step, the
    weights of the residuals (``analysis.xrd.search.reweighted`` refines again with those of the result). Never
    raises on data: a failure is in ``message`` and ``converged`` is False."""
    problem = SetProblem(profiles, phases, poles, bounds, 1.0 / np.sqrt(np.maximum(variance, 0.5)))
    x0 = problem.start(start, common)
    try:
        projected = LinearlyProjected(problem)
        k = problem.i_per
        theta, converged, message = projected_levenberg_marquardt(projected.residual, projected.jacobian, x0[k:],
                                                                  problem.lo[k:], problem.hi[k:])
        x = projected.full(theta)
    except (ValueError, FloatingPointError, np.linalg.LinAlgError) as exc:
        x, converged, message = x0, False, f"refinement failed: {exc}"
    try:
        return _set_fit(problem, x, converged, message)
    except (ValueError, FloatingPointError, np.linalg.LinAlgError) as exc:
        return _set_fit(problem, problem.start(start), False, f"evidence failed: {exc}")


def free_laplace(x: np.ndarray, information: np.ndarray, lo: np.ndarray, hi: np.ndarray,
                 gradient: np.ndarray | None = None, natural_lower: np.ndarray | None = None,
                 ) -> tuple[float, np.ndarray, OccamTerms]:
    """(log Occam term at T = 1, posterior covariance (k, k), the terms to recompute it at any T).

    A held parameter (box narrower than ``HELD_WIDTH``) is not integrated over: it is left out of the
    Laplace term and gets zero variance. Kept in, its zero-width uniform prior costs about one nat
    (½ log(2π/12) and half a Gaussian's mass when it sits on an edge of its box) — per held parameter,
    so per phase, which was a spurious penalty on every larger set (a 6 wt % brookite lost ~2 nats).
    The Occam term of the free ones is ``box_laplace`` with the likelihood's gradient at the optimum
    (``kkt_gradient``); the covariance is ``log_occam``'s (uniform priors' precision 12/w² added, so a
    flat direction gets a σ bounded by its box)."""
    free = np.flatnonzero(hi - lo > HELD_WIDTH)
    sub = np.ix_(free, free)
    _, cov_free, _ = log_occam(x[free], information[sub], lo[free], hi[free], np.ones(free.size, dtype=bool),
                               -float(np.sum(np.log(hi[free] - lo[free]))))
    cov = np.zeros((x.size, x.size))
    cov[sub] = cov_free
    nat = None if natural_lower is None else natural_lower[free]
    g = np.zeros(free.size) if gradient is None else kkt_gradient(x[free], gradient[free], lo[free], hi[free], nat)
    terms = OccamTerms(x[free].copy(), information[sub].copy(), g, lo[free].copy(), hi[free].copy())
    return terms.log_occam(1.0), cov, terms


@dataclass(frozen=True)
class OccamTerms:
    """The refined (free) parameters' optimum, information, KKT gradient and prior box (untempered), from
    which ``log_occam`` computes the Occam term of the likelihood tempered by T exactly (the information
    and gradient of L^(1/T) are those of L over T)."""

    x: np.ndarray
    information: np.ndarray
    gradient: np.ndarray
    lo: np.ndarray
    hi: np.ndarray

    def log_occam(self, temperature: float) -> float:
        return box_laplace(self.x, self.information / temperature, self.lo, self.hi, self.gradient / temperature)


AT_EDGE = 5e-3
"""A parameter within this fraction of its box's width of an edge is on that edge (``kkt_gradient``;
the same tolerance as ``parameters_at_bound``)."""


def kkt_gradient(x: np.ndarray, gradient: np.ndarray, lo: np.ndarray, hi: np.ndarray,
                 natural_lower: np.ndarray | None = None) -> np.ndarray:
    """The push of the data on parameters pinned at an edge of their prior box: the gradient of log L
    at a box-constrained optimum as the Karush–Kuhn–Tucker conditions have it — 0 for a parameter
    inside its box (a stationary point; what is left there is the refinement's tolerance, not
    information), and for one on an edge (``AT_EDGE``) its component pointing out of the box (the
    active bound's multiplier).

    Not on a lower edge that is a physical limit (``natural_lower``, a mask; ``NATURAL_LOWER``: no
    size broadening, no microstrain, B = 0, a symmetric profile, a phase's scale 0). There the true
    value itself often sits on the edge — a simulated phase without broadening or thermal motion, a
    well-crystallised real one —, the push beyond it is noise about that value, and the limit is a
    state the prior holds, not an edge of what we allowed: such a parameter keeps the gradient-free
    term (half its Gaussian). Charging it penalised the right answer: on the P25 survey, draw 30,
    brookite's B and anatase's microstrain at 0 cost the true triple 0.8 nats and its pair rival
    went from p 0.93 to a confidently wrong 0.96. An edge of the box we chose (strain ±, the upper
    bounds of size broadening, microstrain and B, texture, zero, displacement) is where no true
    value should lie: a push there is the model using the parameter for something else."""
    w = hi - lo
    lower_counts = np.ones(x.size, dtype=bool) if natural_lower is None else ~np.asarray(natural_lower, dtype=bool)
    at_lo = (x - lo <= AT_EDGE * w) & (gradient < 0) & lower_counts
    at_hi = (hi - x <= AT_EDGE * w) & (gradient > 0)
    return np.where(at_lo | at_hi, gradient, 0.0)


def box_laplace(x: np.ndarray, information: np.ndarray, lo: np.ndarray, hi: np.ndarray,
                gradient: np.ndarray | None = None) -> float:
    """log ∫ exp(gᵀδ − ½ δᵀ H δ) dθ / Π w over the uniform prior box (δ = θ − x), one parameter at a time.

    Gaussian elimination of H: pivot i is the precision 1/cᵢ² of parameter i given those not yet
    integrated (the earlier ones integrated out; their product is det H), and each parameter
    contributes log(∫ over its box of exp(gᵢδ − δ²/2cᵢ²) dθ / wᵢ) (``log_gaussian_box``). Where the
    data constrain a parameter inside its box (g = 0) this is the textbook term (half of it on an
    edge); where they do not (cᵢ ≫ wᵢ) it is 0, as the exact integral of a flat likelihood over its
    prior is — the plain Laplace term with the prior's precision 12/w² charged such a parameter
    ½ log(2π/12) − log 2 ≈ −1 nat on an edge, and a minor phase with an unconstrained B and
    microstrain lost ~2 nats against the set without it (P25 survey, draw 30). An exactly flat
    correlated pair (zero vs displacement) gets the ridge's one factor: the second pivot is 0 once
    the first is integrated out.

    A parameter pinned on an edge with the data pushing it outwards (g ≠ 0, ``kkt_gradient``) is not
    at a maximum of the likelihood: the Gaussian's peak lies beyond the edge, gᵢcᵢ² outside, and the
    box holds only its tail — about 1/|gᵢ| of width instead of half of cᵢ√(2π). So a phase that can
    only patch the data with its strain, size or B pressed against their bounds pays for each in the
    set's evidence, the more the harder the data push (the SiC + Zn pattern's spurious NiO: strain,
    size and B pinned). The pinned ones are integrated last (their pivots are then their precisions
    given the other pinned ones, the interior ones integrated out), each with its own gradient at the
    corner: exact when the push dominates (Π 1/|gᵢ|, whatever the correlations) and, with no push,
    the term above. (Carrying the gradient through the elimination, as for a Gaussian over the
    whole space, is worse here: it moves the later pinned ones' peaks by where the earlier ones
    would go outside the box — 3 nats off against the exact integral for an anticorrelated pair.)"""
    g = np.zeros(x.size) if gradient is None else np.asarray(gradient, dtype=float)
    order = np.concatenate([np.flatnonzero(g == 0), np.flatnonzero(g != 0)])
    x, lo, hi, g = x[order], lo[order], hi[order], g[order]
    w = hi - lo
    scale = np.sqrt(np.maximum(np.diag(information)[order], (1e-6 / w) ** 2))
    a = information[np.ix_(order, order)] / np.outer(scale, scale)
    total = 0.0
    for i in range(x.size):
        pivot = max(float(a[i, i]), 1e-12)
        if i + 1 < x.size:
            a[i + 1:, i + 1:] -= np.outer(a[i + 1:, i], a[i, i + 1:]) / pivot
        log_integral = log_gaussian_box(pivot * scale[i] ** 2, float(g[i]), float(lo[i] - x[i]), float(hi[i] - x[i]))
        total += min(log_integral, math.log(w[i])) - math.log(w[i])
    return total


def log_gaussian_box(p: float, g: float, l: float, h: float) -> float:
    """log ∫_l^h exp(g δ − ½ p δ²) dδ (l < h, p ≥ 0), stable for a peak g/p far outside [l, h] and for p → 0.

    Written about the integrand's largest point δ* in [l, h]; with the peak outside, the tail mass is
    a difference of scaled complementary error functions (erfcx), which neither underflows nor cancels."""
    if g < 0:
        return log_gaussian_box(p, -g, -h, -l)  # mirror: the peak on the upper side
    w = h - l
    if p * w * w < 1e-12:
        # Flat to 10⁻¹²: ∫ exp(g δ) dδ.
        if g * w < 1e-12:
            return math.log(w)
        return g * h + math.log(-math.expm1(-g * w)) - math.log(g)
    c, m = 1.0 / math.sqrt(p), g / p
    if m <= h:
        mass = float(special.ndtr((h - m) / c) - special.ndtr((l - m) / c))
        if mass > 1e-300:
            return 0.5 * m * g + math.log(c * math.sqrt(2 * math.pi) * mass)
    # The peak lies beyond h: ∫_l^h = e^{f(h)} ∫_0^w exp(−a_s s/c − s²/2c²) ds, a = (m − h)/c ≥ 0.
    a, b = (m - h) / c, (m - l) / c
    tail = special.erfcx(a / math.sqrt(2)) - special.erfcx(b / math.sqrt(2)) * math.exp(0.5 * (a * a - b * b))
    return g * h - 0.5 * p * h * h + math.log(c * math.sqrt(math.pi / 2) * max(float(tail), 1e-300))


def _set_fit(problem: SetProblem, x: np.ndarray, converged: bool, message: str) -> SetFit:
    """The ``SetFit`` at ``x``: Poisson likelihood, deviance, Occam term and the scales' covariance."""
    pat, n_p, lo, hi = problem.pattern, problem.n_p, problem.lo, problem.hi
    mu = np.maximum(problem.mu(x), 1e-9)
    jac = problem.jacobian_of_mu(x) / np.sqrt(mu)[:, None]
    # ∂ log L / ∂θ = Σ (N/μ − 1) ∂μ/∂θ = Jᵀ (N − μ)/√μ with J the Jacobian already divided by √μ.
    occam, cov, terms = free_laplace(x, jac.T @ jac, lo, hi, jac.T @ ((pat.counts - mu) / np.sqrt(mu)),
                                     problem.natural_lower())
    prior = 0.0
    # The scales' prior is not uniform but log-uniform with a floor (``scale_log_prior``): replace
    # the uniform density of the Laplace term by the prior density averaged over each scale's posterior.
    for i in range(n_p):
        prior += scale_log_prior(float(x[i]), math.sqrt(max(float(cov[i, i]), 0.0)), float(hi[i])) + math.log(float(hi[i]))
    scales, bg, refined, common = problem.unpack(x)
    return SetFit(
        phases=problem.phases, poles=tuple(problem.poles), scales=scales.copy(),
        scale_sigmas=np.sqrt(np.clip(np.diag(cov)[:n_p], 0, None)),
        refined={k: v.copy() for k, v in refined.items()}, common=common, background=bg.copy(),
        log_likelihood=poisson_log_likelihood(pat.counts, mu), deviance=poisson_deviance(pat.counts, mu),
        n_parameters=int(np.sum(hi - lo > HELD_WIDTH)), log_occam=occam + prior, covariance=cov[:n_p, :n_p], converged=converged,
        message=message, mu=mu, bounds=problem.bounds, at_bound=parameters_at_bound(problem, x, cov),
        occam_terms=terms, scale_prior=prior,
    )


def parameters_at_bound(problem: SetProblem, x: np.ndarray, cov: np.ndarray) -> list[str]:
    """The nonlinear parameters of ``x`` within 0.5 % of the box's width of an edge that is not a
    physical limit (``NATURAL_LOWER``), as ``<parameter>:<phase>`` or ``<parameter>``.

    Only parameters the data determine (posterior σ under a quarter of the box) are listed: one
    that drifted to an edge along a flat valley (zero shift against displacement) sits there by
    the prior, not because the data push it out. Held parameters (zero-width box) never are."""
    names = [f"{k}:{n}" for k in PER_PHASE for n in problem.phases] + list(problem.globals_used)
    out = []
    for j, name in enumerate(names):
        i = problem.i_per + j
        width = problem.hi[i] - problem.lo[i]
        if width < HELD_WIDTH or math.sqrt(max(float(cov[i, i]), 0.0)) > 0.25 * width:
            continue
        low = x[i] - problem.lo[i] <= 5e-3 * width and name.split(":")[0] not in NATURAL_LOWER
        if low or problem.hi[i] - x[i] <= 5e-3 * width:
            out.append(name)
    return out
