"""Policies decide what to measure next: BoTorch models and acquisitions, baselines."""

from policies.protocol import Observation, Policy, Proposal
from policies.space import DesignSpace

__all__ = ["DesignSpace", "Observation", "Policy", "Proposal"]
