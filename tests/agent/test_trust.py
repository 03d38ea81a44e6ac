"""A stored configuration cannot run code: what it names is checked before anything is imported."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agent.campaign import resume_campaign
from agent.cli import app
from agent.config import parse_campaign
from agent.report import write_report
from agent.store import Store
from agent.trust import UntrustedConfiguration, allowed_patterns, check_references, references
from tests.agent.campaign_files import EXPERIMENTS, shipped

pytestmark = pytest.mark.timeout(120)

PROBE = "labpilot_trust_probe"


@pytest.fixture
def probe(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A module that leaves a mark when imported: if the mark appears, stored data ran code."""
    mark = tmp_path / "imported"
    (tmp_path / f"{PROBE}.py").write_text(f"open({str(mark)!r}, 'w').write('ran')\ndef build(**kw):\n    return None\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield mark
    sys.modules.pop(PROBE, None)


def _tampered_store(tmp_path: Path) -> tuple[Store, str]:
    """The shipped ophyd campaign as a run would store it, then edited in the database by someone else."""
    config = parse_campaign(shipped("ophyd_sim.yaml", tmp_path))
    stored = config.stored_form()
    stored["instruments"][0]["settings"]["movables"]["motor1"] = {"factory": f"{PROBE}:build", "kwargs": {"x": 1}}
    store = Store(config.storage)
    store.create_campaign("ophyd-1", config.name, stored, config.seed, str(tmp_path), {})
    return store, "ophyd-1"


def test_references_are_read_without_importing(probe: Path) -> None:
    config = {"instruments": [{"kind": "ophyd", "settings": {
        "movables": {"x": f"{PROBE}:motor", "y": {"factory": "a.b:c", "kwargs": {}}}, "detectors": [{"object": "d:e"}]}}]}
    assert references(config) == [("instruments[0].settings.movables.x", f"{PROBE}:motor"),
                                   ("instruments[0].settings.movables.y.factory", "a.b:c"),
                                   ("instruments[0].settings.detectors[0].object", "d:e")]
    assert not probe.exists()


def test_the_shipped_ophyd_campaign_is_trusted_as_it_is(tmp_path: Path) -> None:
    config = parse_campaign(shipped("ophyd_sim.yaml", tmp_path))
    check_references(config.stored_form(), allowed_patterns(), "stored")  # ophyd.sim's devices: allowed


def test_a_tampered_row_is_refused_at_resume_before_anything_is_imported(tmp_path: Path, probe: Path) -> None:
    store, cid = _tampered_store(tmp_path)
    with pytest.raises(UntrustedConfiguration, match=rf"movables.motor1.factory = '{PROBE}:build'"):
        resume_campaign(store, cid)
    # The campaign file the user ran does not name it either.
    with pytest.raises(UntrustedConfiguration):
        resume_campaign(store, cid, allowed=allowed_patterns(EXPERIMENTS / "ophyd_sim.yaml"))
    result = CliRunner().invoke(app, ["resume", cid, "--db", store.url, "--file", str(EXPERIMENTS / "ophyd_sim.yaml")])
    assert result.exit_code == 2 and "nothing trusted allows" in result.output
    # A report still renders, saying why the configuration is not used.
    page = write_report(store, cid, tmp_path / "report").read_text()
    assert "nothing trusted allows" in page
    assert not probe.exists(), "the stored configuration ran code"


def test_an_installation_may_allow_its_own_devices(tmp_path: Path, probe: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store, cid = _tampered_store(tmp_path)
    monkeypatch.setenv("LABPILOT_ALLOWED_IMPORTS", f"mylab.*:*, {PROBE}:*")
    stored = store.campaign(cid).config
    check_references(stored, allowed_patterns(), "stored")  # allowed now; nothing imported by the check
    assert not probe.exists()
