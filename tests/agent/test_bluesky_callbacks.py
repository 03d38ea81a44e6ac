"""bluesky's own callbacks read a campaign's documents: ``LiveTable`` and ``BestEffortCallback``
(headless) over a real campaign's ``documents.jsonl``, and the same over a real ``bluesky-0MQ-proxy``
process, fed by labpilot's publisher, into a ``RemoteDispatcher`` in another process.

``BLUESKY_DEBUG_CALLBACKS=1`` everywhere: bluesky otherwise logs and swallows a callback's exception
(``KeyError: 'plan_type'`` at the stop document went unnoticed that way), so a test would pass
over a broken table."""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from contextlib import redirect_stdout
from pathlib import Path
from typing import Any

import event_model
import pytest

from agent.campaign import run_campaign
from agent.config import parse_campaign
from agent.store import Store
from tests.agent.campaign_files import quickstart

pytestmark = [pytest.mark.timeout(300), pytest.mark.usefixtures("ray_local")]
bluesky = pytest.importorskip("bluesky")

Documents = list[tuple[str, dict[str, Any]]]
ROW = re.compile(r"^\|\s+(\d+) \|")  # a LiveTable data row starts with its seq_num


def _campaign(tmp_path: Path, campaign_id: str, **documents: Any) -> tuple[Documents, int]:
    """A small real campaign (4 measurements): its documents as written, and its number in the store."""
    data = quickstart(tmp_path)
    data["budgets"] = {"max_measurements": 4}
    if documents:
        data["documents"] = documents
    config = parse_campaign(data)
    with Store(config.storage) as store:
        run_campaign(config, store, campaign_id=campaign_id)
        path = Path(store.campaign(campaign_id).data_dir) / campaign_id / "documents.jsonl"
        number = store.campaign_number(campaign_id)
    return [tuple(json.loads(line)) for line in path.read_text().splitlines()], number  # type: ignore[misc]


def _validate(documents: Documents) -> None:
    for name, doc in documents:
        event_model.schema_validators[event_model.DocumentNames[name]].validate(doc)


def _primary(documents: Documents) -> list[dict[str, Any]]:
    descriptor = next(d for n, d in documents if n == "descriptor" and d["name"] == "primary")
    return [d for n, d in documents if n == "event" and d["descriptor"] == descriptor["uid"]]


def _rows(text: str) -> list[str]:
    return [line for line in text.splitlines() if ROW.match(line)]


def _check_table(text: str, documents: Documents, scan_id: int) -> None:
    """One row per measurement, in order, showing its request and result; the run's watermark at the end."""
    events, start = _primary(documents), documents[0][1]
    rows = _rows(text)
    assert [int(ROW.match(r).group(1)) for r in rows] == [e["seq_num"] for e in events]  # type: ignore[union-attr]
    for row, event in zip(rows, events):
        assert f"{event['data']['temperature']:.3f}" in row and f"{event['data']['yield']:.3f}" in row
    assert f"campaign labpilot_campaign ['{start['uid'][:8]}'] (scan num: {scan_id})" in text


