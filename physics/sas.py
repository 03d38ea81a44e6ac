"""Small-angle scattering physics shared by the simulated instrument and the fit: sasmodels access.

One place for what both need from sasmodels:

- **model info** (:func:`model_info`): a model name or expression (``sphere``, ``sphere+power_law``,
  ``sphere@hardsphere``) loaded once per process; :func:`library_models` names the building blocks;
- **parameters** (:func:`parameter_table`, :func:`user_parameters`, :func:`kernel_defaults`): what a
  model can be told, its limits and units, and the polydispersity defaults made explicit;
- **compiled kernels** (:func:`kernel_model`): built once per process (double precision, C DLL),
  serialised across threads *and* processes, because sasmodels compiles a missing kernel straight
  into its shared DLL folder (:func:`compile_lock`);
- **resolution** (:class:`SmearedEvaluator`, one evaluator for every block): per block either
  sasmodels' own Gaussian ``Pinhole1D`` of 1-σ width ``dq`` per point, or its ``Slit1D`` of slit
  length / width (1/Å, a Bonse–Hart USANS), chosen by the block's keys in :func:`resolution_block`;
  pinhole blocks are sampled on a kernel grid chosen by a :class:`ResolutionBlock` builder —
  :func:`fit_resolution` (kernel directly on a log grid, for a fit's many evaluations),
  :func:`truth_resolution` (kernel on a coarser log grid, cubic-spline interpolated onto a dense one:
  a simulator's accurate ground truth) and :func:`sasmodels_resolution` (sasmodels' default sampling at
  the data points, as ``DirectModel`` does).

sasmodels is imported on first use, never at module import: the analysis layer imports this module
when the agent registers kinds, and sasmodels costs ~0.3 s to import. This module imports no
labpilot package.
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
import re
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

FWHM_PER_SIGMA = 2.0 * math.sqrt(2.0 * math.log(2.0))
"""FWHM of a Gaussian in units of its standard deviation (≈ 2.3548)."""

POLYDISPERSITY_SUFFIXES = ("_pd", "_pd_n", "_pd_nsigma", "_pd_type")
"""What sasmodels appends to a parameter name for its size distribution: relative width, number of
points, width of the mesh in σ, distribution type."""

PD_DEFAULT_N = 35
"""sasmodels/SasView default number of polydispersity points (a missing ``*_pd_n`` means 0 points)."""

PD_DEFAULT_NSIGMA = 3.0
"""sasmodels/SasView default half-width of the polydispersity mesh, in σ of the distribution."""


# --------------------------------------------------------------------------------------------------
# Model info and parameters
# --------------------------------------------------------------------------------------------------


def _sasmodels_core() -> Any:
    import sasmodels.core

    return sasmodels.core


@functools.lru_cache(maxsize=1)
def library_models() -> tuple[str, ...]:
    """Names of sasmodels' built-in models (form factors and structure factors), sorted."""
    return tuple(sorted(_sasmodels_core().list_models()))


@functools.lru_cache(maxsize=1)
def polydispersity_types() -> tuple[str, ...]:
    """Size distributions a ``*_pd_type`` may name, sorted ('array' needs explicit weights, so it is not offered)."""
    from sasmodels import weights

    return tuple(sorted(name for name in weights.MODELS if name != "array"))


def model_parts(expression: str) -> list[str]:
    """The model names an expression combines (``+`` and ``*`` mix, ``@`` takes a structure factor)."""
    return re.split(r"[+*@]", expression)


@functools.lru_cache(maxsize=256)
def model_info(expression: str) -> Any:
    """sasmodels ``ModelInfo`` of a model name or expression, loaded once per process.

    Raises whatever sasmodels raises for an expression it cannot load (callers check the names
    first with :func:`library_models` and word the error for their users).
    """
    return _sasmodels_core().load_model_info(expression)


def user_parameters(info: Any) -> dict[str, Any]:
    """The parameters a 1-D I(Q) depends on (no orientation or magnetic ones), by name."""
    return {p.id: p for p in info.parameters.user_parameters({}, is2d=False)}


@dataclass(frozen=True)
class ParameterTable:
    """What may be said about one sasmodels model's parameters."""

    fittable: dict[str, tuple[float, float, str]]  # name → (lower limit, upper limit, units)
    fixed_only: set[str]  # *_pd_n, *_pd_type, *_pd_nsigma, switches, magnetic and other non-fittable names
    pd_parameters: tuple[str, ...]  # parameters with 1-D polydispersity
    listed: tuple[str, ...] = ()  # the names an error message lists (magnetic ones left out)


