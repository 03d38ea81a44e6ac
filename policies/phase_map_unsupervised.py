"""Phase-map active learning when no library applies: samples are clustered by their features, and
the soft cluster memberships are the labels the map learns from.

Features are estimates the sample step reported (``SampleOutcome.estimates``, e.g. peak positions,
a lattice parameter, a SAS size), named in the options. They are standardised, clustered by a
Gaussian mixture (scikit-learn, diagonal covariances), and each sample's membership is computed with
its own measurement uncertainty added to every component's covariance — a sample whose features
are poorly determined gets a soft, spread membership rather than a confident one. A sample missing
a feature (not identified, failed) gets no label: maximal uncertainty, as in the supervised map.

Cluster names are ``cluster-0``, ``cluster-1``, … ordered by the components' mean of the first
feature, so the names are stable across refits as long as the clusters are.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from pydantic import Field

from policies.phase_map import PhaseMapOptions, PhaseMapPolicy
from policies.protocol import PlanningContext, SampleOutcome
from policies.space import DesignSpace


class UnsupervisedPhaseMapOptions(PhaseMapOptions):
    """The map learner's options plus the clustering's."""

    features: list[str] = Field(min_length=1, description="names of the estimates that make a sample's feature vector")
    n_clusters: int = Field(default=3, ge=2, le=20, description="mixture components (phases to tell apart)")


def _features(samples: Sequence[SampleOutcome], names: Sequence[str]) -> tuple[list[int], np.ndarray, np.ndarray]:
    """Indices of samples having every feature, their values ``(m, F)`` and 1-σ ``(m, F)``."""
    rows, values, sigmas = [], [], []
    for i, s in enumerate(samples):
        if all(n in s.estimates for n in names):
            rows.append(i)
            values.append([s.estimates[n][0] for n in names])
            sigmas.append([s.estimates[n][1] for n in names])
    return rows, np.array(values, dtype=float).reshape(-1, len(names)), np.array(sigmas, dtype=float).reshape(-1, len(names))


def cluster_memberships(values: np.ndarray, sigmas: np.ndarray, n_clusters: int, seed: int) -> np.ndarray:
    """Soft memberships ``(m, K)`` of feature vectors ``values (m, F)`` with 1-σ ``sigmas (m, F)``.

    K = min(n_clusters, m). A diagonal Gaussian mixture is fitted to the standardised values; the
    membership of each sample uses covariance ``Σ_k + diag(σ_i²)`` (its own uncertainty added).
    """
    from sklearn.mixture import GaussianMixture  # imported here: validation never needs it

    centre = values.mean(axis=0)
    scale = values.std(axis=0)
    scale[scale == 0] = 1.0
    z, zs = (values - centre) / scale, sigmas / scale
    k = min(n_clusters, len(values))
    if k == 1:
        return np.ones((len(values), 1))
    mixture = GaussianMixture(k, covariance_type="diag", random_state=seed, n_init=3, reg_covar=1e-4).fit(z)
    order = np.argsort(mixture.means_[:, 0])
    means, variances, weights = mixture.means_[order], mixture.covariances_[order], mixture.weights_[order]
    total = variances[None, :, :] + zs[:, None, :] ** 2  # (m, K, F)
    log_density = -0.5 * (((z[:, None, :] - means[None]) ** 2) / total + np.log(2 * np.pi * total)).sum(axis=-1)
    log_post = np.log(weights)[None] + log_density
    log_post -= log_post.max(axis=1, keepdims=True)
    post = np.exp(log_post)
    return post / post.sum(axis=1, keepdims=True)  # type: ignore[no-any-return]


class UnsupervisedPhaseMapPolicy(PhaseMapPolicy):
    """The phase-map learner on cluster memberships instead of library labels."""

    name = "phase_map_unsupervised"
    Options = UnsupervisedPhaseMapOptions  # type: ignore[assignment]

    def __init__(self, space: DesignSpace, *, seed: int = 0, options: UnsupervisedPhaseMapOptions) -> None:
        super().__init__(space, seed=seed, options=options)
        self.options: UnsupervisedPhaseMapOptions = options

    def relabel(self, samples: Sequence[SampleOutcome]) -> list[SampleOutcome]:
        """``samples`` with their labels replaced by cluster memberships (none when a feature is missing)."""
        rows, values, sigmas = _features(samples, self.options.features)
        out = [s.model_copy(update={"label_probabilities": {}}) for s in samples]
        if rows:
            memberships = cluster_memberships(values, sigmas, self.options.n_clusters, self.seed)
            for row, p in zip(rows, memberships, strict=True):
                out[row] = samples[row].model_copy(
                    update={"label_probabilities": {f"cluster-{j}": float(q) for j, q in enumerate(p) if q > 0}}
                )
        return out

    def training_samples(self, context: PlanningContext) -> list[SampleOutcome]:
        return self.relabel(context.samples)


__all__ = ["UnsupervisedPhaseMapOptions", "UnsupervisedPhaseMapPolicy", "cluster_memberships"]
