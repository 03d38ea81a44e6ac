"""The shipped ophyd campaign through the engine: ophyd.sim motors and detector behind a Ray
instrument actor, every measurement a bluesky run, a GP policy steering both motors to the peak."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from tests.agent.campaign_files import run_shipped

pytestmark = [pytest.mark.timeout(300), pytest.mark.usefixtures("ray_local")]


def test_ophyd_sim_campaign_steers_the_motors_onto_the_peak(tmp_path: Path) -> None:
    config, store, result = run_shipped("ophyd_sim.yaml", tmp_path, "ophyd-sim")
    assert result.status == "completed", result.stop_reason
    assert result.targets["on_peak"].met
    assert result.n_measurements < config.budgets.max_measurements  # type: ignore[operator]

    measurements = store.measurements("ophyd-sim")
    assert len(measurements) == result.n_measurements
    space = {p.name: (p.low, p.high) for p in config.design_space.parameters}
    for m in measurements:
        assert m.instrument == "beamline" and set(m.params) == {"motor1", "motor2"}
        assert all(space[k][0] <= float(v) <= space[k][1] for k, v in m.params.items())
        # What the RunEngine read is ophyd.sim's det4 at the requested motor positions (no noise).
        x, y = float(m.params["motor1"]), float(m.params["motor2"])
        assert m.scalar("det4") == pytest.approx(math.exp(-(x**2 + y**2) / 2), rel=1e-9, abs=1e-12)
        assert m.sigma == {} and m.timing.instrument_seconds > 0
    best = max(measurements, key=lambda m: m.scalar("det4"))
    assert best.scalar("det4") >= 0.95
    assert math.hypot(float(best.params["motor1"]), float(best.params["motor2"])) <= math.sqrt(-2 * math.log(0.95))
