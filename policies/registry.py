"""Policies by name, and construction from a campaign's (name, options) with clear errors."""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from typing import Any

from policies.baselines import RandomPolicy, SobolPolicy
from policies.bayesian import ActiveLearning, BayesianOptimisation
from policies.models import Direction, ModelCache, direction_sign
from policies.protocol import Policy
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
CAMPAIGN_ARGUMENTS = ("space", "direction", "seed", "cache", "analysis", "targets")


def _keyword_arguments(cls: type) -> list[str]:
    # A constructor that passes **kwargs on to its base accepts the base's keywords too.
    names: list[str] = []
    for klass in cls.__mro__:
        if klass is object or "__init__" not in vars(klass):
            continue
        parameters = inspect.signature(vars(klass)["__init__"]).parameters.values()
        names += [
            p.name for p in parameters
            if p.name != "self" and p.kind in (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
        ]
        if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
            break
    return list(dict.fromkeys(names))


def policy_options(name: str) -> list[str]:
    """The option names policy ``name`` accepts (keyword arguments other than the campaign's)."""
    return [p for p in _keyword_arguments(_policy_class(name)) if p not in CAMPAIGN_ARGUMENTS]


def build_policy(
    name: str,
    space: DesignSpace,
    *,
    direction: Direction,
    seed: int,
    options: Mapping[str, Any] | None = None,
    cache: ModelCache | None = None,
    analysis: Mapping[str, Any] | None = None,
    targets: Sequence[Mapping[str, Any]] | None = None,
) -> Policy:
    """Construct policy ``name`` for ``space`` with campaign ``options``.

    ``direction`` and ``cache`` are passed to the policies that use them (model-based ones), the
    campaign's ``analysis`` block and ``targets`` (as plain dicts) to the measurement planners;
    nothing in ``options`` is dropped silently.

    Raises:
        ValueError: unknown policy name (listing the valid ones), an option the policy does not
            have (listing its options), an option that is a campaign argument, or an invalid value.
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
    accepted = _keyword_arguments(cls)
    kwargs: dict[str, Any] = {"seed": seed, **options}
    if "direction" in accepted:
        kwargs["direction"] = direction
    if "cache" in accepted and cache is not None:
        kwargs["cache"] = cache
    for argument, value in (("analysis", analysis), ("targets", targets)):
        if argument in accepted:
            kwargs[argument] = value if value is not None else ({} if argument == "analysis" else [])
    try:
        return cls(space, **kwargs)
    except (TypeError, KeyError, AttributeError) as error:  # e.g. a wrongly typed option
        raise ValueError(f"policy {name!r}: invalid options {options}: {error}") from error


def _policy_class(name: str) -> type:
    try:
        return POLICIES[name]
    except KeyError:
        raise ValueError(f"unknown policy {name!r}; valid policies: {sorted(POLICIES)}") from None


__all__ = ["POLICIES", "build_policy", "policy_options"]
