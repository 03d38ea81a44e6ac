"""Commands that only read (status, export, --help, validate of a campaign whose policy needs no
model) start without the heavy libraries: BoTorch, torch, Ray and sasmodels are imported at the point
of use, by the commands that run campaigns (and by validating a BO policy, which builds it)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from agent.config import parse_campaign
from agent.store import Store
from tests.agent.campaign_files import quickstart

pytestmark = pytest.mark.timeout(120)
ROOT = Path(__file__).resolve().parents[2]
HEAVY = ["torch", "botorch", "gpytorch", "ray", "sasmodels"]

# In a fresh interpreter (this test process has imported everything already).
SCRIPT = """
import json, sys
from typer.testing import CliRunner
from agent.cli import app
runner = CliRunner()
codes = [runner.invoke(app, args).exit_code for args in json.loads(sys.argv[1])]
print(json.dumps({"codes": codes, "loaded": sorted(m for m in json.loads(sys.argv[2]) if m in sys.modules)}))
"""


def test_status_export_help_and_validate_import_no_botorch_torch_ray_or_sasmodels(tmp_path: Path) -> None:
    data = quickstart(tmp_path, policy={"name": "sobol", "options": {}})
    config = parse_campaign(data)
    file = tmp_path / "c.yaml"
    file.write_text(yaml.safe_dump(data))
    with Store(config.storage) as store:
        store.create_campaign("quickstart-1", config.name, config.stored_form(), config.seed, str(tmp_path), {})
    commands = [
        ["--help"],
        ["validate", str(file)],
        ["status", "--db", config.storage],
        ["status", "quickstart-1", "--db", config.storage],
        ["export", "quickstart-1-00000", "--format", "xye", "--out", str(tmp_path / "x.xye"), "--db", config.storage],
    ]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    run = subprocess.run([sys.executable, "-c", SCRIPT, json.dumps(commands), json.dumps(HEAVY)], cwd=tmp_path,
                         env=env, capture_output=True, text=True, timeout=100)
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result["codes"] == [0, 0, 0, 0, 2]  # the export names an attempt that does not exist
    assert result["loaded"] == []


RUN_COUNTING_RAY = """
import json, sys
import ray
from typer.testing import CliRunner
starts = []
init = ray.init
ray.init = lambda *a, **k: starts.append(1) or init(*a, **k)  # counts, and starts Ray as asked
from agent.cli import app
code = CliRunner().invoke(app, ["run", sys.argv[1], "--json", "--no-report"]).exit_code
print(json.dumps({"code": code, "ray_starts": len(starts)}))
"""


@pytest.mark.parametrize("in_process", [True, False])
def test_run_starts_ray_only_for_a_campaign_with_actors(tmp_path: Path, in_process: bool) -> None:
    data = quickstart(tmp_path, policy={"name": "sobol", "options": {}}, in_process=in_process)
    data["budgets"] = {"max_measurements": 2}
    file = tmp_path / "c.yaml"
    file.write_text(yaml.safe_dump(data))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    run = subprocess.run([sys.executable, "-c", RUN_COUNTING_RAY, str(file)], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=110)
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result["code"] in (0, 3), run.stderr[-3000:]  # 3: the measurement budget ended it
    assert result["ray_starts"] == (0 if in_process else 1)
