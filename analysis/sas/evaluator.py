"""A candidate model's smeared I(q) on merged blocks, and its Jacobian by finite differences.

The model is a sasmodels kernel compiled once per process (double precision, C DLL) and smeared by
each block's own resolution — sasmodels' ``Pinhole1D`` at each point's ``dq``, or its ``Slit1D`` for
a slit-smeared block — :class:`physics.sas.SmearedEvaluator` on :func:`physics.sas.resolution_block`
blocks, the same evaluator the simulated instrument uses.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from analysis.sas.settings import CandidateModel
from physics.sas import SmearedEvaluator, kernel_defaults, resolution_block

Slit = tuple[np.ndarray, np.ndarray]
"""A block's slit length and width (1/Å), each (n,)."""


def kernel_parameters(candidate: CandidateModel) -> dict[str, float | int | str]:
    """sasmodels defaults + polydispersity defaults + the candidate's fixed values."""
    pars = kernel_defaults(candidate.model)
    pars.update(candidate.fixed)
    for key, value in pars.items():
        if key.endswith("_pd_n"):
            pars[key] = int(value)  # type: ignore[arg-type]  # sasmodels wants an integer count
    return pars


class CandidateEvaluator:
    """I(q) of one candidate on a set of (q, dq) blocks, smeared by each block's resolution.

    All blocks share one kernel call (their q_calc concatenated); each block then applies its own
    resolution matrix. ``__call__(theta)`` → concatenated model intensity (1/cm), shape (Σ n_block,),
    ``theta`` (k,) in the order of ``names`` (the candidate's fitted parameters). ``slits``: per block
    its (slit length, slit width) for a slit-smeared block, None for a pinhole one (default: all pinhole).
    """

    def __init__(
        self, candidate: CandidateModel, qs: Sequence[np.ndarray], dqs: Sequence[np.ndarray],
        slits: Sequence[Slit | None] | None = None,
    ) -> None:
        self.candidate = candidate
        self.names = list(candidate.parameters)
        self.base = kernel_parameters(candidate)
        self.background = float(self.base.pop("background", 0.0))  # type: ignore[arg-type]
        # Repeated q values give zero-width bins in the weight matrix (0/0, then renormalised);
        # numpy's warning about it is noise here.
        slits = list(slits) if slits is not None else [None] * len(qs)
        with np.errstate(all="ignore"):
            blocks = [
                resolution_block(q, dq) if slit is None else resolution_block(q, slit_length=slit[0], slit_width=slit[1])
                for q, dq, slit in zip(qs, dqs, slits)
            ]
        self.pinhole = SmearedEvaluator(candidate.model, blocks)
        self.n_evaluations = 0

    def raw(self, values: Mapping[str, float]) -> np.ndarray:
        """Smeared intensity with the given overrides, *without* background."""
        pars = dict(self.base)
        pars.update(values)
        pars["background"] = 0.0  # added after smearing by the caller, as sasmodels' DirectModel does
        self.n_evaluations += 1
        # cutoff=0: integrate the whole polydispersity mesh — a weight cutoff makes I(θ) piecewise
        # and would put steps into the finite-difference Jacobian.
        # Extreme trial parameters may overflow; a non-finite model becomes a large residual in the
        # fit (and a failed fit at worst), so numpy's warning would only be noise.
        with np.errstate(all="ignore"):
            return self.pinhole(pars, cutoff=0.0)

    def __call__(self, theta: np.ndarray) -> np.ndarray:
        values = dict(zip(self.names, (float(t) for t in theta)))
        background = values.pop("background", self.background)
        return self.raw(values) + background

    def release(self) -> None:
        self.pinhole.release()


def jacobian(fun: Any, x: np.ndarray, lo: np.ndarray, hi: np.ndarray, f0: np.ndarray | None = None) -> np.ndarray:
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


def interior(x: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """``x`` clipped a hair (1e-9 of the range) inside its bounds, so a Jacobian can step both ways."""
    margin = 1e-9 * (hi - lo)
    return np.clip(x, lo + margin, hi - margin)
