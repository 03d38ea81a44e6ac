"""What the report reads from the store: everything, once, into plain frozen dataclasses.

The figures and the page only look at a :class:`ReportData`; nothing after :func:`load_report_data`
touches the store, so one report is one consistent read (apart from the store's own snapshots).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from agent.answer import Answer, answer_of
from agent.config import CampaignConfig
from agent.trust import allowed_patterns, check_references
from agent.report.formatting import first_line
from agent.store import Attempt, Campaign, Decision, Store, TargetEvaluation
from agent.store.lifecycle import AttemptState
from analysis.protocol import Interpretation
from instruments.types import Measurement
from policies.protocol import Observation
from policies.space import DesignSpace


@dataclass(frozen=True)
class AttemptPoint:
    """One attempt as the design-space figure sees it."""

    attempt: Attempt
    kind: str  # see figures.POINT_STYLES
    value: float | None  # objective estimate, for trained points
    sigma: float | None
    order: int | None  # 1-based measurement order, None when never measured


@dataclass(frozen=True)
class ReportData:
    campaign: Campaign
    config: CampaignConfig | None
    config_error: str | None
    attempts: list[Attempt]
    decisions: dict[int, Decision]
    interpretations: dict[str, Interpretation]
    measurement_order: dict[str, int]
    measurements: list[Measurement]
    """Every measurement with its arrays, oldest first (the sample figures draw them)."""
    n_measurements: int
    instrument_seconds: float
    evaluations: list[TargetEvaluation]
    answer: Answer

    @property
    def space(self) -> DesignSpace | None:
        return self.config.design_space if self.config is not None else None

    def objective_estimate(self, attempt_id: str) -> tuple[float | None, float | None, str]:
        """(value, sigma, units) of the objective estimate of an attempt; values None when absent."""
        interp = self.interpretations.get(attempt_id)
        if interp is None or self.config is None:
            return None, None, ""
        est = interp.estimates.get(self.config.objective.estimate)
        if est is None:
            return None, None, ""
        return est.value, est.sigma, est.units

    def objective_units(self) -> str:
        """The units of the objective estimate: those of the first attempt that reports any."""
        for a in self.attempts:
            _, _, units = self.objective_estimate(a.id)
            if units:
                return units
        return ""

    def history(self) -> list[Observation]:
        """Valid observations of the objective, as the campaign loop builds them (seq order)."""
        out = []
        for a in self.attempts:
            interp = self.interpretations.get(a.id)
            value, sigma, _ = self.objective_estimate(a.id)
            if interp is not None and interp.valid and value is not None:
                out.append(Observation(params=a.params, value=value, sigma=sigma, attempt_id=a.id))
        return out


def load_report_data(store: Store, campaign_id: str) -> ReportData:
    """Read everything the report shows about ``campaign_id``.

    Raises:
        UnknownCampaign: the store has no campaign ``campaign_id`` (before anything else is read).
    """
    campaign = store.campaign(campaign_id)  # raises UnknownCampaign first
    config, config_error = None, None
    try:
        # Checked before validation: validating imports what the configuration names (agent/trust.py).
        check_references(campaign.config, allowed_patterns(), f"campaign {campaign_id} (stored configuration)")
        config = CampaignConfig.model_validate(campaign.config)
    except Exception as exc:  # noqa: BLE001 — an old or hand-edited config must not hide the rest
        config_error = f"{type(exc).__name__}: {first_line(exc)}"
    n_measurements, instrument_seconds = store.totals(campaign_id)
    # Loaded once, arrays included: the order of measurements and the sample figures both need them.
    measurements = store.measurements(campaign_id)
    order = {m.attempt_id: i + 1 for i, m in enumerate(measurements)}
    attempts = store.attempts(campaign_id)
    interpretations = store.interpretations(campaign_id)
    evaluations = store.target_evaluations(campaign_id)
    answer = answer_of(campaign_id, campaign.config, interpretations, {a.id: a.params for a in attempts},
                       evaluations[-1] if evaluations else None)
    return ReportData(
        campaign=campaign,
        config=config,
        config_error=config_error,
        attempts=attempts,
        decisions={d.id: d for d in store.decisions(campaign_id)},
        interpretations={i.attempt_id: i for i in interpretations},
        measurement_order=order,
        measurements=measurements,
        n_measurements=n_measurements,
        instrument_seconds=instrument_seconds,
        evaluations=evaluations,
        answer=answer,
    )


def state_counts(attempts: Sequence[Attempt]) -> list[tuple[str, int]]:
    """(state, number of attempts) for every state that occurs: lifecycle order, unknown states last."""
    counts = Counter(a.state.value for a in attempts)
    lifecycle = [s.value for s in AttemptState]
    states = [s for s in lifecycle if counts.get(s)] + sorted(set(counts) - set(lifecycle))
    return [(s, counts[s]) for s in states]


def attempt_points(d: ReportData) -> list[AttemptPoint]:
    """Every attempt, seq order, classified for the design-space figure (see ``figures.POINT_STYLES``)."""
    out = []
    for a in d.attempts:
        interp = d.interpretations.get(a.id)
        value, sigma, _ = d.objective_estimate(a.id)
        if a.state == "refused":
            kind = "refused"
        elif a.state in ("failed", "unknown"):
            kind = "failed"
        elif interp is None:
            kind = "pending"
        elif not interp.valid or value is None:
            kind = "invalid"
        else:
            kind = "flagged" if interp.flags else "trained"
        out.append(AttemptPoint(a, kind, value, sigma, d.measurement_order.get(a.id)))
    return out


def reason_indices(attempts: Sequence[Attempt]) -> dict[str, int]:
    """Attempt id → index of its reason in its decision's ``reasons``.

    ``reasons[i]`` of a decision belongs to its i-th attempt in seq order (how the loop records them).
    """
    index_in_decision: dict[str, int] = {}
    for decision_id in {a.decision_id for a in attempts if a.decision_id is not None}:
        for i, a in enumerate(sorted((a for a in attempts if a.decision_id == decision_id), key=lambda a: a.seq)):
            index_in_decision[a.id] = i
    return index_in_decision


def attempt_reason(decision: Decision | None, index: int | None) -> dict[str, Any]:
    """The policy's reason for one attempt of ``decision``; a bare reason is wrapped as ``{"reason": …}``."""
    if decision is not None and index is not None and index < len(decision.reasons):
        return decision.reasons[index] if isinstance(decision.reasons[index], dict) else {"reason": decision.reasons[index]}
    return {}
