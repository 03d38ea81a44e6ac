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
from dataclasses import dataclass, replace

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
from gpytorch.kernels import Kernel, RBFKernel  # noqa: E402
from gpytorch.means import ZeroMean  # noqa: E402
from gpytorch.utils.warnings import GPInputWarning  # noqa: E402
from gpytorch.mlls import ExactMarginalLogLikelihood  # noqa: E402

from policies.map_coding import (  # noqa: E402
    ClassCoding,
    LabelCoding,
    SET_SEPARATOR,
    PresenceCoding,
    grouped_softmax,
    is_phase_set_labels,
    presence_classes,
)
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

#: Longest correlation length of the per-phase presence latents (:class:`PresenceCoding`), encoded
#: units. A phase's presence boundary runs across the whole simplex (it is the edge of one region
#: of that phase's presence, not a small field), and along the axes it does not depend on, presence
#: is constant: the fitted lengthscales there sit at the cap. At 0.4, 24–32 random samples of the
#: oxide system left the map at 0.69–0.74 median accuracy; at 2.0, 0.82–0.83 with calibration
#: kept (``benchmarks/map_oxide.py``, README).
PRESENCE_MAX_LENGTHSCALE = 2.0

#: A presence lengthscale may reach this many times the data's extent along its column (see
#: :func:`presence_lengthscale_caps`).
EXTENT_FACTOR = 2.0

#: Label-noise variance of the presence latents' targets (log-concentration units; see
#: :class:`DirichletTransform`). Measured on the oxide truth with random samples (policy level,
#: ``benchmarks/map_oxide.py``, 6–8 truths, 24–32 samples): without it 2.5 % of the points labelled
#: at p ≥ 0.95 were wrong (worst run 9 %), with 1.0 1.2 %, with 2.0 0.5–0.8 %, at the same median
#: accuracy; in ``labpilot bench map`` (real XRD labels) 1.0 still left the random campaign's maps
#: 0.938 right at p ≥ 0.95, hence 2.0.
PRESENCE_LABEL_NOISE = 2.0

#: Warp of the composition columns seen by the presence latents (:func:`presence_inputs`):
#: "sqrt" or None (the encoded fractions as they are).
COMPOSITION_WARP: str | None = "sqrt"

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
    pseudo-count of a fully confident label (``α = α_ε + strength``); ``label_noise``: a variance
    (log-concentration units) added to every target's — the label is a reading of the *made*
    sample, whose composition and temperature scatter about the recipe's, and whose minor phases a
    diffraction analysis may miss near a boundary; None: the coding's default
    (:data:`PRESENCE_LABEL_NOISE` for phase-set presence, 0 for one latent per class).
    """

    alpha_epsilon: float = 0.01
    strength: float = 1.0
    label_noise: float | None = None

    def targets(self, probabilities: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``probabilities (n, L)`` with rows summing to ≤ 1 → (targets (n, L), noise variances (n, L))."""
        alpha = self.alpha_epsilon + self.strength * np.clip(probabilities, 0.0, 1.0)
        variance = np.log(1.0 / alpha + 1.0)
        return np.log(alpha) - variance / 2.0, variance + (self.label_noise or 0.0)


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


def label_coding(samples: Sequence[SampleOutcome], known: Sequence[str] = ()) -> LabelCoding:
    """The map's classes and their latents: per-phase presence when the labels are phase sets of
    at least two phases (:class:`PresenceCoding`), else one latent per label (:func:`map_labels`).

    Phases of the presence coding: those of the ``known`` labels and of every label some sample
    holds at p ≥ 0.5 — a phase only ever offered as a minor rival (a decoy at p = 0.02) is not
    modelled: its sets drop out of the classes (their mass counts as "none of these"), which keeps
    the class count from doubling per decoy.
    """
    labels = map_labels(samples, known)
    if not is_phase_set_labels(labels):
        return ClassCoding(labels)
    supported = list(known) + sorted(
        {label for s in samples for label, p in s.label_probabilities.items() if p >= 0.5} - set(known))
    if not supported:
        return ClassCoding(labels)
    classes, phases = presence_classes(supported, max(len(label.split(SET_SEPARATOR)) for label in labels))
    return PresenceCoding(classes, phases) if len(phases) >= 2 else ClassCoding(labels)


