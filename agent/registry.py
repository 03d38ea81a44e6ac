"""Names in campaign files → the classes that implement them.

Instrument kinds and analysis kinds are registered here (the agent is the only layer allowed to
know about simulators); policies come from ``policies.registry``. ``semantic_errors`` checks a
schema-valid campaign against these registries so that ``labpilot validate`` reports everything.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from agent.config import CampaignConfig, RelativeUncertaintyTarget
from analysis.protocol import Analysis
from analysis.scalar import ScalarAnalysis, ScalarSettings
from instruments.protocol import Driver
from policies.registry import build_policy
from policies.space import CategoricalParameter, DesignSpace
from simulators.synthetic import SyntheticPropertyDriver, SyntheticSettings


@dataclass(frozen=True)
class InstrumentKind:
    settings_model: type[BaseModel]
    build: Callable[[str, BaseModel], Driver]
    complete: Callable[[dict[str, Any], DesignSpace, Path], dict[str, Any]]
    """Fill settings the campaign implies (limits from the design space, data folder)."""


def _complete_synthetic(settings: dict[str, Any], space: DesignSpace, data_dir: Path) -> dict[str, Any]:
    out = dict(settings)
    if not out.get("inputs"):
        out["inputs"] = {
            p.name: (float(p.low), float(p.high)) for p in space.parameters if not isinstance(p, CategoricalParameter)
        }
    out.setdefault("journal_dir", str(data_dir))
    return out


INSTRUMENT_KINDS: dict[str, InstrumentKind] = {
    "synthetic": InstrumentKind(SyntheticSettings, SyntheticPropertyDriver, _complete_synthetic),  # type: ignore[arg-type]
}


@dataclass(frozen=True)
class AnalysisKind:
    settings_model: type[BaseModel]
    build: Callable[[BaseModel], Analysis]
    estimates: Callable[[BaseModel], list[str]]


ANALYSIS_KINDS: dict[str, AnalysisKind] = {
    "scalar": AnalysisKind(
        ScalarSettings,
        ScalarAnalysis,  # type: ignore[arg-type]
        lambda s: [s.estimate or s.key],  # type: ignore[attr-defined]
    ),
}


def build_driver(kind: str, name: str, settings: dict[str, Any]) -> Driver:
    """Construct a driver; runs inside the instrument actor's process."""
    spec = INSTRUMENT_KINDS[kind]
    return spec.build(name, spec.settings_model.model_validate(settings))


def driver_factory(kind: str, name: str, settings: dict[str, Any]) -> Callable[[], Driver]:
    """A picklable zero-argument factory for ``InstrumentActor``."""
    return partial(build_driver, kind, name, settings)


def build_analysis(kind: str, settings: dict[str, Any]) -> Analysis:
    spec = ANALYSIS_KINDS[kind]
    return spec.build(spec.settings_model.model_validate(settings))


def analysis_factory(kind: str, settings: dict[str, Any]) -> Callable[[], Analysis]:
    return partial(build_analysis, kind, settings)


def _settings_errors(prefix: str, model: type[BaseModel], settings: dict[str, Any]) -> list[tuple[str, str]]:
    try:
        model.model_validate(settings)
    except ValidationError as exc:
        return [(".".join([prefix, *map(str, e["loc"])]), e["msg"]) for e in exc.errors()]
    return []


def semantic_errors(config: CampaignConfig) -> list[tuple[str, str]]:
    """Every reason this schema-valid campaign cannot run, as (field path, message)."""
    errors: list[tuple[str, str]] = []
    for i, inst in enumerate(config.instruments):
        spec = INSTRUMENT_KINDS.get(inst.kind)
        if spec is None:
            errors.append((f"instruments[{i}].kind", f"unknown instrument kind {inst.kind!r}; known: {sorted(INSTRUMENT_KINDS)}"))
            continue
        settings = spec.complete(inst.settings, config.design_space, Path(config.data_dir))
        errors += _settings_errors(f"instruments[{i}].settings", spec.settings_model, settings)
    estimates: list[str] = []
    analysis = ANALYSIS_KINDS.get(config.analysis.kind)
    if analysis is None:
        errors.append(("analysis.kind", f"unknown analysis kind {config.analysis.kind!r}; known: {sorted(ANALYSIS_KINDS)}"))
    else:
        found = _settings_errors("analysis.settings", analysis.settings_model, config.analysis.settings)
        errors += found
        if not found:
            estimates = analysis.estimates(analysis.settings_model.model_validate(config.analysis.settings))
    if estimates and config.objective.estimate not in estimates:
        errors.append(("objective.estimate", f"analysis does not produce {config.objective.estimate!r}; it produces {estimates}"))
    for i, target in enumerate(config.targets):
        if isinstance(target, RelativeUncertaintyTarget) and estimates and target.estimate not in estimates:
            errors.append((f"targets[{i}].estimate", f"analysis does not produce {target.estimate!r}; it produces {estimates}"))
    try:
        build_policy(
            config.policy.name,
            config.design_space,
            direction=config.objective.direction,
            seed=config.seed,
            options=config.policy.options,
        )
    except ValueError as exc:
        field = "policy.options" if "option" in str(exc) else "policy.name"
        errors.append((field, str(exc)))
    try:
        config.design_space.sample(1, seed=config.seed)
    except ValueError as exc:
        errors.append(("design_space", str(exc)))
    return errors
