"""The live page's server on a real uvicorn: state from the store, decisions through the approval
gate (refused ones change nothing), events pushed when the store changes, and the token off loopback."""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from agent.store import AttemptState, Store
from agent.ui.server import RunningUI, UIConfigError, access_token, free_port, start_in_thread
from tests.agent.approval_store import waiting_campaign

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store(f"sqlite:///{tmp_path}/labpilot.db") as s:
        yield s


@pytest.fixture
def page(store: Store) -> Iterator[RunningUI]:
    ui = start_in_thread(store, f"127.0.0.1:{free_port()}")
    yield ui
    ui.stop()


def _snapshot(store: Store, cid: str) -> tuple:
    return [(a.id, a.state, a.params) for a in store.attempts(cid)], store.approvals(cid), store.outbox_head(cid)


def test_the_pages_and_the_state_come_from_the_store(store: Store, page: RunningUI, tmp_path: Path) -> None:
    cid = waiting_campaign(store, tmp_path, n=2)
    assert "labpilot campaigns" in httpx.get(page.url).text
    assert f'data-campaign="{cid}"' in httpx.get(f"{page.url}campaigns/{cid}").text
    assert httpx.get(f"{page.url}campaigns/nope").status_code == 404
    [listed] = httpx.get(f"{page.url}api/campaigns").json()
    assert (listed["campaign_id"], listed["awaiting_approval"]) == (cid, 2)
    state = httpx.get(f"{page.url}api/campaigns/{cid}").json()
    assert [p["attempt_id"] for p in state["pending"]] == [f"{cid}-00000", f"{cid}-00001"]
    assert state["pending"][0]["why"].startswith("manual approval")
    time_bounds = [q for q in state["pending"][0]["parameters"] if q["name"] == "time"][0]
    assert (time_bounds["low"], time_bounds["high"], time_bounds["units"]) == (1.0, 60.0, "min")
    assert state["approval_mode"] == "manual" and state["answer"] is None
    assert [b["limit"] for b in state["budgets"]] == [60, 200000, 600]
    assert state["log"][0]["why"] == "acquisition: sobol"


def test_decisions_through_the_page_use_the_gate_and_bad_ones_change_nothing(store: Store, page: RunningUI, tmp_path: Path) -> None:
    cid = waiting_campaign(store, tmp_path, n=2)
    api = f"{page.url}api/attempts"
    refused = [
        httpx.post(f"{api}/{cid}-00000/approve", json={"edits": {"time": "90"}}),
        httpx.post(f"{api}/{cid}-00000/approve", json={"edits": {"pressure": 1}}),
        httpx.post(f"{api}/{cid}-00000/reject", json={"reason": ""}),
        httpx.post(f"{api}/{cid}-00099/approve", json={}),
    ]
    before = _snapshot(store, cid)
    assert [r.status_code for r in refused] == [409, 409, 409, 409]
    assert "outside the design space: time=90.0 min is outside [1.0, 60.0]" in refused[0].json()["detail"]
    assert "unknown parameter" in refused[1].json()["detail"]
    assert "needs a reason" in refused[2].json()["detail"]
    assert f"no attempt '{cid}-00099'" in refused[3].json()["detail"]
    assert httpx.post(f"{api}/{cid}-00000/approve", json={"surprise": 1}).status_code == 422
    assert _snapshot(store, cid) == before

    ok = httpx.post(f"{api}/{cid}-00000/approve", json={"edits": {"time": "30"}, "user": "ada"})
    assert ok.status_code == 200 and ok.json()["verdict"] == "edited" and ok.json()["params"]["time"] == 30.0
    again = httpx.post(f"{api}/{cid}-00000/reject", json={"reason": "no", "user": "bob"})
    assert again.status_code == 409 and "does not await approval (it is validated, edited by ada)" in again.json()["detail"]
    assert httpx.post(f"{api}/{cid}-00001/reject", json={"reason": "later", "user": "bob"}).status_code == 200
    assert [a.state for a in store.attempts(cid)] == [AttemptState.VALIDATED, AttemptState.REFUSED]


