"""SAS model fitting with calibrated uncertainties and model probabilities.

``SASFitAnalysis.interpret(measurements)`` turns every SAS exposure of one sample so far into
estimates of the most probable candidate model's parameters (value ± 1-σ), one probability per
candidate model (``p(<name>)``), and quality flags. One stage per module, in order:

1. :mod:`~analysis.sas.settings` — candidates, parameters, priors, how to fit. Settings errors
   (unknown sasmodels model, unknown parameter, bounds outside the model's limits) are raised when
   the settings are validated, before any data arrive.
2. :mod:`~analysis.sas.merge` — exposures of one configuration and Q grid merged point by point
   (inverse-variance or exposure-time weighting); bad points dropped and flagged.
3. :mod:`~analysis.sas.evaluator` — a candidate's I(q), a sasmodels kernel smeared by the shared
   evaluator of :mod:`physics.sas` (each block its own resolution: pinhole ``dq`` or slit
   ``dq_slit_length``/``dq_slit_width``), and its finite-difference Jacobian.
4. :mod:`~analysis.sas.search` — the global search: multistart scaled by the parameter count,
   log-range and form-factor fringes, and a check round (independent scan + box around the best).
5. :mod:`~analysis.sas.fit` — each candidate fitted to all blocks jointly (weighted least squares,
   variable projection of one shared scale and background), near-equivalent minima, its covariance
   ``(JᵀWJ + P)⁻¹`` and its evidence, Laplace with a prior-box guard (see
   :mod:`analysis.laplace`: for parameters the data do not constrain, each uniform prior also
   contributes its own precision 12/w², and the box mass truncates the Gaussian to the bounds;
   without them a flat direction gets det H → 0 and an evidence far above L_max, so the model with
   the most unidentifiable parameters would win) or BIC.
6. :mod:`~analysis.sas.analysis` — posterior model probabilities ``p(m) ∝ prior(m) Z_m^(1/T)``
   (T = χ²_red of the best model when its χ² is improbable, else 1) and the interpretation:
   estimates, details, flags, validity.

Flags: ``non-finite-data``, ``non-positive-sigma``, ``non-positive-q``, ``negative-dq``,
``missing-key:<k>``, ``shape-mismatch``, ``q-grid-mismatch:<configuration>``, ``no-data``,
``too-few-points``, ``fit-not-converged:<m>``, ``fit-failed:<m>``, ``ill-conditioned:<m>``,
``poor-fit``, ``second-minimum`` and ``second-minimum:<param>`` (another optimum within Δχ² < 4,
more than 2 σ away in that parameter; σ widened to cover it),
``search-widened`` (the check round found a better optimum than the first round),
``at-bound:<param>`` and ``unconstrained:<param>`` (best model), ``no-signal``,
``unexplained:<configuration>`` (the best candidate's χ² in that configuration alone is improbable: no
candidate explains it).
``interpret`` never raises on data.

For planners: :mod:`~analysis.sas.predict` (:func:`predict_with_jacobian`, :func:`prior_precision`),
and :meth:`SASFitAnalysis.fit` returns the :class:`FitResult` of every candidate.
"""

from analysis.sas.analysis import SASFitAnalysis, SASFitReport
from analysis.sas.fit import FitResult, fit_candidate
from analysis.sas.merge import MergedBlock, merge_measurements
from analysis.sas.predict import predict_with_jacobian, prior_precision
from analysis.sas.settings import (
    CandidateModel,
    FitParameter,
    GaussianPrior,
    SASFitSettings,
)

__all__ = [
    "CandidateModel",
    "FitParameter",
    "FitResult",
    "GaussianPrior",
    "MergedBlock",
    "SASFitAnalysis",
    "SASFitReport",
    "SASFitSettings",
    "fit_candidate",
    "merge_measurements",
    "predict_with_jacobian",
    "prior_precision",
]
