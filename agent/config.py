"""Campaign files: YAML validated completely, with every error named by its field path, before
anything starts or is written.

Two passes: the pydantic schema (shape, types, ranges), then semantics that need the registries
(instrument kinds and their settings, analysis kinds, policy names and options, estimates).
Both passes collect *all* errors; ``CampaignFileError`` carries them as (field path, message).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import Field, ValidationError, field_validator, model_validator

from agent.faults import FaultsConfig
from instruments.types import Record
from policies.space import DesignSpace


class InstrumentConfig(Record):
    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    kind: str = Field(min_length=1, description="driver kind, e.g. 'synthetic'")
    settings: dict[str, Any] = Field(default_factory=dict, description="validated by the kind's settings model")
    count: int = Field(default=1, ge=1, le=64, description="identical instruments run in parallel")
    ray_resources: dict[str, float] = Field(
        default_factory=dict,
        description="Ray custom resources the instrument's actor needs, e.g. {diffractometer_pc: 1}: on a cluster "
        "it then runs on the node that offers them (the instrument's own PC, started with `ray start --resources`)",
    )

    @field_validator("ray_resources")
    @classmethod
    def _positive_resources(cls, value: dict[str, float]) -> dict[str, float]:
        bad = [k for k, v in value.items() if not v > 0]
        if bad:
            raise ValueError(f"resource amounts must be > 0: {', '.join(bad)}")
        return value


class AnalysisConfig(Record):
    kind: str = Field(default="scalar", min_length=1)
    settings: dict[str, Any] = Field(default_factory=dict)


class ObjectiveConfig(Record):
    estimate: str = Field(min_length=1, description="name of the analysis estimate the policy models")
    direction: Literal["maximize", "minimize"] = "maximize"


class PolicyConfig(Record):
    name: str = Field(min_length=1, description="qlognei | qnipv | sobol | random")
    options: dict[str, Any] = Field(default_factory=dict)


class _Target(Record):
    name: str = Field(min_length=1)


class MaxPosteriorStdTarget(_Target):
    """Mapping: the model's largest posterior standard deviation over the design space ≤ ``goal``."""

    kind: Literal["max_posterior_std"]
    goal: float = Field(gt=0, description="in the objective estimate's units")
    min_observations: int = Field(default=5, ge=1)


class IncumbentNearOptimumTarget(_Target):
    """Optimisation: P(incumbent within ``epsilon`` of the optimum) ≥ ``probability``."""

    kind: Literal["incumbent_near_optimum"]
    epsilon: float = Field(gt=0, description="in the objective estimate's units")
    probability: float = Field(gt=0, lt=1)
    min_observations: int = Field(default=5, ge=1)


class RelativeUncertaintyTarget(_Target):
    """σ/|value| of the named estimate ≤ ``goal`` (for the newest sample, or the best one)."""

    kind: Literal["relative_uncertainty"]
    estimate: str = Field(min_length=1)
    goal: float = Field(gt=0)
    sample: Literal["latest", "best"] = "latest"


class EstimateThresholdTarget(_Target):
    """The newest valid value of the named estimate is ≥ ``at_least`` and/or ≤ ``at_most``
    (e.g. ``p(best)`` ≥ 0.95: the most probable model is known)."""

    kind: Literal["estimate_threshold"]
    estimate: str = Field(min_length=1)
    at_least: float | None = None
    at_most: float | None = None

    @model_validator(mode="after")
    def _one_bound(self) -> EstimateThresholdTarget:
        if self.at_least is None and self.at_most is None:
            raise ValueError("set at_least, at_most or both")
        return self


TargetConfig = Annotated[
    MaxPosteriorStdTarget | IncumbentNearOptimumTarget | RelativeUncertaintyTarget | EstimateThresholdTarget,
    Field(discriminator="kind"),
]