def test_the_event_stream_pushes_the_state_when_the_store_changes(store: Store, page: RunningUI, tmp_path: Path) -> None:
    cid = waiting_campaign(store, tmp_path, n=2)
    states = []
    with httpx.stream("GET", f"{page.url}api/campaigns/{cid}/stream", timeout=20) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if not line.startswith("data:"):
                continue
            states.append(json.loads(line[5:]))
            if len(states) == 1:  # a decision taken elsewhere (the CLI, another page) is pushed
                httpx.post(f"{page.url}api/attempts/{cid}-00001/reject", json={"reason": "too hot", "user": "cy"})
            elif len(states) == 2:
                break
    assert [len(s["pending"]) for s in states] == [2, 1]
    assert states[1]["log"][0]["approval"] == {"verdict": "rejected", "user": "cy", "reason": "too hot",
                                               "proposed": {"temperature": 401.0, "time": 10.0}}


def test_off_loopback_a_token_is_required(store: Store, tmp_path: Path) -> None:
    with pytest.raises(UIConfigError, match="not loopback.*needs an access token"):
        access_token("0.0.0.0", None)
    with pytest.raises(UIConfigError, match="too short"):
        access_token("0.0.0.0", "abc")
    assert access_token("127.0.0.1", None) is None and access_token("::1", None) is None
    cid = waiting_campaign(store, tmp_path, n=1)
    token = secrets.token_hex(16)
    ui = start_in_thread(store, f"0.0.0.0:{free_port('0.0.0.0')}", token)
    try:
        base = ui.url.replace("0.0.0.0", "127.0.0.1")
        denied = httpx.get(f"{base}api/campaigns")
        assert denied.status_code == 401 and "needs its access token" in denied.json()["detail"]
        refused = httpx.post(f"{base}api/attempts/{cid}-00000/approve", json={})
        assert refused.status_code == 401 and store.attempt(f"{cid}-00000").state == AttemptState.AWAITING_APPROVAL
        assert httpx.get(f"{base}api/campaigns", headers={"Authorization": "Bearer wrong-token-0000000"}).status_code == 401
        assert httpx.get(f"{base}api/campaigns", headers={"Authorization": f"Bearer {token}"}).status_code == 200
        with httpx.Client() as browser:  # the page's own requests carry the cookie the first visit set
            assert browser.get(f"{base}?token={token}").status_code == 200
            assert browser.get(f"{base}api/campaigns").status_code == 200
    finally:
        ui.stop()


def test_serve_ui_refuses_a_public_bind_without_a_token(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "agent.cli", "serve-ui", "--bind", "0.0.0.0:8799", "--db",
                           f"sqlite:///{tmp_path}/x.db"], capture_output=True, text=True, timeout=60,
                          env={k: v for k, v in __import__("os").environ.items() if k != "LABPILOT_UI_TOKEN"})
    assert proc.returncode == 2
    assert "binding 0.0.0.0 (not loopback) needs an access token" in proc.stderr
    assert not (tmp_path / "x.db").exists()  # refused before anything was opened


def test_run_ui_refuses_a_public_bind_without_a_token_before_the_campaign_starts(tmp_path: Path) -> None:
    import yaml

    from tests.agent.campaign_files import quickstart

    data = quickstart(tmp_path)
    (tmp_path / "q.yaml").write_text(yaml.safe_dump(data))
    proc = subprocess.run([sys.executable, "-m", "agent.cli", "run", str(tmp_path / "q.yaml"), "--ui", "--bind", "0.0.0.0:8798"],
                          capture_output=True, text=True, timeout=120,
                          env={k: v for k, v in __import__("os").environ.items() if k != "LABPILOT_UI_TOKEN"})
    assert proc.returncode == 2 and "needs an access token" in proc.stderr
    with Store(data["storage"]) as store:
        assert store.campaigns() == []
