"""Posterior confidence measures for stopping targets: pure functions of a :class:`FittedModel`.

All results are in the objective's own units. "Feasible space-filling points" are the first points
of the space's scrambled Sobol sequence for ``seed`` (``DesignSpace.sample``), so a measure is a
reproducible function of the model and its arguments.
"""

from __future__ import annotations

import math

import numpy as np
import torch

# policies.models first: it imports BoTorch with a harmless torch deprecation silenced.
from policies.models import FittedModel, recorded_model_warnings

from instruments.types import ParamValue  # noqa: E402
from policies.baselines import space_filling_points  # noqa: E402


def _reference_points(fitted: FittedModel, n_points: int, seed: int) -> torch.Tensor:
    """Encoded feasible Sobol points ``(n_points, n_columns)``."""
    if n_points < 0:
        raise ValueError(f"n_points must be >= 0, not {n_points}")
    points = space_filling_points(fitted.space, 0, n_points, seed, "sobol")
    encoded = fitted.space.encode(points) if points else np.zeros((0, fitted.space.n_columns))
    return torch.as_tensor(encoded, dtype=torch.float64)


def max_posterior_std(fitted: FittedModel, n_points: int = 1024, seed: int = 0) -> float:
    """Largest posterior standard deviation of the latent objective over the design space.

    Evaluated at ``n_points`` feasible space-filling points plus every training point; the
    observation noise is excluded (this measures what the model does not know about the
    function, not how noisy a measurement is). Objective units.
    """
    X = torch.cat([_reference_points(fitted, n_points, seed), fitted.train_X])
    _, std = fitted.predict_encoded(X.numpy())
    return float(np.max(std))


NO_SIGNAL_P_VALUE = 1e-4
"""A constant objective that explains the observations with χ² p-value above this means no structure was
seen yet (see :func:`constant_objective_p_value`). Strict (≈ 3.7 σ) because the targets test it after every
measurement: at 1 % a pure-noise campaign passes the gate by chance somewhere in a few dozen evaluations
(one noise draw of 10 flat points gave p = 0.0013), and then reads p(near optimum) ≈ 0.99; a real optimum
seen even once is far beyond it (one point 10 σ above the rest gives p ≈ 10⁻¹⁷)."""


def constant_objective_p_value(fitted: FittedModel) -> float:
    """p-value of "the objective is one constant" given the observations and their noise (χ², n − 1 dof).

    Why this gate exists: the GP's amplitude is learned from the spread of the observed values
    (outcomes are standardised), so when every observation is noise around one level the model
    concludes the function is flat to within that noise everywhere — a narrow optimum it never saw
    included — and its confidence measures read as certainty (p(incumbent near optimum) = 1.000 after
    14 noise-level yields in a 4-D composition space whose best is 5× the incumbent). While a constant
    explains the data, the model has learned nothing about where the optimum is, and a target built on
    it must not be met. The noise is the analysis' σ (fixed or imputed), else the GP's inferred noise.
    """
    y = fitted.train_Y.reshape(-1).numpy()
    if y.size < 2:
        return 1.0
    if fitted.train_Yvar is not None:
        variance = fitted.train_Yvar.reshape(-1).numpy()
    else:
        variance = np.full(y.size, float(fitted.hyperparameters()["noise"] or 0.0))
    variance = np.maximum(variance, 1e-300)
    weights = 1.0 / variance
    level = float(np.sum(weights * y) / np.sum(weights))
    chi_square = float(np.sum(weights * (y - level) ** 2))
    from scipy.stats import chi2  # local: scipy.stats costs start-up time (see policies/space.py)

    return float(chi2.sf(chi_square, y.size - 1))


def prob_incumbent_near_optimum(
    fitted: FittedModel, epsilon: float, n_samples: int = 512, n_points: int = 512, seed: int = 0
) -> tuple[float, dict[str, ParamValue]]:
    """Posterior probability that the incumbent is within ``epsilon`` of the optimum.

    The incumbent is the *observed* point with the best posterior mean (highest when maximising,
    lowest when minimising). Joint posterior samples of the latent objective are drawn over
    {incumbent} ∪ ``n_points`` feasible Sobol points ∪ the training points; the probability is the
    fraction of samples where the incumbent is within ``epsilon`` (objective units) of the best
    value in that sample (``f(inc) >= max f - epsilon``, or ``<= min f + epsilon`` when minimising).

    Returns:
        ``(probability, incumbent params)``; the params are those recorded in the history.
    """
    if not math.isfinite(epsilon) or epsilon < 0:
        raise ValueError(f"epsilon must be a finite number >= 0 (objective units), not {epsilon}")
    if n_samples < 1:
        raise ValueError(f"n_samples must be >= 1, not {n_samples}")

    with torch.no_grad(), recorded_model_warnings():
        # Model units: sign-flipped so that larger is better for either direction.
        train_mean = fitted.posterior_model_units(fitted.train_X).mean.reshape(-1)
        incumbent = int(torch.argmax(train_mean))
        X = torch.cat([fitted.train_X[incumbent : incumbent + 1], _reference_points(fitted, n_points, seed), fitted.train_X])
        posterior = fitted.posterior_model_units(X)
        mean = posterior.mean.reshape(-1)
        covariance = posterior.distribution.covariance_matrix.reshape(len(X), len(X))

    samples = _joint_samples(mean, covariance, n_samples, seed)  # (n_samples, m)
    best = samples.max(dim=1).values
    near = samples[:, 0] >= best - epsilon
    return float(near.double().mean()), dict(fitted.train_params[incumbent])


def _joint_samples(mean: torch.Tensor, covariance: torch.Tensor, n_samples: int, seed: int) -> torch.Tensor:
    """Samples ``(n_samples, m)`` of N(mean, covariance), reproducible by ``seed``.

    The covariance is singular by construction (the incumbent appears twice, and a dense set of
    points is nearly collinear), so a small diagonal jitter, relative to the mean variance, is
    added until the Cholesky factorisation succeeds; an eigendecomposition with negative
    eigenvalues clipped is the last resort.
    """
    m = len(mean)
    covariance = 0.5 * (covariance + covariance.T)
    scale = float(torch.diagonal(covariance).mean().clamp_min(1e-300))
    identity = torch.eye(m, dtype=covariance.dtype)
    root = None
    for relative_jitter in (1e-10, 1e-8, 1e-6, 1e-4):
        factor, info = torch.linalg.cholesky_ex(covariance + relative_jitter * scale * identity)
        if int(info) == 0:
            root = factor
            break
    if root is None:
        eigenvalues, eigenvectors = torch.linalg.eigh(covariance)
        root = eigenvectors * eigenvalues.clamp_min(0.0).sqrt()
    generator = torch.Generator().manual_seed(int(seed))
    z = torch.randn(m, n_samples, generator=generator, dtype=covariance.dtype)
    return (mean.unsqueeze(-1) + root @ z).T


__all__ = ["NO_SIGNAL_P_VALUE", "constant_objective_p_value", "max_posterior_std", "prob_incumbent_near_optimum"]
