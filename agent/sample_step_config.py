"""Campaign files of a campaign over samples (a self-driving lab): synthesise → characterise → decide.

A campaign over samples names its **synthesiser** (an instrument that makes a sample from a recipe),
the **across-sample policy** that picks recipes from the recipe ``design_space``, and a
**sample_step**: a campaign-shaped block (characterisation instruments, the measurement's own
design space, analysis, within-sample policy, per-sample targets and budgets) run on every sample
made. Campaign-level ``budgets`` count samples, synthesis seconds and instrument seconds::

    design_space: {parameters: [...], compositions: [...]}   # the recipe
    synthesiser: {name: furnace, kind: synthesis, settings: {...}}
    policy: {name: sobol}                                     # across samples
    sample_step:
      instruments: [...]; design_space: {...}; analysis: {...}
      policy: {name: xrd_adaptive}
      targets: [{kind: estimate_threshold, estimate: "p(best)", at_least: 0.95}]
      budgets: {max_measurements: 6}
    budgets: {max_samples: 20, max_synthesis_seconds: 1e5}

Validated completely before anything starts: the sample step is checked as the campaign it becomes
for one sample (``step_config``), its errors named under ``sample_step.``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError, model_validator

from agent.config import (
    AnalysisConfig,
    Budgets,
    CampaignConfig,
    CampaignFileError,
    DocumentsConfig,
    InstrumentConfig,
    ObjectiveConfig,
    PolicyConfig,
    TargetConfig,
    _loc,
)
from agent.map_targets import SampleCampaignTargetConfig, sample_target_errors, target_kind_errors, with_target_level_errors
from instruments.types import Record
from policies.space import DesignSpace


class SampleStepConfig(Record):
    """What is done to every sample made: characterised until its own targets hold or its budget is spent."""

    instruments: list[InstrumentConfig] = Field(min_length=1, description="characterisation instruments")
    design_space: DesignSpace = Field(description="the measurement's own settings (e.g. 2θ window, step, dwell)")
    analysis: AnalysisConfig
    objective: ObjectiveConfig = Field(default_factory=lambda: ObjectiveConfig(estimate="p(best)"),
                                       description="read by objective (BO) policies only")
    policy: PolicyConfig = Field(description="the within-sample planner, e.g. xrd_adaptive, sas_adaptive, xrd_full_scan")
    targets: list[TargetConfig] = Field(min_length=1, description="per-sample targets, e.g. p(best) ≥ 0.95")
    budgets: Budgets = Field(description="per-sample budgets (measurements, instrument seconds)")
    stop_on_targets: bool = True
    parallel: int = Field(default=1, ge=1, le=16, description="samples characterised at once, each on its own "
                          "characterisation instruments (one synthesiser feeding several diffractometers)")


class SampleBudgets(Record):
    """Campaign-level budgets: whichever runs out first stops it. At least one must be set."""

    max_samples: int | None = Field(default=None, ge=1, description="synthesis attempts dispatched (failed ones count)")
    max_synthesis_seconds: float | None = Field(default=None, gt=0, description="synthesis time, s")
    max_instrument_seconds: float | None = Field(default=None, gt=0, description="characterisation time, s")
    max_wall_seconds: float | None = Field(default=None, gt=0, description="summed over the run and its resumes")

    @model_validator(mode="after")
    def _one_set(self) -> SampleBudgets:
        if all(v is None for v in (self.max_samples, self.max_synthesis_seconds, self.max_instrument_seconds,
                                   self.max_wall_seconds)):
            raise ValueError("set at least one of max_samples, max_synthesis_seconds, max_instrument_seconds, max_wall_seconds")
        return self

    @property
    def max_measurements(self) -> None:
        """Progress displays read a campaign's measurement budget; a campaign over samples has none."""
        return None


class SampleCampaignConfig(Record):
    """A campaign over samples (see the module's docstring)."""

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    description: str = ""
    seed: int = Field(default=0, ge=0)
    storage: str = Field(default="sqlite:///labpilot.db", description="SQLAlchemy URL of the store")
    data_dir: str = Field(default="labpilot-data", description="instrument data files and document logs")
    design_space: DesignSpace = Field(description="the recipe: component fractions (a composition group) and process variables")
    synthesiser: InstrumentConfig = Field(description="the instrument that makes a sample from a recipe")
    policy: PolicyConfig = Field(description="the across-sample policy")
    sample_step: SampleStepConfig
    targets: list[SampleCampaignTargetConfig] = Field(
        default_factory=list, description="campaign-level targets: map_confidence, map_accuracy, boundary_located, best_in_region "
        "(agent/map_targets.py), evaluated after each sample's outcome")
    budgets: SampleBudgets
    stop_on_targets: bool = Field(default=True, description="stop (completed) as soon as every campaign-level target holds")
    documents: DocumentsConfig = Field(default_factory=DocumentsConfig)

    @property
    def instruments(self) -> list[InstrumentConfig]:
        """Every instrument of the campaign: the synthesiser, then the characterisation instruments."""
        return [self.synthesiser, *self.sample_step.instruments]

    @model_validator(mode="after")
    def _unique_names(self) -> SampleCampaignConfig:
        names = [i.name for i in self.instruments]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"synthesiser and sample_step.instruments: duplicate names {dup}")
        if self.synthesiser.count != 1:
            raise ValueError("synthesiser.count: one synthesiser (batches: its batch_capacity setting)")
        return self

    def stored_form(self) -> dict[str, Any]:
        """As ``CampaignConfig.stored_form``: JSON, the storage URL's password masked."""
        from agent.store.engine import describe_url

        return {**self.model_dump(mode="json"), "storage": describe_url(self.storage)}

    def step_config(self, step_name: str, sample_id: str, campaign_id: str | None = None) -> CampaignConfig:
        """The campaign the sample step of ``sample_id`` is: every attempt measures that sample
        (``campaign_id``: the campaign over samples it belongs to, named in its description)."""
        step = self.sample_step
        return CampaignConfig(
            name=step_name, description=f"sample step of {campaign_id or self.name}: {sample_id}", seed=self.seed,
            storage=self.storage, data_dir=self.data_dir, sample=sample_id, design_space=step.design_space,
            instruments=step.instruments, analysis=step.analysis, objective=step.objective, policy=step.policy,
            targets=step.targets, budgets=step.budgets, documents=self.documents, stop_on_targets=step.stop_on_targets,
        )


