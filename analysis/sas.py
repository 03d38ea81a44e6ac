"""SAS model fitting with calibrated uncertainties and model probabilities.

``SASFitAnalysis.interpret(measurements)`` turns every SAS exposure of one sample so far into
estimates of the most probable candidate model's parameters (value ± 1-σ), one probability per
candidate model (``p(<name>)``), and quality flags. The steps, in order:

1. **Merge** (:func:`merge_measurements`). Exposures with the same ``params["configuration"]`` and
   the same Q grid are combined point by point by inverse-variance weighting (``merge="inverse_variance"``,
   the default) or by exposure-time weighting (``merge="exposure_time"``, exactly "accumulate the
   counts" when σ² ∝ I/t). Configurations stay separate blocks, each with its own ``dq``. Points
   with a non-finite value, σ ≤ 0, q ≤ 0 or dq < 0 are dropped and flagged; points outside
   ``[q_min, q_max]`` are dropped silently (a deliberate choice of the campaign, counted in details).
2. **Fit** each candidate to all blocks jointly by weighted least squares
   (:func:`scipy.optimize.least_squares`, trust-region reflective, bounds from the settings). The
   model is a sasmodels kernel compiled once per process (double precision, C/DLL platform) and
   smeared by sasmodels' own :class:`sasmodels.resolution.Pinhole1D` at each point's ``dq``. Starts:
   a quasi-random (Halton) scan of the non-linear parameters inside their bounds with ``scale`` and
   ``background`` solved linearly at each scan point, then local fits from the ``n_starts`` best
   distinct scan points; the lowest cost wins. Optional Gaussian priors enter as extra residuals
   (so the optimum is the MAP point).
3. **Uncertainty**: covariance ``C = (JᵀWJ + P)⁻¹`` at the optimum, J the Jacobian of the model
   (central differences, one-sided at a bound), ``W = diag(1/σ²)``, ``P`` the Gaussian priors'
   precision (zero for uniform priors). Errors are **not** rescaled by χ²_red by default: the
   instrument's σ are Poisson-honest, so a large χ²_red means the *model* is wrong, which is
   flagged (``poor-fit``) rather than hidden by inflated errors. ``scale_errors=True`` multiplies σ
   by √χ²_red when χ²_red > 1; ``details["errors_scaled"]`` always says which happened.
4. **Evidence** per candidate (``evidence="laplace"``, default)::

       log Z = log L(θ*) + log π(θ*) + (k/2) log 2π − ½ log det H + Σᵢ log Mᵢ

   with ``log L = −χ²/2 − Σ log σ − (n/2) log 2π``, ``π`` the product of the parameter priors
   (uniform within the bounds, or the Gaussian prior truncated to the bounds), ``H = JᵀWJ + P``,
   and ``Mᵢ = Φ((hiᵢ−θᵢ*)/sᵢ) − Φ((loᵢ−θᵢ*)/sᵢ)`` the mass of the Laplace Gaussian inside the prior
   box. Two guards for parameters the data do not constrain (see :func:`_log_occam_laplace`): in
   ``log det H`` and sᵢ each uniform prior also contributes its own precision 12/w², and the box
   mass Mᵢ truncates the Gaussian to the bounds. Both are negligible for well-determined
   parameters; without them a flat direction (e.g. the radius when scale → 0) gets det H → 0 and an
   evidence far above L_max, so the model with the most unidentifiable parameters would win.
   ``evidence="bic"``: ``log Z ≈ log L(θ*) − (k/2) log n``. Posterior model probabilities are
   ``p(m) ∝ prior(m) Z_m``, normalised over the candidates with a finite evidence.
5. **Output**: estimates for ``report`` (default: the fitted parameters of all candidates, taken
   from the best model; a name the best model lacks has value None), plus
   ``p(<candidate>)`` for each candidate; details ``best_model``, ``best_model_probability``,
   ``chi2_reduced``, ``n_points``, ``converged`` and per-candidate ``log_evidence:<m>``,
   ``chi2_reduced:<m>``, ``converged:<m>``, and every usable fit's values and 1-σ errors ``fit:<m>:<param>``, ``sigma:<m>:<param>``.

Flags: ``non-finite-data``, ``non-positive-sigma``, ``non-positive-q``, ``negative-dq``,
``missing-key:<k>``, ``shape-mismatch``, ``q-grid-mismatch:<configuration>``, ``no-data``,
``too-few-points``, ``fit-not-converged:<m>``, ``fit-failed:<m>``, ``ill-conditioned:<m>``,
``poor-fit``, ``at-bound:<param>`` and ``unconstrained:<param>`` (best model), ``no-signal``.
``valid`` is False when there is no usable data, when no candidate converged, or when the data
are consistent with a flat line (``no-signal``: χ² of a constant has p > 0.001) — a radius fitted to
flat noise is not a measurement and must not train a model; it is still kept and shown.

Settings errors (unknown sasmodels model, unknown parameter, bounds outside the model's limits)
are raised when the settings are validated, before any data arrive. ``interpret`` itself never
raises on data.

For the planner: :func:`predict_with_jacobian` gives a candidate's I(q) and dI/dθ on a prospective
configuration, :func:`fisher_information` its ``JᵀWJ``, :func:`prior_precision` the prior's share,
and :meth:`SASFitAnalysis.fit` returns the :class:`FitResult` of every candidate.
"""

from __future__ import annotations

import math
import re
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from scipy import optimize, special, stats

from analysis.laplace import invert_information, log_occam, posterior_probabilities
from analysis.protocol import Estimate, Interpretation
from instruments.types import Measurement

# sasmodels is imported on first use (settings validation or a fit), not at module import: the
# agent imports every analysis module to register kinds, and sasmodels costs ~0.3 s to import.

# --------------------------------------------------------------------------------------------------
# sasmodels access: model info and compiled kernels, cached per process
# --------------------------------------------------------------------------------------------------

_LOCK = threading.Lock()
_KERNEL_MODELS: dict[str, Any] = {}
_MODEL_INFOS: dict[str, Any] = {}

# Polydispersity distributions usable from settings ("array" needs explicit arrays, not a scalar).
PD_TYPES = ("gaussian", "lognormal", "schulz", "rectangle", "uniform", "boltzmann")
_PD_DEFAULT_N = 35  # sasmodels/SasView default number of polydispersity points
_PD_DEFAULT_NSIGMA = 3.0


def _sasmodels() -> Any:
    import sasmodels.core

    return sasmodels.core


def available_models() -> list[str]:
    """Names of the sasmodels library models (building blocks of a model expression)."""
    return list(_sasmodels().list_models())


