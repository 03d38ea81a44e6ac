"""Fault settings: a request's timeout and the failure budgets."""

from __future__ import annotations

import pytest

from agent.faults import FaultsConfig, failure_stop, request_timeout

pytestmark = pytest.mark.timeout(30)


def test_the_timeout_follows_the_expected_duration_and_never_outlasts_the_wall_budget() -> None:
    config = FaultsConfig(timeout_factor=3, timeout_margin_seconds=10)
    assert request_timeout(config, 20.0, None) == pytest.approx(70.0)
    assert request_timeout(config, 20.0, 30.0) == pytest.approx(30.0)
    assert request_timeout(config, None, None) is None  # a driver that states no duration, no fixed timeout
    assert request_timeout(config, None, 12.0) == pytest.approx(12.0)
    assert request_timeout(config.model_copy(update={"timeout_seconds": 5.0}), None, None) == 5.0
    assert request_timeout(config, 20.0, -3.0) == pytest.approx(0.01)  # spent: give up at once


def test_failure_budgets() -> None:
    config = FaultsConfig(failures_in_a_row=3, max_failed_attempts=4)
    assert failure_stop(config, "r", 2, 2, "boom") is None
    assert failure_stop(config, "r", 3, 3, "boom") == "instrument r failed 3 measurements in a row; last error: boom"
    assert failure_stop(config, "r", 1, 4, "boom").startswith("failure budget: faults.max_failed_attempts (4) reached")  # type: ignore[union-attr]
    assert failure_stop(FaultsConfig(), "r", 4, 1000, "boom") is None  # no total budget by default
