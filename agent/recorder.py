"""Every write of the loop: one call per record, each one transaction with its documents, then publication.

Write-ahead: the loop calls the recorder *before* the action a record describes (the decision with
its guard verdicts and dispatch before any measurement is requested; ``measured`` before analysis).
A record's event-model documents go into the store's outbox in the record's own transaction; only
after the commit are they published (JSON lines, 0MQ) — at least once: what a crash leaves
unpublished goes out from the outbox on resume (``open_run``).

One record may wait for the next: the loop's analysis (``interpretation(..., defer=True)``) is
committed with the decision that follows it, or on its own (``flush``) at the end of the loop's turn
if no decision follows. Write-ahead still holds — nothing acts on an analysis but the next decision,
and a measurement whose analysis a crash left uncommitted is analysed again on resume — at one commit
per measurement fewer.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from agent.answer import Answer
from agent.config import CampaignConfig
from agent.documents import DocumentPublisher, RunComposer, composer_for
from agent.store import AnalysedRecord, CampaignStatus, Document, ProposedAttempt, Store, StoreUnavailable, TargetEvaluation
from agent.versions import package_versions
from analysis.protocol import Interpretation
from instruments.types import DataKey, Measurement
from policies.protocol import Proposal


class Recorder:
    """Writes one campaign's records and publishes their documents."""

    def __init__(self, store: Store, campaign_id: str) -> None:
        self.store, self.campaign_id = store, campaign_id
        self.composer: RunComposer | None = None  # None until the run's documents are opened
        self.publisher: DocumentPublisher | None = None
        # Analyses waiting for the next commit (see the module doc): interpretation, targets, when.
        self.deferred: list[tuple[Interpretation, TargetEvaluation, float]] = []

    # -- the run ------------------------------------------------------------------------------------
    def open_run(self, config: CampaignConfig, data_keys: Mapping[str, Mapping[str, DataKey]],
                 estimates: Mapping[str, str]) -> None:
        """This run's start and descriptors (once), then whatever the outbox still holds unpublished.
        ``estimates``: the analysis' estimate names → units."""
        campaign = self.store.campaign(self.campaign_id)
        self.composer, previous = composer_for(self.store, self.campaign_id)
        opened = self.composer.open(
            config=config.stored_form(),
            started=campaign.created_at.timestamp() if previous is None else time.time(),
            data_keys=data_keys, estimates=estimates, previous_start=previous,
            scan_id=self.store.campaign_number(self.campaign_id),
        )
        self.store.add_documents(self.campaign_id, opened)
        self.publisher = DocumentPublisher(self.store, self.campaign_id, config.documents, Path(campaign.data_dir) / self.campaign_id)
        self.publisher.backlog()

    def finish(self, status: CampaignStatus, reason: str, run_wall_seconds: float, *, answer: Answer | None = None) -> None:
        """The campaign's end (and the run's stop document, with the answer, unless it was interrupted)."""
        document_answer = None if answer is None else answer.model_dump(mode="json")
        stop = self.composer.stop(status, reason, time.time(), answer=document_answer) if self.composer is not None else None
        documents = [stop] if stop is not None else []
        try:
            self.store.finish_campaign(self.campaign_id, status, reason, run_wall_seconds, documents=documents)
            self._publish(True, documents)
            if self.publisher is not None:
                self.publisher.close()
        except StoreUnavailable:
            # The campaign stays "running" in the store; resume picks it (and its documents) up.
            if self.publisher is not None:
                self.publisher.close(mark=False)

    def status(self, status: CampaignStatus, reason: str | None, documents: list[Document]) -> None:
        """A live campaign's status change (paused ⇄ running, ``agent/pause.py``) with its documents."""
        self.store.set_status(self.campaign_id, status, reason, documents)
        self._publish(True, documents)

    # -- records --------------------------------------------------------------------------------------
    def decision(
        self, seq: int, proposals: Sequence[Proposal], attempts: Sequence[ProposedAttempt], *, policy: str,
        fallback: bool, error: str | None, seed: int, n_history: int, n_pending: int, seconds: float,
    ) -> int:
        """A decision, its attempts and their verdicts (refused, or validated and dispatched), with the
        deferred analyses before it in the same commit; returns how many analyses it carried."""
        analysed, carried = self._take_deferred()
        reasons = [p.reason for p in proposals]
        documents = [] if self.composer is None else [
            self.composer.decision(seq, policy, fallback, [p.params for p in proposals], reasons, seconds, time.time())
        ]
        self.store.record_decision(
            self.campaign_id, seq, policy=policy, fallback=fallback, error=error, seed=seed, n_history=n_history,
            n_pending=n_pending, reasons=reasons, decision_seconds=seconds, versions=package_versions(),
            attempts=attempts, documents=documents, analysed=analysed,
        )
        self._publish(True, carried, counted=True)
        self._publish(True, documents)
        return len(analysed)

    def measurement(self, measurement: Measurement, *, reconciled: str | None = None, synchronous: bool = True) -> bool:
        """Raw data and ``measured``; False if this attempt's measurement was recorded already.
        ``synchronous=False``: PostgreSQL may acknowledge the commit before its disk flush (see
        ``Store._write_core``); the loop's next decision flushes it."""
        documents = [] if self.composer is None else [self.composer.measurement(measurement)]
        recorded = self.store.record_measurement(self.campaign_id, measurement, reconciled=reconciled, documents=documents,
                                                 synchronous=synchronous)
        self._publish(recorded, documents)
        return recorded

    def interpretation(self, interpretation: Interpretation, evaluation: TargetEvaluation, *, defer: bool = False) -> bool:
        """An analysis and ``analysed``, with the targets evaluated with it included (one commit).
        ``defer``: kept for the next decision's commit (or ``flush``); True then."""
        if defer:
            self.deferred.append((interpretation, evaluation, time.time()))
            return True
        self.flush()  # records commit in the order they were made
        documents = [] if self.composer is None else [self.composer.interpretation(interpretation, time.time())]
        recorded = self.store.record_interpretation(self.campaign_id, interpretation, evaluation, documents=documents)
        self._publish(recorded, documents)
        return recorded

    def flush(self) -> int:
        """Commit the deferred analyses on their own (one transaction); returns how many."""
        if not self.deferred:
            return 0
        analysed, carried = self._take_deferred()
        # Idempotent on the attempt ids, as one record each; not waiting for the disk on PostgreSQL
        # (``Store._write_core``): a lost analysis is made again on resume.
        self.store.record_analysed(self.campaign_id, analysed, synchronous=False)
        self._publish(True, carried, counted=True)
        return len(analysed)

    def _take_deferred(self) -> tuple[list[AnalysedRecord], list[Document]]:
        """The deferred analyses as records with their documents, composed now in order (each
        counted as composed, so the next takes the next ``seq_num`` of its stream); the list empties."""
        records, documents = [], []
        for interpretation, evaluation, at in self.deferred:
            docs = [] if self.composer is None else [self.composer.interpretation(interpretation, at)]
            for d in docs:
                self.composer.committed(d)  # type: ignore[union-attr]
            records.append(AnalysedRecord(interpretation, evaluation, docs))
            documents += docs
        self.deferred = []
        return records, documents

    def reanalysis(self, interpretation: Interpretation, evaluation: TargetEvaluation, revision: int) -> None:
        """A new interpretation for an attempt whose analysis had failed (on resume)."""
        documents = [] if self.composer is None else [
            self.composer.interpretation(interpretation, time.time(), revision=revision)]
        self.store.record_reanalysis(self.campaign_id, interpretation, evaluation, documents=documents)
        self._publish(True, documents)

    def transition(self, attempt_id: str, to_state: str, **details: Any) -> bool:
        """Move an attempt (refused, failed, unknown, re-run, …): a state change carries no document."""
        return self.store.transition(attempt_id, to_state, **details)

    # -- publication --------------------------------------------------------------------------------
    def publish_outbox(self) -> None:
        """Publish (and count) documents another process committed to this campaign's outbox — a
        person's approval decision — as this run's own."""
        if self.composer is None or self.publisher is None:
            return
        try:
            self.publisher.backlog()  # marks what it published before, then sends the rest
        except Exception:  # noqa: BLE001 — the outbox keeps them; the next backlog publishes them
            pass
        # ``backlog`` does not tell which it sent; the outbox's events decide the stop's counters.
        from agent.documents import composer_for

        self.composer.counts = composer_for(self.store, self.campaign_id)[0].counts

    def _publish(self, recorded: bool, documents: list[Document], *, counted: bool = False) -> None:
        """After a commit that carried ``documents``: count (unless ``counted`` already) and publish
        them if it was a new record."""
        if not recorded or self.composer is None or self.publisher is None:
            return
        for d in documents if not counted else ():
            self.composer.committed(d)
        try:
            self.publisher.publish(documents)
        except Exception:  # noqa: BLE001 — the outbox keeps them; resume publishes the backlog
            pass
