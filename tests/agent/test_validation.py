"""Semantic checks of campaign files: kinds, settings, estimates and policies, every error named."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from agent.config import CampaignFileError, parse_campaign
from agent.validation import semantic_errors

pytestmark = pytest.mark.timeout(60)
EXPERIMENTS = Path(__file__).resolve().parents[2] / "experiments"


def _quickstart() -> dict:
    return yaml.safe_load((EXPERIMENTS / "quickstart.yaml").read_text())


def test_unknown_names_are_reported_with_the_valid_ones() -> None:
    data = _quickstart()
    data["instruments"][0]["kind"] = "teleporter"
    data["policy"]["name"] = "magic"
    data["analysis"]["settings"]["key"] = "colour"
    with pytest.raises(CampaignFileError) as info:
        parse_campaign(data)
    errors = dict(info.value.errors)
    assert "teleporter" in errors["instruments[0].kind"] and "synthetic" in errors["instruments[0].kind"]
    assert "magic" in errors["policy.name"] and "qlognei" in errors["policy.name"]
    assert "objective.estimate" in errors  # the analysis would produce 'colour', not 'yield'


def test_instrument_settings_and_policy_options_are_checked() -> None:
    data = _quickstart()
    data["instruments"][0]["settings"]["noise_sd"] = -1
    data["instruments"][0]["settings"]["colour"] = "red"
    data["policy"]["options"]["warp_speed"] = 9
    with pytest.raises(CampaignFileError) as info:
        parse_campaign(data)
    fields = [f for f, _ in info.value.errors]
    assert "instruments[0].settings.noise_sd" in fields
    assert "instruments[0].settings.colour" in fields
    assert any("warp_speed" in m for f, m in info.value.errors if f.startswith("policy"))


def test_targets_must_name_estimates_the_analysis_produces() -> None:
    data = _quickstart()
    data["targets"].append({"name": "precise", "kind": "relative_uncertainty", "estimate": "purity", "goal": 0.1})
    with pytest.raises(CampaignFileError) as info:
        parse_campaign(data)
    assert info.value.errors == [("targets[1].estimate", "analysis does not produce 'purity'; it produces ['yield']")]


def test_a_valid_campaign_has_no_semantic_errors(tmp_path: Path) -> None:
    assert semantic_errors(parse_campaign(_quickstart())) == []
