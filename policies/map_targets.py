"""Campaign-level measures of a phase map and of the best material: pure functions for targets and
the benchmark.

Conventions: ``probabilities (G, L)`` are a map's class probabilities on G grid points (rows sum to
1; column j is ``labels[j]``); ``points_X (G, n_columns)`` the same points encoded by
:meth:`DesignSpace.encode`, so distances are in encoded units — for a composition component whose
bounds are [0, 1] that is the mole (or mass) fraction itself, for a process variable the fraction
of its range. The grid must be dense compared with any ``delta`` used (spacing < delta).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

# policies.models first: it imports BoTorch with a harmless torch deprecation silenced.
from policies.models import FittedModel, recorded_model_warnings

from instruments.types import ParamValue  # noqa: E402
from policies.baselines import space_filling_points  # noqa: E402
from policies.confidence import _joint_samples  # noqa: E402
from policies.map_model import fit_phase_map, labelled, single_threaded_torch  # noqa: E402
from policies.protocol import SampleOutcome  # noqa: E402
from policies.space import DesignSpace  # noqa: E402


@dataclass(frozen=True)
class MapOnGrid:
    """A fitted map evaluated on a fixed grid: what every map target reads.

    ``points``: the grid (design-space units); ``points_X (G, n_columns)``: encoded;
    ``probabilities (G, L)``; ``labels``: the L classes.
    """

    points: list[dict[str, ParamValue]]
    points_X: np.ndarray
    probabilities: np.ndarray
    labels: list[str]


def map_on_grid(
    space: DesignSpace, samples: Sequence[SampleOutcome], *, known_labels: Sequence[str] = (), n_points: int = 1024, seed: int = 0,
) -> MapOnGrid | None:
    """Fit the map of ``samples`` and evaluate it on the space's first ``n_points`` feasible Sobol
    points for ``seed`` (the same grid at every evaluation); None before any labelled sample."""
    if not labelled(samples):
        return None
    phase_map = fit_phase_map(space, samples, known_labels=known_labels)
    points = space_filling_points(space, 0, n_points, seed, "sobol")
    X = space.encode(points)
    with single_threaded_torch():
        return MapOnGrid(points, X, phase_map.probabilities(X), list(phase_map.labels))


def predicted_labels(probabilities: np.ndarray, labels: Sequence[str]) -> list[str]:
    """The most probable label of each row of ``probabilities (G, L)``."""
    return [labels[j] for j in np.argmax(probabilities, axis=1)]


def map_confidence(probabilities: np.ndarray, p: float) -> float:
    """Fraction of grid points whose most probable label has probability ≥ ``p`` (0–1)."""
    if not 0.0 < p <= 1.0:
        raise ValueError(f"p must be in (0, 1], not {p}")
    if len(probabilities) == 0:
        return 0.0
    return float(np.mean(probabilities.max(axis=1) >= p))


def expected_accuracy(probabilities: np.ndarray) -> float:
    """The accuracy a calibrated map expects of itself: the mean over grid points of the most probable
    label's probability (0–1; 0 for an empty grid). Each point's label is right with probability its max p."""
    if len(probabilities) == 0:
        return 0.0
    return float(np.mean(probabilities.max(axis=1)))


def map_accuracy(predicted: Sequence[str], truth: Sequence[str]) -> float:
    """Fraction of grid points whose predicted label equals the true one (0–1)."""
    if len(predicted) != len(truth):
        raise ValueError(f"{len(predicted)} predicted labels for {len(truth)} true ones")
    if not truth:
        raise ValueError("no grid point to score")
    return float(np.mean([a == b for a, b in zip(predicted, truth, strict=True)]))


@dataclass(frozen=True)
class Calibration:
    """Of the grid points labelled with probability ≥ ``threshold``: how many (``count``) and the
    fraction right (``fraction_right``, None when there are none)."""

    threshold: float
    count: int
    fraction_right: float | None


def calibration(probabilities: np.ndarray, labels: Sequence[str], truth: Sequence[str], threshold: float = 0.95) -> Calibration:
    """How often the map is right where it is confident: a calibrated map has
    ``fraction_right ≥ threshold`` (the issue's goal: ≥ 95 % right at p ≥ 0.95)."""
    confident = probabilities.max(axis=1) >= threshold
    right = np.array([a == b for a, b in zip(predicted_labels(probabilities, labels), truth, strict=True)])
    count = int(confident.sum())
    return Calibration(threshold, count, float(right[confident].mean()) if count else None)


@dataclass(frozen=True)
class BoundaryLocation:
    """``value``: mean probability of the predicted label over the grid points farther than δ from
    the predicted boundary (the map's expected accuracy away from its boundaries; 0 when no point is
    that far); ``band_fraction``: fraction of the grid within δ of the predicted boundary."""

    value: float
    band_fraction: float
    delta: float


def boundary_location(points_X: np.ndarray, probabilities: np.ndarray, delta: float) -> BoundaryLocation:
    """How well the boundaries are located to ± ``delta`` (encoded units, see the module docstring).

    Definition: a grid point lies in the *δ band* when a grid point with a different predicted
    label is within Euclidean distance δ of it. "The boundary is located to ± δ with probability p"
    means the map is right, with probability ≥ p on average, everywhere outside the band: every
    predicted boundary is then within δ of a true one wherever the map is calibrated. The target
    is met when ``value ≥ p``.
    """
    if not delta > 0:
        raise ValueError(f"delta must be > 0 (encoded units), not {delta}")
    labels = np.argmax(probabilities, axis=1)
    band = np.zeros(len(points_X), dtype=bool)
    for start in range(0, len(points_X), 512):  # (chunk, G) distances bound memory
        chunk = points_X[start:start + 512]
        distance = np.linalg.norm(chunk[:, None, :] - points_X[None, :, :], axis=-1)
        differs = labels[start:start + 512, None] != labels[None, :]
        band[start:start + 512] = np.any((distance <= delta) & differs, axis=1)
    outside = ~band
    value = float(probabilities.max(axis=1)[outside].mean()) if outside.any() else 0.0
    return BoundaryLocation(value, float(band.mean()) if len(band) else 0.0, delta)


def prob_incumbent_best_in_region(
    fitted: FittedModel, points_X: np.ndarray, in_region: np.ndarray, train_in_region: np.ndarray,
    epsilon: float = 0.0, n_samples: int = 512, seed: int = 0,
) -> tuple[float, dict[str, ParamValue] | None]:
    """Posterior probability that the best made sample of a region is (within ``epsilon``) the best
    material of the region: "best material known with P ≥ p".

    Args:
        fitted: the GP of the property (objective units; ``fitted.direction`` says which way is better).
        points_X: ``(N, n_columns)`` encoded grid points; ``in_region (N,)``: which are in the region
            (e.g. the map's probability of the region ≥ 0.5).
        train_in_region: ``(n,)`` which of the model's training samples are in the region.
        epsilon: tolerance in the property's units.

    Returns:
        ``(probability, incumbent params)``; ``(0.0, None)`` when no made sample is in the region.
        The incumbent is the in-region sample with the best posterior mean; the probability is the
        fraction of joint posterior samples over {incumbent} ∪ in-region points ∪ in-region samples in
        which the incumbent is within ``epsilon`` of the best.
    """
    if not np.any(train_in_region):
        return 0.0, None
    train_idx = np.flatnonzero(train_in_region)
    with torch.no_grad(), recorded_model_warnings():
        train_mean = fitted.posterior_model_units(fitted.train_X[train_idx]).mean.reshape(-1)
        incumbent = int(train_idx[int(torch.argmax(train_mean))])
        X = torch.cat([
            fitted.train_X[incumbent:incumbent + 1],
            torch.as_tensor(points_X[np.asarray(in_region, dtype=bool)], dtype=torch.float64),
            fitted.train_X[train_idx],
        ])
        posterior = fitted.posterior_model_units(X)
        mean = posterior.mean.reshape(-1)
        covariance = posterior.distribution.covariance_matrix.reshape(len(X), len(X))
    draws = _joint_samples(mean, covariance, n_samples, seed)  # model units: larger is better
    near = draws[:, 0] >= draws.max(dim=1).values - epsilon
    return float(near.double().mean()), dict(fitted.train_params[incumbent])


__all__ = [
    "BoundaryLocation",
    "Calibration",
    "MapOnGrid",
    "map_on_grid",
    "boundary_location",
    "calibration",
    "expected_accuracy",
    "map_accuracy",
    "map_confidence",
    "predicted_labels",
    "prob_incumbent_best_in_region",
]
