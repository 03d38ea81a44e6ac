"""Semantic checks of campaign files: what the schema cannot know, all errors at once.

``semantic_errors`` checks a schema-valid campaign against ``agent.kinds`` (instrument and analysis
kinds and their settings models, imported here by their import strings) and ``policies.registry``
(policy names and options), so that ``labpilot validate`` reports everything at once.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from agent.config import CampaignConfig, EstimateThresholdTarget, RelativeUncertaintyTarget
from agent.kinds import ANALYSIS_KINDS, INSTRUMENT_KINDS
from agent.targets import planning_goals
from policies.registry import build_policy


def _settings_errors(prefix: str, model: type[BaseModel], settings: dict[str, Any]) -> list[tuple[str, str]]:
    try:
        model.model_validate(settings)
    except ValidationError as exc:
        return [(".".join([prefix, *map(str, e["loc"])]), e["msg"]) for e in exc.errors()]
    return []


Errors = list[tuple[str, str]]
"""(field path, message) pairs."""


def semantic_errors(config: CampaignConfig) -> Errors:
    """Every reason this schema-valid campaign cannot run, as (field path, message)."""
    errors = _instrument_errors(config) + _key_file_errors(config)
    analysis_errors, estimates = _analysis_errors(config)
    from agent.approval import envelope_errors

    return (errors + analysis_errors + _estimate_errors(config, estimates) + _policy_errors(config) + _space_errors(config)
            + envelope_errors(config.approval, config.design_space))


def _instrument_errors(config: CampaignConfig) -> Errors:
    errors: Errors = []
    for i, inst in enumerate(config.instruments):
        spec = INSTRUMENT_KINDS.get(inst.kind)
        if spec is None:
            errors.append((f"instruments[{i}].kind", f"unknown instrument kind {inst.kind!r}; known: {sorted(INSTRUMENT_KINDS)}"))
            continue
        settings = spec.complete(inst.settings, config.design_space, Path(config.data_dir))
        errors += _settings_errors(f"instruments[{i}].settings", spec.settings_model(), settings)
    return errors


def _key_file_errors(config: CampaignConfig) -> Errors:
    """CURVE key files a remote instrument names must exist and load (a secret one private), here rather
    than when its actor starts: `validate` says which field is wrong, and `run` starts nothing."""
    errors: Errors = []
    for i, inst in enumerate(config.instruments):
        if inst.kind != "remote":
            continue
        from instruments.remote import RemoteSettings, load_public_certificate, load_secret_certificate

        try:
            settings = RemoteSettings.model_validate(inst.settings)
        except ValidationError:
            continue  # reported by _instrument_errors
        checks = ((settings.client_secret_key_file, "client_secret_key_file", load_secret_certificate),
                  (settings.server_public_key_file, "server_public_key_file", load_public_certificate))
        for path, field, load in checks:
            if path is None:
                continue
            try:
                load(path, field)
            except (ValueError, OSError) as exc:  # missing, unreadable, not a certificate, secret readable by others
                message = str(exc).removeprefix(f"{field}: ")
                errors.append((f"instruments[{i}].settings.{field}", message))
    return errors


def _analysis_errors(config: CampaignConfig) -> tuple[Errors, list[str]]:
    """(errors of the analysis block, the estimates it produces — empty when it is invalid)."""
    analysis = ANALYSIS_KINDS.get(config.analysis.kind)
    if analysis is None:
        return [("analysis.kind", f"unknown analysis kind {config.analysis.kind!r}; known: {sorted(ANALYSIS_KINDS)}")], []
    found = _settings_errors("analysis.settings", analysis.settings_model(), config.analysis.settings)
    if found:
        return found, []
    return [], analysis.estimates(analysis.settings_model().model_validate(config.analysis.settings))


def _estimate_errors(config: CampaignConfig, estimates: list[str]) -> Errors:
    """The objective and the targets must name estimates the analysis produces."""
    if not estimates:
        return []
    errors: Errors = []
    if config.objective.estimate not in estimates:
        errors.append(("objective.estimate", f"analysis does not produce {config.objective.estimate!r}; it produces {estimates}"))
    for i, target in enumerate(config.targets):
        if isinstance(target, (RelativeUncertaintyTarget, EstimateThresholdTarget)) and target.estimate not in estimates:
            errors.append((f"targets[{i}].estimate", f"analysis does not produce {target.estimate!r}; it produces {estimates}"))
    return errors


def _policy_errors(config: CampaignConfig) -> Errors:
    try:
        build_policy(
            config.policy.name, config.design_space, direction=config.objective.direction, seed=config.seed,
            options=config.policy.options, analysis=config.analysis.model_dump(mode="json"),
            goals=planning_goals(config.targets),
        )
    except ValueError as exc:
        field = "policy.options" if "option" in str(exc) else "policy.name"
        return [(field, str(exc))]
    return []


def _space_errors(config: CampaignConfig) -> Errors:
    try:
        config.design_space.sample(1, seed=config.seed)
    except ValueError as exc:
        return [("design_space", str(exc))]
    return []