def model_info(expression: str) -> Any:
    """sasmodels ``ModelInfo`` of a model name or expression (``sphere``, ``sphere+power_law``,
    ``sphere@hardsphere``); cached. Raises ValueError naming an unknown model and the valid ones."""
    with _LOCK:
        if expression in _MODEL_INFOS:
            return _MODEL_INFOS[expression]
    known = set(available_models())
    parts = [p.strip() for p in re.split(r"[+*@]", expression)]
    unknown = [p for p in parts if p not in known]
    if unknown or not parts:
        raise ValueError(
            f"unknown sasmodels model {', '.join(repr(u) for u in unknown) or repr(expression)} "
            f"in {expression!r}; valid models: {', '.join(sorted(known))}"
        )
    try:
        info = _sasmodels().load_model_info(expression)
    except Exception as exc:  # sasmodels raises a mix of types for bad expressions
        raise ValueError(f"sasmodels cannot load model expression {expression!r}: {exc}") from exc
    with _LOCK:
        _MODEL_INFOS[expression] = info
    return info


def _kernel_model(expression: str) -> Any:
    """Compiled sasmodels kernel model (double precision, C DLL), compiled once per process."""
    info = model_info(expression)
    with _LOCK:
        km = _KERNEL_MODELS.get(expression)
        if km is None:
            # Double precision: the Jacobian is taken by finite differences, and single-precision
            # kernels (OpenCL default) would leave ~1e-7 noise in it. The DLL platform needs only
            # the C compiler; compiled models are cached on disk by sasmodels (~/.sasmodels).
            km = _sasmodels().build_model(info, dtype="double", platform="dll")
            _KERNEL_MODELS[expression] = km
        return km


@dataclass(frozen=True)
class _ParameterTable:
    """What settings may say about one sasmodels model."""

    fittable: dict[str, tuple[float, float, str]]  # name → (lower limit, upper limit, units)
    fixed_only: set[str]  # *_pd_n, *_pd_type, *_pd_nsigma, switches, magnetic and other non-fittable names
    pd_parameters: tuple[str, ...]  # parameters with 1-D polydispersity
    listed: tuple[str, ...] = ()  # the names an error message lists (magnetic ones left out)


@lru_cache(maxsize=256)
def parameter_table(expression: str) -> _ParameterTable:
    """Fittable parameters (with sasmodels limits and units) and fixed-only names of a model."""
    info = model_info(expression)
    table = info.parameters
    fittable: dict[str, tuple[float, float, str]] = {}
    listed: list[str] = []
    for p in list(table.common_parameters) + list(table.kernel_parameters):
        if p.length > 1 or p.type == "magnetic":
            continue
        listed.append(p.name)
        if getattr(p, "choices", None):
            continue  # switches (e.g. structure_factor_mode) are fixed-only
        lo, hi = (float(p.limits[0]), float(p.limits[1])) if len(p.limits) == 2 else (-math.inf, math.inf)
        fittable[p.name] = (lo, hi, p.units or "")
    fixed_only: set[str] = set(table.defaults) - set(fittable)
    pd = tuple(sorted(table.pd_1d))
    for name in pd:
        fittable[f"{name}_pd"] = (0.0, math.inf, "")
        extras = [f"{name}_pd", f"{name}_pd_n", f"{name}_pd_type", f"{name}_pd_nsigma"]
        fixed_only |= set(extras[1:])
        listed += extras
    return _ParameterTable(fittable, fixed_only, pd, tuple(listed))


# --------------------------------------------------------------------------------------------------
# Settings
# --------------------------------------------------------------------------------------------------


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, frozen=True)


class GaussianPrior(_Strict):
    """A Gaussian prior on one parameter (truncated to the parameter's bounds), in its units."""

    mean: float
    sigma: float = Field(gt=0)


class FitParameter(_Strict):
    """One fitted parameter: initial value, bounds (which are also its uniform prior), units."""

    value: float = Field(description="initial guess (also the first point of the start scan)")
    bounds: tuple[float, float] = Field(description="[low, high]; finite — they define the prior")
    units: str | None = Field(default=None, description="defaults to the sasmodels units")
    prior: GaussianPrior | None = Field(default=None, description="None: uniform within bounds")

    @model_validator(mode="after")
    def _check(self) -> FitParameter:
        lo, hi = self.bounds
        if not lo < hi:
            raise ValueError(f"bounds must have low < high, got {list(self.bounds)}")
        if not lo <= self.value <= hi:
            raise ValueError(f"initial value {self.value} outside bounds {list(self.bounds)}")
        return self


