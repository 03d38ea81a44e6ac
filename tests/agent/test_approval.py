"""The approval gate: the campaign file's block, a person's decisions and what they may not do.

The loop's side (waiting, resuming while waiting) is ``tests/agent/campaign/test_approval_loop.py``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.approval import ApprovalRefused, approval_needed, approve, envelope_errors, parse_edits, reject
from agent.config import ApprovalConfig, CampaignFileError, parse_campaign
from agent.store import AttemptState, Store
from tests.agent.approval_store import waiting_campaign
from tests.agent.campaign_files import quickstart

pytestmark = pytest.mark.timeout(60)

def _errors(data: dict) -> dict[str, str]:
    with pytest.raises(CampaignFileError) as info:
        parse_campaign(data)
    return dict(info.value.errors)


# -- the campaign file --------------------------------------------------------------------------------
def test_an_envelope_naming_an_unknown_parameter_or_leaving_the_space_is_an_error_naming_the_field(tmp_path: Path) -> None:
    data = quickstart(tmp_path, approval={"mode": "envelope", "envelope": {
        "pressure": {"low": 1, "high": 2},
        "temperature": {"low": 350, "high": 650},
        "time": {"choices": ["long"]},
    }})
    errors = _errors(data)
    assert "unknown parameter 'pressure'" in errors["approval.envelope.pressure"]
    assert "650" in errors["approval.envelope.temperature.high"] and "[300.0, 500.0]" in errors["approval.envelope.temperature.high"]
    assert "low/high" in errors["approval.envelope.time"]
    assert "approval.envelope.temperature.low" not in errors  # 350 K is inside


@pytest.mark.parametrize(("approval", "field", "message"), [
    ({"mode": "envelope"}, "approval", "needs an envelope"),
    ({"mode": "manual", "envelope": {"time": {"low": 2}}}, "approval", "only used with mode envelope"),
    ({"mode": "sometimes"}, "approval.mode", "'auto', 'manual' or 'envelope'"),
    ({"mode": "envelope", "envelope": {"time": {"low": 9, "high": 3}}}, "approval.envelope.time", "must not be above"),
    ({"mode": "manual", "poll_seconds": 0}, "approval.poll_seconds", "greater than 0"),
    ({"mode": "manual", "who": "me"}, "approval.who", "Extra inputs"),
])
def test_a_bad_approval_block_is_refused_naming_the_field(tmp_path: Path, approval: dict, field: str, message: str) -> None:
    errors = _errors(quickstart(tmp_path, approval=approval))
    assert message in errors[field], errors


def test_the_gate_holds_what_the_mode_says() -> None:
    assert approval_needed(ApprovalConfig(), {"time": 5.0}) is None
    assert "manual" in (approval_needed(ApprovalConfig(mode="manual"), {"time": 5.0}) or "")
    envelope = ApprovalConfig(mode="envelope", envelope={"time": {"low": 2.0, "high": 10.0}})
    assert approval_needed(envelope, {"time": 5.0, "temperature": 490.0}) is None
    assert approval_needed(envelope, {"time": 2.0}) is None  # the bounds are inside
    assert "time=12 is above 10" in (approval_needed(envelope, {"time": 12.0}) or "")
    assert "time=1.5 is below 2" in (approval_needed(envelope, {"time": 1.5}) or "")


def test_envelope_errors_accepts_a_sound_envelope(tmp_path: Path) -> None:
    config = parse_campaign(quickstart(tmp_path, approval={"mode": "envelope", "envelope": {"temperature": {"high": 450}}}))
    assert envelope_errors(config.approval, config.design_space) == []


# -- decisions on a store ------------------------------------------------------------------------------------
@pytest.fixture
def waiting_store(tmp_path: Path, store_url: str) -> tuple[Store, str]:
    """A store with a manual-approval campaign whose run is open and three attempts await approval."""
    store = Store(store_url)
    yield store, waiting_campaign(store, tmp_path)
    store.close()


def _snapshot(store: Store, cid: str) -> tuple:
    return ([(a.id, a.state, a.params, a.reason) for a in store.attempts(cid)], store.approvals(cid),
            len(store.documents(cid)))


def test_approve_edit_and_reject_are_recorded_with_who_and_as_documents(waiting_store: tuple[Store, str]) -> None:
    store, cid = waiting_store
    assert [a.id for a in store.awaiting_approval(cid)] == [f"{cid}-00000", f"{cid}-00001", f"{cid}-00002"]
    approved = approve(store, f"{cid}-00000", user="ada")
    edited = approve(store, f"{cid}-00001", edits=parse_edits(["time=42", "temperature=310.5"]), user="bob")
    rejected = reject(store, f"{cid}-00002", reason="too hot for the seal", user="cy")

    assert (approved.verdict, approved.user, approved.params) == ("approved", "ada", {"temperature": 400.0, "time": 10.0})
    assert (edited.verdict, edited.params, edited.proposed_params) == (
        "edited", {"temperature": 310.5, "time": 42.0}, {"temperature": 401.0, "time": 10.0})
    a0, a1, a2 = store.attempts(cid)
    assert (a0.state, a0.reason) == (AttemptState.VALIDATED, None)
    assert (a1.state, a1.params) == (AttemptState.VALIDATED, {"temperature": 310.5, "time": 42.0})
    assert a2.state == AttemptState.REFUSED and a2.reason == "rejected by cy: too hot for the seal"
    assert store.transitions(a2.id)[-1] == ("awaiting_approval", "refused", "rejected by cy: too hot for the seal")
    assert store.awaiting_approval(cid) == []
    # One descriptor for the approvals stream, one event per decision, naming who and what.
    documents = [d for _, d in store.documents(cid)]
    descriptors = [d for d in documents if d.name == "descriptor" and d.doc["name"] == "approvals"]
    events = [d.doc["data"] for d in documents if d.name == "event" and d.stream == "approvals"]
    assert len(descriptors) == 1
    assert [(e["attempt_id"][-1], e["verdict"], e["user"], e["reason"]) for e in events] == [
        ("0", "approved", "ada", ""), ("1", "edited", "bob", ""), ("2", "rejected", "cy", "too hot for the seal")]
    assert [d.doc["seq_num"] for d in documents if d.name == "event"] == [1, 2, 3]


def test_the_user_defaults_to_USER(waiting_store: tuple[Store, str], monkeypatch: pytest.MonkeyPatch) -> None:
    store, cid = waiting_store
    monkeypatch.setenv("USER", "grace")
    assert approve(store, f"{cid}-00000").user == "grace"


@pytest.mark.parametrize(("decide", "message"), [
    (lambda s, c: approve(s, f"{c}-00099"), "no attempt"),
    (lambda s, c: approve(s, "nonsense"), "no attempt 'nonsense'"),
    (lambda s, c: approve(s, f"{c}-00000", edits={"time": 75.0}), r"outside the design space: time=75.0 min is outside \[1.0, 60.0\]"),
    (lambda s, c: approve(s, f"{c}-00000", edits={"pressure": 2}), "unknown parameter"),
    (lambda s, c: approve(s, f"{c}-00000", edits={"time": "soon"}), "not a number"),
    (lambda s, c: approve(s, f"{c}-00000", edits=parse_edits(["time"])), "expected KEY=VALUE"),
    (lambda s, c: reject(s, f"{c}-00000", reason="  "), "needs a reason"),
])
def test_bad_decisions_are_refused_and_change_nothing(waiting_store: tuple[Store, str], decide, message: str) -> None:  # type: ignore[no-untyped-def]
    store, cid = waiting_store
    before = _snapshot(store, cid)
    with pytest.raises(ApprovalRefused, match=message):
        decide(store, cid)
    assert _snapshot(store, cid) == before


def test_an_attempt_is_decided_once(waiting_store: tuple[Store, str]) -> None:
    store, cid = waiting_store
    approve(store, f"{cid}-00000", user="ada")
    before = _snapshot(store, cid)
    with pytest.raises(ApprovalRefused, match="does not await approval .it is validated, approved by ada"):
        reject(store, f"{cid}-00000", reason="changed my mind", user="bob")
    with pytest.raises(ApprovalRefused, match="does not await approval"):
        approve(store, f"{cid}-00000", user="bob")
    assert _snapshot(store, cid) == before
