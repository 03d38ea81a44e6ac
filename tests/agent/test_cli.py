"""The command line end to end: run → status → report → resume, with machine-readable output."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from agent.cli import app
from tests.agent.campaign_files import quickstart

pytestmark = [pytest.mark.timeout(240), pytest.mark.usefixtures("ray_local")]


def test_run_status_report_resume(tmp_path: Path) -> None:
    data = quickstart(tmp_path)
    data["policy"] = {"name": "sobol", "options": {}}
    data["budgets"] = {"max_measurements": 4}
    file = tmp_path / "c.yaml"
    file.write_text(yaml.safe_dump(data))
    db = data["storage"]
    runner = CliRunner()

    run = runner.invoke(app, ["run", str(file), "--json", "--no-report"])
    assert run.exit_code == 3, run.output  # a budget, not the targets, ended it
    summary = json.loads(run.stdout)
    assert summary["n_measurements"] == 4 and summary["stop_reason"].startswith("budget: max_measurements")
    assert set(summary) >= {"campaign_id", "stop_reason", "targets", "n_measurements", "instrument_seconds", "wall_seconds"}
    assert set(summary["targets"]["near_optimum"]) >= {"value", "goal", "met"}
    cid = summary["campaign_id"]

    status = runner.invoke(app, ["status", cid, "--db", db, "--json"])
    assert status.exit_code == 0, status.output
    assert json.loads(status.stdout)["status"] == "budget_exhausted"
    listing = runner.invoke(app, ["status", "--db", db, "--json"])
    assert [c["campaign_id"] for c in json.loads(listing.stdout)] == [cid]

    out = tmp_path / "r.html"
    report = runner.invoke(app, ["report", cid, "--db", db, "--out", str(out)])
    assert report.exit_code == 0, report.output
    assert cid in out.read_text()

    again = runner.invoke(app, ["resume", cid, "--db", db, "--json", "--no-report"])
    assert again.exit_code == 3
    assert json.loads(again.stdout)["n_measurements"] == 4  # nothing more: the budget is spent

    missing = runner.invoke(app, ["status", "nope", "--db", db])
    assert missing.exit_code == 2 and "no campaign 'nope'" in missing.output
    unreachable = runner.invoke(app, ["status", "--db", "postgresql://nobody@127.0.0.1:1/x"])
    assert unreachable.exit_code == 2 and "cannot connect" in unreachable.output
