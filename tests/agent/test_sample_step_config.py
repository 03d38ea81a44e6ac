"""Campaign files of campaigns over samples: every error named by its field path at once (the
sample step checked as the campaign it becomes), nothing written for an invalid file."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from agent.config import CampaignFileError, parse_campaign
from tests.agent.test_sample_campaign import SHIPPED, small_campaign

pytestmark = pytest.mark.timeout(120)


def test_an_invalid_campaign_lists_every_error_and_writes_nothing(tmp_path: Path) -> None:
    data = small_campaign(tmp_path, samples=2, measurements=2)
    data["policy"]["name"] = "clairvoyant"
    data["sample_step"]["policy"]["name"] = "psychic"
    data["sample_step"]["targets"][0]["estimate"] = "p(nothing)"
    data["synthesiser"]["settings"]["components"] = ["ti", "zr"]
    data["budgets"] = {}
    with pytest.raises(CampaignFileError) as raised:
        parse_campaign(data, "sdl.yaml")
    fields = [f for f, _ in raised.value.errors]
    assert fields == ["budgets"]  # the schema pass first: its errors alone
    data["budgets"] = {"max_samples": 2}
    with pytest.raises(CampaignFileError) as raised:
        parse_campaign(data, "sdl.yaml")
    fields = [f for f, _ in raised.value.errors]
    assert "synthesiser.settings" in fields and "policy.name" in fields
    assert "sample_step.policy.name" in fields and "sample_step.targets[0].estimate" in fields
    assert not (tmp_path / "data").exists()


def test_the_shipped_campaign_is_valid() -> None:
    config = parse_campaign(yaml.safe_load(SHIPPED.read_text()))
    assert type(config).__name__ == "SampleCampaignConfig"
    step = config.step_config("x.step", "s-1")  # type: ignore[attr-defined]
    assert step.sample == "s-1" and step.policy.name == "xrd_adaptive"
    assert [i.name for i in config.instruments] == ["furnace", "diffractometer"]


def test_campaign_level_targets_are_refused_until_they_exist(tmp_path: Path) -> None:
    data = small_campaign(tmp_path, samples=2, measurements=2)
    data["targets"] = [{"name": "t", "kind": "estimate_threshold", "estimate": "p(best)", "at_least": 0.9}]
    with pytest.raises(CampaignFileError, match="campaign-level targets of a campaign over samples are not supported yet"):
        parse_campaign(data, "sdl.yaml")
