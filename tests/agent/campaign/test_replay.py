"""Campaigns on the replay instrument with real Ray: the shipped SAS replay of sasdata's latex SANS +
USANS recording, and the adaptive XRD planner steering windows over a recorded pattern."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from agent.campaign import run_campaign
from agent.config import parse_campaign
from agent.store import Store
from instruments.files import read_measurements
from tests.agent.campaign_files import run_shipped, shipped

pytestmark = [pytest.mark.timeout(300), pytest.mark.usefixtures("ray_local")]


@pytest.mark.parametrize("policy", [None, {"name": "sas_round_robin", "options": {"exposure_seconds": 1200}}])
def test_shipped_sas_replay_serves_the_recorded_blocks_within_their_exposure(tmp_path: Path, policy: dict | None) -> None:
    config, store, result = run_shipped("replay_sas.yaml", tmp_path, "replay-sas", **({"policy": policy} if policy else {}))
    assert result.status in {"completed", "budget_exhausted"}, result.stop_reason
    measurements = store.measurements("replay-sas")
    assert measurements and not store.attempts("replay-sas", states=["refused", "failed"])
    recording = config.model_dump(mode="json")["instruments"][0]["settings"]["sas"]["recordings"]
    import sasdata

    blocks = {m.params["configuration"]: m for m in read_measurements(Path(sasdata.__file__).parent / "example_data/1d_data/latex_smeared.xml")}
    for m in measurements:
        block = blocks[{r["configuration"]: r["block"] for r in recording}[m.params["configuration"]]]
        np.testing.assert_array_equal(m.data["q"], block.data["q"])
    spent = sum(float(m.params["exposure_seconds"]) for m in measurements if m.params["configuration"] == "sans")
    assert spent <= 3600
    last = store.interpretations("replay-sas")[-1]
    # Once a USANS part is in, the joint pinhole + slit fit answers the radius: a direct joint fit of the
    # whole recording (tests/analysis/sas/test_real_data.py) gives 2291 Å; a part of it may differ by a few σ.
    assert result.status == "completed" and "usans" in {m.params["configuration"] for m in measurements}
    radius = last.estimates["radius"]
    assert last.valid and abs(radius.value - 2291.0) < max(4 * radius.sigma, 25.0), radius  # type: ignore[operator]


def test_adaptive_xrd_planner_runs_on_a_recorded_pattern(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from instruments.types import MeasurementRequest
    from simulators.xrd import XRDDriver, XRDSettings

    # The "recording": one long full scan, written as a diffractometer's .xye with its header.
    sample = {"phases": [{"phase": "tio2_anatase", "weight_fraction": 0.8}, {"phase": "tio2_rutile", "weight_fraction": 0.2}]}
    recorder = XRDDriver("lab", XRDSettings.model_validate({"sample": sample, "wavelength": "CuKa", "seed": 9}))
    full = recorder.measure(MeasurementRequest(attempt_id="rec", params={
        "two_theta_start": 10.0, "two_theta_stop": 90.0, "two_theta_step": 0.02, "dwell_seconds": 4.0}))
    pattern = tmp_path / "recorded.xye"
    np.savetxt(pattern, np.column_stack([full.data["two_theta"], full.data["counts"], full.sigma["counts"]]), fmt="%.17g",
               header="wavelength: CuKa\ndwell: 4 s per step", comments="# ")
    data = shipped("adaptive_xrd.yaml", tmp_path)
    monkeypatch.chdir(tmp_path)  # the file is named relative to where the campaign starts, not where actors run
    data["instruments"] = [{"name": "replayed", "kind": "replay", "settings": {"seed": 1, "xrd": {"file": "recorded.xye"}}}]
    data["analysis"]["settings"]["candidates"] = ["tio2_anatase", "tio2_rutile", "tio2_brookite", "si"]
    data["budgets"] = {"max_measurements": 4, "max_instrument_seconds": 8000}
    config = parse_campaign(data)
    store = Store(config.storage)
    result = run_campaign(config, store, campaign_id="replay-xrd")
    assert result.status in {"completed", "budget_exhausted"}, result.stop_reason
    decisions = store.decisions("replay-xrd")
    assert decisions and not any(d.fallback for d in decisions) and decisions[0].reasons[0]["rule"] == "survey"
    measurements = store.measurements("replay-xrd")
    recorded = dict(zip(np.round(full.data["two_theta"], 6), full.data["counts"]))
    for m in measurements:  # every served step is a recorded step, with no more counts than recorded
        assert all(recorded[x] >= n for x, n in zip(np.round(m.data["two_theta"], 6), m.data["counts"]))
    last = store.interpretations("replay-xrd")[-1]
    assert last.details["best_set"] == "tio2_anatase+tio2_rutile"


def test_a_replay_campaign_naming_a_missing_or_unusable_file_is_refused_before_it_starts(tmp_path: Path) -> None:
    from agent.config import CampaignFileError

    data = shipped("replay_sas.yaml", tmp_path)
    data["instruments"][0]["settings"]["sas"]["recordings"][1]["file"] = str(tmp_path / "absent.xml")
    with pytest.raises(CampaignFileError, match=r"(?s)instruments\[0\]\.settings.*absent\.xml: no such file"):
        parse_campaign(data)
    data = shipped("replay_sas.yaml", tmp_path)
    data["instruments"][0]["settings"]["sas"]["recordings"][0]["block"] = "latex_waxs"
    with pytest.raises(CampaignFileError, match=r"(?s)latex_smeared\.xml: block: no block 'latex_waxs'"):
        parse_campaign(data)
    assert not (tmp_path / "labpilot.db").exists()
