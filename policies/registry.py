"""Policies by name, and construction from a campaign's (name, options) with clear errors.

Every policy class declares its options as a pydantic ``Options`` model (defaults, units,
validators) and which of the campaign's own arguments it takes besides the design space and the
seed (``campaign_arguments``): the direction and model cache (model-based policies), the analysis
block and the planning goals (measurement planners).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from policies.baselines import RandomPolicy, SobolPolicy
from policies.bayesian import ActiveLearning, BayesianOptimisation
from policies.models import Direction, ModelCache, direction_sign
from policies.protocol import PlanningGoals, Policy
from policies.sas import SASAdaptivePlanner, SASFixedProtocol, SASOracle, SASRandom, SASRoundRobin
from policies.space import DesignSpace
from policies.xrd import XRDAdaptivePlanner, XRDFullScan, XRDHeuristic

POLICIES: dict[str, type] = {
    BayesianOptimisation.name: BayesianOptimisation,
    ActiveLearning.name: ActiveLearning,
    SobolPolicy.name: SobolPolicy,
    RandomPolicy.name: RandomPolicy,
    SASAdaptivePlanner.name: SASAdaptivePlanner,
    SASOracle.name: SASOracle,
    SASFixedProtocol.name: SASFixedProtocol,
    SASRoundRobin.name: SASRoundRobin,
    SASRandom.name: SASRandom,
    XRDAdaptivePlanner.name: XRDAdaptivePlanner,
    XRDFullScan.name: XRDFullScan,
    XRDHeuristic.name: XRDHeuristic,
}

#: Constructor arguments the campaign supplies itself; they are not per-policy options.
CAMPAIGN_ARGUMENTS = ("space", "direction", "seed", "cache", "analysis", "targets", "goals")


def policy_options(name: str) -> list[str]:
    """The option names policy ``name`` accepts (the fields of its ``Options`` model)."""
    return list(_policy_class(name).Options.model_fields)


def build_policy(
    name: str,
    space: DesignSpace,
    *,
    direction: Direction,
    seed: int,
    options: Mapping[str, Any] | None = None,
    cache: ModelCache | None = None,
    analysis: Mapping[str, Any] | None = None,
    goals: PlanningGoals | None = None,
) -> Policy:
    """Construct policy ``name`` for ``space`` with campaign ``options``.

    ``options`` are validated by the policy's ``Options`` model; ``direction`` and ``cache`` are
    passed to the policies that use them (model-based ones), the campaign's ``analysis`` block
    (``{kind, settings}``) and ``goals`` to the measurement planners; nothing in ``options`` is
    dropped silently.

    Raises:
        ValueError: unknown policy name (listing the valid ones), an option the policy does not
            have (listing its options), an option that is a campaign argument, an invalid value,
            or goals the policy needs and the campaign does not have.
    """
    cls = _policy_class(name)
    direction_sign(direction)  # validates
    options = dict(options or {})
    reserved = sorted(set(options) & set(CAMPAIGN_ARGUMENTS))
    if reserved:
        raise ValueError(f"policy {name!r}: {reserved} are set by the campaign, not policy options")
    valid = policy_options(name)
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise ValueError(f"policy {name!r} has no option(s) {unknown}; valid options: {valid or 'none'}")
    try:
        validated = cls.Options.model_validate(options)
    except ValidationError as error:
        raise ValueError(f"policy {name!r}: {_problems(error)}") from None
    supplied = {
        "direction": direction,
        "cache": cache,
        "analysis": analysis if analysis is not None else {},
        "goals": goals if goals is not None else PlanningGoals(),
    }
    arguments = {argument: supplied[argument] for argument in cls.campaign_arguments}
    try:
        return cls(space, seed=seed, options=validated, **arguments)
    except (TypeError, KeyError, AttributeError) as error:  # e.g. an analysis block of the wrong shape
        raise ValueError(f"policy {name!r}: invalid options {options}: {error}") from error


def _problems(error: ValidationError) -> str:
    """The errors of an ``Options`` validation, one clause each: a validator's own message as it is
    (it names its option), pydantic's (type, missing, bounds) after the option's path."""
    problems = []
    for e in error.errors():
        if e["type"] == "value_error":
            problems.append(str(e["ctx"]["error"]))
        else:
            path = ".".join(str(part) for part in e["loc"])
            problems.append(f"option {path}: {e['msg']}")
    return "; ".join(problems)


def _policy_class(name: str) -> type:
    try:
        return POLICIES[name]
    except KeyError:
        raise ValueError(f"unknown policy {name!r}; valid policies: {sorted(POLICIES)}") from None


__all__ = ["POLICIES", "build_policy", "policy_options"]
