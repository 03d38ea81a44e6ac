"""What SAS measurement planners use from the fit: a candidate's prediction and its prior's information.

:func:`predict_with_jacobian` gives a candidate's smeared I(q) and dI/dθ on a prospective
configuration (its JᵀWJ, with W the σ expected of a planned exposure, is the information that
exposure would add to :attr:`analysis.sas.fit.FitResult.information`); :func:`prior_precision`
the prior's share of the information.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from analysis.sas.evaluator import CandidateEvaluator, interior, jacobian
from analysis.sas.settings import SASFitSettings


def predict_with_jacobian(
    settings: SASFitSettings, model: str, values: Mapping[str, float], q: np.ndarray, dq: np.ndarray,
    slit: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """Candidate ``model``'s smeared I(q) (1/cm) at ``values`` and its Jacobian over the fitted parameters.

    ``q``, ``dq`` (1/Å), shape (n,), ascending q; ``slit``: (half-length, half-width) (1/Å) of a
    slit-smeared configuration, which then replaces ``dq``. Returns (intensity (n,), jacobian (n, k), names (k,)):
    the Jacobian is d I / d θ by central differences (one-sided at a bound), in the order of the
    candidate's fitted parameters. A planner predicts a prospective exposure from it.
    """
    candidate = settings.candidate(model)
    q = np.asarray(q, dtype=float).reshape(-1)
    dq = np.broadcast_to(np.asarray(dq, dtype=float), q.shape).reshape(-1)
    ev = CandidateEvaluator(candidate, [q], [dq], [slit])
    try:
        specs = [candidate.parameters[p] for p in ev.names]
        lo = np.array([p.bounds[0] for p in specs], dtype=float)
        hi = np.array([p.bounds[1] for p in specs], dtype=float)
        theta = interior(np.array([float(values[nm]) for nm in ev.names], dtype=float), lo, hi)
        f0 = ev(theta)
        jac = jacobian(ev, theta, lo, hi, f0)
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
