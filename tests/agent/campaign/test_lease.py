"""Two processes never run one campaign: a second resume of a running campaign is refused, naming the owner."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from agent.campaign import resume_campaign, run_campaign
from agent.config import parse_campaign
from agent.store import CampaignOwned, Store
from tests.agent.campaign_files import instrument_settings, quickstart

pytestmark = [pytest.mark.timeout(180), pytest.mark.usefixtures("ray_local")]


def test_a_second_resume_of_a_running_campaign_is_refused(tmp_path: Path) -> None:
    # Real seconds per measurement, so the campaign is still running when the second one asks.
    data = instrument_settings(quickstart(tmp_path, policy={"name": "sobol", "options": {}},
                                          budgets={"max_measurements": 4}), realtime_factor=0.0005)
    config = parse_campaign(data)
    store = Store(config.storage)
    results = []
    first = threading.Thread(target=lambda: results.append(run_campaign(config, store, campaign_id="leased")))
    first.start()
    deadline = time.monotonic() + 60
    while not store.attempts("leased") and time.monotonic() < deadline:
        time.sleep(0.1)
    with pytest.raises(CampaignOwned, match="campaign leased is running in another process"):
        resume_campaign(Store(config.storage), "leased")
    first.join(timeout=120)
    assert results and results[0].n_measurements == 4  # the owner was not disturbed
    assert resume_campaign(store, "leased").status == "budget_exhausted"  # once it has ended, anyone may resume