@functools.lru_cache(maxsize=256)
def parameter_table(expression: str) -> ParameterTable:
    """Fittable parameters (with sasmodels limits and units) and fixed-only names of a model."""
    table = model_info(expression).parameters
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
    return ParameterTable(fittable, fixed_only, pd, tuple(listed))


def kernel_defaults(expression: str) -> dict[str, float | int | str]:
    """sasmodels' default parameters of a model, with every polydispersity made explicit.

    sasmodels treats a missing ``*_pd_n`` as 0 points (no polydispersity at all, whatever ``*_pd``
    says), so each polydisperse parameter gets width 0, :data:`PD_DEFAULT_N` points,
    :data:`PD_DEFAULT_NSIGMA` and a Gaussian distribution.
    """
    pars: dict[str, float | int | str] = dict(model_info(expression).parameters.defaults)
    for name in parameter_table(expression).pd_parameters:
        pars[f"{name}_pd"] = 0.0
        pars[f"{name}_pd_n"] = PD_DEFAULT_N
        pars[f"{name}_pd_nsigma"] = PD_DEFAULT_NSIGMA
        pars[f"{name}_pd_type"] = "gaussian"
    return pars


# --------------------------------------------------------------------------------------------------
# Compiled kernels, once per process
# --------------------------------------------------------------------------------------------------

_KERNEL_MODELS: dict[str, Any] = {}
_COMPILE_THREADS = threading.RLock()  # reentrant: a nested compile_lock() in one thread is a no-op
_compile_depth = 0  # nesting of compile_lock() in the thread holding _COMPILE_THREADS


@contextlib.contextmanager
def compile_lock() -> Iterator[None]:
    """Hold the kernel-compile lock: one thread of this process, and one process on this machine.

    sasmodels compiles a missing kernel straight into its shared DLL folder; two processes (e.g. an
    instrument actor and the analysis actor) starting at once on a fresh machine could load a
    half-written library. Reentrant within a thread, so nesting does not deadlock on the file lock.
    """
    global _compile_depth
    with _COMPILE_THREADS:
        if _compile_depth > 0:
            _compile_depth += 1
            try:
                yield
            finally:
                _compile_depth -= 1
            return
        with _file_lock():
            _compile_depth = 1
            try:
                yield
            finally:
                _compile_depth = 0


