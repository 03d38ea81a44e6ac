"""Resuming a one-sample campaign whose last measurements were never analysed: each is analysed once,
from the measurements up to its own — found by the chaos benchmark (benchmarks/chaos.py), where two
analyses started together on resume were both labelled with the newest measurement and one attempt
stayed `measured` for ever."""

from __future__ import annotations

import signal
from collections import Counter
from pathlib import Path

import pytest
import yaml

from agent.campaign import measurements_through
from agent.store import Store
from tests.agent.campaign.test_resume import _cli, _reap
from tests.agent.campaign_files import shipped

pytestmark = [pytest.mark.timeout(420), pytest.mark.slow]


def test_measurements_through_stops_at_the_attempt() -> None:
    from datetime import datetime, timezone

    from instruments.types import Measurement, Timing

    timing = Timing(exposure_seconds=0, started_at=datetime(2026, 1, 1, tzinfo=timezone.utc))
    ms = [Measurement(attempt_id=f"a{i}", instrument="x", params={}, data={}, timing=timing) for i in range(3)]
    assert [m.attempt_id for m in measurements_through(ms, "a1")] == ["a0", "a1"]
    assert measurements_through(ms, "zz") == ms


def test_unanalysed_measurements_are_each_analysed_once_after_resumes(tmp_path: Path) -> None:
    data = shipped("adaptive_xrd.yaml", tmp_path)
    data["name"] = "xrd-unanalysed"
    data["stop_on_targets"] = False
    data["budgets"] = {"max_measurements": 4}
    campaign_file = tmp_path / "campaign.yaml"
    campaign_file.write_text(yaml.safe_dump(data))
    url = data["storage"]
    # Killed right after the 2nd measurement is recorded (before its analysis), then again right after
    # the resumed run records its first measurement: two measured, unanalysed attempts meet one resume.
    code, _, err = _reap(_cli(["run", str(campaign_file), "--db", url, "--json", "--no-report"],
                              {"LABPILOT_FAILPOINT": "after-measured:2"}, tmp_path))
    assert code == -signal.SIGKILL, err[-3000:]
    with Store(url) as store:
        cid = next(c.id for c in store.campaigns() if c.name == "xrd-unanalysed")
    code, _, err = _reap(_cli(["resume", cid, "--db", url, "--json", "--no-report"], {"LABPILOT_FAILPOINT": "after-measured:1"}, tmp_path))
    assert code == -signal.SIGKILL, err[-3000:]
    code, _, err = _reap(_cli(["resume", cid, "--db", url, "--json", "--no-report"], {}, tmp_path))
    assert code in (0, 3), err[-3000:]

    with Store(url) as store:
        attempts = store.attempts(cid)
        assert Counter(a.state for a in attempts) == {"analysed": 4}, [(a.id, a.state) for a in attempts]
        measured = [m.attempt_id for m in store.measurements(cid)]
        interpretations = store.interpretations(cid)
        assert sorted(i.attempt_id for i in interpretations) == sorted(measured)  # one each, none twice
