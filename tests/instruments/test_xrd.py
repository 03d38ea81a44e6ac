"""The diffractometer contract: the window check every XRD driver runs (simulated or real), its
messages naming the instrument and the field, and the planning model's time costs."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from instruments.protocol import InstrumentLimitError
from instruments.types import MeasurementRequest
from instruments.xrd import REQUEST_FIELDS, XRDInstrumentModel, check_xrd_request

pytestmark = pytest.mark.timeout(60)


def _model(**changes: Any) -> XRDInstrumentModel:
    values: dict[str, Any] = {
        "lines": [(1.5405929, 1.0)], "caglioti_u": 0.01, "caglioti_v": -0.003, "caglioti_w": 0.004,
        "goniometer_min_deg": 5.0, "goniometer_max_deg": 140.0, "goniometer_radius_mm": 240.0,
        "setup_seconds": 15.0, "motion_deg_per_second": 5.0, "step_overhead_seconds": 0.01,
        "min_step_deg": 0.005, "max_points": 20000,
    }
    return XRDInstrumentModel(**(values | changes))


def _request(**params: Any) -> MeasurementRequest:
    return MeasurementRequest(attempt_id="a", params=params)


def test_a_window_inside_the_limits_passes() -> None:
    check_xrd_request(_model(), _request(two_theta_start=10, two_theta_stop=60, two_theta_step=0.02, dwell_seconds=0.5),
                      instrument="d8")
    assert REQUEST_FIELDS == ("two_theta_start", "two_theta_stop", "two_theta_step", "dwell_seconds")


@pytest.mark.parametrize(("params", "message"), [
    ({"two_theta_start": 2.0, "two_theta_stop": 20, "two_theta_step": 0.02, "dwell_seconds": 1},
     r"^d8: two_theta_start=2.0 is outside the goniometer range \[5.0, 140.0\] degrees$"),
    ({"two_theta_start": 10, "two_theta_stop": 150, "two_theta_step": 0.02, "dwell_seconds": 1}, "^d8: two_theta_stop=150.0 is outside"),
    ({"two_theta_start": 30, "two_theta_stop": 20, "two_theta_step": 0.02, "dwell_seconds": 1},
     "^d8: two_theta_start=30.0 must be below two_theta_stop=20.0$"),
    ({"two_theta_start": 10, "two_theta_stop": 20, "two_theta_step": 0.0, "dwell_seconds": 1}, "^d8: two_theta_step=0.0 must be positive$"),
    ({"two_theta_start": 10, "two_theta_stop": 20, "two_theta_step": 0.001, "dwell_seconds": 1},
     "^d8: two_theta_step=0.001 is below the finest step 0.005$"),
    ({"two_theta_start": 10, "two_theta_stop": 20, "two_theta_step": 0.02, "dwell_seconds": -1}, "^d8: dwell_seconds=-1.0 must be positive$"),
    ({"two_theta_start": 10, "two_theta_stop": 20, "two_theta_step": 0.02, "dwell_seconds": "long"},
     "^d8: dwell_seconds='long' is not a finite number$"),
    ({"two_theta_start": 10, "two_theta_stop": 20, "two_theta_step": 0.02}, "^d8: request lacks 'dwell_seconds'$"),
    ({"two_theta_start": 10, "two_theta_stop": 20, "two_theta_step": 0.02, "dwell_seconds": 1, "speed": 2},
     r"^d8: unknown request fields \['speed'\]; known: "),
    ({"two_theta_start": 5, "two_theta_stop": 140, "two_theta_step": 0.005, "dwell_seconds": 1},
     "^d8: the window has 27001 steps; at most 20000$"),
])
def test_bad_windows_are_refused_naming_the_instrument_and_the_field(params: dict[str, Any], message: str) -> None:
    with pytest.raises(InstrumentLimitError, match=message):
        check_xrd_request(_model(), _request(**params), instrument="d8")


def test_the_window_time_is_setup_slew_and_steps() -> None:
    model = _model()
    # 11 steps of 0.5 s + 0.01 s dead time; 15 s set-up; a 20° slew at 5°/s.
    assert model.window_seconds(40.0, 45.0, 0.5, 0.5, position=20.0) == pytest.approx(15.0 + 4.0 + 11 * 0.51)
    assert model.window_seconds(40.0, 45.0, 0.5, 0.5, position=None) == pytest.approx(15.0 + 11 * 0.51)
    assert model.caglioti == (0.01, -0.003, 0.004)


def test_a_goniometer_range_upside_down_is_refused() -> None:
    with pytest.raises(ValidationError, match="goniometer_min_deg must be below goniometer_max_deg"):
        _model(goniometer_min_deg=150.0)