class Budgets(Record):
    """Whichever runs out first stops the campaign. At least one must be set: every campaign ends."""

    max_measurements: int | None = Field(default=None, ge=1)
    max_instrument_seconds: float | None = Field(default=None, gt=0)
    max_wall_seconds: float | None = Field(default=None, gt=0, description="summed over the run and its resumes")

    @model_validator(mode="after")
    def _one_set(self) -> Budgets:
        if self.max_measurements is None and self.max_instrument_seconds is None and self.max_wall_seconds is None:
            raise ValueError("set at least one of max_measurements, max_instrument_seconds, max_wall_seconds")
        return self


class DocumentsConfig(Record):
    """Where a campaign's documents go (campaign file: ``documents``)."""

    jsonl: bool = Field(default=True, description="write <data_dir>/<campaign id>/documents.jsonl ([name, doc] per line)")
    zmq_address: str | None = Field(
        default=None, description="a bluesky 0MQ proxy's input, e.g. 'tcp://127.0.0.1:5577' (as bluesky's Publisher)"
    )
    prefix: str = Field(default="labpilot", pattern=r"^[^ ]*$", description="0MQ topic prefix (no spaces)")
    serializer: Literal["json", "msgpack"] = "json"


class EnvelopeBound(Record):
    """The safe region of one parameter: ``low``/``high`` (numbers, the parameter's units) or ``choices``."""

    low: float | None = None
    high: float | None = None
    choices: list[str] | None = Field(default=None, min_length=1)

    @model_validator(mode="after")
    def _one_kind(self) -> EnvelopeBound:
        if self.choices is not None and (self.low is not None or self.high is not None):
            raise ValueError("give choices (a categorical parameter) or low/high (a number), not both")
        if self.choices is None and self.low is None and self.high is None:
            raise ValueError("set low, high or choices")
        if self.low is not None and self.high is not None and self.low > self.high:
            raise ValueError(f"low ({self.low}) must not be above high ({self.high})")
        return self


class ApprovalConfig(Record):
    """The approval gate (``agent/approval.py``): ``auto`` runs every cleared proposal; ``manual`` makes
    each wait for a person (approve, edit, reject); ``envelope`` runs proposals inside the declared
    safe region and makes the others wait. Checked against the design space by ``agent/validation.py``."""

    mode: Literal["auto", "manual", "envelope"] = "auto"
    envelope: dict[str, EnvelopeBound] = Field(default_factory=dict, description="parameter name → safe bounds")
    poll_seconds: float = Field(default=0.5, gt=0, le=60, description="how often a waiting campaign looks for a decision")

    @model_validator(mode="after")
    def _envelope_for_envelope_mode(self) -> ApprovalConfig:
        if self.mode == "envelope" and not self.envelope:
            raise ValueError("mode envelope needs an envelope (parameter name → low/high or choices)")
        if self.mode != "envelope" and self.envelope:
            raise ValueError(f"an envelope is only used with mode envelope (mode is {self.mode})")
        return self


