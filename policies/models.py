"""Gaussian-process models of the campaign objective, fitted once per history and warm-started.

Conventions used throughout ``policies``:

* inputs are encoded by :meth:`DesignSpace.encode` into the unit cube, shape ``(n, n_columns)``,
  one-hot columns for categoricals; tensors are ``torch.float64``;
* the model is fitted to ``y_model = sign * value`` with ``sign = +1`` for ``maximize`` and ``-1`` for
  ``minimize``, so that *larger is better* for every acquisition function; everything reported to
  callers (:meth:`FittedModel.predict`, hyperparameters) is converted back to the objective's own
  units and sign;
* observation noise: an observation's ``sigma`` (1-σ, objective units) becomes a fixed per-point
  noise variance ``sigma**2``; without any sigma the noise level is inferred.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import threading
import time
import warnings
from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

with warnings.catch_warnings():
    # linear_operator (imported by gpytorch and BoTorch) decorates helpers with torch.jit.script,
    # which torch 2.13 deprecates. Harmless, raised once at import, and not ours to fix; without
    # this, "warnings are errors" makes importing policies fail.
    warnings.filterwarnings("ignore", message=r".*torch\.jit\.script.*deprecated", category=DeprecationWarning)
    from botorch.exceptions.errors import ModelFittingError
    from botorch.exceptions.warnings import BotorchWarning
    from botorch.fit import fit_gpytorch_mll
    from botorch.models import SingleTaskGP
    from botorch.models.transforms.outcome import Standardize
    from botorch.optim.fit import fit_gpytorch_mll_scipy
    from botorch.utils.sampling import manual_seed
    from gpytorch.kernels import ScaleKernel
    from gpytorch.mlls import ExactMarginalLogLikelihood
    from gpytorch.utils.warnings import GPInputWarning
    from linear_operator.utils.errors import NotPSDError
    from linear_operator.utils.warnings import NumericalWarning

from instruments.types import ParamValue, finite_or_none
from policies.protocol import Observation
from policies.space import DesignSpace

Direction = Literal["maximize", "minimize"]
NoiseModel = Literal["fixed", "imputed", "inferred"]

#: Warnings that describe conditions BoTorch/GPyTorch already handled (jitter added to a Cholesky,
#: optimiser restarted, few initial candidates...). They belong in the decision log, not on stderr.
HANDLED_MODEL_WARNINGS: tuple[type[Warning], ...] = (BotorchWarning, NumericalWarning)

#: optimize_acqf reports an L-BFGS-B line-search stop (a flat acquisition surface, common for
#: qNIPV) as a plain RuntimeWarning; the best candidates found are still returned and valid.
HANDLED_RUNTIME_WARNING_MESSAGE = r"Optimization failed (in `gen_candidates_scipy`|on the second try)"

#: Smallest fixed noise variance, as a fraction of the variance of the observed values. A reported
#: sigma of exactly 0 would make the kernel matrix singular; this is far below any real noise.
MIN_NOISE_VARIANCE_FRACTION = 1e-8

#: Seed for the (rare) hyperparameter resampling BoTorch does when a fit attempt fails, so that a
#: fit is a deterministic function of its data and starting point.
FIT_SEED = 0


@contextmanager
def recorded_model_warnings() -> Iterator[list[str]]:
    """Collect handled BoTorch/GPyTorch warnings as messages instead of emitting them.

    Yields a list that is filled, on exit, with ``"Category: message"`` strings (deduplicated, in
    order). Any other warning is re-emitted unchanged, so genuine problems still surface (and are
    errors in the test suite).
    """
    messages: list[str] = []
    with warnings.catch_warnings(record=True) as caught:
        for category in HANDLED_MODEL_WARNINGS:
            warnings.simplefilter("always", category)
        warnings.filterwarnings("always", message=HANDLED_RUNTIME_WARNING_MESSAGE, category=RuntimeWarning)
        yield messages
    for w in caught:
        handled_retry = issubclass(w.category, RuntimeWarning) and re.match(HANDLED_RUNTIME_WARNING_MESSAGE, str(w.message))
        if issubclass(w.category, HANDLED_MODEL_WARNINGS) or handled_retry:
            text = f"{w.category.__name__}: {w.message}"
            if text not in messages:
                messages.append(text)
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno, source=w.source)


def direction_sign(direction: Direction) -> float:
    """+1 for ``maximize``, -1 for ``minimize``: the factor from objective values to model values."""
    if direction == "maximize":
        return 1.0
    if direction == "minimize":
        return -1.0
    raise ValueError(f"direction must be 'maximize' or 'minimize', not {direction!r}")


def history_key(space: DesignSpace, history: Sequence[Observation], direction: Direction) -> str:
    """A hash of everything a fit depends on: the space, the direction, and each (params, value, sigma)."""
    payload = {
        "space": space.model_dump(mode="json"),
        "direction": direction,
        # repr() keeps every bit of a float, so two histories hash equal only if the data are equal.
        "observations": [
            [sorted((k, repr(v)) for k, v in o.params.items()), repr(o.value), repr(o.sigma)] for o in history
        ],
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()



class FittedModel:
    """A fitted ``SingleTaskGP`` with the data and space it belongs to.

    Attributes:
        model: the BoTorch model (float64, eval mode), fitted to sign-flipped values.
        space: the design space whose ``encode`` produced ``train_X``.
        direction: the objective's direction; ``sign`` converts objective values to model values.
        train_X: tensor ``(n, n_columns)`` in the unit cube.
        train_Y: tensor ``(n, 1)``, objective units, multiplied by ``sign`` (larger is better).
        train_Yvar: tensor ``(n, 1)`` of fixed noise variances (objective units²), or None when
            the noise is inferred.
        train_params: the observed points, as given in the history (length n).
        noise_model: ``"fixed"`` (every observation had a sigma), ``"imputed"`` (missing sigmas
            replaced by the median known variance) or ``"inferred"`` (no sigma at all).
        fit_seconds: wall time of the fit in seconds (including any cold-start check).
        warm_started: whether the kept hyperparameters came from a fit started at the previous
            fit's optimum rather than from the default initialisation.
        neg_log_marginal_likelihood: the optimiser's final loss (per-point negative MLL plus
            priors); lower is better, comparable only between fits to the same data.
        fit_warnings: handled numerical/optimisation warnings raised during the fit.
        key: the :func:`history_key` of the data this model was fitted to.
    """

    def __init__(
        self,
        *,
        model: SingleTaskGP,
        space: DesignSpace,
        direction: Direction,
        train_X: torch.Tensor,
        train_Y: torch.Tensor,
        train_Yvar: torch.Tensor | None,
        train_params: Sequence[Mapping[str, ParamValue]],
        noise_model: NoiseModel,
        fit_seconds: float,
        warm_started: bool,
        neg_log_marginal_likelihood: float,
        fit_warnings: Sequence[str] = (),
        key: str = "",
    ) -> None:
        self.model = model
        self.space = space
        self.direction: Direction = direction
        self.sign = direction_sign(direction)
        self.train_X = train_X
        self.train_Y = train_Y
        self.train_Yvar = train_Yvar
        self.train_params: list[dict[str, ParamValue]] = [dict(p) for p in train_params]
        self.noise_model: NoiseModel = noise_model
        self.fit_seconds = float(fit_seconds)
        self.warm_started = bool(warm_started)
        self.neg_log_marginal_likelihood = float(neg_log_marginal_likelihood)
        self.fit_warnings = list(fit_warnings)
        self.key = key

    @property
    def n_train(self) -> int:
        return int(self.train_X.shape[0])

    def _outcome_scale(self) -> tuple[float, float]:
        """(mean, std) that Standardize removed from the model values, in objective units."""
        transform = self.model.outcome_transform
        return float(transform.means.reshape(-1)[0]), float(transform.stdvs.reshape(-1)[0])

    def hyperparameters(self) -> dict[str, object]:
        """The fitted hyperparameters as JSON-friendly values.

        ``lengthscales``: one per encoded column, in unit-cube units (fraction of each parameter's
        range). ``outputscale``: prior variance of the latent function, objective units².
        ``noise``: inferred homoscedastic noise variance, objective units² (None when fixed).
        ``mean_constant``: the GP's prior mean, objective units and sign.
        """
        y_mean, y_std = self._outcome_scale()
        kernel = self.model.covar_module
        scale = 1.0
        if isinstance(kernel, ScaleKernel):
            scale = float(kernel.outputscale.detach().reshape(-1)[0])
            kernel = kernel.base_kernel
        lengthscales = [float(v) for v in kernel.lengthscale.detach().reshape(-1)]
        noise = None
        if self.noise_model == "inferred":
            noise = finite_or_none(float(self.model.likelihood.noise.detach().reshape(-1)[0]) * y_std**2)
        mean_constant = float(self.model.mean_module.constant.detach().reshape(-1)[0]) * y_std + y_mean
        return {
            "lengthscales": [finite_or_none(v) for v in lengthscales],
            # Standardize divides values by y_std, so a unit kernel variance is y_std² in objective units².
            "outputscale": finite_or_none(scale * y_std**2),
            "noise": noise,
            "noise_model": self.noise_model,
            "mean_constant": finite_or_none(self.sign * mean_constant),
            "neg_log_marginal_likelihood": finite_or_none(self.neg_log_marginal_likelihood),
            "fit_seconds": self.fit_seconds,
            "n_train": self.n_train,
            "warm_started": self.warm_started,
        }

    def posterior_model_units(self, X: torch.Tensor, *, observation_noise: bool = False):  # noqa: ANN201
        """The BoTorch posterior at ``X`` (``(m, n_columns)``), in sign-flipped model units."""
        with warnings.catch_warnings():
            # GPyTorch warns when the query equals the training inputs, guessing the caller forgot
            # model.train(). Here the model is in eval mode on purpose (predicting at observed points).
            warnings.filterwarnings("ignore", category=GPInputWarning)
            return self.model.posterior(X, observation_noise=observation_noise)

    def predict_encoded(self, X: np.ndarray, *, observation_noise: bool = False, chunk: int = 2048) -> tuple[np.ndarray, np.ndarray]:
        """Posterior mean and standard deviation at encoded points.

        Args:
            X: array ``(m, n_columns)`` in the unit cube.
            observation_noise: include the (inferred) observation noise in the std; by default
                the std is that of the latent function.
            chunk: rows per posterior call, bounding memory for large ``m``.

        Returns:
            ``(mean, std)``, each shape ``(m,)``, in the objective's own units and sign.
        """
        X = np.atleast_2d(np.asarray(X, dtype=float))
        if X.shape[1] != self.train_X.shape[1]:
            raise ValueError(f"X has {X.shape[1]} columns; the model was fitted on {self.train_X.shape[1]}")
        means, stds = [], []
        with torch.no_grad(), recorded_model_warnings():
            for start in range(0, len(X), chunk):
                x = torch.as_tensor(X[start : start + chunk], dtype=torch.float64)
                posterior = self.posterior_model_units(x, observation_noise=observation_noise)
                means.append(posterior.mean.reshape(-1).numpy())
                stds.append(posterior.variance.clamp_min(0.0).sqrt().reshape(-1).numpy())
        if not means:
            return np.zeros(0), np.zeros(0)
        return self.sign * np.concatenate(means), np.concatenate(stds)

    def predict(self, points: Sequence[Mapping[str, ParamValue]], *, observation_noise: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """Posterior mean and std (shape ``(m,)`` each, objective units and sign) at design points."""
        return self.predict_encoded(self.space.encode(points), observation_noise=observation_noise)


@dataclass
class _Lineage:
    """What a later fit of the same kind of model can start from."""

    parameters: dict[str, torch.Tensor]
    n_at_cold_fit: int


@dataclass
class CacheStats:
    fits: int = 0
    hits: int = 0
    warm_starts: int = 0
    cold_fallbacks: int = 0
    cold_checks: int = 0


class ModelCache:
    """Fits GPs to histories; reuses a fit for an unchanged history and warm-starts the next one.

    Args:
        warm_start: start each fit from the hyperparameters of the previous fit of the same space,
            direction and noise kind (when the encoded column count matches). At large ``n`` the
            optimiser then needs a few iterations instead of dozens.
        cold_check_growth: guard against a warm start staying in a stale local optimum: whenever the
            training set has grown by this factor since the last cold (default-initialised) fit, fit
            cold as well and keep the better marginal likelihood. With 2.0 this costs one extra fit
            per doubling of the data. ``None`` disables the check.
        max_entries: how many fitted models to keep (a policy and a stopping target usually ask for
            the same history within one step).
    """

    def __init__(self, *, warm_start: bool = True, cold_check_growth: float | None = 2.0, max_entries: int = 4) -> None:
        if cold_check_growth is not None and cold_check_growth <= 1.0:
            raise ValueError(f"cold_check_growth must be > 1 (or None), not {cold_check_growth}")
        if max_entries < 1:
            raise ValueError(f"max_entries must be >= 1, not {max_entries}")
        self.warm_start = warm_start
        self.cold_check_growth = cold_check_growth
        self.max_entries = max_entries
        self.stats = CacheStats()
        self._fitted: OrderedDict[str, FittedModel] = OrderedDict()
        self._lineages: dict[tuple[str, str, bool], _Lineage] = {}
        self._lock = threading.Lock()

    def clear(self) -> None:
        with self._lock:
            self._fitted.clear()
            self._lineages.clear()

    def fit(self, space: DesignSpace, history: Sequence[Observation], direction: Direction) -> FittedModel:
        """The fitted model of ``history`` (cached when the same history was fitted before).

        Raises:
            ValueError: empty history or unknown direction.
            ModelFittingError: both the warm-started and the cold fit failed.
        """
        sign = direction_sign(direction)
        if not history:
            raise ValueError("cannot fit a model to an empty history")
        key = history_key(space, history, direction)
        with self._lock:
            cached = self._fitted.get(key)
            if cached is not None:
                self._fitted.move_to_end(key)
                self.stats.hits += 1
                return cached
            fitted = self._fit_new(space, history, direction, sign, key)
            self._fitted[key] = fitted
            while len(self._fitted) > self.max_entries:
                self._fitted.popitem(last=False)
            self.stats.fits += 1
            return fitted

    # -- internals -------------------------------------------------------------------------------
    def _fit_new(self, space: DesignSpace, history: Sequence[Observation], direction: Direction, sign: float, key: str) -> FittedModel:
        train_X = torch.as_tensor(space.encode([o.params for o in history]), dtype=torch.float64)
        values = np.array([o.value for o in history], dtype=float)
        train_Y = torch.as_tensor(sign * values, dtype=torch.float64).unsqueeze(-1)
        train_Yvar, noise_model = _noise_variances(history, values)

        space_hash = hashlib.sha256(json.dumps(space.model_dump(mode="json"), sort_keys=True).encode()).hexdigest()
        lineage_key = (space_hash, direction, train_Yvar is not None)
        lineage = self._lineages.get(lineage_key) if self.warm_start else None
        n = len(history)

        started = time.perf_counter()
        with recorded_model_warnings() as fit_warnings:
            (model, loss), warm_started, n_at_cold_fit = self._fit_from(lineage, n, train_X, train_Y, train_Yvar)
        fit_seconds = time.perf_counter() - started

        self._lineages[lineage_key] = _Lineage(
            parameters={name: p.detach().clone() for name, p in model.named_parameters()},
            n_at_cold_fit=n_at_cold_fit,
        )
        return FittedModel(
            model=model,
            space=space,
            direction=direction,
            train_X=train_X,
            train_Y=train_Y,
            train_Yvar=train_Yvar,
            train_params=[o.params for o in history],
            noise_model=noise_model,
            fit_seconds=fit_seconds,
            warm_started=warm_started,
            neg_log_marginal_likelihood=loss,
            fit_warnings=fit_warnings,
            key=key,
        )

    def _fit_from(
        self,
        lineage: _Lineage | None,
        n: int,
        train_X: torch.Tensor,
        train_Y: torch.Tensor,
        train_Yvar: torch.Tensor | None,
    ) -> tuple[tuple[SingleTaskGP, float], bool, int]:
        """Fit warm from ``lineage`` when there is one, cold when there is not or the warm fit fails,
        and cold as well when the data (``n`` points) has grown enough since the last cold fit.

        Returns ((model, loss), whether the kept fit was warm-started, n at the last cold fit).
        """
        result: tuple[SingleTaskGP, float] | None = None
        warm_started = False
        if lineage is not None:
            try:
                result = _fit_gp(train_X, train_Y, train_Yvar, lineage.parameters)
                warm_started = True
                self.stats.warm_starts += 1
            except (ModelFittingError, NotPSDError, RuntimeError):
                # A warm start can begin in a region where the kernel matrix is ill-conditioned
                # for the new data; the default initialisation is the well-tested path.
                self.stats.cold_fallbacks += 1
                result = None
        needs_cold_check = (
            result is not None
            and self.cold_check_growth is not None
            and lineage is not None
            and n >= self.cold_check_growth * max(lineage.n_at_cold_fit, 1)
        )
        n_at_cold_fit = lineage.n_at_cold_fit if lineage is not None else n
        if result is None or needs_cold_check:
            cold = _fit_gp(train_X, train_Y, train_Yvar, None)
            n_at_cold_fit = n
            if needs_cold_check:
                self.stats.cold_checks += 1
            # Keep the warm fit unless the cold one is clearly better (tiny differences are
            # optimiser tolerance, not a different optimum).
            if result is None or cold[1] < result[1] - 1e-6 * max(1.0, abs(result[1])):
                result, warm_started = cold, False
        return result, warm_started, n_at_cold_fit


def _noise_variances(history: Sequence[Observation], values: np.ndarray) -> tuple[torch.Tensor | None, NoiseModel]:
    """Per-point noise variances ``(n, 1)`` from the sigmas, or None when the noise must be inferred."""
    sigmas = [o.sigma for o in history]
    known = np.array([s for s in sigmas if s is not None], dtype=float)
    if known.size == 0:
        return None, "inferred"
    noise_model: NoiseModel = "fixed" if known.size == len(sigmas) else "imputed"
    median_variance = float(np.median(known**2))
    variances = np.array([median_variance if s is None else float(s) ** 2 for s in sigmas])
    spread = float(np.var(values)) if len(values) > 1 else 0.0
    floor = MIN_NOISE_VARIANCE_FRACTION * (spread if spread > 0 else 1.0)
    variances = np.maximum(variances, floor)
    return torch.as_tensor(variances, dtype=torch.float64).unsqueeze(-1), noise_model


def _fit_gp(
    train_X: torch.Tensor,
    train_Y: torch.Tensor,
    train_Yvar: torch.Tensor | None,
    initial_parameters: Mapping[str, torch.Tensor] | None,
) -> tuple[SingleTaskGP, float]:
    """Fit a SingleTaskGP by maximum marginal likelihood; returns (model, final loss).

    ``initial_parameters`` (raw parameter tensors by name) seed the optimiser; entries whose
    name or shape does not match this model are ignored.
    """
    model = SingleTaskGP(train_X, train_Y, train_Yvar, outcome_transform=Standardize(m=1))
    if initial_parameters:
        with torch.no_grad():
            for name, parameter in model.named_parameters():
                start = initial_parameters.get(name)
                if start is not None and start.shape == parameter.shape:
                    parameter.copy_(start)
    mll = ExactMarginalLogLikelihood(model.likelihood, model)
    losses: list[float] = []

    def optimizer(mll, closure=None, **kwargs):  # noqa: ANN001, ANN202 - BoTorch's optimizer signature
        result = fit_gpytorch_mll_scipy(mll, closure=closure, **kwargs)
        losses.append(float(result.fval))
        return result

    with manual_seed(FIT_SEED):
        fit_gpytorch_mll(mll, optimizer=optimizer)
    loss = losses[-1] if losses else float("nan")
    if not math.isfinite(loss) or any(not torch.isfinite(p).all() for p in model.parameters()):
        raise ModelFittingError(f"GP fit ended with a non-finite loss or hyperparameters (loss={loss})")
    model.eval()
    return model, loss


__all__ = [
    "Direction",
    "FittedModel",
    "ModelCache",
    "direction_sign",
    "history_key",
    "recorded_model_warnings",
]
