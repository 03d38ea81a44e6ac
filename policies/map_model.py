"""A probabilistic phase map over the design space, learned from soft labels.

Method: Dirichlet-based GP classification (Milios et al., NeurIPS 2018). A sample's soft label
``p`` (label → probability, Σp ≤ 1) becomes Dirichlet concentrations ``α_c = α_ε + strength · p_c``;
each ``α_c`` is moment-matched by a log-normal, giving a regression target
``y_c = log α_c − σ²_c / 2`` with a per-point noise variance ``σ²_c = log(1/α_c + 1)``. One GP per
label (a batched BoTorch ``SingleTaskGP`` with fixed per-point noise) is fitted to these targets; the
map's class probabilities at x are the expectation of ``softmax(f(x))`` over the GP posterior,
estimated with fixed normal draws (common random numbers, so a map is a deterministic function of
its data).

Why this shape:

* soft labels enter as they are: a 0.5/0.5 sample gives equal targets with larger noise, so it
  does not make the map confident; GPyTorch's ``DirichletClassificationLikelihood`` takes integer
  labels only, hence the transform is done here;
* the mass a sample puts on *none of the labels* (1 − Σp) adds to no ``α_c``: a not-identified
  sample has ``α_c = α_ε`` for every label — equal, very noisy targets — i.e. maximal uncertainty
  and almost no pull on the map, never a confident label;
* far from data every latent reverts to the same prior (one zero mean after a *shared*
  standardisation of all labels' targets), so the map there is uncertain, not the majority label.

Inputs are encoded by :meth:`DesignSpace.encode` (unit cube; a composition group keeps all its
fraction columns — the GP simply sees points on a simplex face). Tensors are ``torch.float64``.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch

# policies.models first: it imports BoTorch with a harmless torch deprecation silenced.
from policies.models import recorded_model_warnings

from botorch.exceptions.errors import ModelFittingError  # noqa: E402
from botorch.exceptions.warnings import InputDataWarning, OptimizationWarning  # noqa: E402
from botorch.fit import fit_gpytorch_mll  # noqa: E402
from botorch.models import SingleTaskGP  # noqa: E402
from botorch.utils.sampling import manual_seed  # noqa: E402
from gpytorch.constraints import Interval  # noqa: E402
from gpytorch.kernels import RBFKernel  # noqa: E402
from gpytorch.means import ZeroMean  # noqa: E402
from gpytorch.utils.warnings import GPInputWarning  # noqa: E402
from gpytorch.mlls import ExactMarginalLogLikelihood  # noqa: E402

from policies.protocol import SampleOutcome  # noqa: E402
from policies.space import DesignSpace  # noqa: E402

#: Statuses whose label is information about the map (a not-identified sample counts: its label is
#: "maximal uncertainty"); failed and unreachable samples carry no label at all.
LABELLED_STATUSES = frozenset({"answered", "budget", "not_identified"})

#: Name of the placeholder class used when fewer than two labels have been seen, so that the map
#: can say "not this label" (a softmax over one class is always certain).
UNSEEN_LABEL = "(unseen)"

#: L-BFGS iterations of a map fit: the marginal likelihood is flat near its optimum, and a map is
#: refitted for every decision, so a bounded fit keeps planning to about a second.
MAX_FIT_ITERATIONS = 60

#: Longest correlation length of the latents (encoded units: mole fraction, or fraction of a process
#: variable's range). Uncapped, ARD lets a label that did not vary along an axis *within the data*
#: be extrapolated confidently to the far end of that axis; capped, a point farther than a few
#: lengthscales from every sample reverts to the prior: an uncertain map.
MAX_LENGTHSCALE = 0.4

#: Shortest correlation length (encoded units), BoTorch's default floor.
MIN_LENGTHSCALE = 0.025

#: Number of fixed normal draws used to average softmax(f) over the posterior.
N_DRAWS = 256


@contextmanager
def single_threaded_torch() -> Iterator[None]:
    """Run torch and the BLAS/OpenMP pools (scipy's L-BFGS-B included) on one thread inside the
    block, then restore the previous counts.

    A map's matrices are tens to hundreds of rows: thread pools only add synchronisation, and on a
    loaded 2-core machine they made one map fit 7.3 s instead of 0.4 s (measured). The counts are
    process-wide, so they are restored on exit.
    """
    # threadpoolctl comes with scikit-learn (a dependency); imported here to keep import light.
    from threadpoolctl import threadpool_limits

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with threadpool_limits(limits=1):
            yield
    finally:
        torch.set_num_threads(previous)


@dataclass(frozen=True)
class DirichletTransform:
    """Soft labels → GP regression targets and noise (Milios et al. 2018), dimensionless.

    ``alpha_epsilon``: concentration given to a label with no probability mass; ``strength``: the
    pseudo-count of a fully confident label (``α = α_ε + strength``).
    """

    alpha_epsilon: float = 0.01
    strength: float = 1.0

    def targets(self, probabilities: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``probabilities (n, L)`` with rows summing to ≤ 1 → (targets (n, L), noise variances (n, L))."""
        alpha = self.alpha_epsilon + self.strength * np.clip(probabilities, 0.0, 1.0)
        variance = np.log(1.0 / alpha + 1.0)
        return np.log(alpha) - variance / 2.0, variance


def label_matrix(samples: Sequence[SampleOutcome], labels: Sequence[str]) -> np.ndarray:
    """Soft labels of ``samples`` as ``(n, len(labels))``; mass on unlisted labels is dropped (it is
    "none of these"), a sample with no label probabilities is an all-zero row."""
    out = np.zeros((len(samples), len(labels)))
    index = {label: j for j, label in enumerate(labels)}
    for i, sample in enumerate(samples):
        for label, p in sample.label_probabilities.items():
            if label in index:
                out[i, index[label]] = p
    return out


def map_labels(samples: Sequence[SampleOutcome], known: Sequence[str] = ()) -> list[str]:
    """The map's classes: ``known`` labels in order, then every label a sample put mass on (sorted),
    then :data:`UNSEEN_LABEL` if that leaves fewer than two."""
    seen = sorted({label for s in samples for label, p in s.label_probabilities.items() if p > 0} - set(known))
    labels = list(known) + seen
    if len(labels) < 2:
        labels.append(UNSEEN_LABEL)
    return labels


def labelled(samples: Sequence[SampleOutcome]) -> list[SampleOutcome]:
    """The samples whose outcome is information about the map (see :data:`LABELLED_STATUSES`)."""
    return [s for s in samples if s.status in LABELLED_STATUSES]


class PhaseMap:
    """A fitted map: latent GPs per label and their class probabilities anywhere in the space.

    ``labels``: the classes, in column order of every ``(…, L)`` array; ``train_X``: encoded recipes
    ``(n, n_columns)``; ``y_offset``/``y_scale``: the shared standardisation of the targets.
    """

    def __init__(
        self, space: DesignSpace, labels: list[str], model: SingleTaskGP, transform: DirichletTransform,
        y_offset: float, y_scale: float, train_X: torch.Tensor,
    ) -> None:
        self.space = space
        self.labels = labels
        self.model = model
        self.transform = transform
        self.y_offset = y_offset
        self.y_scale = y_scale
        self.train_X = train_X
        self._draws = np.random.default_rng(0).standard_normal((N_DRAWS, 1, len(labels)))

    def standardised_targets(self, probabilities: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Soft labels ``(n, L)`` → targets and noise variances in the model's standardised units."""
        y, var = self.transform.targets(probabilities)
        return (y - self.y_offset) / self.y_scale, var / self.y_scale**2

    def joint_latent(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Joint posterior of the latents at encoded points ``X (N, n_columns)``: means ``(L, N)`` and
        covariances ``(L, N, N)``, standardised units (labels are independent a posteriori)."""
        Xt = torch.as_tensor(X, dtype=torch.float64).unsqueeze(0).expand(len(self.labels), -1, -1)
        with torch.no_grad(), recorded_model_warnings(), warnings.catch_warnings(), single_threaded_torch():
            warnings.simplefilter("ignore", GPInputWarning)  # evaluating at the training points is intended
            mvn = self.model(Xt)
            return mvn.mean.numpy().copy(), mvn.covariance_matrix.numpy().copy()

    def latent(self, X: np.ndarray, chunk: int = 1024) -> tuple[np.ndarray, np.ndarray]:
        """Marginal latent means and variances at ``X (N, n_columns)``, each ``(N, L)``."""
        means, variances = [], []
        for start in range(0, len(X), chunk):
            Xt = torch.as_tensor(X[start:start + chunk], dtype=torch.float64)
            Xt = Xt.unsqueeze(0).expand(len(self.labels), -1, -1)
            with torch.no_grad(), recorded_model_warnings(), warnings.catch_warnings(), single_threaded_torch():
                warnings.simplefilter("ignore", GPInputWarning)
                mvn = self.model(Xt)
                means.append(mvn.mean.numpy().T)
                variances.append(mvn.variance.numpy().T)
        return np.concatenate(means), np.concatenate(variances)

    def probabilities_from_latent(self, mean: np.ndarray, variance: np.ndarray, n_draws: int = N_DRAWS) -> np.ndarray:
        """E[softmax(f)] for independent Gaussian latents ``mean, variance (..., L)`` in standardised
        units → ``(..., L)``. The softmax acts on log-concentrations, so the shared scale is undone
        first (the shared offset cancels)."""
        draws = self._draws[:n_draws].reshape((n_draws,) + (1,) * (mean.ndim - 1) + (len(self.labels),))
        f = self.y_scale * (mean[None] + np.sqrt(np.maximum(variance, 0.0))[None] * draws)
        f -= f.max(axis=-1, keepdims=True)
        e = np.exp(f)
        return (e / e.sum(axis=-1, keepdims=True)).mean(axis=0)  # type: ignore[no-any-return]

    def probabilities(self, X: np.ndarray) -> np.ndarray:
        """The map at encoded points ``X (N, n_columns)``: class probabilities ``(N, L)``, rows sum to 1."""
        return self.probabilities_from_latent(*self.latent(X))

    def probabilities_at(self, points: Sequence[dict]) -> np.ndarray:  # type: ignore[type-arg]
        """The map at design-space points (the space's own units) → ``(N, L)``."""
        return self.probabilities(self.space.encode(points))


def fit_phase_map(
    space: DesignSpace, samples: Sequence[SampleOutcome], *, known_labels: Sequence[str] = (),
    transform: DirichletTransform | None = None,
) -> PhaseMap:
    """Fit the map to the labelled ``samples`` (others are ignored).

    Raises:
        ValueError: no labelled sample (nothing to learn from: plan a space-filling design instead).
    """
    transform = transform or DirichletTransform()
    data = labelled(samples)
    if not data:
        raise ValueError("no labelled sample to learn a phase map from")
    labels = map_labels(data, known_labels)
    y, var = transform.targets(label_matrix(data, labels))
    offset = float(y.mean())
    scale = float(y.std()) or 1.0
    train_X = torch.as_tensor(space.encode([s.recipe for s in data]), dtype=torch.float64)
    train_Y = torch.as_tensor((y - offset) / scale)
    train_Yvar = torch.as_tensor(var / scale**2)
    model = _fit_latent_gps(train_X, train_Y, train_Yvar)
    return PhaseMap(space, labels, model, transform, offset, scale, train_X)


def _fit_latent_gps(train_X: torch.Tensor, train_Y: torch.Tensor, train_Yvar: torch.Tensor) -> SingleTaskGP:
    """One zero-mean GP per label (a batched SingleTaskGP, ARD RBF kernel with lengthscales in
    [MIN_LENGTHSCALE, MAX_LENGTHSCALE]), fitted by marginal likelihood; with a single point, the
    initial lengthscales (half the cap) are kept."""
    n_labels = train_Y.shape[-1]
    batch = torch.Size([n_labels])
    kernel = RBFKernel(
        ard_num_dims=train_X.shape[-1], batch_shape=batch,
        lengthscale_constraint=Interval(MIN_LENGTHSCALE, MAX_LENGTHSCALE, initial_value=MAX_LENGTHSCALE / 2),
    ).to(torch.float64)
    with warnings.catch_warnings():
        # The targets are standardised jointly over labels (see the module docstring), on purpose
        # not per label, which BoTorch's check would prefer.
        warnings.simplefilter("ignore", InputDataWarning)
        model = SingleTaskGP(
            train_X, train_Y, train_Yvar, outcome_transform=None, mean_module=ZeroMean(batch_shape=batch),
            covar_module=kernel,
        )
    if len(train_X) >= 2:
        mll = ExactMarginalLogLikelihood(model.likelihood, model)
        with manual_seed(0), recorded_model_warnings(), warnings.catch_warnings(), single_threaded_torch():
            warnings.simplefilter("ignore", RuntimeWarning)  # a line-search stop still leaves a usable fit
            warnings.simplefilter("ignore", OptimizationWarning)  # so does the iteration cap
            try:
                fit_gpytorch_mll(mll, optimizer_kwargs={"options": {"maxiter": MAX_FIT_ITERATIONS}})
            except ModelFittingError:
                pass  # keep the prior hyperparameters: an uncertain map, never a crash
    model.eval()
    return model


__all__ = [
    "DirichletTransform",
    "LABELLED_STATUSES",
    "PhaseMap",
    "UNSEEN_LABEL",
    "fit_phase_map",
    "label_matrix",
    "labelled",
    "map_labels",
]
