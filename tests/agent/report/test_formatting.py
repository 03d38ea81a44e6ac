"""Plain-text formatting of numbers, durations and parameters."""

from __future__ import annotations

import math
from datetime import datetime

from agent.report.formatting import (
    duration,
    first_line,
    float_or_nan,
    fmt,
    format_params,
    in_units,
    is_number,
    time_unit,
    when,
)
from policies.space import DesignSpace


def test_numbers_exclude_bools_and_non_finite_values() -> None:
    assert is_number(3) and is_number(2.5)
    assert not is_number(True) and not is_number(math.inf) and not is_number("3")
    assert float_or_nan(2) == 2.0 and math.isnan(float_or_nan(None))


def test_durations_switch_unit_when_long() -> None:
    assert time_unit(179.0) == (1.0, "s") and time_unit(180.0) == (60.0, "min") and time_unit(3 * 3600.0) == (3600.0, "h")
    assert duration(12.5) == "12.5 s"
    assert duration(5400.0) == "5,400 s (90 min)"
    assert duration(7200.0 * 3) == "21,600 s (6 h)"


def test_reason_values_and_params_are_compact() -> None:
    assert fmt(None) == "—" and fmt(True) == "yes" and fmt(0.123456) == "0.1235"
    assert fmt([0.21, 0.34]) == "[0.21, 0.34]" and fmt({"a": 1.0}) == "{a: 1}"
    space = DesignSpace.model_validate(
        {"parameters": [{"name": "temperature", "type": "continuous", "low": 300.0, "high": 500.0, "units": "K"}]}
    )
    assert format_params({"temperature": 440.0, "extra": "x"}, space) == "temperature=440 K, extra=x"
    assert format_params({"temperature": 440.0}, None) == "temperature=440"
    assert in_units("K") == " (K)" and in_units("") == ""


def test_moments_and_exception_messages() -> None:
    assert when(None) == "—" and when(datetime(2024, 5, 1, 12, 0, 3, 999)) == "2024-05-01T12:00:03"
    assert first_line(RuntimeError("cholesky failed\nsecond line")) == "cholesky failed"
    assert first_line(RuntimeError("")) == "RuntimeError"
