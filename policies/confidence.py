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


__all__ = ["max_posterior_std", "prob_incumbent_near_optimum"]
