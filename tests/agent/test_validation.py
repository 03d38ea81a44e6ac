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


def test_missing_or_unusable_curve_key_files_are_named_by_validate_and_run_starts_nothing(tmp_path: Path) -> None:
    import json

    import zmq.auth
    from typer.testing import CliRunner

    from agent.cli import app

    public, secret = zmq.auth.create_certificates(tmp_path, "client")
    data = _quickstart()
    data["storage"] = f"sqlite:///{tmp_path}/labpilot.db"
    remote = {"address": "tcp://10.0.0.7:5555", "client_secret_key_file": str(tmp_path / "missing.key_secret"),
              "server_public_key_file": str(tmp_path / "server.key")}
    data["instruments"] = [{"name": "reactor", "kind": "remote", "settings": remote}]
    with pytest.raises(CampaignFileError) as info:
        parse_campaign(data)
    errors = dict(info.value.errors)
    assert "missing.key_secret does not exist" in errors["instruments[0].settings.client_secret_key_file"]
    assert "server.key does not exist" in errors["instruments[0].settings.server_public_key_file"]

    # A secret key others can read, and a public key file that holds no key.
    Path(secret).chmod(0o644)
    (tmp_path / "server.key").write_text("not a certificate\n")
    data["instruments"][0]["settings"].update(client_secret_key_file=secret)
    file = tmp_path / "c.yaml"
    file.write_text(yaml.safe_dump(data))
    runner = CliRunner()
    checked = runner.invoke(app, ["validate", str(file), "--json"])
    assert checked.exit_code == 2
    fields = {e["field"]: e["message"] for e in json.loads(checked.stdout)["errors"]}
    assert "readable by others" in fields["instruments[0].settings.client_secret_key_file"]
    assert "No public key" in fields["instruments[0].settings.server_public_key_file"]
    run = runner.invoke(app, ["run", str(file)])
    assert run.exit_code == 2 and "client_secret_key_file" in run.output and "Traceback" not in run.output
    assert not (tmp_path / "labpilot.db").exists()  # nothing started, nothing written

    Path(secret).chmod(0o600)
    data["instruments"][0]["settings"].update(server_public_key_file=public)
    assert parse_campaign(data).instruments[0].settings["server_public_key_file"] == public  # usable keys pass
