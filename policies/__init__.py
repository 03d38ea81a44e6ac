"""Policies decide what to measure next: the planning protocol, BoTorch models and acquisitions,
SAS and XRD planners, baselines."""

from policies.protocol import ObjectivePolicy, Observation, PlanningContext, PlanningGoals, Policy, Proposal
from policies.space import DesignSpace

__all__ = ["DesignSpace", "ObjectivePolicy", "Observation", "PlanningContext", "PlanningGoals", "Policy", "Proposal"]
