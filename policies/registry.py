"""Policies by name, and construction from a campaign's (name, options) with clear errors."""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

from policies.baselines import RandomPolicy, SobolPolicy
from policies.bayesian import ActiveLearning, BayesianOptimisation
from policies.models import Direction, ModelCache, direction_sign
from policies.protocol import Policy
from policies.space import DesignSpace

POLICIES: dict[str, type] = {
    BayesianOptimisation.name: BayesianOptimisation,
    ActiveLearning.name: ActiveLearning,
    SobolPolicy.name: SobolPolicy,
    RandomPolicy.name: RandomPolicy,
}

#: Constructor arguments the campaign supplies itself; they are not per-policy options.
CAMPAIGN_ARGUMENTS = ("space", "direction", "seed", "cache")


def policy_options(name: str) -> list[str]:
    """The option names policy ``name`` accepts (keyword arguments other than the campaign's)."""
    cls = _policy_class(name)
    parameters = inspect.signature(cls).parameters
    return [
        p for p, spec in parameters.items()
        if p not in CAMPAIGN_ARGUMENTS and spec.kind in (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    ]


def build_policy(
    name: str,
    space: DesignSpace,
    *,
    direction: Direction,
    seed: int,
    options: Mapping[str, Any] | None = None,
    cache: ModelCache | None = None,
) -> Policy:
    """Construct policy ``name`` for ``space`` with campaign ``options``.

    ``direction`` and ``cache`` are passed to the policies that use them (model-based ones);
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
    accepted = inspect.signature(cls).parameters
    kwargs: dict[str, Any] = {"seed": seed, **options}
    if "direction" in accepted:
        kwargs["direction"] = direction
    if "cache" in accepted and cache is not None:
        kwargs["cache"] = cache
    try:
        return cls(space, **kwargs)
    except TypeError as error:  # e.g. a wrongly typed option that reached an arithmetic check
        raise ValueError(f"policy {name!r}: invalid options {options}: {error}") from error


def _policy_class(name: str) -> type:
    try:
        return POLICIES[name]
    except KeyError:
        raise ValueError(f"unknown policy {name!r}; valid policies: {sorted(POLICIES)}") from None


__all__ = ["POLICIES", "build_policy", "policy_options"]
