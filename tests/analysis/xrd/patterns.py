"""Simulated powder patterns for the phase-identification tests: windows measured by the
simulated diffractometer on a sample of library phases."""

from __future__ import annotations

from typing import Any

from instruments.types import Measurement, MeasurementRequest
from simulators.xrd import XRDDriver, XRDSettings

SURVEY = (10.0, 60.0, 0.04, 0.1)
SLOW = (10.0, 90.0, 0.02, 1.0)


def measure(phases: list[dict[str, Any]], windows: list[tuple[float, float, float, float]], seed: int = 0,
            **settings: Any) -> list[Measurement]:
    """One measurement per window (start, stop, step degrees; dwell s) of the sample ``phases``."""
    driver = XRDDriver("xrd", XRDSettings.model_validate({"sample": {"phases": phases}, "seed": seed, **settings}))
    keys = ("two_theta_start", "two_theta_stop", "two_theta_step", "dwell_seconds")
    return [driver.measure(MeasurementRequest(attempt_id=f"w{i}", params=dict(zip(keys, w)), sample_id="s"))
            for i, w in enumerate(windows)]
