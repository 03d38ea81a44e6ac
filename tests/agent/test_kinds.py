"""Kinds by import string: importing the agent loads no simulator (and no sasmodels)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from agent.kinds import ANALYSIS_KINDS, INSTRUMENT_KINDS, build_analysis, build_driver, resolve

pytestmark = pytest.mark.timeout(120)

ROOT = Path(__file__).resolve().parents[2]


def test_importing_the_agent_loads_no_simulator_and_no_sasmodels() -> None:
    code = (
        "import sys\n"
        "import agent.campaign, agent.cli, agent.export, agent.validation\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('simulators', 'sasmodels'))\n"
        "print(loaded)\n"
        "sys.exit(1 if loaded else 0)\n"
    )
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=100)
    assert run.returncode == 0, f"loaded at import: {run.stdout} {run.stderr[-2000:]}"


@pytest.mark.parametrize("kind", sorted(INSTRUMENT_KINDS))
def test_every_instrument_kind_names_importable_classes(kind: str) -> None:
    spec = INSTRUMENT_KINDS[kind]
    assert isinstance(spec.settings_model(), type) and isinstance(resolve(spec.driver), type)


@pytest.mark.parametrize("kind", sorted(ANALYSIS_KINDS))
def test_every_analysis_kind_names_importable_classes(kind: str) -> None:
    spec = ANALYSIS_KINDS[kind]
    assert isinstance(spec.settings_model(), type) and isinstance(resolve(spec.analysis), type)


def test_drivers_and_analyses_are_built_from_their_kind(tmp_path: Path) -> None:
    driver = build_driver("synthetic", "reactor", {"inputs": {"x": [0.0, 1.0]}, "journal_dir": str(tmp_path)})
    assert type(driver).__module__ == "simulators.synthetic" and driver.name == "reactor"
    analysis = build_analysis("scalar", {"key": "yield"})
    assert type(analysis).__name__ == "ScalarAnalysis"
    with pytest.raises(ModuleNotFoundError):
        resolve("simulators.nowhere:Driver")