class CampaignConfig(Record):
    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    description: str = ""
    seed: int = Field(default=0, ge=0)
    storage: str = Field(default="sqlite:///labpilot.db", description="SQLAlchemy URL of the store")
    data_dir: str = Field(default="labpilot-data", description="instrument data files and document logs")
    sample: str | None = Field(
        default=None,
        description="measure one sample: every attempt measures it, and the analysis interprets all its "
        "measurements together (within-sample adaptivity: the design space is then the measurement's own "
        "settings, e.g. configuration and exposure). Unset: every attempt is a new sample.",
    )
    design_space: DesignSpace
    instruments: list[InstrumentConfig] = Field(min_length=1)
    analysis: AnalysisConfig = Field(default_factory=AnalysisConfig)
    objective: ObjectiveConfig
    policy: PolicyConfig
    targets: list[TargetConfig] = Field(min_length=1)
    budgets: Budgets
    documents: DocumentsConfig = Field(
        default_factory=DocumentsConfig,
        description="bluesky event-model documents: JSON lines beside the store (default) and/or a 0MQ proxy",
    )
    approval: ApprovalConfig = Field(
        default_factory=ApprovalConfig,
        description="human approval of proposals before they run: auto (none), manual (all), envelope (outside a safe region)",
    )
    faults: FaultsConfig = Field(
        default_factory=FaultsConfig,
        description="instrument faults: per-request timeouts, actor restarts, failure budgets, pausing (agent/faults.py)",
    )
    stop_on_targets: bool = Field(
        default=True,
        description="stop as soon as every target holds; false: spend the budget (a fixed protocol), "
        "and report the targets at the end",
    )
    in_process: bool = Field(
        default=False,
        description="the fast path: instrument drivers and the analysis run inside the campaign process and are "
        "called directly (no Ray actor, no thread) — for simulators and drivers whose calls return in milliseconds. "
        "A call blocks the loop while it runs; no per-request timeout or actor restart applies (README, "
        "'Orchestration overhead')",
    )
    stop_when_unreachable: bool = Field(
        default=True,
        description="end the sample as 'unreachable' when the measurement planner forecasts (P ≥ 0.9) that the "
        "targets cannot be reached in the instrument budget left (planners that forecast only)",
    )

    def stored_form(self) -> dict[str, Any]:
        """The configuration as it is stored and published (the store, documents, reports): JSON,
        with the password of the ``storage`` URL masked. The password is never needed again: the
        store is opened at run time from the command line, ``LABPILOT_DB`` or libpq's ``.pgpass``."""
        from agent.store.engine import describe_url

        return {**self.model_dump(mode="json"), "storage": describe_url(self.storage)}

    @model_validator(mode="after")
    def _unique_names(self) -> CampaignConfig:
        for label, names in (("instruments", [i.name for i in self.instruments]), ("targets", [t.name for t in self.targets])):
            dup = sorted({n for n in names if names.count(n) > 1})
            if dup:
                raise ValueError(f"{label}: duplicate names {dup}")
        return self


class CampaignFileError(Exception):
    """A campaign file is invalid. ``errors`` lists (field path, message) pairs, all of them."""

    def __init__(self, source: str, errors: list[tuple[str, str]]) -> None:
        self.source = source
        self.errors = errors
        lines = "\n".join(f"  {loc or '(file)'}: {msg}" for loc, msg in errors)
        super().__init__(f"{source}: {len(errors)} error(s)\n{lines}")


def _loc(parts: tuple[int | str, ...]) -> str:
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out


def parse_campaign(data: Any, source: str = "<campaign>") -> CampaignConfig:
    """Validate a parsed campaign document completely (schema, then semantics)."""
    if not isinstance(data, dict):
        raise CampaignFileError(source, [("", f"expected a mapping at the top level, got {type(data).__name__}")])
    from agent.sample_step_config import is_sample_campaign, parse_sample_campaign

    if is_sample_campaign(data):  # a campaign over samples (self-driving lab): agent/sample_step_config.py
        return parse_sample_campaign(data, source)  # type: ignore[return-value]
    try:
        config = CampaignConfig.model_validate(data)
    except ValidationError as exc:
        from agent.map_targets import with_target_level_errors  # map kinds belong to campaigns over samples

        errors = [(_loc(tuple(p for p in e["loc"] if not str(p).startswith("function-after"))), e["msg"]) for e in exc.errors()]
        raise CampaignFileError(source, with_target_level_errors(data, errors, ("targets",))) from None
    from agent.validation import semantic_errors  # the registries import policies (BoTorch); keep this module light

    errors = semantic_errors(config)
    if errors:
        raise CampaignFileError(source, errors)
    return config


def stored_campaign_model(data: Any) -> type[Record]:
    """The model of a stored configuration: ``CampaignConfig``, or a campaign over samples'."""
    from agent.sample_step_config import SampleCampaignConfig, is_sample_campaign

    return SampleCampaignConfig if is_sample_campaign(data) else CampaignConfig


def load_campaign(path: str | Path) -> CampaignConfig:
    """Read and validate a campaign YAML file; raises ``CampaignFileError`` naming file and fields."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise CampaignFileError(str(path), [("", f"cannot read file: {exc.strerror or exc}")]) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise CampaignFileError(str(path), [("", f"not valid YAML: {exc}")]) from None
    return parse_campaign(data, str(path))
