"""What the report of a campaign over samples (a map campaign) reads from the store, once: the
synthesis attempts and the across-sample policy's decisions, the samples with their outcomes, the
campaign-level target evaluations, and each sample step's own report data (its measurements).

The phase map is refitted here from the stored outcomes, as the across-sample policy fits it
(``policy.fit(policy.training_samples(context))`` for a map-learning policy; otherwise the shared
map model of ``policies/map_model.py`` with the targets' known labels), so the report shows what
the policy would see now.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from agent.report.data import ReportData, load_report_data
from agent.report.formatting import first_line
from agent.sample_step_config import SampleCampaignConfig, is_sample_campaign
from agent.store import Attempt, Campaign, Decision, Store, TargetEvaluation, UnknownCampaign
from agent.store.samples import Sample
from agent.trust import allowed_patterns, check_references
from policies.protocol import SampleOutcome


def is_map_campaign(config: Any) -> bool:
    """A stored configuration of a campaign over samples (it has a ``sample_step``)."""
    return is_sample_campaign(config)


@dataclass(frozen=True)
class MapReportData:
    campaign: Campaign
    config: SampleCampaignConfig | None
    config_error: str | None
    attempts: list[Attempt]
    """Synthesis attempts (recipes decided), seq order."""
    decisions: dict[int, Decision]
    samples: dict[str, Sample]
    """Synthesis attempt id → its sample (made, or its synthesis failed), in the order they were made."""
    evaluations: list[TargetEvaluation]
    steps: dict[str, ReportData]
    """Step campaign id → the step's own report data (its measurements, analyses, decisions)."""
    step_errors: dict[str, str]
    """Step campaign id → why its data could not be read."""

    @property
    def outcomes(self) -> list[SampleOutcome]:
        """The finished samples' outcomes in the order they were made (what the map targets read)."""
        return [SampleOutcome.model_validate(s.outcome) for s in self.samples.values() if s.outcome is not None]

    @property
    def synthesis_seconds(self) -> float:
        """Synthesis time spent, s (a failed synthesis counts its sample's expected seconds)."""
        failed = sum(s.seconds for s in self.samples.values() if s.step_campaign_id is None)
        return failed + sum(a.instrument_seconds or 0.0 for a in self.attempts)

    @property
    def instrument_seconds(self) -> float:
        """Characterisation time over every sample step, s."""
        return sum(d.instrument_seconds for d in self.steps.values())


def load_map_report_data(store: Store, campaign_id: str) -> MapReportData:
    """Read everything the map report shows about ``campaign_id`` (raises ``UnknownCampaign`` first)."""
    campaign = store.campaign(campaign_id)
    config, config_error = None, None
    try:
        # Checked before validation: validating imports what the configuration names (agent/trust.py).
        check_references(campaign.config, allowed_patterns(), f"campaign {campaign_id} (stored configuration)")
        config = SampleCampaignConfig.model_validate(campaign.config)
    except Exception as exc:  # noqa: BLE001 — an old or hand-edited config must not hide the rest
        config_error = f"{type(exc).__name__}: {first_line(exc)}"
    samples = {s.synthesis_attempt_id: s for s in store.samples(campaign_id)}
    steps: dict[str, ReportData] = {}
    step_errors: dict[str, str] = {}
    for s in samples.values():
        if s.step_campaign_id is None:
            continue
        try:
            steps[s.step_campaign_id] = load_report_data(store, s.step_campaign_id)
        except UnknownCampaign:
            step_errors[s.step_campaign_id] = "its sample step has not started"
    return MapReportData(
        campaign=campaign, config=config, config_error=config_error, attempts=store.attempts(campaign_id),
        decisions={d.id: d for d in store.decisions(campaign_id)}, samples=samples,
        evaluations=store.target_evaluations(campaign_id), steps=steps, step_errors=step_errors,
    )


# -- the map ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FittedMap:
    """The phase map refitted from the store, and where it came from (in words)."""

    phase_map: Any  # policies.map_model.PhaseMap
    source: str


def fit_campaign_map(d: MapReportData, store: Store) -> FittedMap | None:
    """The across-sample policy's map of the stored samples; None before any labelled sample.

    Raises whatever the fit raises (the page turns it into a note)."""
    from policies.map_model import fit_phase_map, labelled
    from policies.registry import build_policy

    config = d.config
    if config is None or not labelled(d.outcomes):
        return None
    policy = build_policy(config.policy.name, config.design_space, direction="maximize", seed=config.seed,
                          options=config.policy.options)
    if hasattr(policy, "fit") and hasattr(policy, "training_samples"):
        from agent.sample_ledger import SampleLedger
        from policies.protocol import PlanningGoals

        ledger = SampleLedger(store, d.campaign.id)
        ledger.load()
        context = ledger.planning_context({}, PlanningGoals())
        return FittedMap(policy.fit(policy.training_samples(context)),
                         f"the {config.policy.name} policy's map model, refitted to the samples' soft labels")
    labels = next((list(t.labels) for t in config.targets if getattr(t, "labels", None)), [])
    return FittedMap(fit_phase_map(config.design_space, d.outcomes, known_labels=labels),
                     f"the map model (policies/map_model.py) fitted to the samples' soft labels "
                     f"(the {config.policy.name} policy learns no map of its own)")
