"""Laplace evidence of a bounded fit, and posterior probabilities from log evidences.

Shared by the SAS model selection and the XRD phase identification: both fit parameters inside a
prior box (uniform, or Gaussian where a prior is given) and compare hypotheses by

    log Z ≈ log L(θ*) + log π(θ*) + (k/2) log 2π − ½ log det H̃ + Σᵢ log Mᵢ

with H̃ the information at the optimum plus each uniform prior's precision 12/w² (its variance is
w²/12), and Mᵢ the mass of N(θᵢ*, C̃ᵢᵢ) inside the box, C̃ = H̃⁻¹. Where the data constrain a
parameter both corrections are negligible and this is the textbook Laplace evidence (a parameter
on a bound pays half its Occam factor); where they do not — a flat direction — plain Laplace gives
det H → 0 and an evidence far above L_max, whereas here the direction is bounded by its prior.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
from scipy import special


def log_box_mass(x: float, s: float, lo: float, hi: float) -> float:
    """log of the N(x, s²) mass inside [lo, hi] (≥ a safe lower bound when it underflows)."""
    if not (s > 0 and np.isfinite(s)):
        return 0.0
    a, b = (lo - x) / s, (hi - x) / s
    mass = float(special.ndtr(b) - special.ndtr(a))
    # Far tails / huge s: the difference of CDFs loses everything; use the rectangle lower bound.
    floor = float((b - a) * math.exp(-0.5 * max(a * a, b * b)) / math.sqrt(2 * math.pi))
    return math.log(max(mass, floor, 1e-300))


def invert_information(h: np.ndarray, widths: np.ndarray) -> tuple[np.ndarray, float, bool]:
    """(H⁻¹, log det H, ill-conditioned?) of a (k, k) information matrix.

    Diagonal pre-scaling by √H_ii (floored at 1e-6/width, so a parameter the data do not see at all
    does not divide by zero), then eigenvalues floored at 1e-13 of the largest: a flat direction
    gets a huge but finite variance and is reported ill-conditioned.
    """
    d = np.sqrt(np.maximum(np.diag(h), (1e-6 / widths) ** 2))
    c = h / np.outer(d, d)
    vals, vecs = np.linalg.eigh(c)
    floor = max(float(vals.max()), 1e-300) * 1e-13
    ill = bool(vals.min() <= floor)
    vals = np.maximum(vals, floor)
    cov = ((vecs / vals) @ vecs.T) / np.outer(d, d)
    logdet = float(2 * np.sum(np.log(d)) + np.sum(np.log(vals)))
    return cov, logdet, ill


def log_occam(
    x: np.ndarray, h: np.ndarray, lo: np.ndarray, hi: np.ndarray, uniform: np.ndarray, log_prior_density: float
) -> tuple[float, np.ndarray, bool]:
    """(log Z − log L(θ*), posterior covariance C̃, ill-conditioned?) — see the module docstring.

    ``h``: information at the optimum ``x`` (JᵀWJ plus any Gaussian prior precision), (k, k);
    ``lo``, ``hi``: the prior box; ``uniform``: which parameters have a uniform prior (they get
    12/w² added); ``log_prior_density``: log π(θ*).
    """
    x, lo, hi = (np.asarray(a, dtype=float) for a in (x, lo, hi))
    widths = hi - lo
    h_tilde = np.array(h, dtype=float, copy=True)
    idx = np.flatnonzero(uniform)
    h_tilde[idx, idx] += 12.0 / widths[idx] ** 2
    cov, logdet, ill = invert_information(h_tilde, widths)
    sig = np.sqrt(np.clip(np.diag(cov), 0, None))
    log_mass = sum(log_box_mass(float(x[i]), float(sig[i]), float(lo[i]), float(hi[i])) for i in range(len(x)))
    return float(log_prior_density + 0.5 * len(x) * math.log(2 * math.pi) - 0.5 * logdet + log_mass), cov, ill


def posterior_probabilities(log_posterior: Mapping[str, float]) -> dict[str, float]:
    """Normalise unnormalised log posteriors (log prior + log evidence) into probabilities.

    Non-finite entries get probability 0; if none is finite, every entry gets 0.
    """
    finite = {m: v for m, v in log_posterior.items() if np.isfinite(v)}
    if not finite:
        return {m: 0.0 for m in log_posterior}
    top = max(finite.values())
    un = {m: math.exp(v - top) for m, v in finite.items()}
    total = sum(un.values())
    return {m: un.get(m, 0.0) / total for m in log_posterior}
