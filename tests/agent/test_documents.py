"""Every campaign emits bluesky event-model documents: composed with event-model, kept in the store's
outbox, written as JSON lines, published over 0MQ in bluesky's wire format — received unchanged by a
real ``bluesky.callbacks.zmq.RemoteDispatcher`` in another process — and whole after a kill -9."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import event_model
import pytest
import yaml

from agent.campaign import run_campaign
from agent.config import parse_campaign
from agent.store import Store
from tests.agent.campaign_files import quickstart
from tests.agent.campaign.test_resume import _cli, _reap

pytestmark = [pytest.mark.timeout(300), pytest.mark.usefixtures("ray_local")]


def _validate(documents: list[tuple[str, dict[str, Any]]]) -> None:
    for name, doc in documents:
        event_model.schema_validators[event_model.DocumentNames[name]].validate(doc)


def _jsonl(store: Store, campaign_id: str) -> list[tuple[str, dict[str, Any]]]:
    path = Path(store.campaign(campaign_id).data_dir) / campaign_id / "documents.jsonl"
    return [tuple(json.loads(line)) for line in path.read_text().splitlines()]  # type: ignore[misc]


def _check_run(documents: list[tuple[str, dict[str, Any]]], store: Store, campaign_id: str) -> dict[str, Any]:
    """One run, schema-valid, events matching the store's records one to one; returns the stop."""
    _validate(documents)
    names = Counter(name for name, _ in documents)
    assert names["start"] == 1 and names["stop"] == 1 and names["descriptor"] == 3
    start = next(d for n, d in documents if n == "start")
    descriptors = {d["uid"]: d for n, d in documents if n == "descriptor"}
    assert {d["name"] for d in descriptors.values()} == {"primary", "interpretations", "decisions"}
    assert all(d["run_start"] == start["uid"] for d in descriptors.values())
    events: dict[str, list[dict[str, Any]]] = {"primary": [], "interpretations": [], "decisions": []}
    for name, doc in documents:
        if name == "event":
            events[descriptors[doc["descriptor"]]["name"]].append(doc)
    for stream, docs in events.items():
        assert [d["seq_num"] for d in docs] == list(range(1, len(docs) + 1)), stream
        assert len({d["uid"] for d in docs}) == len(docs), stream
    assert len(events["primary"]) == len(store.measurements(campaign_id))
    assert len(events["interpretations"]) == len(store.interpretations(campaign_id))
    assert len(events["decisions"]) == len(store.decisions(campaign_id))
    stop = next(d for n, d in documents if n == "stop")
    assert stop["num_events"] == {s: len(d) for s, d in events.items()}
    return {"start": start, "stop": stop, "descriptors": descriptors, "events": events}


def test_a_campaign_writes_one_valid_run_of_documents(tmp_path: Path) -> None:
    data = quickstart(tmp_path)
    data["budgets"] = {"max_measurements": 5}
    config = parse_campaign(data)
    with Store(config.storage) as store:
        result = run_campaign(config, store, campaign_id="docs")
        run = _check_run(_jsonl(store, "docs"), store, "docs")
        assert run["start"]["campaign_name"] == config.name and run["start"]["policy"]["name"] == config.policy.name
        assert run["stop"]["exit_status"] == "success" and run["stop"]["reason"] == result.stop_reason
        primary = next(d for d in run["descriptors"].values() if d["name"] == "primary")
        assert primary["data_keys"]["temperature"]["dtype"] == "number"
        assert primary["data_keys"]["yield"]["units"]  # the instrument's own units
        assert all(not unpublished for unpublished in [store.documents("docs", unpublished=True)])
        first = run["events"]["primary"][0]
        measured = store.measurements("docs")[0]
        assert first["data"]["temperature"] == measured.params["temperature"]
        assert first["data"]["yield"] == pytest.approx(measured.scalar("yield"))


