"""How much time to spend in which SAS configuration to reach the targets soonest (linearised).

The shared optimiser behind the adaptive planner (which plans from the current fits) and the oracle
(which plans from the true parameters). Both describe the world as a few *hypotheses* — "model m is
true with parameters θ_m" — each with per-second Fisher information per configuration, because
Poisson σ² ∝ 1/t makes information linear in exposure time::

    I(t) = I₀ + Σ_c t_c F_c                        (k × k), F_c = J_cᵀ W_c J_c per second

**Precision targets** (relative standard error of a named parameter ≤ g) hold under hypothesis m when
``[I(t)⁻¹]_jj ≤ (g · safety · θ_j)²`` — the Cramér–Rao bound at θ_m.

**Model targets** (the most probable model's probability ≥ p) hold when the log odds of m against
every rival r, now ``L_r``, grow enough: new data add (on average, under m) half the Δχ² that the
rival cannot absorb by re-fitting. Linearised around the rival's current fit θ_r, with
δ_c = I_m − I_r on configuration c, W_c the per-second weights under m, J_c the rival's Jacobian and
I₀,r the rival's information so far::

    Δχ²_r(t) = min_Δ Σ_c t_c (δ_c − J_c Δ)ᵀ W_c (δ_c − J_c Δ) + Δᵀ I₀,r Δ  =  A − bᵀ M⁻¹ b
    A = Σ t_c δ_cᵀW_cδ_c,   b = Σ t_c J_cᵀW_cδ_c,   M = I₀,r + Σ t_c J_cᵀW_cJ_c

This is the expected information gain between models of Box & Hill, in the form of a
non-centrality. The evidence of each model also pays an Occam factor that grows with its
information (Laplace: −½ log det I), which is what separates a simpler true model from a richer one
that can mimic it, so the log odds after the allocation are::

    L_r(t) = L_r + Δχ²_r(t)/2 + ½ log det(M(t) I₀,r⁻¹) − ½ log det(I(t) I₀⁻¹) − margin

and the target holds when ``Σ_r exp(−L_r(t)) ≤ (1 − p)/p``.

The **cost** of an allocation is its exposure plus one overhead per configuration used plus one
configuration change for each used configuration other than the current one. The optimiser scans the
simplex of time *fractions* over the configurations (which covers every subset), finds for each
fraction the least total time that meets every target under every hypothesis (bisection: feasibility
grows with time), and keeps the cheapest. All hypotheses and fractions are evaluated as batched
numpy linear algebra: a few milliseconds for three configurations.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

#: Longest allocation considered, s (about four days of beam): beyond it a target is unreachable.
MAX_TOTAL_SECONDS = 3.0e5


@dataclass(frozen=True)
class Rival:
    """A competing model as seen under a hypothesis; arrays per configuration (axis 0)."""

    model: str
    log_odds: float
    """log p(hypothesis)/p(rival) from the data so far (and the prior), nats."""
    a: np.ndarray  # (C,)   δᵀWδ per second
    b: np.ndarray  # (C, kr) J_rᵀWδ per second
    f: np.ndarray  # (C, kr, kr) J_rᵀWJ_r per second
    info0: np.ndarray  # (kr, kr) the rival's information so far (+ prior precision)


@dataclass(frozen=True)
class AllocationHypothesis:
    """"Model ``model`` is true": its information so far, per second of each configuration, and targets."""

    model: str
    info0: np.ndarray  # (k, k)
    f: np.ndarray  # (C, k, k)
    variance_limits: Sequence[tuple[int, float, str]] = ()
    """(parameter index, largest allowed variance, label) per precision target."""
    rivals: Sequence[Rival] = ()


@dataclass(frozen=True)
class AllocationProblem:
    configurations: Sequence[str]
    min_exposure_seconds: np.ndarray  # (C,)
    current: str | None
    change_seconds: float
    overhead_seconds: float
    hypotheses: Sequence[AllocationHypothesis]
    max_rival_odds: float | None = None
    """(1 − p)/p for a model-probability target p; None: no model target."""
    margin_nats: float = 0.0
    offset_seconds: np.ndarray | None = None
    """(C,) exposure already counted in I₀ = prior only (the oracle's form); None: zeros."""


@dataclass(frozen=True)
class Allocation:
    seconds: dict[str, float]
    """Exposure to add per configuration, s (only configurations used)."""
    cost_seconds: float
    """Instrument time of the allocation: exposure + overheads + configuration changes, s."""
    feasible: bool
    binding: str
    """The target that sets the time ('met' when nothing more is needed)."""
    violations: dict[str, float] = field(default_factory=dict)


def _violations(problem: AllocationProblem, x: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """log(value / limit) of every target under every hypothesis for allocations ``x`` (N, C).

    Returns (N, T) and the T labels; ≤ 0 everywhere means the allocation meets every target.
    """
    total = x if problem.offset_seconds is None else x + problem.offset_seconds[None, :]
    columns: list[np.ndarray] = []
    labels: list[str] = []
    for h in problem.hypotheses:
        info = h.info0[None] + np.einsum("nc,ckl->nkl", total, h.f)
        if h.variance_limits:
            cov = np.linalg.inv(info)  # positive definite: the prior adds its precision
            for j, limit, label in h.variance_limits:
                columns.append(np.log(np.maximum(cov[:, j, j], 1e-300) / limit))
                labels.append(f"{label} | {h.model}")
        if problem.max_rival_odds is not None and h.rivals:
            # Occam: each model's evidence falls by ½ log det of its information's growth.
            own_occam = 0.5 * (_logdet(info) - _logdet(h.info0[None]))
            odds = np.zeros(x.shape[0])
            for r in h.rivals:
                a = total @ r.a
                b = total @ r.b
                m = r.info0[None] + np.einsum("nc,ckl->nkl", total, r.f)
                absorbed = np.einsum("nk,nk->n", b, np.linalg.solve(m, b[..., None])[..., 0])
                gain = np.maximum(a - absorbed, 0.0)
                rival_occam = 0.5 * (_logdet(m) - _logdet(r.info0[None]))
                log_odds_after = r.log_odds + 0.5 * gain + rival_occam - own_occam - problem.margin_nats
                odds += np.exp(np.minimum(-log_odds_after, 700.0))
            columns.append(np.log(np.maximum(odds, 1e-300) / problem.max_rival_odds))
            labels.append(f"model probability | {h.model}")
    if not columns:
        return np.zeros((x.shape[0], 0)), labels
    return np.stack(columns, axis=1), labels


def _logdet(m: np.ndarray) -> np.ndarray:
    sign, value = np.linalg.slogdet(m)
    return np.where(sign > 0, value, -700.0)


def _simplex(n_configurations: int) -> np.ndarray:
    # Time fractions on a grid over the simplex (every subset of configurations included).
    resolution = {1: 1, 2: 20, 3: 20, 4: 12, 5: 8}.get(n_configurations, 5)
    points = [
        c for c in itertools.product(range(resolution + 1), repeat=n_configurations - 1) if sum(c) <= resolution
    ]
    grid = np.array([[*c, resolution - sum(c)] for c in points], dtype=float) / resolution
    return grid


def _exposures(shape: np.ndarray, total: np.ndarray, minimum: np.ndarray) -> np.ndarray:
    return np.where(shape > 0, np.maximum(total[:, None] * shape, minimum[None, :]), 0.0)


def plan_allocation(problem: AllocationProblem, max_total_seconds: float = MAX_TOTAL_SECONDS) -> Allocation:
    """The cheapest allocation of additional exposure that meets every target (see module docstring)."""
    names = list(problem.configurations)
    n_cfg = len(names)
    zero = np.zeros((1, n_cfg))
    v0, labels = _violations(problem, zero)
    if v0.shape[1] == 0 or np.all(v0 <= 0):
        return Allocation({}, 0.0, True, "met", dict(zip(labels, v0[0].tolist())))
    shapes = _simplex(n_cfg)
    minimum = np.asarray(problem.min_exposure_seconds, dtype=float)
    hi = np.full(len(shapes), float(max_total_seconds))
    v_hi = _violations(problem, _exposures(shapes, hi, minimum))[0].max(axis=1)
    feasible = v_hi <= 0
    if not feasible.any():
        # Unreachable within the horizon: head for the fractions that get closest.
        best = int(np.argmin(v_hi))
        x = _exposures(shapes[best : best + 1], hi[best : best + 1], minimum)[0]
        v, _ = _violations(problem, x[None])
        return Allocation(
            {n: float(t) for n, t in zip(names, x) if t > 0}, float(x.sum()), False,
            labels[int(np.argmax(v[0]))], dict(zip(labels, v[0].tolist())),
        )
    shapes, hi = shapes[feasible], hi[feasible]
    lo = np.full(len(shapes), 1e-3)
    for _ in range(40):  # log-bisection to ~1e-6 relative of the horizon
        mid = np.sqrt(lo * hi)
        ok = _violations(problem, _exposures(shapes, mid, minimum))[0].max(axis=1) <= 0
        hi = np.where(ok, mid, hi)
        lo = np.where(ok, lo, mid)
    x = _exposures(shapes, hi, minimum)
    used = x > 0
    changes = used.sum(axis=1) - (used[:, names.index(problem.current)] if problem.current in names else 0)
    cost = x.sum(axis=1) + problem.overhead_seconds * used.sum(axis=1) + problem.change_seconds * changes
    best = int(np.argmin(cost))
    v, _ = _violations(problem, x[best : best + 1])
    return Allocation(
        {n: float(t) for n, t in zip(names, x[best]) if t > 0}, float(cost[best]), True,
        labels[int(np.argmax(v[0]))], dict(zip(labels, v[0].tolist())),
    )


def log_odds(p_hypothesis: float, p_rival: float) -> float:
    """log p_h/p_r with probabilities floored at 1e-300 (a probability of exactly 0 still compares)."""
    return math.log(max(p_hypothesis, 1e-300)) - math.log(max(p_rival, 1e-300))
