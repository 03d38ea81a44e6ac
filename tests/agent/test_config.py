"""Campaign files: shipped ones validate; bad ones list every error by field path and start nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from agent.cli import app
from agent.config import CampaignFileError, load_campaign, parse_campaign

pytestmark = pytest.mark.timeout(60)
EXPERIMENTS = Path(__file__).resolve().parents[2] / "experiments"


def _quickstart() -> dict:
    return yaml.safe_load((EXPERIMENTS / "quickstart.yaml").read_text())


@pytest.mark.parametrize("path", sorted(EXPERIMENTS.glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_campaign_files_are_valid(path: Path) -> None:
    config = load_campaign(path)
    assert config.name


def test_every_error_is_listed_with_its_field_path() -> None:
    data = _quickstart()
    data["seed"] = -1
    data["design_space"]["parameters"][0]["high"] = float("nan")
    data["instruments"][0]["count"] = 0
    data["budgets"] = {}
    data["surprise"] = True
    with pytest.raises(CampaignFileError) as info:
        parse_campaign(data, "bad.yaml")
    fields = [f for f, _ in info.value.errors]
    assert "seed" in fields
    assert any(f.startswith("design_space.parameters[0]") and "high" in f for f in fields)
    assert "instruments[0].count" in fields
    assert "budgets" in fields
    assert "surprise" in fields
    assert "bad.yaml" in str(info.value)


def test_constraints_must_name_numeric_parameters() -> None:
    data = _quickstart()
    data["design_space"]["constraints"] = [{"coefficients": {"pressure": 1.0}, "upper_bound": 1.0}]
    with pytest.raises(CampaignFileError, match="pressure"):
        parse_campaign(data)


def test_unreadable_and_non_yaml_files_are_named(tmp_path: Path) -> None:
    with pytest.raises(CampaignFileError, match="(?s)missing.yaml.*cannot read"):
        load_campaign(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed")
    with pytest.raises(CampaignFileError, match="not valid YAML"):
        load_campaign(bad)


def test_cli_validate_and_an_invalid_run_writes_nothing(tmp_path: Path) -> None:
    runner = CliRunner()
    ok = runner.invoke(app, ["validate", str(EXPERIMENTS / "quickstart.yaml"), "--json"])
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.stdout)["valid"] is True

    data = _quickstart()
    data["policy"]["name"] = "magic"
    data["budgets"]["max_measurements"] = 0
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(data))
    result = runner.invoke(app, ["validate", str(bad), "--json"])
    assert result.exit_code == 2
    errors = json.loads(result.stdout)["errors"]
    assert {e["field"] for e in errors} >= {"budgets.max_measurements"}

    db = tmp_path / "never.db"
    run = runner.invoke(app, ["run", str(bad), "--db", f"sqlite:///{db}", "--json"])
    assert run.exit_code == 2
    assert not db.exists()
    assert not (tmp_path / "labpilot-data").exists()
