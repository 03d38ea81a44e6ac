"""Powder-XRD phase identification: which library phases a sample holds, with probabilities and
weight fractions ± σ.

``settings`` (``XRDPhaseIDSettings``), ``pattern`` (the measured windows concatenated), ``residuals`` (missing
phase or too-simple profile), ``fit``
(the mixture model and its refinement), ``search`` (screen, shortlist, rank, refine), ``identify``
(posterior over phase sets, the analysis protocol), ``hypotheses`` (what a planner predicts from).
"""

from analysis.xrd.hypotheses import PhaseSetHypothesis, hypotheses_of, predict_rate
from analysis.xrd.identify import PhaseIDReport, XRDPhaseIdentification
from analysis.xrd.pattern import Pattern, collect
from analysis.xrd.settings import XRDPhaseIDSettings

__all__ = [
    "Pattern",
    "PhaseIDReport",
    "PhaseSetHypothesis",
    "XRDPhaseIDSettings",
    "XRDPhaseIdentification",
    "collect",
    "hypotheses_of",
    "predict_rate",
]
