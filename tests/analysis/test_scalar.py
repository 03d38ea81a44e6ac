"""Scalar analysis: estimates ± σ, and bad data flagged, never raised."""

from __future__ import annotations

import numpy as np
import pytest

from analysis import Analysis
from analysis.scalar import ScalarAnalysis, ScalarSettings
from instruments.types import Measurement, Timing

pytestmark = pytest.mark.timeout(30)


def _m(value: float, sigma: float | None = 0.1, attempt: str = "a") -> Measurement:
    return Measurement(
        attempt_id=attempt, instrument="i", params={"x": 1.0}, data={"y": np.array(value)},
        sigma={} if sigma is None else {"y": np.array(sigma)}, timing=Timing(exposure_seconds=1),
    )


def _analysis() -> ScalarAnalysis:
    return ScalarAnalysis(ScalarSettings(key="y", units="a.u."))


def test_single_measurement_passes_value_and_sigma() -> None:
    interp = _analysis().interpret([_m(0.7, 0.05)])
    assert isinstance(_analysis(), Analysis)
    assert interp.valid and interp.flags == []
    assert (interp.estimates["y"].value, interp.estimates["y"].sigma) == (0.7, 0.05)


def test_repeats_are_inverse_variance_weighted() -> None:
    interp = _analysis().interpret([_m(1.0, 0.1), _m(2.0, 0.2)])
    w = np.array([100.0, 25.0])
    assert interp.estimates["y"].value == pytest.approx((w @ [1.0, 2.0]) / w.sum())
    assert interp.estimates["y"].sigma == pytest.approx(np.sqrt(1 / w.sum()))


@pytest.mark.parametrize(
    ("value", "sigma", "flag"),
    [(float("nan"), 0.1, "non-finite-data"), (float("inf"), 0.1, "non-finite-data"),
     (1.0, float("nan"), "non-finite-sigma"), (1.0, -0.1, "negative-variance")],
)
def test_bad_data_is_flagged_invalid_not_raised(value: float, sigma: float, flag: str) -> None:
    interp = _analysis().interpret([_m(value, sigma)])
    assert not interp.valid
    assert flag in interp.flags
    assert interp.estimates["y"].value is None
    interp.model_dump_json()  # storable: no NaN leaks into the record


def test_a_bad_repeat_is_flagged_but_good_data_still_counts() -> None:
    interp = _analysis().interpret([_m(1.0, 0.1), _m(float("nan"), 0.1)])
    assert interp.valid and "non-finite-data" in interp.flags
    assert interp.estimates["y"].value == 1.0


def test_unknown_sigma_uses_the_scatter_of_repeats() -> None:
    interp = _analysis().interpret([_m(1.0, None), _m(3.0, None)])
    assert interp.estimates["y"].value == 2.0
    assert interp.estimates["y"].sigma == pytest.approx(1.0)
    assert _analysis().interpret([_m(1.0, None)]).estimates["y"].sigma is None
