"""Pausing while an instrument says "not now" (interlock open, beam down): bluesky's suspenders for a campaign.

An instrument raises ``InstrumentNotReady`` from ``check`` or ``measure`` before it acquires anything.
The campaign then holds (status ``paused``, with the reason), decides nothing new, asks the
instrument again every ``faults.pause_poll_seconds``, and goes on by itself once it answers; each
pause and its end are a ``pauses``-stream event in the run's documents (the end carries the
seconds paused). Paused time is wall time, never instrument time: nothing was measured.

The attempt that met the refusal is not refused or failed: a ``check`` that said "not now" leaves
it ``validated`` (decided, not yet dispatched; the guard asks again), a ``measure`` that said it
leaves it ``dispatched`` (the same request is sent again, idempotent by attempt id).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import event_model

from agent.documents import document_uid
from agent.errors import first_line
from agent.recorder import Recorder
from agent.store import CampaignStatus, Document, Store
from instruments.protocol import InstrumentNotReady
from instruments.types import Measurement

logger = logging.getLogger("labpilot.campaign")

PAUSES_STREAM = "pauses"
PAUSES_KEYS: dict[str, Any] = {
    "state": {"dtype": "string", "shape": [], "source": "labpilot", "description": "paused | resumed"},
    "instrument": {"dtype": "string", "shape": [], "source": "labpilot"},
    "reason": {"dtype": "string", "shape": [], "source": "labpilot"},
    "paused_seconds": {"dtype": "number", "shape": [], "source": "labpilot", "units": "s",
                       "description": "wall seconds this pause lasted (0 when it starts)"},
}


class CampaignStopping(Exception):
    """The campaign stops while an instrument is still not ready: the request is not sent again."""


class PauseGate:
    """Which instruments said "not now", since when; the campaign is paused while any did."""

    def __init__(self, recorder: Recorder, poll_seconds: float) -> None:
        self.recorder, self.campaign_id, self.poll_seconds = recorder, recorder.campaign_id, poll_seconds
        self.held: dict[tuple[str, str], str] = {}  # (via "check" | "measure", instrument) → its reason
        self.since: float | None = None  # time.monotonic() when the pause began
        self.paused_seconds = 0.0  # summed over this run's pauses
        self.pauses = 0
        self.stopping = False  # set by the loop when a stop rule holds: give up waiting

    @property
    def active(self) -> bool:
        return bool(self.held)

    def hold(self, via: str, instrument: str, reason: str) -> None:
        """``instrument`` said "not now" to a ``check`` or a ``measure`` (``via``): pause the campaign
        (once), with the reason."""
        first = not self.held
        self.held.setdefault((via, instrument), reason)
        if first:
            self.since, self.pauses = time.monotonic(), self.pauses + 1
            logger.warning("campaign %s paused: %s", self.campaign_id, reason)
            self._record(CampaignStatus.PAUSED, f"paused: {reason}", "paused", instrument, reason, 0.0)

    def release(self, via: str, instrument: str) -> None:
        """``instrument`` accepted again; the campaign goes on once no instrument holds it."""
        if self.held.pop((via, instrument), None) is None or self.held or self.since is None:
            return
        seconds = time.monotonic() - self.since
        self.paused_seconds += seconds
        self.since = None
        logger.warning("campaign %s resumed after %.1f s paused", self.campaign_id, seconds)
        self._record(CampaignStatus.RUNNING, None, "resumed", instrument, "", seconds)

    def release_checks(self) -> None:
        """A held attempt passed an instrument's check: the pauses that came from checks are over."""
        for via, instrument in [k for k in self.held if k[0] == "check"]:
            self.release(via, instrument)

    async def measure_when_ready(self, instrument: str, measure: Callable[[], Awaitable[Measurement]]) -> Measurement:
        """``measure()``, asked again every ``poll_seconds`` while the instrument says "not now";
        ``CampaignStopping`` if the campaign stops meanwhile."""
        while True:
            try:
                measurement = await measure()
            except InstrumentNotReady as exc:
                self.hold("measure", instrument, first_line(exc))
                if self.stopping:
                    raise CampaignStopping(first_line(exc)) from None
                await asyncio.sleep(self.poll_seconds)
                continue
            self.release("measure", instrument)
            return measurement

    async def wait(self) -> None:
        """One poll interval: the loop's turn while the campaign is paused on a ``check``."""
        await asyncio.sleep(self.poll_seconds)

    # -- records ----------------------------------------------------------------------------------
    def _record(self, status: CampaignStatus, reason: str | None, state: str, instrument: str, why: str,
                seconds: float) -> None:
        self.recorder.status(status, reason, self._documents(state, instrument, why, seconds))

    def _documents(self, state: str, instrument: str, reason: str, seconds: float) -> list[Document]:
        """The ``pauses`` descriptor (with the run's first pause) and this change's event."""
        composer = self.recorder.composer
        if composer is None or composer.start is None:
            return []
        now, out = time.time(), []
        if PAUSES_STREAM not in composer.descriptors:
            descriptor = event_model.compose_descriptor(
                start=composer.start, streams={}, event_counters={}, name=PAUSES_STREAM, data_keys=PAUSES_KEYS,  # type: ignore[arg-type]
                uid=document_uid(self.campaign_id, "descriptor", composer.run_index, PAUSES_STREAM), time=now,
            ).descriptor_doc
            composer.descriptors[PAUSES_STREAM] = dict(descriptor)
            out.append(Document("descriptor", composer.descriptors[PAUSES_STREAM], PAUSES_STREAM))
        composer.counts.setdefault(PAUSES_STREAM, 0)
        # Not a replayable record (a pause happens once, in time): its time makes its uid unique across resumes.
        key = f"{composer.run_index}/{time.time_ns()}/{state}"
        data = {"state": state, "instrument": instrument, "reason": reason, "paused_seconds": seconds}
        out.append(composer._event(PAUSES_STREAM, key, data, now))  # noqa: SLF001 — the composer's own event builder
        return out


def paused_seconds(store: Store, campaign_id: str) -> float:
    """Wall seconds the campaign spent paused, over all its runs (from its ``pauses`` documents)."""
    total = 0.0
    for _, d in store.documents(campaign_id):
        if d.name == "event" and d.stream == PAUSES_STREAM and d.doc["data"].get("state") == "resumed":
            total += float(d.doc["data"]["paused_seconds"])
    return total
