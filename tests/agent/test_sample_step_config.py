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


MAP_TARGET = {"name": "map", "kind": "map_confidence", "probability": 0.95, "fraction": 0.9, "min_samples": 3}


def test_campaign_level_targets_are_map_kinds_and_per_sample_kinds_stay_in_the_step(tmp_path: Path) -> None:
    data = small_campaign(tmp_path, samples=2, measurements=2)
    data["targets"] = [MAP_TARGET,
                       {"name": "b", "kind": "boundary_located", "delta": 0.05, "probability": 0.9},
                       {"name": "best", "kind": "best_in_region", "estimate": "w:tio2_rutile", "region": ["tio2_rutile"],
                        "probability": 0.9}]
    config = parse_campaign(data, "sdl.yaml")
    assert [t.kind for t in config.targets] == ["map_confidence", "boundary_located", "best_in_region"]
    assert config.stop_on_targets  # type: ignore[attr-defined]
    # A per-sample kind at the top, a map kind in the step, an estimate the step does not report: all named at once.
    data["targets"] += [{"name": "t", "kind": "estimate_threshold", "estimate": "p(best)", "at_least": 0.9}]
    data["sample_step"]["targets"].append({"name": "m", "kind": "map_confidence", "probability": 0.9, "fraction": 0.9})
    with pytest.raises(CampaignFileError) as raised:
        parse_campaign(data, "sdl.yaml")
    errors = dict(raised.value.errors)
    assert set(errors) == {"targets[3].kind", "sample_step.targets[1].kind"}, errors
    assert "target 't'" in errors["targets[3].kind"] and "sample_step.targets" in errors["targets[3].kind"]
    assert "target 'm'" in errors["sample_step.targets[1].kind"] and "campaign over samples" in errors["sample_step.targets[1].kind"]
    del data["sample_step"]["targets"][1]
    data["targets"][2]["estimate"] = "hardness"
    with pytest.raises(CampaignFileError) as raised:
        parse_campaign(data, "sdl.yaml")
    errors = dict(raised.value.errors)
    assert set(errors) == {"targets[3].kind", "targets[2].estimate"}, errors
    assert "'hardness'" in errors["targets[2].estimate"]


def test_map_kinds_are_refused_in_an_ordinary_campaign() -> None:
    data = yaml.safe_load((SHIPPED.parent / "adaptive_xrd.yaml").read_text())
    data["targets"].append(MAP_TARGET)
    data["budgets"] = {}
    with pytest.raises(CampaignFileError) as raised:
        parse_campaign(data, "xrd.yaml")
    errors = dict(raised.value.errors)
    n = len(data["targets"]) - 1
    assert set(errors) == {f"targets[{n}].kind", "budgets"}, errors  # with the other schema errors
    assert "target 'map': map_confidence is a target of a campaign over samples" in errors[f"targets[{n}].kind"]
