"""The global search of one candidate's fit: multistart that scales with the problem, and a check.

A SAS fit is multimodal in its size parameters (a sphere's radius against the oscillations of its
form factor; on 0.5 µm latex SANS alone the default 16-point scan stopped at R = 1713 ± 102 Å, with
better minima near 2000–2560 Å). So:

- **budget** (:func:`search_budget`): the scan grows with the number of non-linear parameters, the
  form-factor fringes their length ranges sweep through at the data's q_max, and the decades their
  bounds span (:math:`n_\\text{scan} = 4 k (1 + Σ \\text{decades})`, at most 1024),
  the local fits with the parameter count (k, at most 16); the settings' ``n_scan`` and ``n_starts``
  are floors. A scan point costs one model evaluation, a local fit ~30–100;
- **first round**: a local fit from the settings' initial values, then from the best distinct scan
  points;
- **check** (:func:`global_search`): a second, independent scan (another seed, half the size) with
  half the local fits, and a scan of a box around the best (16 k points, ±20 % in a log-scanned
  parameter, ±15 % of the range in a linear one) with one local fit, each from points away from the
  optima already found. Narrow valleys hide next to
  broad minima: on latex SANS alone the first round's 1713 Å (χ² 82.2, radius_pd 0.10) sits beside
  a valley at 1760 Å (χ² 73.5, radius_pd 0.02) only ±6 % wide in R and reached from pd ≲ 0.05. If
  the check finds a χ² lower than the first round's by more than :data:`IMPROVEMENT_CHI2`, the
  search is widened once more (a scan twice as large and a box around the new best) and
  ``widened`` is reported — the reported optimum is the lowest any start found;
- **near-equivalent minima**: every local optimum within Δχ² < :data:`NEAR_CHI2` of the best is
  returned; :mod:`analysis.sas.fit` keeps those that are distinct (more than 2 σ away in some
  parameter), flags ``second-minimum`` and widens the σ to cover them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import optimize, stats

from analysis.sas.evaluator import interior

IMPROVEMENT_CHI2 = 0.1
"""A verification start that beats the best χ² by more than this means the first round missed."""

SEPARATION = 0.1
"""Starts are at least this far apart in some coordinate of the scan's unit cube."""

NEAR_CHI2 = 4.0
"""Local optima within this Δχ² of the best are near-equivalent (≈ a 2-σ likelihood ratio)."""


@dataclass
class SearchOutcome:
    """The best local fit (a scipy ``OptimizeResult``, or None), every local optimum ``(χ², θ_nl)``
    found, and whether the check had to widen the search."""

    best: Any
    best_chi2: float = math.inf  # the data's χ² at the best (without prior residuals)
    optima: list[tuple[float, np.ndarray]] = field(default_factory=list)
    widened: bool = False
    n_local_fits: int = 0


def search_budget(
    lo: np.ndarray, hi: np.ndarray, n_scan: int, n_starts: int, oscillations: float = 0.0
) -> tuple[int, int]:
    """(scan points, local fits) for non-linear parameters with bounds ``lo``, ``hi`` (k,).

    A range counts its decades when it is log-scanned (positive, spanning more than a decade), else 1.
    ``oscillations``: how many form-factor oscillations the size parameters' ranges sweep through at
    the data's largest q (Σ (hi − lo)·q_max/π over lengths); the scan takes 3 points per oscillation
    up to 64 per parameter (a scan point costs a model evaluation, and a cylinder's is ~10× a
    sphere's), so a monodisperse sphere's radius is not left one fringe off.
    """
    k = lo.size
    decades = float(np.sum([_decades(a, b) for a, b in zip(lo, hi)]))
    scan = max(n_scan, min(1024, int(max(4 * k * (1 + decades), min(3 * oscillations, 64 * k)))))
    starts = max(n_starts, min(16, k))
    return scan, starts


def _decades(lo: float, hi: float) -> float:
    if lo > 0 and hi / lo > 10:
        return math.log10(hi / lo)
    return 1.0


