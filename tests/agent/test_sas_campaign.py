"""A real-physics campaign through the engine: the SAS simulator (sasmodels), joint SAS fits, one
sample measured repeatedly, stopping on the radius' relative uncertainty."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from agent.campaign import run_campaign
from agent.config import parse_campaign
from agent.store import Store
from tests.agent.campaigns import EXPERIMENTS

pytestmark = [pytest.mark.timeout(300), pytest.mark.usefixtures("ray_local")]


def test_sans_baseline_campaign_measures_one_sample_until_the_radius_is_known(tmp_path: Path) -> None:
    data = yaml.safe_load((EXPERIMENTS / "sans_random_baseline.yaml").read_text())
    data["storage"] = f"sqlite:///{tmp_path}/labpilot.db"
    data["data_dir"] = str(tmp_path / "data")
    config = parse_campaign(data)
    store = Store(config.storage)
    result = run_campaign(config, store, campaign_id="sans-fixed")
    assert result.status == "completed", result.stop_reason
    interpretations = store.interpretations("sans-fixed")
    assert {i.sample_id for i in interpretations} == {"ps-sphere-1"}
    last = interpretations[-1]
    # Every measurement of the sample was fitted together: the last fit saw all of them.
    assert last.details["n_measurements"] == result.n_measurements
    radius = last.estimates["radius"]
    assert radius.value is not None and radius.sigma is not None
    assert radius.sigma / radius.value <= 0.02
    assert abs(radius.value - 120.0) <= 3 * radius.sigma, (radius.value, radius.sigma)  # the truth is 120 Å
    assert last.estimates["p(sphere)"].value > 0.95  # type: ignore[operator]
    assert last.estimates["p(best)"].value == last.estimates["p(sphere)"].value
    assert result.targets["model_known"].met and result.targets["radius_2pct"].met