class CandidateModel(_Strict):
    """One candidate model: a sasmodels model (name or expression) with fitted and fixed parameters.

    Polydispersity is set through sasmodels' names: fit ``radius_pd`` (relative width), fix
    ``radius_pd_type`` (gaussian, lognormal, schulz, …; default gaussian), ``radius_pd_n``
    (default 35) and ``radius_pd_nsigma`` (default 3). Unnamed parameters keep sasmodels defaults.
    """

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    model: str = Field(min_length=1, description="sasmodels model name or expression")
    parameters: dict[str, FitParameter] = Field(min_length=1, description="fitted parameters")
    fixed: dict[str, float | int | str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _check_against_sasmodels(self) -> CandidateModel:
        table = parameter_table(self.model)  # raises naming an unknown model
        valid = ", ".join(table.listed)
        for pname, spec in self.parameters.items():
            if pname not in table.fittable:
                if pname in table.fixed_only:
                    raise ValueError(
                        f"candidate {self.name!r}: parameter {pname!r} of model {self.model!r} cannot be "
                        "fitted; give it under 'fixed'"
                    )
                raise ValueError(
                    f"candidate {self.name!r}: unknown parameter {pname!r} for model {self.model!r}; "
                    f"its parameters are: {valid}"
                )
            lo, hi, _ = table.fittable[pname]
            if spec.bounds[0] < lo or spec.bounds[1] > hi:
                raise ValueError(
                    f"candidate {self.name!r}: bounds {list(spec.bounds)} of {pname!r} exceed the model's "
                    f"limits [{lo}, {hi}]"
                )
        for pname, value in self.fixed.items():
            if pname not in table.fittable and pname not in table.fixed_only:
                raise ValueError(
                    f"candidate {self.name!r}: unknown fixed parameter {pname!r} for model {self.model!r}; "
                    f"its parameters are: {valid}"
                )
            if pname in self.parameters:
                raise ValueError(f"candidate {self.name!r}: {pname!r} is both fitted and fixed")
            if pname.endswith("_pd_type"):
                if value not in PD_TYPES:
                    raise ValueError(f"candidate {self.name!r}: {pname} must be one of {list(PD_TYPES)}")
            elif pname.endswith("_pd_n"):
                if isinstance(value, str) or value < 1 or float(value) != int(value):
                    raise ValueError(f"candidate {self.name!r}: {pname} must be a positive integer")
            elif pname.endswith("_pd_nsigma") and (isinstance(value, str) or value <= 0):
                raise ValueError(f"candidate {self.name!r}: {pname} must be a positive number")
            elif isinstance(value, str):
                raise ValueError(f"candidate {self.name!r}: fixed {pname!r} must be a number")
        return self


class SASFitSettings(_Strict):
    """Settings of :class:`SASFitAnalysis` (the campaign file's ``analysis.settings``)."""

    candidates: list[CandidateModel] = Field(min_length=1)
    model_prior: dict[str, float] | None = Field(
        default=None, description="candidate name → prior probability (normalised); None: uniform"
    )
    report: list[str] | None = Field(
        default=None,
        description="parameter estimates to report from the best model; None: every candidate's fitted "
        "parameters (those the best model lacks carry value None)",
    )
    q_min: float = Field(default=0.0, ge=0, description="1/Å; points below are not fitted")
    q_max: float | None = Field(default=None, gt=0, description="1/Å; points above are not fitted")
    evidence: Literal["laplace", "bic"] = "laplace"
    merge: Literal["inverse_variance", "exposure_time"] = "inverse_variance"
    scale_errors: bool = Field(default=False, description="multiply σ by √χ²_red when χ²_red > 1")
    poor_fit_chi2_reduced: float = Field(default=1.5, gt=1, description="flag poor-fit above this χ²_red …")
    poor_fit_p_value: float = Field(default=1e-3, gt=0, lt=1, description="… when χ² is also this improbable")
    n_scan: int = Field(default=16, ge=1, le=4096, description="quasi-random start points scanned per candidate")
    n_starts: int = Field(default=2, ge=1, le=64, description="local fits from the best scan points")
    max_nfev: int = Field(default=200, ge=10, description="model evaluations per local fit")
    seed: int = Field(default=0, description="seed of the start scan (the analysis is deterministic)")

    @field_validator("candidates")
    @classmethod
    def _unique_names(cls, candidates: list[CandidateModel]) -> list[CandidateModel]:
        names = [c.name for c in candidates]
        if len(set(names)) != len(names):
            raise ValueError(f"candidate names must be unique, got {names}")
        return candidates

    @model_validator(mode="after")
    def _check(self) -> SASFitSettings:
        names = {c.name for c in self.candidates}
        if self.model_prior is not None:
            unknown = set(self.model_prior) - names
            if unknown:
                raise ValueError(f"model_prior names unknown candidates {sorted(unknown)}; candidates: {sorted(names)}")
            if any(v < 0 for v in self.model_prior.values()) or sum(self.model_prior.values()) <= 0:
                raise ValueError("model_prior must be non-negative with a positive sum")
        if self.q_max is not None and self.q_max <= self.q_min:
            raise ValueError("q_max must exceed q_min")
        if self.report is not None:
            known = {p for c in self.candidates for p in (*c.parameters, *c.fixed)}
            unknown = [r for r in self.report if r not in known]
            if unknown:
                raise ValueError(
                    f"report names {unknown}, which no candidate fits or fixes; fitted: {sorted(known)}"
                )
        return self

    def candidate(self, name: str) -> CandidateModel:
        for c in self.candidates:
            if c.name == name:
                return c
        raise KeyError(f"no candidate {name!r}; candidates: {[c.name for c in self.candidates]}")

    def log_model_prior(self) -> dict[str, float]:
        if self.model_prior is None:
            return {c.name: -math.log(len(self.candidates)) for c in self.candidates}
        total = sum(self.model_prior.values())
        out = {}
        for c in self.candidates:
            p = self.model_prior.get(c.name, 0.0) / total
            out[c.name] = math.log(p) if p > 0 else -math.inf
        return out

    def estimate_names(self) -> list[str]:
        """Every estimate name an interpretation may carry (for campaign validation)."""
        if self.report is not None:
            params = list(self.report)
        else:
            params = list(dict.fromkeys(p for c in self.candidates for p in c.parameters))
        # p(best): the posterior probability of whichever candidate is most probable now.
        return [*params, *(f"p({c.name})" for c in self.candidates), "p(best)"]


# --------------------------------------------------------------------------------------------------
# Merging exposures
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MergedBlock:
    """All exposures of one configuration on one Q grid, merged point by point (q ascending).

    Shapes: every array is (n,); q, dq in 1/Å, intensity and sigma in 1/cm.
    """

    configuration: str
    q: np.ndarray
    dq: np.ndarray
    intensity: np.ndarray
    sigma: np.ndarray
    n_exposures: int
    exposure_seconds: float


@dataclass
class _Accumulator:
    q: np.ndarray
    dq_sum: np.ndarray
    w_sum: np.ndarray  # Σ weights per point
    wi_sum: np.ndarray  # Σ weight·I
    w2v_sum: np.ndarray  # Σ weight²·σ² (exposure-time merge)
    n_valid: np.ndarray
    n_exposures: int = 0
    exposure_seconds: float = 0.0


def merge_measurements(
    measurements: Sequence[Measurement],
    q_min: float = 0.0,
    q_max: float | None = None,
    merge: Literal["inverse_variance", "exposure_time"] = "inverse_variance",
) -> tuple[list[MergedBlock], list[str], dict[str, int]]:
    """Merge exposures per configuration; returns (blocks, flags, counts).

    ``counts`` has ``n_dropped`` (invalid points) and ``n_outside_q_range``. Never raises on data.
    """
    flags: set[str] = set()
    counts = {"n_dropped": 0, "n_outside_q_range": 0}
    groups: dict[tuple[str, int], _Accumulator] = {}
    grids: dict[str, list[np.ndarray]] = {}
    for m in measurements:
        missing = [k for k in ("q", "intensity", "dq") if k not in m.data]
        if "intensity" not in m.sigma:
            missing.append("sigma.intensity")
        if missing:
            flags.update(f"missing-key:{k}" for k in missing)
            continue
        q = np.asarray(m.data["q"], dtype=float).reshape(-1)
        y = np.asarray(m.data["intensity"], dtype=float).reshape(-1)
        dq = np.asarray(m.data["dq"], dtype=float).reshape(-1)
        s = np.asarray(m.sigma["intensity"], dtype=float).reshape(-1)
        if not (q.size == y.size == dq.size == s.size) or q.size == 0:
            flags.add("shape-mismatch")
            continue
        finite = np.isfinite(q) & np.isfinite(y) & np.isfinite(dq) & np.isfinite(s)
        if not finite.all():
            flags.add("non-finite-data")
        with np.errstate(invalid="ignore"):  # comparisons with NaN are False, which is what we want
            bad_sigma = finite & ~(s > 0)
            bad_q = finite & ~(q > 0)
            bad_dq = finite & (dq < 0)
        if bad_sigma.any():
            flags.add("non-positive-sigma")
        if bad_q.any():
            flags.add("non-positive-q")
        if bad_dq.any():
            flags.add("negative-dq")
        ok = finite & ~bad_sigma & ~bad_q & ~bad_dq
        counts["n_dropped"] += int((~ok).sum())
        config = str(m.params.get("configuration", "default"))
        # Same configuration, same Q grid → merge; a different grid under one name is kept apart.
        order = np.argsort(np.where(np.isfinite(q), q, np.inf), kind="stable")
        q_sorted = q[order]
        slot = None
        for i, grid in enumerate(grids.setdefault(config, [])):
            if grid.shape == q_sorted.shape and np.allclose(grid, q_sorted, rtol=1e-9, atol=0, equal_nan=True):
                slot = i
                break
        if slot is None:
            if grids[config]:
                flags.add(f"q-grid-mismatch:{config}")
            grids[config].append(q_sorted)
            slot = len(grids[config]) - 1
            n = q.size
            groups[(config, slot)] = _Accumulator(
                q=q_sorted.copy(), dq_sum=np.zeros(n), w_sum=np.zeros(n), wi_sum=np.zeros(n),
                w2v_sum=np.zeros(n), n_valid=np.zeros(n, dtype=int),
            )
        acc = groups[(config, slot)]
        ok_s = ok[order]
        # Invalid points are zeroed (σ set to 1) before any arithmetic, so no NaN/inf propagates.
        y_s = np.where(ok_s, y[order], 0.0)
        dq_s = np.where(ok_s, dq[order], 0.0)
        s_s = np.where(ok_s, s[order], 1.0)
        exposure = m.params.get("exposure_seconds", m.timing.exposure_seconds)
        try:
            exposure = float(exposure)
        except (TypeError, ValueError):
            exposure = float(m.timing.exposure_seconds)
        if not np.isfinite(exposure):
            exposure = float(m.timing.exposure_seconds)
        if merge == "exposure_time":
            if not exposure > 0:
                # No time to weight by: counting this exposure would break the accumulation.
                flags.add("missing-exposure-time")
                counts["n_dropped"] += int(ok_s.sum())
                ok_s = np.zeros_like(ok_s)
            w = np.where(ok_s, exposure, 0.0)
        else:
            w = np.where(ok_s, 1.0 / np.square(s_s), 0.0)
        acc.w_sum += w
        acc.wi_sum += w * y_s
        acc.w2v_sum += w * w * np.square(s_s) * ok_s
        acc.dq_sum += dq_s
        acc.n_valid += ok_s
        acc.n_exposures += 1
        acc.exposure_seconds += max(exposure, 0.0)

    blocks: list[MergedBlock] = []
    for (config, slot), acc in groups.items():
        keep = acc.n_valid > 0
        in_range = acc.q >= q_min
        if q_max is not None:
            in_range &= acc.q <= q_max
        counts["n_outside_q_range"] += int((keep & ~in_range).sum())
        keep &= in_range
        if not keep.any():
            continue
        w = acc.w_sum[keep]
        intensity = acc.wi_sum[keep] / w
        if merge == "inverse_variance":
            sigma = 1.0 / np.sqrt(w)
        else:
            sigma = np.sqrt(acc.w2v_sum[keep]) / w
        name = config if slot == 0 else f"{config}#{slot}"
        blocks.append(
            MergedBlock(
                configuration=name, q=acc.q[keep], dq=acc.dq_sum[keep] / acc.n_valid[keep],
                intensity=intensity, sigma=sigma, n_exposures=acc.n_exposures,
                exposure_seconds=acc.exposure_seconds,
            )
        )
    return blocks, sorted(flags), counts


# --------------------------------------------------------------------------------------------------
# Model evaluation
# --------------------------------------------------------------------------------------------------


def _base_parameters(candidate: CandidateModel) -> dict[str, float | int | str]:
    """sasmodels defaults + polydispersity defaults + the candidate's fixed values."""
    table = parameter_table(candidate.model)
    info = model_info(candidate.model)
    pars: dict[str, float | int | str] = dict(info.parameters.defaults)
    for name in table.pd_parameters:
        # sasmodels treats a missing *_pd_n as 0 points (no polydispersity!); be explicit.
        pars[f"{name}_pd"] = 0.0
        pars[f"{name}_pd_n"] = _PD_DEFAULT_N
        pars[f"{name}_pd_nsigma"] = _PD_DEFAULT_NSIGMA
        pars[f"{name}_pd_type"] = "gaussian"
    pars.update(candidate.fixed)
    for key, value in pars.items():
        if key.endswith("_pd_n"):
            pars[key] = int(value)  # type: ignore[arg-type]  # sasmodels wants an integer count
    return pars


def _dense_q_calc(q: np.ndarray, dq: np.ndarray, per_sigma: int = 8, at_most: int = 1500) -> np.ndarray:
    """Log-spaced kernel points (1/Å) covering every point's resolution (−2.5σ … +3σ) at ≥ ``per_sigma``
    points per σ of the narrowest relative resolution, capped at ``at_most``."""
    from sasmodels import resolution

    positive = dq > 0
    lo = max(float(np.min(q - 2.5 * dq)), resolution.MINIMUM_ABSOLUTE_Q * float(np.min(q)))
    hi = float(np.max(q + 3.0 * dq))
    wanted = math.ceil(math.log(hi / lo) * per_sigma / float(np.min(dq[positive] / q[positive])))
    return np.geomspace(lo, hi, int(min(at_most, max(wanted, 2 * len(q)))))


class _Evaluator:
    """I(q) of one candidate on a set of (q, dq) blocks, smeared by sasmodels' pinhole resolution.

    All blocks share one kernel call (their q_calc concatenated); each block then applies its own
    resolution matrix. ``__call__(theta)`` → concatenated model intensity, shape (Σ n_block,).
    """

    def __init__(self, candidate: CandidateModel, qs: Sequence[np.ndarray], dqs: Sequence[np.ndarray]) -> None:
        from sasmodels import resolution

        self.candidate = candidate
        self.names = list(candidate.parameters)
        self.base = _base_parameters(candidate)
        self.background = float(self.base.pop("background", 0.0))  # type: ignore[arg-type]
        self.resolutions = []
        calcs = []
        for q, dq in zip(qs, dqs):
            # Repeated q values give zero-width bins in the weight matrix (0/0, then renormalised);
            # numpy's warning about it is noise here.
            with np.errstate(all="ignore"):
                if np.any(dq > 0):
                    # Pinhole1D's default q_calc is the data points themselves, about one σ apart;
                    # its truncated-Gaussian quadrature then misses the smeared curve by up to ~1 %
                    # (several σ of a long exposure). A log grid of ≥ 8 points per σ fixes that.
                    res = resolution.Pinhole1D(q, dq, q_calc=_dense_q_calc(q, dq))
                else:
                    res = resolution.Perfect1D(q)
            self.resolutions.append(res)
            calcs.append(np.asarray(res.q_calc, dtype=float))
        self.splits = np.cumsum([c.size for c in calcs])[:-1]
        self.kernel = _kernel_model(candidate.model).make_kernel([np.concatenate(calcs)])
        self.n_evaluations = 0

    def raw(self, values: Mapping[str, float]) -> np.ndarray:
        """Smeared intensity with the given overrides, *without* background."""
        from sasmodels.direct_model import call_kernel

        pars = dict(self.base)
        pars.update(values)
        pars["background"] = 0.0  # added after smearing by the caller, as sasmodels' DirectModel does
        self.n_evaluations += 1
        # cutoff=0: integrate the whole polydispersity mesh — a weight cutoff makes I(θ) piecewise
        # and would put steps into the finite-difference Jacobian.
        # Extreme trial parameters may overflow; a non-finite model becomes a large residual in the
        # fit (and a failed fit at worst), so numpy's warning would only be noise.
        with np.errstate(all="ignore"):
            iq = call_kernel(self.kernel, pars, cutoff=0.0)
            parts = np.split(np.asarray(iq, dtype=float), self.splits)
            out = np.concatenate([res.apply(p) for res, p in zip(self.resolutions, parts)])
        return out

    def __call__(self, theta: np.ndarray) -> np.ndarray:
        values = dict(zip(self.names, (float(t) for t in theta)))
        background = values.pop("background", self.background)
        return self.raw(values) + background

    def release(self) -> None:
        try:
            self.kernel.release()
        except Exception:  # pragma: no cover - release is best effort
            pass


def _jacobian(fun: Any, x: np.ndarray, lo: np.ndarray, hi: np.ndarray, f0: np.ndarray | None = None) -> np.ndarray:
    """d fun / d x by central differences (one-sided where a bound is within the step); (n, k)."""
    x = np.asarray(x, dtype=float)
    if f0 is None:
        f0 = fun(x)
    jac = np.empty((f0.size, x.size))
    for i in range(x.size):
        # Relative step 1e-5 (double-precision kernel: truncation ~1e-10, round-off ~1e-11).
        h = 1e-5 * max(abs(x[i]), 1e-3 * (hi[i] - lo[i]), 1e-12)
        up, down = x.copy(), x.copy()
        if x[i] + h <= hi[i] and x[i] - h >= lo[i]:
            up[i] += h
            down[i] -= h
            jac[:, i] = (fun(up) - fun(down)) / (2 * h)
        elif x[i] + h <= hi[i]:
            up[i] += h
            jac[:, i] = (fun(up) - f0) / h
        else:
            down[i] -= h
            jac[:, i] = (f0 - fun(down)) / h
    return jac


# --------------------------------------------------------------------------------------------------
# Fitting one candidate
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FitResult:
    """The fit of one candidate model to all merged data of a sample.

    ``names``: fitted parameters (k,); ``values`` (k,) at the optimum (MAP with Gaussian priors);
    ``covariance`` (k, k) = (JᵀWJ + P)⁻¹, unscaled; ``information`` (k, k) = JᵀWJ of the data alone
    (the planner adds a prospective configuration's :func:`fisher_information` to it);
    ``chi2`` of the data residuals over ``n_points``; ``log_evidence`` by the settings' method.
    """

    model: str
    sasmodel: str
    names: tuple[str, ...]
    values: np.ndarray
    covariance: np.ndarray
    information: np.ndarray
    chi2: float
    n_points: int
    log_likelihood: float
    log_evidence: float
    converged: bool
    at_bounds: tuple[str, ...] = ()
    ill_conditioned: bool = False
    message: str = ""
    n_evaluations: int = 0

    @property
    def k(self) -> int:
        return len(self.names)

    @property
    def chi2_reduced(self) -> float:
        dof = self.n_points - self.k
        return self.chi2 / dof if dof > 0 else math.nan

    @property
    def params(self) -> dict[str, float]:
        return {n: float(v) for n, v in zip(self.names, self.values)}

    @property
    def sigmas(self) -> dict[str, float]:
        return {n: float(math.sqrt(max(v, 0.0))) for n, v in zip(self.names, np.diag(self.covariance))}


def _failed(candidate: CandidateModel, n_points: int, message: str) -> FitResult:
    k = len(candidate.parameters)
    return FitResult(
        model=candidate.name, sasmodel=candidate.model, names=tuple(candidate.parameters),
        values=np.array([p.value for p in candidate.parameters.values()], dtype=float),
        covariance=np.full((k, k), np.nan), information=np.full((k, k), np.nan), chi2=math.nan,
        n_points=n_points, log_likelihood=-math.inf, log_evidence=-math.inf, converged=False, message=message,
    )


def _halton(n: int, d: int, seed: int) -> np.ndarray:
    if n <= 0:
        return np.empty((0, d))
    return stats.qmc.Halton(d=d, scramble=True, seed=seed).random(n)


def _to_bounds(u: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    # Log-uniform for positive ranges spanning more than a decade (sizes), linear otherwise.
    out = lo + u * (hi - lo)
    logish = (lo > 0) & (hi / np.where(lo > 0, lo, 1.0) > 10)
    if logish.any():
        out[..., logish] = np.exp(np.log(lo[logish]) + u[..., logish] * np.log(hi[logish] / lo[logish]))
    return out


def _interior(x: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    margin = 1e-9 * (hi - lo)
    return np.clip(x, lo + margin, hi - margin)


def _solve_linear(
    f: np.ndarray, y: np.ndarray, w: np.ndarray, fit_scale: bool, fit_bg: bool,
    scale: float, bg: float, scale_b: tuple[float, float], bg_b: tuple[float, float],
) -> tuple[float, float]:
    """Exact bounded weighted least squares of y ≈ scale·f + bg over the free ones of (scale, bg).

    A convex 2-variable box problem: the optimum is the unconstrained one, or lies on an edge
    (1-D optimum clipped), so comparing those few candidates is exact.
    """
    sw, swf, swff = float(np.sum(w)), float(np.sum(w * f)), float(np.sum(w * f * f))
    swy, swfy = float(np.sum(w * y)), float(np.sum(w * f * y))

    def best_scale(b: float) -> float:
        v = (swfy - b * swf) / swff if swff > 0 else scale_b[0]
        return float(np.clip(v, *scale_b)) if np.isfinite(v) else scale_b[0]

    def best_bg(a: float) -> float:
        return float(np.clip((swy - a * swf) / sw, *bg_b))

    def cost(a: float, b: float) -> float:
        return float(np.sum(w * np.square(a * f + b - y)))

    with np.errstate(all="ignore"):  # a zero or overflowing f is handled by the checks
        if fit_scale and fit_bg:
            det = swff * sw - swf * swf
            if det > 0:
                a = (swfy * sw - swf * swy) / det
                b = (swff * swy - swf * swfy) / det
                if scale_b[0] <= a <= scale_b[1] and bg_b[0] <= b <= bg_b[1]:
                    return float(a), float(b)
            options = [(a, best_bg(a)) for a in scale_b] + [(best_scale(b), b) for b in bg_b]
            costs = [cost(a, b) for a, b in options]
            costs = [c if np.isfinite(c) else math.inf for c in costs]
            return options[int(np.argmin(costs))]
        if fit_scale:
            return best_scale(bg), bg
        if fit_bg:
            return scale, best_bg(scale)
    return scale, bg


def _log_occam_laplace(specs: Sequence[FitParameter], x: np.ndarray, h: np.ndarray) -> float:
    """log Z − log L(θ*): the Laplace approximation with a prior-box truncation correction.

    ``h`` = JᵀWJ + Gaussian-prior precision at the optimum x, shape (k, k). Returns::

        log π(θ*) + (k/2) log 2π − ½ log det H̃ + Σᵢ log Mᵢ

    H̃ adds to ``h`` the precision 12/w² of each uniform prior of width w (its variance is w²/12),
    and Mᵢ is the mass of N(θᵢ*, C̃ᵢᵢ), C̃ = H̃⁻¹, inside [loᵢ, hiᵢ]. Where the data constrain a
    parameter both additions are negligible and this is the textbook Laplace evidence (a parameter
    on a bound pays half its Occam factor). Where they do not — a flat direction, e.g. the radius
    when the fitted scale is ~0 — plain Laplace gives det H → 0 and an evidence far above L_max;
    here the direction is bounded by the prior, and costs ~0.4–1 nat instead of the exact 0.
    Checked against a quasi-Monte-Carlo evidence (scale and background integrated exactly) on
    low-count data: log-odds within ~1–2 nats, the accuracy of Laplace at such signal-to-noise.
    """
    lo = np.array([p.bounds[0] for p in specs], dtype=float)
    hi = np.array([p.bounds[1] for p in specs], dtype=float)
    uniform = np.array([p.prior is None for p in specs], dtype=bool)
    log_prior = sum(_log_prior_density(p, float(v)) for p, v in zip(specs, x))
    return log_occam(x, h, lo, hi, uniform, log_prior)[0]


def _log_prior_density(spec: FitParameter, x: float) -> float:
    lo, hi = spec.bounds
    if spec.prior is None:
        return -math.log(hi - lo)
    mu, sd = spec.prior.mean, spec.prior.sigma
    trunc = special.ndtr((hi - mu) / sd) - special.ndtr((lo - mu) / sd)
    return float(stats.norm.logpdf(x, mu, sd) - math.log(max(trunc, 1e-300)))


def fit_candidate(
    candidate: CandidateModel, blocks: Sequence[MergedBlock], settings: SASFitSettings
) -> FitResult:
    """Fit one candidate to the merged blocks (joint, σ-weighted). Never raises on data."""
    y = np.concatenate([b.intensity for b in blocks])
    s = np.concatenate([b.sigma for b in blocks])
    n = y.size
    try:
        ev = _Evaluator(candidate, [b.q for b in blocks], [b.dq for b in blocks])
    except Exception as exc:  # a kernel that cannot be built on this data is a failed fit
        return _failed(candidate, n, f"model setup failed: {exc}")
    try:
        return _fit(candidate, ev, y, s, settings)
    except Exception as exc:  # never raise on data: the failure is flagged with its message
        return _failed(candidate, n, f"fit failed: {type(exc).__name__}: {exc}")
    finally:
        ev.release()


def _fit(candidate: CandidateModel, ev: _Evaluator, y: np.ndarray, s: np.ndarray, settings: SASFitSettings) -> FitResult:
    names = ev.names
    specs = [candidate.parameters[p] for p in names]
    k, n = len(names), y.size
    lo = np.array([p.bounds[0] for p in specs], dtype=float)
    hi = np.array([p.bounds[1] for p in specs], dtype=float)
    x_init = np.array([p.value for p in specs], dtype=float)
    w = 1.0 / np.square(s)
    prior_idx = [i for i, p in enumerate(specs) if p.prior is not None]
    prior_mu = np.array([specs[i].prior.mean for i in prior_idx])  # type: ignore[union-attr]
    prior_sd = np.array([specs[i].prior.sigma for i in prior_idx])  # type: ignore[union-attr]

    # Variable projection: I = scale·f(θ_nl) + background is linear in scale and background, so
    # they are solved exactly (bounded linear least squares) for every trial θ_nl, and the
    # optimiser only walks the non-linear parameters. Fewer evaluations per Jacobian, and no start
    # can be lost because its scale was wrong by a factor of 100. A linear parameter with a
    # Gaussian prior is simply treated as non-linear.
    i_scale = names.index("scale") if "scale" in names and specs[names.index("scale")].prior is None else None
    i_bg = names.index("background") if "background" in names and specs[names.index("background")].prior is None else None
    nl = [i for i in range(k) if i not in (i_scale, i_bg)]
    nl_prior = [(j, prior_mu[prior_idx.index(i)], prior_sd[prior_idx.index(i)]) for j, i in enumerate(nl) if i in prior_idx]
    i_bg_nl = names.index("background") if "background" in names and i_bg is None else None
    lo_nl, hi_nl = lo[nl], hi[nl]

    def project(theta_nl: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """θ_nl → (full parameter vector, model intensity)."""
        values = {names[i]: float(t) for i, t in zip(nl, theta_nl) if i != i_bg_nl}
        if i_scale is not None:
            values["scale"] = 1.0
        f = ev.raw(values)
        x = x_init.copy()
        x[nl] = theta_nl
        bg0 = x[i_bg_nl] if i_bg_nl is not None else ev.background
        scale, bg = _solve_linear(
            f, y, w, i_scale is not None, i_bg is not None, 1.0, float(bg0),
            (lo[i_scale], hi[i_scale]) if i_scale is not None else (1.0, 1.0),
            (lo[i_bg], hi[i_bg]) if i_bg is not None else (bg0, bg0),
        )
        if i_scale is not None:
            x[i_scale] = scale
        if i_bg is not None:
            x[i_bg] = bg
        return x, scale * f + bg

    def residuals(theta_nl: np.ndarray) -> np.ndarray:
        _, model = project(theta_nl)
        r = (model - y) / s
        if nl_prior:
            r = np.concatenate([r, [(theta_nl[j] - mu) / sd for j, mu, sd in nl_prior]])
        # A non-finite model value (extreme trial point) becomes a large residual, not a crash.
        return np.nan_to_num(r, nan=1e10, posinf=1e10, neginf=-1e10)

    if not nl:
        x, _ = project(np.empty(0))
        converged, message = True, "linear parameters only: solved exactly"
    else:
        # --- start scan: quasi-random non-linear parameters (log-uniform for sizes) --------------
        starts = [x_init[nl]]
        starts += list(_to_bounds(_halton(settings.n_scan - 1, len(nl), settings.seed), lo_nl, hi_nl))
        scored = []
        for theta in starts:
            cost = float(np.sum(np.square(residuals(theta))))
            scored.append((cost if np.isfinite(cost) else math.inf, _interior(theta, lo_nl, hi_nl)))
        scored.sort(key=lambda t: t[0])
        chosen: list[np.ndarray] = []
        for _, theta in scored:
            # distinct starts: at least 5 % of the range apart in some parameter
            if all(np.max(np.abs(theta - c) / (hi_nl - lo_nl)) > 0.05 for c in chosen):
                chosen.append(theta)
            if len(chosen) >= settings.n_starts:
                break
        # --- local fits from the best distinct starts; the lowest cost wins ----------------------
        best = None
        for theta0 in chosen:
            try:
                res = optimize.least_squares(
                    residuals, theta0, bounds=(lo_nl, hi_nl), method="trf", x_scale="jac",
                    max_nfev=settings.max_nfev, ftol=1e-8, xtol=1e-8, gtol=1e-8,
                )
            except (ValueError, np.linalg.LinAlgError):
                continue
            if best is None or res.cost < best.cost:
                best = res
        if best is None or not np.isfinite(best.cost):
            return _failed(candidate, n, "no local fit succeeded")
        x, _ = project(np.clip(best.x, lo_nl, hi_nl))
        converged, message = bool(best.status > 0), str(best.message)
    x = np.clip(x, lo, hi)

    # --- uncertainty and evidence ------------------------------------------------------------------
    model0 = ev(x)
    jac = _jacobian(ev, x, lo, hi, f0=model0) / s[:, None]  # weighted: rows scaled by 1/σ
    info = jac.T @ jac
    h = info.copy()
    for j, i in enumerate(prior_idx):
        h[i, i] += 1.0 / prior_sd[j] ** 2
    cov, _, ill = invert_information(h, hi - lo)
    chi2 = float(np.sum(np.square((model0 - y) / s)))
    log_like = -0.5 * chi2 - float(np.sum(np.log(s))) - 0.5 * n * math.log(2 * math.pi)
    if settings.evidence == "bic":
        log_z = log_like - 0.5 * k * math.log(n)
    else:
        log_z = log_like + _log_occam_laplace(specs, x, h)
    tol = 1e-6 * (hi - lo)
    at_bounds = tuple(names[i] for i in range(k) if x[i] - lo[i] <= tol[i] or hi[i] - x[i] <= tol[i])
    return FitResult(
        model=candidate.name, sasmodel=candidate.model, names=tuple(names), values=x, covariance=cov,
        information=info, chi2=chi2, n_points=n, log_likelihood=log_like,
        log_evidence=float(log_z) if np.isfinite(log_z) else -math.inf, converged=converged,
        at_bounds=at_bounds, ill_conditioned=ill, message=message, n_evaluations=ev.n_evaluations,
    )


# --------------------------------------------------------------------------------------------------
# Planner support
# --------------------------------------------------------------------------------------------------


def predict_with_jacobian(
    settings: SASFitSettings, model: str, values: Mapping[str, float], q: np.ndarray, dq: np.ndarray
) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """Candidate ``model``'s smeared I(q) (1/cm) at ``values`` and its Jacobian over the fitted parameters.

    ``q``, ``dq`` (1/Å), shape (n,), ascending q. Returns (intensity (n,), jacobian (n, k), names (k,)):
    the Jacobian is d I / d θ by central differences (one-sided at a bound), in the order of the
    candidate's fitted parameters. A planner predicts a prospective exposure from it.
    """
    candidate = settings.candidate(model)
    q = np.asarray(q, dtype=float).reshape(-1)
    dq = np.broadcast_to(np.asarray(dq, dtype=float), q.shape).reshape(-1)
    ev = _Evaluator(candidate, [q], [dq])
    try:
        specs = [candidate.parameters[p] for p in ev.names]
        lo = np.array([p.bounds[0] for p in specs], dtype=float)
        hi = np.array([p.bounds[1] for p in specs], dtype=float)
        theta = _interior(np.array([float(values[nm]) for nm in ev.names], dtype=float), lo, hi)
        f0 = ev(theta)
        jac = _jacobian(ev, theta, lo, hi, f0)
    finally:
        ev.release()
    return f0, jac, tuple(ev.names)


def prior_precision(settings: SASFitSettings, model: str) -> np.ndarray:
    """The prior's precision on candidate ``model``'s fitted parameters, (k, k) diagonal.

    A Gaussian prior contributes 1/σ²; a uniform one 12/w² (the precision of a box of width w, as
    the Laplace evidence's guard uses): information a prospective exposure adds to.
    """
    specs = list(settings.candidate(model).parameters.values())
    diag = [
        1.0 / p.prior.sigma**2 if p.prior is not None else 12.0 / (p.bounds[1] - p.bounds[0]) ** 2 for p in specs
    ]
    return np.diag(np.array(diag, dtype=float))


def fisher_information(
    settings: SASFitSettings, fitted_model: FitResult, q: np.ndarray, dq: np.ndarray, sigma: np.ndarray
) -> np.ndarray:
    """Fisher information JᵀWJ, shape (k, k), of a prospective measurement at the fitted model.

    ``q``, ``dq`` (1/Å) and ``sigma`` (expected 1-σ of the intensity, 1/cm) have shape (n,): one
    configuration (or several concatenated) with the σ expected for the planned exposure. J is the
    Jacobian of the resolution-smeared model I(q) with respect to ``fitted_model.names`` at
    ``fitted_model.values``; W = diag(1/σ²). Add it to ``fitted_model.information`` (data so far)
    plus the prior precision to predict the posterior covariance after the measurement. Points with
    non-finite inputs or σ ≤ 0 contribute nothing.
    """
    q = np.asarray(q, dtype=float).reshape(-1)
    dq = np.broadcast_to(np.asarray(dq, dtype=float), q.shape).reshape(-1)
    sigma = np.broadcast_to(np.asarray(sigma, dtype=float), q.shape).reshape(-1)
    with np.errstate(invalid="ignore"):
        ok = np.isfinite(q) & np.isfinite(dq) & np.isfinite(sigma) & (sigma > 0) & (q > 0) & (dq >= 0)
    k = fitted_model.k
    if not ok.any():
        return np.zeros((k, k))
    order = np.argsort(q[ok])
    _, jac, _ = predict_with_jacobian(settings, fitted_model.model, fitted_model.params, q[ok][order], dq[ok][order])
    jac = jac / sigma[ok][order][:, None]
    return jac.T @ jac


# --------------------------------------------------------------------------------------------------
# The analysis
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SASFitReport:
    """Everything :meth:`SASFitAnalysis.fit` found: merged data, per-candidate fits, probabilities."""

    blocks: list[MergedBlock]
    fits: dict[str, FitResult]
    probabilities: dict[str, float]
    flags: list[str]
    counts: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    @cached_property
    def best(self) -> FitResult | None:
        """The most probable candidate with a usable fit (None if no candidate has one)."""
        usable = [m for m, f in self.fits.items() if np.isfinite(f.chi2) and np.isfinite(f.log_evidence)]
        if not usable:
            return None
        return self.fits[max(usable, key=lambda m: (self.probabilities[m], self.fits[m].log_evidence))]


def _model_probabilities(fits: Mapping[str, FitResult], log_prior: Mapping[str, float]) -> dict[str, float]:
    return posterior_probabilities({m: log_prior[m] + f.log_evidence for m, f in fits.items()})


def _finite_or_none(x: float) -> float | None:
    return float(x) if x is not None and np.isfinite(x) else None


class SASFitAnalysis:
    """Fits candidate sasmodels models to all SAS exposures of a sample; see the module docstring."""

    name = "sas"

    def __init__(self, settings: SASFitSettings) -> None:
        self.settings = settings

    def fit(self, measurements: Sequence[Measurement]) -> SASFitReport:
        """Merge and fit every candidate; never raises on data."""
        t0 = time.perf_counter()
        st = self.settings
        blocks, flags, counts = merge_measurements(measurements, st.q_min, st.q_max, st.merge)
        fits: dict[str, FitResult] = {}
        n = sum(b.q.size for b in blocks)
        for c in st.candidates:
            if n <= len(c.parameters):
                fits[c.name] = _failed(c, n, "fewer points than parameters")
            else:
                fits[c.name] = fit_candidate(c, blocks, st)
        probs = _model_probabilities(fits, st.log_model_prior())
        return SASFitReport(blocks, fits, probs, flags, counts, time.perf_counter() - t0)

    def interpret(self, measurements: Sequence[Measurement]) -> Interpretation:
        if not measurements:
            raise ValueError("interpret() needs at least one measurement")
        newest = measurements[-1]
        st = self.settings
        report = self.fit(measurements)
        flags = list(report.flags)
        n = sum(b.q.size for b in report.blocks)
        details: dict[str, float | str | bool | None] = {
            "n_points": n,
            "n_measurements": len(measurements),
            "n_configurations": len(report.blocks),
            "n_dropped_points": report.counts.get("n_dropped", 0),
            "evidence_method": st.evidence,
            "errors_scaled": False,
        }
        estimates: dict[str, Estimate] = {f"p({c.name})": Estimate(value=None) for c in st.candidates}
        estimates["p(best)"] = Estimate(value=None)
        explicit = st.report is not None
        report_names = [e for e in st.estimate_names() if not e.startswith("p(")]

        def empty(reason: str) -> Interpretation:
            for name in report_names:
                estimates.setdefault(name, Estimate(value=None, units=self._units(name)))
            return Interpretation(
                attempt_id=newest.attempt_id, sample_id=newest.sample_id or newest.attempt_id,
                analysis=self.name, estimates=estimates, flags=sorted(set(flags + [reason])), valid=False,
                details=details,
            )

        if n == 0:
            return empty("no-data")
        for m, f in report.fits.items():
            details[f"log_evidence:{m}"] = _finite_or_none(f.log_evidence)
            details[f"chi2_reduced:{m}"] = _finite_or_none(f.chi2_reduced)
            details[f"converged:{m}"] = f.converged
            if np.isfinite(f.chi2):
                # Every candidate's fitted values, not only the best's: a planner weighs the rivals.
                details.update({f"fit:{m}:{p}": float(v) for p, v in f.params.items()})
                details.update({f"sigma:{m}:{p}": _finite_or_none(v) for p, v in f.sigmas.items()})
            if f.message.startswith(("fit failed", "model setup failed", "no local fit")):
                flags.append(f"fit-failed:{m}")
                details[f"error:{m}"] = f.message[:500]
            elif not f.converged:
                flags.append(f"fit-not-converged:{m}")
            if f.ill_conditioned:
                flags.append(f"ill-conditioned:{m}")
            estimates[f"p({m})"] = Estimate(value=report.probabilities[m], sigma=None)
        details["fit_seconds"] = report.seconds
        best = report.best
        if best is None or not np.isfinite(best.chi2):
            return empty("too-few-points" if n <= min(len(c.parameters) for c in st.candidates) else "no-fit")
        candidate = st.candidate(best.model)
        chi2_red = best.chi2_reduced
        estimates["p(best)"] = Estimate(value=report.probabilities[best.model], sigma=None)
        details.update(
            best_model=best.model, best_model_probability=report.probabilities[best.model],
            chi2=best.chi2, chi2_reduced=_finite_or_none(chi2_red), converged=best.converged,
        )
        dof = n - best.k
        if dof > 0 and chi2_red > st.poor_fit_chi2_reduced and stats.chi2.sf(best.chi2, dof) < st.poor_fit_p_value:
            flags.append("poor-fit")
        factor = 1.0
        if st.scale_errors and dof > 0 and chi2_red > 1:
            factor = math.sqrt(chi2_red)
            details["errors_scaled"] = True
        for pname in best.at_bounds:
            flags.append(f"at-bound:{pname}")
        # Signal check: is a constant (weighted mean) an acceptable description of the data?
        y = np.concatenate([b.intensity for b in report.blocks])
        s = np.concatenate([b.sigma for b in report.blocks])
        wgt = 1 / s**2
        chi2_flat = float(np.sum(wgt * (y - np.sum(wgt * y) / np.sum(wgt)) ** 2))
        if n > 1 and stats.chi2.sf(chi2_flat, n - 1) > 1e-3:
            flags.append("no-signal")
        details["chi2_reduced_flat"] = chi2_flat / (n - 1) if n > 1 else None

        values, sigmas = best.params, best.sigmas
        for pname in report_names:
            units = self._units(pname, candidate)
            if pname in values:
                sd = sigmas[pname] * factor
                spec = candidate.parameters[pname]
                if np.isfinite(sd) and sd > 0.5 * (spec.bounds[1] - spec.bounds[0]):
                    flags.append(f"unconstrained:{pname}")
                estimates[pname] = Estimate(value=values[pname], sigma=_finite_or_none(sd), units=units)
            elif pname in candidate.fixed and not isinstance(candidate.fixed[pname], str):
                # Fixed by assumption in this model: the value is known, its uncertainty is not.
                estimates[pname] = Estimate(value=float(candidate.fixed[pname]), sigma=None, units=units)
            else:
                # Not a parameter of the best model (e.g. `length` when a sphere wins): no value.
                if explicit:
                    flags.append(f"not-in-model:{pname}")
                estimates[pname] = Estimate(value=None, units=units)
        any_converged = any(f.converged for f in report.fits.values())
        valid = any_converged and "no-signal" not in flags
        return Interpretation(
            attempt_id=newest.attempt_id, sample_id=newest.sample_id or newest.attempt_id, analysis=self.name,
            estimates=estimates, flags=sorted(set(flags)), valid=valid, details=details,
        )

    def _units(self, pname: str, preferred: CandidateModel | None = None) -> str:
        """Units of a parameter: the settings' override, else sasmodels' (preferred model first)."""
        order = [preferred] if preferred is not None else []
        order += [c for c in self.settings.candidates if c is not preferred]
        for candidate in order:
            spec = candidate.parameters.get(pname)
            if spec is not None and spec.units is not None:
                return spec.units
            entry = parameter_table(candidate.model).fittable.get(pname)
            if entry is not None:
                return entry[2]
        return ""
