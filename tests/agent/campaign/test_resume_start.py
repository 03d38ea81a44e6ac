"""What a resume checks of its stored configuration before it starts (``agent.campaign._stored_config``):
everything again when the installed packages differ from those the campaign was created with; the
schema only when they are the same (the semantics were checked then, by the same code)."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.campaign import _stored_config
from agent.config import CampaignConfig, CampaignFileError
from agent.versions import package_versions
from tests.agent.campaign_files import quickstart


def _semantically_wrong(tmp_path: Path) -> dict:
    data = quickstart(tmp_path)
    data["objective"] = {**data["objective"], "estimate": "not_produced"}  # schema-valid; the analysis makes "yield"
    return data


def test_a_stored_configuration_is_checked_in_full_when_the_packages_changed(tmp_path: Path) -> None:
    with pytest.raises(CampaignFileError, match="not_produced"):
        _stored_config(_semantically_wrong(tmp_path), {**package_versions(), "labpilot": "0.0.0-other"}, "stored")


def test_a_stored_configuration_of_the_same_packages_is_checked_against_its_schema(tmp_path: Path) -> None:
    config = _stored_config(_semantically_wrong(tmp_path), package_versions(), "stored")
    assert isinstance(config, CampaignConfig) and config.objective.estimate == "not_produced"
    broken = {**quickstart(tmp_path), "budgets": {"max_measurements": "many"}}
    with pytest.raises(CampaignFileError, match="max_measurements"):
        _stored_config(broken, package_versions(), "stored")
