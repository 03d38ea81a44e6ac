"""Interpretation of raw data into estimates with uncertainty and quality flags."""

from analysis.protocol import Analysis, Estimate, Interpretation

__all__ = ["Analysis", "Estimate", "Interpretation"]
