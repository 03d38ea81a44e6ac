"""The live page in a real headless browser (Playwright driving Debian's Chromium): a manual-approval
campaign runs; the proposal appears on the page; a person approves one, rejects one, edits one, all by
clicking; the data, targets and budgets update as they happen; the answer is on the page at the end.
Screenshots of each step are saved under the test's tmp dir (CI keeps them as artefacts).

Skips, saying why, when Chromium or Playwright is absent (CI installs Chromium: see .ci/run).
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from agent.approval import reject
from agent.campaign import run_campaign
from agent.config import parse_campaign
from agent.store import AttemptState, Store
from agent.ui.server import free_port, start_in_thread
from tests.agent.campaign_files import quickstart

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# CI sets LABPILOT_REQUIRE_BROWSER=1 (.ci/run installs Chromium): there a missing browser fails, it never skips.
REQUIRED = os.environ.get("LABPILOT_REQUIRE_BROWSER") == "1"
pytestmark = [
    pytest.mark.timeout(300),
    pytest.mark.skipif(CHROMIUM is None and not REQUIRED,
                       reason="Chromium is not installed (apt-get install chromium; CI does in .ci/run)"),
]
WAIT_MS = 90_000


def _campaign_thread(store: Store, data: dict[str, Any], cid: str) -> tuple[threading.Thread, dict[str, Any]]:
    config = parse_campaign(data)
    outcome: dict[str, Any] = {}
    thread = threading.Thread(target=lambda: outcome.update(result=run_campaign(config, store, campaign_id=cid)), daemon=True)
    thread.start()
    return thread, outcome


def _release(store: Store, cid: str, thread: threading.Thread) -> None:
    """After a failure: reject whatever still waits, so the campaign ends instead of waiting forever."""
    deadline = time.monotonic() + 120
    while thread.is_alive() and time.monotonic() < deadline:
        for a in store.awaiting_approval(cid):
            reject(store, a.id, reason="test cleanup", user="cleanup")
        time.sleep(0.2)


@pytest.mark.usefixtures("ray_local")
def test_a_person_drives_a_manual_campaign_from_the_page(tmp_path: Path) -> None:
    assert CHROMIUM is not None, "LABPILOT_REQUIRE_BROWSER=1 but Chromium is not installed"
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install playwright)")
    shots = tmp_path / "screenshots"
    shots.mkdir()
    data = quickstart(tmp_path, approval={"mode": "manual", "poll_seconds": 0.1}, policy={"name": "sobol"},
                      budgets={"max_measurements": 3, "max_wall_seconds": 240})
    data["instruments"][0]["count"] = 1
    store = Store(data["storage"])
    cid = "browser-fixed"
    ui = start_in_thread(store, f"127.0.0.1:{free_port()}")
    thread, outcome = _campaign_thread(store, data, cid)
    try:
        with sync_api.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-dev-shm-usage"])
            try:
                page = browser.new_page(viewport={"width": 1400, "height": 1000})
                page.set_default_timeout(WAIT_MS)
                _drive(page, ui.url, cid, shots)
            finally:
                browser.close()
        thread.join(120)
    finally:
        _release(store, cid, thread)
        ui.stop()
    result = outcome["result"]
    assert result.status == "budget_exhausted" and result.n_measurements == 3
    approvals = store.approvals(cid)
    assert [(a.verdict, a.user) for a in approvals] == [
        ("approved", "pat"), ("rejected", "pat"), ("edited", "pat"), ("approved", "pat")]
    assert approvals[1].reason == "too close to the first point"
    edited = store.measurement(approvals[2].attempt_id)
    assert edited is not None and edited.params["time"] == 42.0
    assert store.attempt(approvals[1].attempt_id).state == AttemptState.REFUSED
    assert sorted(f.name for f in shots.iterdir()) == [
        "1-proposal.png", "2-approved-data.png", "3-rejected.png", "4-answer.png"]
    store.close()


def _drive(page: Any, url: str, cid: str, shots: Path) -> None:
    """What a person does on the page, step by step, each checked on the page itself."""
    page.goto(url)
    page.click(f"text={cid}")  # the campaign list links to the campaign
    page.fill("#user", "pat")
    page.dispatch_event("#user", "change")
    first = page.wait_for_selector(".proposal")
    first_id = first.get_attribute("data-attempt")
    assert "manual approval" in first.inner_text()
    page.screenshot(path=str(shots / "1-proposal.png"), full_page=True)

    first.query_selector("button.approve").click()
    # The data and the targets and budgets update, pushed by the server as the loop records them.
    page.wait_for_function("document.querySelector('[data-budget=\"measurements\"] .used').textContent === '1'")
    page.wait_for_selector("#targets tr[data-target]")
    page.wait_for_selector("#figures img")
    assert page.inner_text(f'#log tr[data-attempt="{first_id}"]').count("approved by pat") == 1
    page.screenshot(path=str(shots / "2-approved-data.png"), full_page=True)

    second = page.wait_for_selector(f'.proposal:not([data-attempt="{first_id}"])')
    second_id = second.get_attribute("data-attempt")
    second.query_selector("input.reason").fill("too close to the first point")
    second.query_selector("button.reject").click()
    page.wait_for_selector(f'#log tr[data-attempt="{second_id}"] >> text=rejected by pat: too close to the first point')
    page.screenshot(path=str(shots / "3-rejected.png"), full_page=True)

    third = page.wait_for_selector(f'.proposal:not([data-attempt="{first_id}"]):not([data-attempt="{second_id}"])')
    third.query_selector('input[name="time"]').fill("42")
    third.query_selector("button.edit").click()
    page.wait_for_function("document.querySelector('[data-budget=\"measurements\"] .used').textContent === '2'")
    fourth = page.wait_for_selector(".proposal:not(.decided)")
    fourth.query_selector("button.approve").click()

    page.wait_for_selector("#answer:not([hidden]) .answer-status")
    assert page.inner_text("#answer .answer-status") == "budget_exhausted"
    assert "max_measurements (3) reached" in page.inner_text("#answer .answer-reason")
    assert "yield" in page.inner_text("#answer")
    # the same answer as `run`, `status` and the report print (agent/answer.py): the incumbent, in words
    assert page.inner_text("#answer .answer-line").startswith("answer: incumbent ")
    assert page.inner_text("#status") == "budget_exhausted"
    page.screenshot(path=str(shots / "4-answer.png"), full_page=True)
