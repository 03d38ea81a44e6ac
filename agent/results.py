"""A campaign's results as pydantic records, read from the store (the truth), and as a flat table.

``CampaignOutcome.from_store`` is what ``Campaign.run()``/``resume()``/``result()`` return (``agent/api.py``):
the status and stop reason, the targets, the totals, every attempt and every interpretation.
``attempts_table()`` flattens them, one row per attempt, for pandas (``to_pandas()``) or any table tool.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import Field

from agent.answer import Answer, campaign_answer
from agent.store import Attempt, Store
from analysis.protocol import Interpretation
from instruments.types import ParamValue, Record, finite_or_none, json_safe

if TYPE_CHECKING:
    import pandas

    from agent.campaign import Progress
    from agent.targets import TargetResult


class TargetState(Record):
    """One confidence target now: its value, its goal and whether it is met (``detail``: why not, or the incumbent)."""

    value: float | None
    goal: float
    met: bool
    detail: str = ""

    @classmethod
    def of(cls, result: TargetResult | dict[str, Any]) -> TargetState:
        r = result if isinstance(result, dict) else result.as_dict()
        return cls(value=finite_or_none(r.get("value")), goal=float(r["goal"]), met=bool(r["met"]),  # type: ignore[arg-type]
                   detail=str(r.get("detail") or ""))


class ProgressEvent(Record):
    """What ``run(on_progress=...)`` receives after every turn of the loop and at its end."""

    campaign_id: str
    n_measurements: int = Field(ge=0)
    instrument_seconds: float = Field(ge=0, description="instrument time spent, s")
    wall_seconds: float = Field(ge=0, description="wall-clock time of the campaign (all its runs), s")
    in_flight: int = Field(ge=0, description="measurements running now")
    refused: int = Field(ge=0)
    failed: int = Field(ge=0)
    targets: dict[str, TargetState]

    @property
    def all_met(self) -> bool:
        return bool(self.targets) and all(t.met for t in self.targets.values())

    @classmethod
    def of(cls, p: Progress) -> ProgressEvent:
        return cls(campaign_id=p.campaign_id, n_measurements=p.n_measurements, instrument_seconds=p.instrument_seconds,
                   wall_seconds=p.wall_seconds, in_flight=p.in_flight, refused=p.refused, failed=p.failed,
                   targets={k: TargetState.of(v) for k, v in p.targets.items()})


class AttemptResult(Record):
    """One attempt as the store holds it: where, its state, why it was refused, its instrument time."""

    attempt_id: str
    seq: int
    state: str
    params: dict[str, ParamValue]
    instrument: str | None
    sample_id: str | None
    refusal: str | None = Field(description="why the guard refused it (or why it failed)")
    reruns: int
    instrument_seconds: float | None = Field(description="instrument time of its measurement, s")

    @classmethod
    def of(cls, a: Attempt) -> AttemptResult:
        return cls(attempt_id=a.id, seq=a.seq, state=a.state.value, params=a.params, instrument=a.instrument,
                   sample_id=a.sample_id, refusal=a.reason, reruns=a.reruns,
                   instrument_seconds=finite_or_none(a.instrument_seconds))


class CampaignOutcome(Record):
    """A campaign as the store holds it now (after ``run``, ``resume``, or at any point of ask/tell)."""

    campaign_id: str
    name: str
    status: str = Field(description="running, completed, budget_exhausted, unreachable, failed or interrupted")
    stop_reason: str | None
    targets: dict[str, TargetState] = Field(description="as last evaluated (empty before the first evaluation)")
    all_met: bool
    n_measurements: int
    instrument_seconds: float = Field(description="instrument time spent, s")
    wall_seconds: float = Field(description="wall-clock time of every finished run, s")
    attempts: list[AttemptResult]
    interpretations: list[Interpretation] = Field(description="in the order they were recorded")
    answer: Answer = Field(description="what the campaign found so far (agent/answer.py), the answer first")

    @classmethod
    def from_store(cls, store: Store, campaign_id: str) -> CampaignOutcome:
        c = store.campaign(campaign_id)
        n, seconds = store.totals(campaign_id)
        evaluations = store.target_evaluations(campaign_id)
        last = evaluations[-1] if evaluations else None
        return cls(
            campaign_id=c.id, name=c.name, status=c.status.value, stop_reason=c.stop_reason,
            targets={k: TargetState.of(v) for k, v in (last.results if last else {}).items()},
            all_met=bool(last and last.all_met), n_measurements=n, instrument_seconds=seconds, wall_seconds=c.wall_seconds,
            attempts=[AttemptResult.of(a) for a in store.attempts(campaign_id)],
            interpretations=store.interpretations(campaign_id),
            answer=campaign_answer(store, campaign_id),
        )

    @property
    def last_interpretation(self) -> Interpretation | None:
        """The newest interpretation (for one sample measured again and again: the current answer)."""
        return self.interpretations[-1] if self.interpretations else None

    def attempts_table(self) -> list[dict[str, Any]]:
        """One flat row per attempt: its fields, ``param.<name>`` per design parameter, and from the
        interpretation its measurement triggered ``estimate.<name>``, ``sigma.<name>``, ``valid``, ``flags``."""
        by_attempt = {i.attempt_id: i for i in self.interpretations}
        rows = []
        for a in self.attempts:
            row: dict[str, Any] = a.model_dump(exclude={"params"})
            row.update({f"param.{k}": v for k, v in a.params.items()})
            interpretation = by_attempt.get(a.attempt_id)
            if interpretation is not None:
                for name, e in interpretation.estimates.items():
                    row[f"estimate.{name}"], row[f"sigma.{name}"] = e.value, e.sigma
                row["valid"], row["flags"] = interpretation.valid, ", ".join(interpretation.flags)
            rows.append(json_safe(row))
        return rows

    def to_pandas(self) -> pandas.DataFrame:
        """``attempts_table()`` as a pandas DataFrame indexed by attempt id (pandas is optional:
        ``pip install pandas``)."""
        try:
            import pandas
        except ImportError as exc:
            raise ImportError("to_pandas() needs pandas (pip install pandas); attempts_table() gives the same rows "
                              "as plain dicts") from exc
        return pandas.DataFrame(self.attempts_table()).set_index("attempt_id")
