"""Bluesky event-model documents of a campaign: composed with ``event_model``, kept in the store's
outbox, published as JSON lines beside the store and on ZMQ in the wire format of bluesky's 0MQ
``Publisher`` (``prefix name payload``, one frame, JSON or msgpack — never pickle), so
``bluesky.callbacks.zmq.RemoteDispatcher`` receives them unchanged through a ``bluesky-0MQ-proxy``.

One *run* per campaign: the start document carries the campaign's intent and configuration, and
what bluesky's callbacks read (``plan_type``, ``plan_name``, ``scan_id`` — the campaign's number in
its store — and the design space as ``hints.dimensions``); three streams — ``primary``
(measurements: the request's parameters, the instrument's data keys, and each array's σ as
``<key>_sigma``), ``interpretations`` (every estimate and its σ, validity and flags) and
``decisions`` (the policy's proposals and why), with units on every key and per-object hints
(``agent/document_streams.py``); the stop document carries the exit status and reason. Documents are written in the same transaction as the record
they describe, with deterministic uids (uuid5 of the campaign and the record), so a crash between
the two is impossible and a replay is a no-op; the outbox is published after each commit and
whatever was not yet published goes out on resume. A campaign killed mid-run has no stop document
until it is resumed and ends; one that *ended* (a stop was written) and is resumed anyway opens a
new run whose start names the previous one (``resumes``) — a run has exactly one start and one stop.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import event_model
import numpy as np
from agent.config import DocumentsConfig
from agent.document_streams import run_streams, start_extents, start_hints
from agent.store import Document, Store, json_safe
from analysis.protocol import Interpretation
from instruments.types import DataKey, Measurement

NAMESPACE = uuid.UUID("5f1d7e2a-6c1b-4f3e-9a7d-2b8f0c4e6a11")
"""uuid5 namespace of labpilot documents."""
STREAMS = ("primary", "interpretations", "decisions")
#: Opened with a run's first approval decision (``agent/approval.py``): only gated campaigns have it.
APPROVALS_STREAM = "approvals"
APPROVALS_KEYS: dict[str, Any] = {
    "attempt_id": {"dtype": "string", "shape": [], "source": "labpilot", "units": ""},
    "verdict": {"dtype": "string", "shape": [], "source": "labpilot", "units": ""},  # approved | edited | rejected
    "user": {"dtype": "string", "shape": [], "source": "labpilot", "units": ""},
    "reason": {"dtype": "string", "shape": [], "source": "labpilot", "units": ""},
    "proposed": {"dtype": "string", "shape": [], "source": "labpilot", "units": "JSON"},
    "params": {"dtype": "string", "shape": [], "source": "labpilot", "units": "JSON"},
}
EXIT_STATUS = {"completed": "success", "budget_exhausted": "success", "failed": "fail", "interrupted": "abort", "unreachable": "success"}


def document_uid(campaign_id: str, *parts: object) -> str:
    return str(uuid.uuid5(NAMESPACE, "/".join([campaign_id, *map(str, parts)])))


class RunComposer:
    """Composes the documents of one campaign run; plain class, deterministic given the store."""

    def __init__(self, campaign_id: str, run_index: int, start: dict[str, Any] | None,
                 descriptors: Mapping[str, dict[str, Any]], counts: Mapping[str, int]) -> None:
        self.campaign_id, self.run_index = campaign_id, run_index
        self.start = start
        self.descriptors = dict(descriptors)
        self.counts = {s: int(counts.get(s, 0)) for s in (*STREAMS, *counts)}

    # -- start and descriptors --------------------------------------------------------------------
    def open(self, *, config: dict[str, Any], started: float, data_keys: Mapping[str, Mapping[str, DataKey]],
             estimates: Mapping[str, str], previous_start: str | None, scan_id: int) -> list[Document]:
        """The start and the three descriptors, if this run has none yet (empty on a resume).
        ``estimates``: name → units; ``scan_id``: the campaign's number in its store (a resume
        reuses the stored start, so it never changes)."""
        out: list[Document] = []
        if self.start is None:
            metadata = self._start_metadata(config, data_keys, previous_start, scan_id)
            bundle = event_model.compose_run(uid=document_uid(self.campaign_id, "start", self.run_index), time=started,
                                             metadata=metadata)
            self.start = dict(bundle.start_doc)
            out.append(Document("start", self.start))
        streams = run_streams(config, data_keys, estimates)
        for stream in STREAMS:
            if stream in self.descriptors:
                continue
            description = streams[stream]
            descriptor = event_model.compose_descriptor(
                start=self.start, streams={}, event_counters={}, name=stream,  # type: ignore[arg-type]
                data_keys=description.data_keys, object_keys=description.object_keys,  # type: ignore[arg-type]
                hints=description.hints,  # type: ignore[arg-type]
                uid=document_uid(self.campaign_id, "descriptor", self.run_index, stream), time=started,
            ).descriptor_doc
            self.descriptors[stream] = dict(descriptor)
            out.append(Document("descriptor", self.descriptors[stream], stream))
        return out

    def _start_metadata(self, config: dict[str, Any], data_keys: Mapping[str, Mapping[str, DataKey]],
                        previous_start: str | None, scan_id: int) -> dict[str, Any]:
        """The campaign's intent and configuration, with the fields bluesky's callbacks read
        (``plan_type``, ``plan_name``, ``scan_id``, ``motors``, ``detectors``, ``hints``)."""
        design_space = config["design_space"]
        metadata: dict[str, Any] = {
            "campaign_id": self.campaign_id, "campaign_name": config["name"],
            "plan_type": "campaign", "plan_name": "labpilot_campaign", "scan_id": scan_id,
            "motors": [p["name"] for p in design_space["parameters"]], "detectors": sorted(data_keys),
            "hints": start_hints(design_space), "description": config.get("description", ""),
            "policy": config["policy"], "targets": config["targets"], "budgets": config["budgets"],
            "configuration": json_safe(config), "run_index": self.run_index,
        }
        extents = start_extents(design_space)
        if extents is not None:
            metadata["extents"] = extents
        if config.get("sample"):
            metadata["sample"] = config["sample"]  # the schema wants a name or a mapping, never null
        if previous_start is not None:
            metadata["resumes"] = previous_start
        return metadata

    # -- events -----------------------------------------------------------------------------------
    def _event(self, stream: str, key: object, data: dict[str, Any], time: float) -> Document:
        descriptor = self.descriptors[stream]
        # An event carries exactly the descriptor's keys: what this record lacks (an estimate an
        # invalid interpretation has not, a σ an instrument does not give) is null.
        known = {k: data.get(k) for k in descriptor["data_keys"]}
        # Not validated against the JSON schema here (≈ 0.3 ms an event, three events a measurement on the
        # loop's hot path): its keys are the descriptor's by construction, and the documents' tests
        # validate every document a campaign writes (tests/agent/test_documents.py).
        event = event_model.compose_event(
            descriptor=descriptor, event_counters={}, data=known, timestamps={k: time for k in known},  # type: ignore[arg-type]
            seq_num=self.counts[stream] + 1, uid=document_uid(self.campaign_id, "event", stream, key), time=time,
            validate=False,
        )
        return Document("event", json_safe(dict(event)), stream)

    def committed(self, document: Document) -> None:
        """Count an event the store accepted (a replayed record adds none)."""
        if document.name == "event" and document.stream is not None:
            self.counts[document.stream] = self.counts.get(document.stream, 0) + 1

    def measurement(self, m: Measurement) -> Document:
        data: dict[str, Any] = {**m.params, "instrument": m.instrument, "sample_id": m.sample_id or m.attempt_id,
                                "instrument_seconds": m.timing.instrument_seconds}
        for k, v in m.data.items():
            array = np.asarray(v, dtype=float)
            data[k] = array.tolist() if array.size != 1 else float(array.reshape(-1)[0])
        for k, v in m.sigma.items():
            array = np.asarray(v, dtype=float)
            data[f"{k}_sigma"] = array.tolist() if array.size != 1 else float(array.reshape(-1)[0])
        return self._event("primary", m.attempt_id, data, m.timing.started_at.timestamp())

    def interpretation(self, i: Interpretation, time: float, *, revision: int = 0) -> Document:
        """The interpretations-stream event of ``i``; ``revision`` > 0 for a re-analysis (a new event,
        its own uid: the first one was published already)."""
        data: dict[str, Any] = {"attempt_id": i.attempt_id, "valid": i.valid, "flags": ",".join(i.flags)}
        for name, e in i.estimates.items():
            data[name] = json_safe(e.value)
            data[f"{name}_sigma"] = json_safe(e.sigma)
        key = i.attempt_id if revision == 0 else f"{i.attempt_id}/r{revision}"
        return self._event("interpretations", key, data, time)

    def decision(self, seq: int, policy: str, fallback: bool, proposals: Sequence[dict[str, Any]],
                 reasons: Sequence[dict[str, Any]], seconds: float, time: float) -> Document:
        data = {"policy": policy, "fallback": fallback, "proposals": json.dumps(json_safe(list(proposals))),
                "reasons": json.dumps(json_safe(list(reasons))), "decision_seconds": seconds}
        return self._event("decisions", seq, data, time)

    def approval(self, attempt_id: str, verdict: str, user: str, reason: str | None, proposed: dict[str, Any],
                 params: dict[str, Any], time: float) -> list[Document]:
        """A person's decision on an attempt: the ``approvals`` descriptor (with the run's first one),
        then its event. Empty if the run has no start (nothing to attach it to)."""
        if self.start is None:
            return []
        out: list[Document] = []
        if APPROVALS_STREAM not in self.descriptors:
            descriptor = event_model.compose_descriptor(
                start=self.start, streams={}, event_counters={}, name=APPROVALS_STREAM, data_keys=APPROVALS_KEYS,  # type: ignore[arg-type]
                uid=document_uid(self.campaign_id, "descriptor", self.run_index, APPROVALS_STREAM), time=time,
            ).descriptor_doc
            self.descriptors[APPROVALS_STREAM] = dict(descriptor)
            out.append(Document("descriptor", self.descriptors[APPROVALS_STREAM], APPROVALS_STREAM))
        self.counts.setdefault(APPROVALS_STREAM, 0)
        data = {"attempt_id": attempt_id, "verdict": verdict, "user": user, "reason": reason or "",
                "proposed": json.dumps(json_safe(proposed)), "params": json.dumps(json_safe(params))}
        out.append(self._event(APPROVALS_STREAM, attempt_id, data, time))
        return out

    def stop(self, status: str, reason: str, time: float, *, answer: Mapping[str, Any] | None = None) -> Document | None:
        """The stop document for a campaign that ended with ``status`` — None for an interruption,
        which ``resume`` continues within the same run. ``answer`` (``agent.answer.Answer`` as JSON)
        goes under the key ``answer``: the run_stop schema admits extra keys without dots or slashes."""
        if self.start is None or status == "interrupted":
            return None
        stop = event_model.compose_stop(
            # event_model's counters hold the *next* seq_num of each stream.
            start=self.start, event_counters={s: n + 1 for s, n in self.counts.items()}, poison_pill=[],  # type: ignore[arg-type]
            exit_status=EXIT_STATUS.get(status, "fail"), reason=reason,  # type: ignore[arg-type]
            uid=document_uid(self.campaign_id, "stop", self.run_index), time=time,
        )
        document = dict(stop)
        if answer is not None:
            document["answer"] = json_safe(dict(answer))
        return Document("stop", document)


def composer_for(store: Store, campaign_id: str) -> tuple[RunComposer, str | None]:
    """The composer of the campaign's current run, rebuilt from its outbox, and the uid of the start
    of the previous (stopped) run, if any."""
    documents = [d for _, d in store.documents(campaign_id)]
    starts = [d for d in documents if d.name == "start"]
    stopped = {d.doc["run_start"] for d in documents if d.name == "stop"}
    open_runs = [d for d in starts if d.uid not in stopped]
    if not open_runs:
        previous = starts[-1].uid if starts else None
        return RunComposer(campaign_id, len(starts), None, {}, {}), previous
    start = open_runs[-1].doc
    descriptors = {d.stream: d.doc for d in documents if d.name == "descriptor" and d.doc["run_start"] == start["uid"]}
    by_uid = {doc["uid"]: stream for stream, doc in descriptors.items()}
    counts: dict[str, int] = {}
    for d in documents:
        if d.name == "event" and d.doc["descriptor"] in by_uid:
            counts[by_uid[d.doc["descriptor"]]] = counts.get(by_uid[d.doc["descriptor"]], 0) + 1
    return RunComposer(campaign_id, int(start.get("run_index", len(starts) - 1)), start, descriptors, counts), None


class DocumentPublisher:
    """Publishes the outbox: JSON lines, then ZMQ; marks what went out, in batches of ``MARK_EVERY``
    (one commit per batch instead of one per record, off the loop's hot path). At least once: the
    documents published but not yet marked when a campaign is killed go out again on resume
    (consumers dedupe by uid, as ``tests/agent/test_documents.py`` does)."""

    MARK_EVERY = 32

    def __init__(self, store: Store, campaign_id: str, config: DocumentsConfig, folder: Path) -> None:
        self.store, self.campaign_id, self.config = store, campaign_id, config
        self.path = folder / "documents.jsonl" if config.jsonl else None
        self._socket: Any = None
        self._context: Any = None
        if config.zmq_address is not None:
            import time

            import zmq

            self._context = zmq.Context()
            self._socket = self._context.socket(zmq.PUB)
            self._socket.setsockopt(zmq.LINGER, 2000)
            self._socket.connect(config.zmq_address)
            time.sleep(0.3)  # PUB/SUB: let the connection to the proxy settle before the first document
        self._serialize = _serializer(config.serializer)
        self._unmarked: list[str] = []
        self._file: Any = None  # the JSON lines file, open from the first publication to ``close``

    def backlog(self) -> int:
        """Publish everything in the outbox not yet published (a resume starts here; and the loop, when
        another process — a person's approval — wrote documents). What this publisher sent is marked
        first, so it does not go out twice."""
        self._mark()
        n = self.publish([d for _, d in self.store.documents(self.campaign_id, unpublished=True)])
        self._mark()
        return n

    def publish(self, documents: Sequence[Document]) -> int:
        """Publish documents already committed to the outbox, then mark them published."""
        if not documents:
            return 0
        if self.path is not None:
            if self._file is None:  # opened once (not per record: two system calls fewer per document)
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._file = self.path.open("a")
            self._file.write("".join(json.dumps([d.name, d.doc]) + "\n" for d in documents))
            self._file.flush()  # in the OS's hands: a reader sees it, and a killed campaign loses none
        if self._socket is not None:
            prefix = self.config.prefix.encode()
            for d in documents:
                self._socket.send(b" ".join([prefix, d.name.encode(), self._serialize(d.doc)]))
        self._unmarked += [d.uid for d in documents]
        if len(self._unmarked) >= self.MARK_EVERY:
            self._mark()
        return len(documents)

    def _mark(self) -> None:
        self.store.mark_published(self._unmarked)
        self._unmarked = []

    def close(self, *, mark: bool = True) -> None:
        """Mark what went out (unless the store is gone: then resume publishes it again), close 0MQ."""
        if mark:
            self._mark()
        if self._file is not None:
            self._file.close()
            self._file = None
        if self._socket is not None:
            self._socket.close()
            self._context.term()
            self._socket = None


def _serializer(name: str) -> Any:
    if name == "msgpack":
        try:
            import msgpack
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ValueError("documents.serializer: msgpack is not installed (pip install msgpack)") from exc
        return lambda doc: msgpack.packb(doc, use_bin_type=True)
    return lambda doc: json.dumps(doc).encode()