def global_search(
    problem: Any, n_scan: int, n_starts: int, max_nfev: int, seed: int, oscillations: float = 0.0
) -> SearchOutcome:
    """Multistart local fits of ``problem`` (a ``_ProjectedProblem``), then the check; see the module."""
    scan, starts = search_budget(problem.lo_nl, problem.hi_nl, n_scan, n_starts, oscillations)
    outcome = SearchOutcome(best=None)
    # The settings' initial values always start a local fit: a user's guess is information, and the
    # best scan points may all sit in one broad basin away from it.
    initial = interior(problem.x_init[problem.nl], problem.lo_nl, problem.hi_nl)
    _run_local_fits(problem, [initial], max_nfev, outcome)
    first = scan_starts(problem, scan, max(1, starts - 1), seed, exclude=list(outcome.optima) + [(0.0, initial)])
    _run_local_fits(problem, first, max_nfev, outcome)
    if outcome.best is None:
        return outcome
    first_best = 2 * float(outcome.best.cost)
    _check_round(problem, scan, max(1, starts // 2), max_nfev, seed + 7919, outcome)
    if 2 * float(outcome.best.cost) < first_best - IMPROVEMENT_CHI2:
        outcome.widened = True
        _check_round(problem, 2 * scan, starts, max_nfev, seed + 2 * 7919, outcome)
    return outcome


def _check_round(problem: Any, scan: int, starts: int, max_nfev: int, seed: int, outcome: SearchOutcome) -> None:
    """Local fits from an independent global scan and from a scan of the box around the best."""
    away = scan_starts(problem, max(1, scan // 2), starts, seed, exclude=outcome.optima)
    _run_local_fits(problem, away, max_nfev, outcome)
    box = _box_around(np.clip(outcome.best.x, problem.lo_nl, problem.hi_nl), problem.lo_nl, problem.hi_nl)
    near = scan_starts(problem, 16 * len(problem.nl), 1, seed + 1, exclude=outcome.optima, box=box)
    _run_local_fits(problem, near, max_nfev, outcome)


def _box_around(x: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """±20 % around ``x`` in log-scanned parameters, ±15 % of the range in linear ones, inside the bounds."""
    logish = (lo > 0) & (hi / np.where(lo > 0, lo, 1.0) > 10)
    half = 0.15 * (hi - lo)
    box_lo = np.where(logish, x / 1.2, x - half)
    box_hi = np.where(logish, x * 1.2, x + half)
    return np.maximum(box_lo, lo), np.minimum(box_hi, hi)


def near_optima(outcome: SearchOutcome) -> list[np.ndarray]:
    """θ_nl of every local optimum within Δχ² < :data:`NEAR_CHI2` of the best (the best's own repeats
    too: the caller keeps those distinct from it)."""
    if outcome.best is None:
        return []
    best = outcome.best_chi2
    return [theta for chi2, theta in outcome.optima if chi2 - best < NEAR_CHI2]


def scan_starts(
    problem: Any, n_scan: int, n_starts: int, seed: int, include_initial: bool = False,
    exclude: list[tuple[float, np.ndarray]] | None = None, box: tuple[np.ndarray, np.ndarray] | None = None,
) -> list[np.ndarray]:
    """The best ``n_starts`` points of a quasi-random scan of the non-linear parameters (log-uniform
    for sizes) over their bounds or ``box``, each at least :data:`SEPARATION` apart (in the scan's
    unit cube: log for sizes) from the others and from the optima in ``exclude``, so the local fits
    start in different basins rather than all in the broadest one."""
    lo_nl, hi_nl = problem.lo_nl, problem.hi_nl
    scan_lo, scan_hi = box if box is not None else (lo_nl, hi_nl)
    points = [problem.x_init[problem.nl]] if include_initial else []
    points += list(to_bounds(halton(n_scan - len(points), len(problem.nl), seed), scan_lo, scan_hi))
    scored = []
    for theta in points:
        cost = float(np.sum(np.square(problem.residuals(theta))))
        scored.append((cost if np.isfinite(cost) else math.inf, interior(theta, lo_nl, hi_nl)))
    scored.sort(key=_cost_of)
    taken = [to_unit(theta, scan_lo, scan_hi) for _, theta in exclude or []]
    chosen: list[np.ndarray] = []
    chosen_u: list[np.ndarray] = []
    for _, theta in scored:
        u = to_unit(theta, scan_lo, scan_hi)
        if all(np.max(np.abs(u - c)) > SEPARATION for c in chosen_u + taken):
            chosen.append(theta)
            chosen_u.append(u)
        if len(chosen) >= n_starts:
            break
    return chosen


def _cost_of(scored: tuple[float, np.ndarray]) -> float:
    return scored[0]


def _run_local_fits(problem: Any, starts: list[np.ndarray], max_nfev: int, outcome: SearchOutcome) -> None:
    """Local fits (trust-region reflective) from each start, recorded in ``outcome`` (lowest cost best)."""
    for theta0 in starts:
        try:
            res = optimize.least_squares(
                problem.residuals, theta0, bounds=(problem.lo_nl, problem.hi_nl), method="trf", x_scale="jac",
                max_nfev=max_nfev, ftol=1e-8, xtol=1e-8, gtol=1e-8,
            )
        except (ValueError, np.linalg.LinAlgError):
            continue
        outcome.n_local_fits += 1
        if not np.isfinite(res.cost):
            continue
        chi2_data = float(np.sum(np.square(problem.residuals(res.x)[: problem.y.size])))
        outcome.optima.append((chi2_data, np.clip(res.x, problem.lo_nl, problem.hi_nl)))
        if outcome.best is None or res.cost < outcome.best.cost:
            outcome.best, outcome.best_chi2 = res, chi2_data


def halton(n: int, d: int, seed: int) -> np.ndarray:
    """``n`` scrambled Halton points in the unit cube of dimension ``d``, shape (n, d)."""
    if n <= 0:
        return np.empty((0, d))
    return stats.qmc.Halton(d=d, scramble=True, seed=seed).random(n)


def to_bounds(u: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Unit-cube points (n, d) → inside [lo, hi]: log-uniform for positive ranges spanning more than a
    decade (sizes), linear otherwise."""
    out = lo + u * (hi - lo)
    logish = (lo > 0) & (hi / np.where(lo > 0, lo, 1.0) > 10)
    if logish.any():
        out[..., logish] = np.exp(np.log(lo[logish]) + u[..., logish] * np.log(hi[logish] / lo[logish]))
    return out


def to_unit(theta: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """The inverse of :func:`to_bounds`: points (…, d) inside [lo, hi] → the unit cube (clipped)."""
    logish = (lo > 0) & (hi / np.where(lo > 0, lo, 1.0) > 10)
    width = np.where(hi > lo, hi - lo, 1.0)
    u = (theta - lo) / width
    if logish.any():
        safe = np.maximum(theta[..., logish], lo[logish])
        u[..., logish] = np.log(safe / lo[logish]) / np.log(hi[logish] / lo[logish])
    return np.clip(u, 0.0, 1.0)
