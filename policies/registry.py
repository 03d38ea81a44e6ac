"""Policies by name, and construction from a campaign's (name, options) with clear errors.

Every policy class declares its options as a pydantic ``Options`` model (defaults, units,
validators) and which of the campaign's own arguments it takes besides the design space and the
seed (``campaign_arguments``): the direction and model cache (model-based policies), the analysis
block and the planning goals (measurement planners).
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from policies.protocol import PlanningGoals, Policy
from policies.space import DesignSpace

if TYPE_CHECKING:
    from policies.models import Direction, ModelCache


class _Registry(Mapping[str, type]):
    """Policy name → class, each module imported when its class is first asked for: validating a
    Sobol, SAS or XRD campaign does not import torch and BoTorch (seconds) for the BO policies."""

    def __init__(self, classes: dict[str, str]) -> None:
        self._classes = classes  # name → "module:Class"

    def __getitem__(self, name: str) -> type:
        module, _, cls = self._classes[name].partition(":")
        return getattr(importlib.import_module(module), cls)  # type: ignore[no-any-return]

    def __iter__(self) -> Iterator[str]:
        return iter(self._classes)

    def __len__(self) -> int:
        return len(self._classes)


POLICIES: Mapping[str, type] = _Registry({
    "qlognei": "policies.bayesian:BayesianOptimisation",
    "qnipv": "policies.bayesian:ActiveLearning",
    "sobol": "policies.baselines:SobolPolicy",
    "random": "policies.baselines:RandomPolicy",
    "sas_adaptive": "policies.sas:SASAdaptivePlanner",
    "sas_oracle": "policies.sas:SASOracle",
    "sas_fixed": "policies.sas:SASFixedProtocol",
    "sas_round_robin": "policies.sas:SASRoundRobin",
    "sas_random": "policies.sas:SASRandom",
    "xrd_adaptive": "policies.xrd:XRDAdaptivePlanner",
    "xrd_full_scan": "policies.xrd:XRDFullScan",
    "xrd_heuristic": "policies.xrd:XRDHeuristic",
    # Across-sample policies of a campaign over samples (self-driving lab).
    "phase_map": "policies.phase_map:PhaseMapPolicy",
    "phase_map_unsupervised": "policies.phase_map_unsupervised:UnsupervisedPhaseMapPolicy",
    "map_grid": "policies.map_baselines:MapGridPolicy",
    "map_random": "policies.map_baselines:MapRandomPolicy",
    "region_bo": "policies.region_bo:RegionBayesianOptimisation",
    "region_mobo": "policies.region_mobo:RegionMultiObjective",
})

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
    if direction not in ("maximize", "minimize"):
        raise ValueError(f"direction must be 'maximize' or 'minimize', not {direction!r}")  # as direction_sign says
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