def test_live_table_and_best_effort_callback_read_a_campaign(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from bluesky.callbacks import LiveTable
    from bluesky.callbacks.best_effort import BestEffortCallback

    monkeypatch.setenv("BLUESKY_DEBUG_CALLBACKS", "1")
    documents, number = _campaign(tmp_path, "callbacks")
    _validate(documents)
    start = documents[0][1]
    assert start["scan_id"] == number == 1  # the first campaign of this store
    lines: list[str] = []
    table = LiveTable(["temperature", "time", "yield"], out=lines.append)
    headless = BestEffortCallback()
    headless.disable_plots()
    plotting = BestEffortCallback()  # plots too, on Agg: hints and extents must suit LiveScatter
    shown = io.StringIO()
    with redirect_stdout(shown):
        for name, doc in documents:
            table(name, doc)
            headless(name, doc)
    _check_table("\n".join(lines), documents, number)
    bec_text = shown.getvalue()
    assert f"Transient Scan ID: {number}" in bec_text and f"Persistent Unique Scan ID: '{start['uid']}'" in bec_text
    _check_table(bec_text, documents, number)  # BEC's own table: the dimensions, then the hinted fields
    assert "instrument_seconds" in bec_text.splitlines()[[i for i, x in enumerate(bec_text.splitlines()) if "seq_num" in x][0]]
    try:
        with redirect_stdout(io.StringIO()):
            for name, doc in documents:
                plotting(name, doc)
        assert "yield vs temperature time" in " ".join(plt.get_figlabels())  # a scatter over the design space
    finally:
        plt.close("all")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


DISPATCHER = """
import json, sys, traceback
import matplotlib
matplotlib.use("Agg")
from bluesky.callbacks import LiveTable
from bluesky.callbacks.best_effort import BestEffortCallback
from bluesky.callbacks.zmq import RemoteDispatcher

failures = []
def guarded(callback):
    # The dispatcher runs each document as an event-loop callback, whose exceptions asyncio only
    # logs: count them, so the exit status says whether a callback failed.
    def call(name, doc):
        try:
            callback(name, doc)
        except Exception:
            traceback.print_exc()
            failures.append(name)
    return call

received = open(sys.argv[2], "a")
def record(name, doc):
    received.write(json.dumps([name, doc]) + "\\n"); received.flush()
    if name == "stop":
        raise SystemExit(1 if failures else 0)  # leaves the loop; start() then closes the dispatcher
dispatcher = RemoteDispatcher(sys.argv[1], prefix=b"labpilot", deserializer=json.loads)
bec = BestEffortCallback()
bec.disable_plots()
dispatcher.subscribe(guarded(LiveTable(["temperature", "time", "yield"], out=lambda line: print("LiveTable:", line))))
dispatcher.subscribe(guarded(bec))
dispatcher.subscribe(record)  # last: the callbacks have seen the stop before the dispatcher ends
print("subscribed", flush=True)
dispatcher.start()
"""


def _proxy_command(in_port: int, out_port: int) -> list[str]:
    """bluesky's own ``bluesky-0MQ-proxy`` console script, loopback only."""
    script = Path(sys.executable).parent / "bluesky-0MQ-proxy"
    found = str(script) if script.exists() else shutil.which("bluesky-0MQ-proxy")
    assert found, "bluesky-0MQ-proxy is not installed beside this Python"
    return [found, "--in-address", f"tcp://127.0.0.1:{in_port}", "--out-address", f"tcp://127.0.0.1:{out_port}"]


@pytest.mark.slow
def test_the_callbacks_read_a_campaign_through_a_real_0mq_proxy(tmp_path: Path) -> None:
    in_port, out_port = _free_port(), _free_port()
    received = tmp_path / "received.jsonl"
    env = {**os.environ, "BLUESKY_DEBUG_CALLBACKS": "1", "MPLBACKEND": "Agg"}
    proxy = subprocess.Popen(_proxy_command(in_port, out_port), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    dispatcher = subprocess.Popen([sys.executable, "-c", DISPATCHER, f"127.0.0.1:{out_port}", str(received)],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert dispatcher.stdout is not None and dispatcher.stdout.readline().strip() == "subscribed"
        time.sleep(1.0)  # PUB/SUB: the subscription must reach the proxy before anything is sent
        written, number = _campaign(tmp_path, "callbacks-zmq", zmq_address=f"tcp://127.0.0.1:{in_port}", prefix="labpilot")
        out, err = dispatcher.communicate(timeout=60)  # it stops itself after the stop document
        assert dispatcher.returncode == 0, err[-3000:]  # 1: a callback raised
        got = [tuple(json.loads(line)) for line in received.read_text().splitlines()]
        _validate(got)  # type: ignore[arg-type]
        assert got == [tuple(x) for x in json.loads(json.dumps(written))]  # unchanged, in order
        assert f"Transient Scan ID: {number}" in out
        # Two tables in the dispatcher's output, LiveTable's (its lines marked) and BestEffortCallback's.
        lines = out.splitlines()
        _check_table("\n".join(x.removeprefix("LiveTable: ") for x in lines if x.startswith("LiveTable: ")), written, number)
        _check_table("\n".join(x for x in lines if not x.startswith("LiveTable: ")), written, number)
    finally:
        for p in (dispatcher, proxy):
            if p.poll() is None:
                p.kill()
            p.communicate(timeout=10)
