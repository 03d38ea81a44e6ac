"""The samples of a campaign over samples (self-driving lab): a part of the store's API.

A sample row is written once its synthesis is recorded (``measured``: the sample exists) or failed,
and finished when its sample step ended, with the outcome. Every write is idempotent on the sample
id, so a resumed campaign replays them safely. (Mixed into ``agent.store.store.Store``.)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from agent.store.schema import AttemptRow, SampleRow, utcnow
from instruments.types import ParamValue, json_safe

CHARACTERISING = "characterising"
"""The status of a sample made and not yet fully characterised."""


@dataclass(frozen=True)
class Sample:
    """A sample as the store holds it (see ``schema.SampleRow``)."""

    sample_id: str
    campaign_id: str
    synthesis_attempt_id: str
    step_campaign_id: str | None
    recipe: dict[str, ParamValue]
    status: str
    outcome: dict[str, Any] | None
    seconds: float

    @property
    def finished(self) -> bool:
        return self.status != CHARACTERISING


class SampleRecords:
    """The sample writes and reads of ``Store`` (which supplies ``_write`` and ``_read``)."""

    _write: Any
    _read: Any

    def record_sample(self, campaign_id: str, sample_id: str, synthesis_attempt_id: str, recipe: dict[str, ParamValue],
                      *, step_campaign_id: str | None, status: str = CHARACTERISING, outcome: dict[str, Any] | None = None,
                      seconds: float = 0.0) -> bool:
        """A new sample (made, or its synthesis failed); False (nothing written) if it is recorded already."""

        def act(s: Session) -> bool:
            if s.get(SampleRow, sample_id) is not None:
                return False
            s.add(SampleRow(sample_id=sample_id, campaign_id=campaign_id, synthesis_attempt_id=synthesis_attempt_id,
                            step_campaign_id=step_campaign_id, recipe=json_safe(recipe), status=status,
                            outcome=json_safe(outcome), seconds=seconds))
            return True

        return bool(self._write(f"record sample {sample_id}", act))

    def finish_sample(self, sample_id: str, status: str, outcome: dict[str, Any], seconds: float) -> None:
        """The sample step ended: its outcome (a ``SampleOutcome`` as JSON) and what the sample cost (s)."""

        def act(s: Session) -> None:
            row = s.get(SampleRow, sample_id)
            if row is None:
                raise KeyError(f"no sample {sample_id!r}")
            row.status, row.outcome, row.seconds, row.updated_at = status, json_safe(outcome), seconds, utcnow()

        self._write(f"finish sample {sample_id}", act)

    def samples(self, campaign_id: str) -> list[Sample]:
        """The campaign's samples in the order they were made."""
        return self._read(lambda s: [
            _sample(r) for r in s.scalars(
                select(SampleRow).join(AttemptRow, AttemptRow.id == SampleRow.synthesis_attempt_id)
                .where(SampleRow.campaign_id == campaign_id).order_by(AttemptRow.seq))])


def _sample(r: SampleRow) -> Sample:
    return Sample(r.sample_id, r.campaign_id, r.synthesis_attempt_id, r.step_campaign_id, r.recipe, r.status,
                  r.outcome, r.seconds)