def labelled(samples: Sequence[SampleOutcome]) -> list[SampleOutcome]:
    """The samples whose outcome is information about the map (see :data:`LABELLED_STATUSES`)."""
    return [s for s in samples if s.status in LABELLED_STATUSES]


def presence_inputs(space: DesignSpace, coding: LabelCoding, X: np.ndarray) -> np.ndarray:
    """What the latents see of encoded points ``X (N, n_columns)``: for the presence coding, every
    composition fraction's square root (:data:`COMPOSITION_WARP`); otherwise ``X`` unchanged.

    Why: a phase is absent only within a band along the simplex edge where its component is scarce
    (its absence is the other phases' solubility of it: a few per cent to tens of per cent), and
    present everywhere else. In the fractions themselves that is a step a few hundredths from 0
    and flat elsewhere — no single RBF lengthscale fits both, and a stationary GP either blurs the
    band or carries "absent" from edge samples deep into the three-phase interior. The square root
    stretches the scarce end (0.01 → 0.1, 0.05 → 0.22, 0.25 → 0.5), so the band and the interior
    need similar lengthscales.
    """
    if COMPOSITION_WARP is None or not isinstance(coding, PresenceCoding) or not space.compositions:
        return X
    slices = space.column_slices()
    out = np.array(X, dtype=float, copy=True)
    for group in space.compositions:
        for name in group.parameters:
            column = slices[name].start
            out[:, column] = np.sqrt(np.clip(out[:, column], 0.0, 1.0))
    return out