def is_sample_campaign(data: Any) -> bool:
    """A parsed campaign document that describes a campaign over samples."""
    return isinstance(data, dict) and "sample_step" in data


def parse_sample_campaign(data: dict[str, Any], source: str) -> SampleCampaignConfig:
    """Validate a campaign over samples completely (schema, then semantics); ``CampaignFileError`` lists all."""
    try:
        config = SampleCampaignConfig.model_validate(data)
    except ValidationError as exc:
        errors = [(_loc(tuple(p for p in e["loc"] if not str(p).startswith("function-after"))), e["msg"]) for e in exc.errors()]
        errors = with_target_level_errors(data, errors, ("sample_step", "targets"))
        top = data.get("targets")  # per-sample kinds at the top: said now too, all errors at once
        if isinstance(top, list) and all(isinstance(t, dict) for t in top):
            errors += target_kind_errors(top, "targets", over_samples=True)
        raise CampaignFileError(source, errors) from None
    errors = sample_campaign_errors(config)
    if errors:
        raise CampaignFileError(source, errors)
    return config


def sample_campaign_errors(config: SampleCampaignConfig) -> list[tuple[str, str]]:
    """Every semantic reason the campaign cannot run: the synthesiser, the across-sample policy, the
    recipe space, and the sample step checked as the campaign it becomes for one sample."""
    from agent.validation import semantic_errors

    errors = _synthesiser_errors(config) + _policy_errors(config) + sample_target_errors(config.targets, _step_estimates(config))
    step = config.step_config(f"{config.name}.step", "sample")
    step_fields = {"instruments", "design_space", "analysis", "objective", "policy", "targets", "budgets", "approval"}
    for field, message in semantic_errors(step):
        head = field.split("[")[0].split(".")[0]
        errors.append((f"sample_step.{field}" if head in step_fields else field, message))
    return errors


def _step_estimates(config: SampleCampaignConfig) -> list[str]:
    """The estimates a sample's outcome may carry (the step analysis'); empty if its kind is unknown."""
    from agent.kinds import ANALYSIS_KINDS

    kind = ANALYSIS_KINDS.get(config.sample_step.analysis.kind)
    try:
        return list(kind.estimate_units(kind.settings_model().model_validate(config.sample_step.analysis.settings))) if kind else []
    except ValidationError:
        return []  # reported as the step's analysis settings


def _synthesiser_errors(config: SampleCampaignConfig) -> list[tuple[str, str]]:
    from agent.kinds import INSTRUMENT_KINDS

    synth = config.synthesiser
    spec = INSTRUMENT_KINDS.get(synth.kind)
    if spec is None:
        return [("synthesiser.kind", f"unknown instrument kind {synth.kind!r}; known: {sorted(INSTRUMENT_KINDS)}")]
    settings = spec.complete(synth.settings, config.design_space, Path(config.data_dir))
    try:
        validated = spec.settings_model().model_validate(settings)
    except ValidationError as exc:
        return [(".".join(["synthesiser.settings", *map(str, e["loc"])]), e["msg"]) for e in exc.errors()]
    model = getattr(validated, "model", None)
    if model is None:
        return []
    fields = set(model().request_fields)
    names = {p.name for p in config.design_space.parameters}
    if fields != names:
        return [("synthesiser.settings", f"the synthesiser makes recipes of {sorted(fields)}; the design space has "
                                         f"{sorted(names)}")]
    return []


def _policy_errors(config: SampleCampaignConfig) -> list[tuple[str, str]]:
    from policies.registry import build_policy

    try:
        build_policy(config.policy.name, config.design_space, direction="maximize", seed=config.seed,
                     options=config.policy.options)
    except ValueError as exc:
        return [("policy.options" if "option" in str(exc) else "policy.name", str(exc))]
    try:
        config.design_space.sample(1, seed=config.seed)
    except ValueError as exc:
        return [("design_space", str(exc))]
    return []