@contextlib.contextmanager
def _file_lock() -> Iterator[None]:
    try:
        import fcntl
    except ImportError:  # not POSIX: no cross-process lock, as sasmodels itself
        yield
        return
    from sasmodels import kerneldll

    os.makedirs(kerneldll.SAS_DLL_PATH, exist_ok=True)
    with open(os.path.join(kerneldll.SAS_DLL_PATH, ".labpilot-compile.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def kernel_model(expression: str) -> Any:
    """The compiled sasmodels model (a ``KernelModel``) of an expression, built once per process.

    ``platform="dll"``: the C kernel through the system compiler, never OpenCL (no GPU here, and
    probing OpenCL devices is slow and noisy). Double precision: a fit takes its Jacobian by finite
    differences, and single-precision kernels would leave ~1e-7 noise in it; a simulator's truth
    should be exact. Compiled models are also cached on disk by sasmodels (``~/.sasmodels`` or
    ``$SAS_DLL_PATH``; a C compiler is needed the first time).
    """
    with compile_lock():
        km = _KERNEL_MODELS.get(expression)
        if km is None:
            km = _sasmodels_core().build_model(model_info(expression), dtype="double", platform="dll")
            _KERNEL_MODELS[expression] = km
        return km


# --------------------------------------------------------------------------------------------------
# Pinhole resolution
# --------------------------------------------------------------------------------------------------


def log_q_grid(q: np.ndarray, dq: np.ndarray, per_sigma: float, at_least: int, at_most: int) -> np.ndarray:
    """Log-spaced Q points (1/Å) over sasmodels' pinhole support (−2.5σ … +3σ around the data).

    ``q``, ``dq`` (1/Å), shape (n,). At least ``per_sigma`` points per σ of the narrowest relative
    resolution (over the points with dq > 0; at least one must have it), at least ``at_least`` and
    at most ``at_most`` points.
    """
    from sasmodels import resolution

    positive = dq > 0
    lo = max(float(np.min(q - 2.5 * dq)), resolution.MINIMUM_ABSOLUTE_Q * float(np.min(q)))
    hi = float(np.max(q + 3.0 * dq))
    wanted = math.ceil(math.log(hi / lo) * per_sigma / float(np.min(dq[positive] / q[positive])))
    return np.geomspace(lo, hi, int(min(at_most, max(wanted, at_least))))


@dataclass(frozen=True)
class ResolutionBlock:
    """One (q, dq) block's resolution: where the kernel is evaluated and how that becomes I(q).

    ``resolution``: a sasmodels ``Resolution`` (``Pinhole1D`` or ``Perfect1D``) of the block's q;
    ``q_kernel`` (1/Å): where the kernel runs; ``interpolate``: whether the kernel's I(q_kernel) is
    cubic-spline interpolated (in log q) onto ``resolution.q_calc`` before the quadrature, else
    ``q_kernel`` is ``resolution.q_calc`` itself.
    """

    resolution: Any
    q_kernel: np.ndarray
    interpolate: bool = False

    def smear(self, iq: np.ndarray) -> np.ndarray:
        """I(q) (1/cm) at the block's q, shape (n,), from the kernel's I at ``q_kernel``."""
        if not self.interpolate:
            return self.resolution.apply(iq)
        from scipy.interpolate import CubicSpline

        spline = CubicSpline(np.log(self.q_kernel), iq)
        return np.asarray(self.resolution.apply(spline(np.log(self.resolution.q_calc))), dtype=np.float64)


def fit_resolution(q: np.ndarray, dq: np.ndarray) -> ResolutionBlock:
    """A fit's resolution: the kernel directly on a log grid of ≥ 8 points per σ (at most 1500).

    Pinhole1D's default q_calc is the data points themselves, about one σ apart; its
    truncated-Gaussian quadrature then misses the smeared curve by up to ~1 % (several σ of a long
    exposure). With no dq > 0 at all the block is unsmeared (``Perfect1D``).
    """
    from sasmodels import resolution

    if np.any(dq > 0):
        res = resolution.Pinhole1D(q, dq, q_calc=log_q_grid(q, dq, per_sigma=8, at_least=2 * len(q), at_most=1500))
    else:
        res = resolution.Perfect1D(q)
    return ResolutionBlock(res, np.asarray(res.q_calc, dtype=float))


def truth_resolution(q: np.ndarray, dq: np.ndarray) -> ResolutionBlock:
    """A simulator's accurate resolution: the kernel on a log grid with ≥ 4 points per σ and per data
    bin (at most 4000), cubic-spline interpolated onto ≥ 64 points per σ (at most 20000, and at most
    5e6 matrix entries) for ``Pinhole1D``'s quadrature. Needs dq > 0 at every point."""
    from sasmodels import resolution

    q_kernel = log_q_grid(q, dq, per_sigma=4, at_least=4 * len(q), at_most=4000)
    fine = log_q_grid(q, dq, per_sigma=64, at_least=16 * len(q), at_most=min(20000, 5_000_000 // len(q)))
    return ResolutionBlock(resolution.Pinhole1D(q, dq, q_calc=fine), q_kernel, interpolate=True)


def sasmodels_resolution(q: np.ndarray, dq: np.ndarray) -> ResolutionBlock:
    """sasmodels' default sampling (as ``DirectModel``): the kernel at the data points, extended at the ends."""
    from sasmodels import resolution

    pinhole = resolution.Pinhole1D(q, dq)
    return ResolutionBlock(pinhole, pinhole.q_calc)


def slit_resolution(
    q: np.ndarray, slit_length: np.ndarray | float, slit_width: np.ndarray | float = 0.0, dense: bool = False
) -> ResolutionBlock:
    """sasmodels' slit resolution (``Slit1D``) of one block: slit length and width (1/Å, scalars or (n,)).

    The kernel runs on a log grid from the lowest q (less the width) to the far end of the slit,
    ``√((q+w)² + L²)``: sasmodels' own ``slit_extend_q`` sampling (as SasView) misses a USANS block
    by ~2 % at its high-q end (0.5 µm latex, L = 0.117/Å), so a fit (``dense=False``) uses ≥ 1000
    points (≥ 8 per data point, within ~0.05 % there) and a simulator's truth (``dense=True``)
    ≥ 8000 (≥ 16 per data point), so the truth does not share the fit's quadrature.
    """
    from sasmodels import resolution

    q = np.asarray(q, dtype=float)
    length = np.broadcast_to(np.asarray(slit_length, dtype=float), q.shape)
    width = np.broadcast_to(np.asarray(slit_width, dtype=float), q.shape)
    lo = max(float(np.min(q - width)), resolution.MINIMUM_ABSOLUTE_Q * float(np.min(q)))
    hi = float(np.max(np.sqrt((q + width) ** 2 + length**2)))
    n_kernel = max(8000, 16 * q.size) if dense else max(1000, 8 * q.size)
    q_calc = np.geomspace(lo, hi, n_kernel)
    res = resolution.Slit1D(q, q_length=length, q_width=width, q_calc=q_calc)
    return ResolutionBlock(res, np.asarray(res.q_calc, dtype=float))


def resolution_block(
    q: np.ndarray,
    dq: np.ndarray | None = None,
    slit_length: np.ndarray | float | None = None,
    slit_width: np.ndarray | float | None = None,
    dense: bool = False,
) -> ResolutionBlock:
    """The block's resolution, chosen by which widths it has (all in 1/Å, arrays of shape (n,)).

    A slit length (or width) with any value > 0 → :func:`slit_resolution`; else a pinhole ``dq`` →
    :func:`fit_resolution` (``dense``: :func:`truth_resolution`); neither → unsmeared.
    """
    q = np.asarray(q, dtype=float)
    slit = [np.zeros_like(q) if a is None else np.broadcast_to(np.asarray(a, dtype=float), q.shape)
            for a in (slit_length, slit_width)]
    if slit_length is not None or slit_width is not None:
        if np.any(slit[0] > 0) or np.any(slit[1] > 0):
            return slit_resolution(q, slit[0], slit[1], dense=dense)
    dq_arr = np.zeros_like(q) if dq is None else np.asarray(dq, dtype=float)
    if dense and np.all(dq_arr > 0):
        return truth_resolution(q, dq_arr)
    return fit_resolution(q, dq_arr)


class SmearedEvaluator:
    """Smeared I(q) of one sasmodels model on a set of resolution blocks (pinhole, slit or none).

    All blocks share one kernel (their ``q_kernel`` concatenated) and one kernel call per
    evaluation; each block then applies its own resolution. Kernels hold native buffers: call
    :meth:`release` when done (or use :func:`smeared_intensity` for a single evaluation).
    """

    def __init__(self, expression: str, blocks: Sequence[ResolutionBlock]) -> None:
        self.blocks = list(blocks)
        calcs = [np.asarray(b.q_kernel, dtype=float) for b in self.blocks]
        self.splits = np.cumsum([c.size for c in calcs])[:-1]
        self.kernel = kernel_model(expression).make_kernel([np.concatenate(calcs)])

    def __call__(self, parameters: Mapping[str, float | int | str], cutoff: float = 0.0) -> np.ndarray:
        """Concatenated smeared intensity (1/cm), shape (Σ n_block,), at sasmodels ``parameters``.

        ``cutoff``: sasmodels' polydispersity weight cutoff; 0 integrates the whole mesh.
        """
        from sasmodels.direct_model import call_kernel

        iq = call_kernel(self.kernel, dict(parameters), cutoff=cutoff)
        parts = np.split(np.asarray(iq, dtype=float), self.splits)
        return np.concatenate([block.smear(part) for block, part in zip(self.blocks, parts)])

    def release(self) -> None:
        """Free the kernel's native buffers (best effort)."""
        with contextlib.suppress(Exception):  # pragma: no cover - release is best effort
            self.kernel.release()


def smeared_intensity(
    model: str, parameters: Mapping[str, float | int | str], q: np.ndarray, dq: np.ndarray, dense: bool = True
) -> np.ndarray:
    """sasmodels I(q) (1/cm) smeared by sasmodels' Gaussian pinhole resolution of 1-σ width ``dq`` (1/Å).

    ``q``, ``dq``: shape (n,), dq > 0. ``dense=False`` samples as ``sasmodels.direct_model.DirectModel``
    does (:func:`sasmodels_resolution`). Its truncated-Gaussian weights (±2.5σ/+3σ) converge only
    linearly in the point spacing, and the data spacing is often ~σ: on the SANS instrument of the
    tests that is off by up to 1 % (polydisperse sphere, 6 % FWHM), ~4 σ of a 10-minute exposure.

    ``dense=True`` (a simulator's truth, :func:`truth_resolution`): within ~0.05 σ of a 10-minute
    exposure there, at the cost of a few kernel points per σ.
    """
    block = truth_resolution(q, dq) if dense else sasmodels_resolution(q, dq)
    evaluator = SmearedEvaluator(model, [block])
    try:
        return evaluator(parameters)
    finally:
        evaluator.release()


PinholeEvaluator = SmearedEvaluator
"""The evaluator's former name (it evaluated pinhole blocks only)."""