def test_a_killed_and_resumed_campaign_has_one_run_with_every_record_once(tmp_path: Path) -> None:
    data = quickstart(tmp_path, name="docs-kill")
    data["budgets"] = {"max_measurements": 6}
    data["targets"][0]["probability"] = 0.999999  # run to the measurement budget
    data["targets"][0]["min_observations"] = 1000  # (p can round to 1.000 on a flat GP: never evaluate it)
    campaign_file = tmp_path / "campaign.yaml"
    campaign_file.write_text(yaml.safe_dump(data))
    url = data["storage"]
    code, _, err = _reap(_cli(["run", str(campaign_file), "--db", url, "--json", "--no-report"],
                              {"LABPILOT_FAILPOINT": "after-measured:3"}, tmp_path))
    assert code == -signal.SIGKILL, err[-2000:]
    with Store(url) as store:
        cid = next(c.id for c in store.campaigns() if c.name == "docs-kill")
        before = _jsonl(store, cid)
        assert not any(name == "stop" for name, _ in before)  # killed: the run is still open
    code, _, err = _reap(_cli(["resume", cid, "--db", url, "--json", "--no-report"], {}, tmp_path))
    assert code == 3, err[-2000:]
    with Store(url) as store:
        documents = _jsonl(store, cid)
        unique = list({doc["uid"]: (name, doc) for name, doc in documents}.values())  # at-least-once delivery
        run = _check_run(unique, store, cid)
        assert run["stop"]["exit_status"] == "success" and run["stop"]["reason"].startswith("budget")
        assert store.campaign(cid).runs == 2


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


DISPATCHER = """
import json, sys
from bluesky.callbacks.zmq import RemoteDispatcher
out = open(sys.argv[2], "a")
def record(name, doc):
    out.write(json.dumps([name, doc]) + "\\n"); out.flush()
    if name == "stop":
        dispatcher.stop()
dispatcher = RemoteDispatcher(sys.argv[1], prefix=b"labpilot", deserializer=json.loads)
dispatcher.subscribe(record)
print("subscribed", flush=True)
dispatcher.start()
"""

PROXY = """
import sys
from bluesky.callbacks.zmq import Proxy
Proxy(int(sys.argv[1]), int(sys.argv[2])).start()
"""


@pytest.mark.slow
def test_a_remote_dispatcher_in_another_process_receives_the_documents(tmp_path: Path) -> None:
    pytest.importorskip("bluesky")
    in_port, out_port = _free_port(), _free_port()
    received = tmp_path / "received.jsonl"
    proxy = subprocess.Popen([sys.executable, "-c", PROXY, str(in_port), str(out_port)])
    dispatcher = subprocess.Popen([sys.executable, "-c", DISPATCHER, f"127.0.0.1:{out_port}", str(received)],
                                  stdout=subprocess.PIPE, text=True)
    try:
        assert dispatcher.stdout is not None and dispatcher.stdout.readline().strip() == "subscribed"
        time.sleep(1.0)  # PUB/SUB: the subscription must reach the proxy before anything is sent
        data = quickstart(tmp_path)
        data["budgets"] = {"max_measurements": 3}
        data["documents"] = {"zmq_address": f"tcp://127.0.0.1:{in_port}", "prefix": "labpilot"}
        config = parse_campaign(data)
        with Store(config.storage) as store:
            run_campaign(config, store, campaign_id="docs-zmq")
            written = _jsonl(store, "docs-zmq")
        dispatcher.wait(timeout=30)  # it stops itself on the stop document
        got = [tuple(json.loads(line)) for line in received.read_text().splitlines()]
        _validate(got)  # type: ignore[arg-type]
        assert [(n, d["uid"]) for n, d in got] == [(n, d["uid"]) for n, d in written]
        assert got == [tuple(x) for x in json.loads(json.dumps(written))]  # unchanged, field for field
    finally:
        for p in (dispatcher, proxy):
            if p.poll() is None:
                p.kill()
            p.wait(timeout=10)