class PhaseMap:
    """A fitted map: latent GPs and their class probabilities anywhere in the space.

    ``coding``: how the classes map to latents (:mod:`policies.map_coding`); ``labels``: the
    classes, in column order of every ``(…, L)`` array; latent arrays are ``(…, M)`` with
    ``M = coding.n_latents``; ``train_X``: encoded recipes ``(n, n_columns)``;
    ``y_offset``/``y_scale``: the shared standardisation of the targets.
    """

    def __init__(
        self, space: DesignSpace, coding: LabelCoding, model: SingleTaskGP, transform: DirichletTransform,
        y_offset: float, y_scale: float, train_X: torch.Tensor,
    ) -> None:
        self.space = space
        self.coding = coding
        self.labels = list(coding.labels)
        self.n_latents = coding.n_latents
        self.model = model
        self.transform = transform
        self.y_offset = y_offset
        self.y_scale = y_scale
        self.train_X = train_X
        self._draws = np.random.default_rng(0).standard_normal((N_DRAWS, 1, coding.n_latents))

    def standardised_targets(self, probabilities: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Soft labels ``(n, L)`` → latent targets and noise variances ``(n, M)``, standardised units."""
        y, var = self.transform.targets(self.coding.latent_mass(probabilities))
        return (y - self.y_offset) / self.y_scale, var / self.y_scale**2

    def joint_latent(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Joint posterior of the latents at encoded points ``X (N, n_columns)``: means ``(M, N)`` and
        covariances ``(M, N, N)``, standardised units (latents are independent a posteriori)."""
        X = presence_inputs(self.space, self.coding, X)
        Xt = torch.as_tensor(X, dtype=torch.float64).unsqueeze(0).expand(self.n_latents, -1, -1)
        with torch.no_grad(), recorded_model_warnings(), warnings.catch_warnings(), single_threaded_torch():
            warnings.simplefilter("ignore", GPInputWarning)  # evaluating at the training points is intended
            mvn = self.model(Xt)
            return mvn.mean.numpy().copy(), mvn.covariance_matrix.numpy().copy()

    def latent(self, X: np.ndarray, chunk: int = 1024) -> tuple[np.ndarray, np.ndarray]:
        """Marginal latent means and variances at ``X (N, n_columns)``, each ``(N, M)``."""
        means, variances = [], []
        X = presence_inputs(self.space, self.coding, X)
        for start in range(0, len(X), chunk):
            Xt = torch.as_tensor(X[start:start + chunk], dtype=torch.float64)
            Xt = Xt.unsqueeze(0).expand(self.n_latents, -1, -1)
            with torch.no_grad(), recorded_model_warnings(), warnings.catch_warnings(), single_threaded_torch():
                warnings.simplefilter("ignore", GPInputWarning)
                mvn = self.model(Xt)
                means.append(mvn.mean.numpy().T)
                variances.append(mvn.variance.numpy().T)
        return np.concatenate(means), np.concatenate(variances)

    def probabilities_from_latent(self, mean: np.ndarray, variance: np.ndarray, n_draws: int = N_DRAWS) -> np.ndarray:
        """Class probabilities ``(..., L)`` from independent Gaussian latents ``mean, variance
        (..., M)`` in standardised units: E[softmax(f)] within each softmax group of the coding, then
        the coding's classes. The softmax acts on log-concentrations, so the shared scale is undone
        first (the shared offset cancels)."""
        draws = self._draws[:n_draws].reshape((n_draws,) + (1,) * (mean.ndim - 1) + (self.n_latents,))
        f = self.y_scale * (mean[None] + np.sqrt(np.maximum(variance, 0.0))[None] * draws)
        return self.coding.classes(grouped_softmax(f, self.coding.group).mean(axis=0))

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
    coding = label_coding(data, known_labels)
    if transform.label_noise is None:
        transform = replace(transform, label_noise=PRESENCE_LABEL_NOISE if isinstance(coding, PresenceCoding) else 0.0)
    y, var = transform.targets(coding.latent_mass(label_matrix(data, coding.labels)))
    offset = float(y.mean())
    scale = float(y.std()) or 1.0
    encoded = space.encode([s.recipe for s in data])
    train_X = torch.as_tensor(encoded, dtype=torch.float64)
    model_X = torch.as_tensor(presence_inputs(space, coding, encoded), dtype=torch.float64)
    train_Y = torch.as_tensor((y - offset) / scale)
    train_Yvar = torch.as_tensor(var / scale**2)
    longest = presence_lengthscale_caps(model_X) if isinstance(coding, PresenceCoding) else MAX_LENGTHSCALE
    model = _fit_latent_gps(model_X, train_Y, train_Yvar, longest)
    return PhaseMap(space, coding, model, transform, offset, scale, train_X)


def latent_kernel(n_columns: int, batch: torch.Size, longest: float | torch.Tensor = MAX_LENGTHSCALE) -> Kernel:
    """The latents' covariance: ARD RBF, lengthscales in [MIN_LENGTHSCALE, ``longest``] (encoded
    units; ``longest`` a number or one per column), starting at half the cap."""
    kernel = RBFKernel(
        ard_num_dims=n_columns, batch_shape=batch, lengthscale_constraint=Interval(MIN_LENGTHSCALE, longest),
    ).to(torch.float64)
    kernel.lengthscale = torch.as_tensor(longest, dtype=torch.float64) / 2 * torch.ones(n_columns, dtype=torch.float64)
    return kernel


def presence_lengthscale_caps(train_X: torch.Tensor) -> torch.Tensor:
    """Per-column lengthscale caps of the presence latents: :data:`EXTENT_FACTOR` times the data's
    extent along the column, within [MAX_LENGTHSCALE, PRESENCE_MAX_LENGTHSCALE].

    Why: a long lengthscale along an axis says "presence does not change along it" — a claim the
    data can support only over the range they cover. Samples all on one face of the space (a
    raster grid's first rows) would otherwise be extrapolated confidently across the whole space
    (measured: 0.68 of the p ≥ 0.95 points right after the grid's first 16 samples with a flat cap).
    """
    extent = train_X.max(dim=0).values - train_X.min(dim=0).values
    return torch.clamp(EXTENT_FACTOR * extent, MAX_LENGTHSCALE, PRESENCE_MAX_LENGTHSCALE)


def _fit_latent_gps(
    train_X: torch.Tensor, train_Y: torch.Tensor, train_Yvar: torch.Tensor, longest: float | torch.Tensor = MAX_LENGTHSCALE,
) -> SingleTaskGP:
    """One zero-mean GP per latent (a batched SingleTaskGP, ARD RBF kernel with lengthscales in
    [MIN_LENGTHSCALE, ``longest``]), fitted by marginal likelihood; with a single point, the
    initial lengthscales (half the cap) are kept."""
    batch = torch.Size([train_Y.shape[-1]])
    kernel = latent_kernel(train_X.shape[-1], batch, longest)
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
    "label_coding",
    "label_matrix",
    "labelled",
    "map_labels",
]
