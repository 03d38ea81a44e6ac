"""Expected reduction of the map's uncertainty by one more sample, per second it costs.

The map's uncertainty is its *integrated entropy*: the mean over a dense feasible grid of the
entropy (nats) of the class probabilities. A candidate x is valued by a one-step lookahead: a
hypothetical sample at x comes back with label y with the map's current predictive probability
``p(y | x)``; it is added to every label's latent GP as the Dirichlet-transformed hard label (the
same transform as real samples), the grid's latents are updated by exact Gaussian conditioning
(no refit of hyperparameters), and the grid entropy recomputed. The acquisition is

    (H_now − Σ_y p(y | x) · H_after(x, y)) / expected_seconds(x)        [nats / s]

Batch-aware: pending recipes (decided, not finished) are fantasised first — each conditions the
latents with its own current predictive as a soft label, at the current mean ("kriging believer"),
which shrinks the variance around it without pretending to know its answer — so a pending recipe
and its neighbourhood are worth little. A batch of n is chosen greedily, each pick joining the
pending ones.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from policies.map_model import PhaseMap

#: Normal draws per latent when averaging softmax in the lookahead (the map itself uses more).
LOOKAHEAD_DRAWS = 32

#: Candidates evaluated together (bounds memory: draws × chunk × labels² × grid floats).
CANDIDATE_CHUNK = 16


def entropy(probabilities: np.ndarray) -> np.ndarray:
    """Shannon entropy (nats) over the last axis of ``probabilities (..., L)`` → ``(...)``."""
    p = np.clip(probabilities, 1e-300, 1.0)
    return -(p * np.log(p)).sum(axis=-1)  # type: ignore[no-any-return]


@dataclass(frozen=True)
class MapAcquisition:
    """The lookahead's answer for each candidate: ``entropy_reduction (C,)`` (nats, grid mean),
    ``probabilities (C, L)`` (the map's predictive at the candidate, pending fantasised),
    ``map_entropy`` (the grid's mean entropy after the pending fantasies, nats)."""

    entropy_reduction: np.ndarray
    probabilities: np.ndarray
    map_entropy: float


class _Latents:
    """Joint posterior of the latents over [grid; candidates; pending], updated by conditioning.

    ``mean (M, N)`` and ``cov (M, N, N)`` (M latents) in the map's standardised units.
    """

    def __init__(self, phase_map: PhaseMap, X: np.ndarray) -> None:
        self.map = phase_map
        self.mean, self.cov = phase_map.joint_latent(X)

    def probabilities(self, index: int) -> np.ndarray:
        """Predictive class probabilities ``(L,)`` at point ``index``."""
        return self.map.probabilities_from_latent(self.mean[:, index], self.cov[:, index, index])

    def fantasise(self, index: int) -> None:
        """Condition on a believer observation at ``index``: its own predictive as a soft label."""
        _, noise = self.map.standardised_targets(self.probabilities(index)[None])
        column = self.cov[:, :, index]  # (L, N)
        denominator = self.cov[:, index, index] + noise[0]  # (L,)
        self.cov -= column[:, :, None] * column[:, None, :] / denominator[:, None, None]


def expected_entropy_reduction(
    phase_map: PhaseMap, grid_X: np.ndarray, candidates_X: np.ndarray, pending_X: np.ndarray
) -> MapAcquisition:
    """One-step lookahead value of each candidate (see the module docstring).

    Args:
        grid_X: ``(G, n_columns)`` encoded integration points (feasible, space-filling).
        candidates_X: ``(C, n_columns)`` encoded candidates.
        pending_X: ``(P, n_columns)`` encoded pending recipes (may be empty).
    """
    G, C = len(grid_X), len(candidates_X)
    latents = _Latents(phase_map, np.vstack([grid_X, candidates_X, pending_X]))
    for j in range(G + C, len(latents.mean[0])):
        latents.fantasise(j)
    grid_mean = latents.mean[:, :G].T  # (G, L)
    grid_var = np.einsum("lii->li", latents.cov[:, :G, :G]).T
    # The same draws as the lookahead, so that the difference is not Monte Carlo bias.
    h_now = float(entropy(phase_map.probabilities_from_latent(grid_mean, grid_var, LOOKAHEAD_DRAWS)).mean())
    n_labels = len(phase_map.labels)
    # Hypothetical hard labels: outcome y → targets and noise of every label's latent, (L_y, L).
    targets, noise = phase_map.standardised_targets(np.eye(n_labels))
    reduction = np.zeros(C)
    probabilities = np.zeros((C, n_labels))
    for start in range(0, C, CANDIDATE_CHUNK):
        idx = np.arange(start, min(start + CANDIDATE_CHUNK, C)) + G
        p_y = np.stack([latents.probabilities(j) for j in idx])  # (c, L_y)
        h_after = _entropy_after(latents, idx, G, targets, noise, grid_mean, grid_var)  # (c, L_y)
        reduction[idx - G] = h_now - (p_y * h_after).sum(axis=1)
        probabilities[idx - G] = p_y
    return MapAcquisition(reduction, probabilities, h_now)


def _entropy_after(
    latents: _Latents, idx: np.ndarray, G: int, targets: np.ndarray, noise: np.ndarray,
    grid_mean: np.ndarray, grid_var: np.ndarray,
) -> np.ndarray:
    """Grid-mean entropy after observing hard label y at each candidate ``idx``: ``(c, L_y)``.

    Shapes inside: k ``(c, G, L)`` (grid–candidate covariances), kappa/mu_c ``(c, L)``; the updated
    latents are ``(c, L_y, G, L)``.
    """
    k = latents.cov[:, :G, :][:, :, idx].transpose(2, 1, 0)  # (c, G, L)
    kappa = latents.cov[:, idx, idx].T  # (c, L)
    mu_c = latents.mean[:, idx].T  # (c, L)
    denominator = kappa[:, None, :] + noise[None, :, :]  # (c, L_y, L)
    gain = k[:, None, :, :] / denominator[:, :, None, :]  # (c, L_y, G, L)
    mean = grid_mean[None, None] + gain * (targets[None, :, None, :] - mu_c[:, None, None, :])
    var = grid_var[None, None] - gain * k[:, None, :, :]
    p = latents.map.probabilities_from_latent(mean, var, n_draws=LOOKAHEAD_DRAWS)
    return entropy(p).mean(axis=-1)  # type: ignore[no-any-return]


__all__ = ["MapAcquisition", "entropy", "expected_entropy_reduction"]
