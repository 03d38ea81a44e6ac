"""`status` on an 80-column terminal: campaign and attempt ids in full; `status ID` lists the attempts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agent.cli import app
from tests.agent.campaign_files import quickstart

pytestmark = [pytest.mark.timeout(240), pytest.mark.usefixtures("ray_local")]

LONG_ID = "quickstart-with-a-long-descriptive-name-0123abcd"  # 48 characters


def test_status_prints_whole_ids_at_80_columns_and_lists_the_attempts(tmp_path: Path) -> None:
    from agent.campaign import run_campaign
    from agent.config import parse_campaign
    from agent.store import Store

    config = parse_campaign(quickstart(tmp_path, policy={"name": "sobol", "options": {}}, budgets={"max_measurements": 3}))
    result = run_campaign(config, Store(config.storage), campaign_id=LONG_ID)
    assert result.n_measurements == 3
    runner = CliRunner()

    listing = runner.invoke(app, ["status", "--db", config.storage], env={"COLUMNS": "80"})
    assert listing.exit_code == 0, listing.output
    assert LONG_ID in listing.output  # on one line, not cut or folded
    assert max(len(line) for line in listing.output.splitlines()) <= 80

    one = runner.invoke(app, ["status", LONG_ID, "--db", config.storage], env={"COLUMNS": "80"})
    assert one.exit_code == 0, one.output
    assert max(len(line) for line in one.output.splitlines()) <= 80
    as_json = json.loads(runner.invoke(app, ["status", LONG_ID, "--db", config.storage, "--json"]).stdout)
    attempts = as_json["attempt_list"]
    assert [a["attempt_id"] for a in attempts] == [f"{LONG_ID}-{i:05d}" for i in range(3)]
    for a in attempts:
        assert a["attempt_id"] in one.output  # the id `export` takes, whole
        assert a["state"] == "analysed" and a["instrument_seconds"] > 0
        assert set(a["params"]) == {"temperature", "time"}
        assert f"{a['instrument_seconds']:,.0f}" in one.output, one.output
    assert one.output.count("analysed") == 3 and "temperature=" in one.output
