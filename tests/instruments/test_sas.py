"""The SAS instrument contract: the planning model and the request check a real driver shares."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from instruments import InstrumentLimitError, MeasurementRequest
from instruments.sas import REQUEST_FIELDS, SASConfigurationModel, SASInstrumentModel, check_sas_request

pytestmark = pytest.mark.timeout(30)


def _configuration(name: str, minimum: float, **extra) -> SASConfigurationModel:  # type: ignore[no-untyped-def]
    q = np.geomspace(0.01, 0.1, 5)
    return SASConfigurationModel(
        name=name, q=q, dq=0.02 * q, counts_per_second=np.full(5, 100.0), background=np.full(5, 0.01),
        min_exposure_seconds=minimum, **extra,
    )


MODEL = SASInstrumentModel(
    configurations=[_configuration("8m", 10.0), _configuration("2m", 5.0, wavelength_angstrom=6.0)],
    change_seconds=120.0,
    overhead_seconds=10.0,
)


def _request(**params) -> MeasurementRequest:  # type: ignore[no-untyped-def]
    return MeasurementRequest(attempt_id="a", params=params)


def test_request_fields():
    assert REQUEST_FIELDS == ("configuration", "exposure_seconds")


def test_a_valid_request_passes():
    check_sas_request(MODEL, _request(configuration="8m", exposure_seconds=10))
    check_sas_request(MODEL, _request(configuration="2m", exposure_seconds=5.5))


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"configuration": "4m", "exposure_seconds": 60}, r"^sans: configuration='4m' .*valid configurations: \['8m', '2m'\]"),
        ({"configuration": 8, "exposure_seconds": 60}, r"configuration=8 is not a configuration"),
        ({"exposure_seconds": 60}, r"^sans: request lacks 'configuration'; valid configurations: \['8m', '2m'\]$"),
        ({"configuration": "8m"}, r"^sans: request lacks 'exposure_seconds'$"),
        ({"configuration": "8m", "exposure_seconds": 0}, r"^sans: exposure_seconds=0 must be positive$"),
        ({"configuration": "8m", "exposure_seconds": 9.5}, r"^sans: exposure_seconds=9.5 is below configuration '8m''s minimum \(10.0 s\)$"),
        ({"configuration": "8m", "exposure_seconds": 60, "detector": "x"}, r"^sans: unknown request fields \['detector'\]"),
    ],
)
def test_requests_outside_the_limits_are_refused_naming_the_instrument(params, message):
    with pytest.raises(InstrumentLimitError, match=message):
        check_sas_request(MODEL, _request(**params), instrument="sans")


@pytest.mark.parametrize("exposure", [float("inf"), float("nan"), True, "60"])
def test_non_numbers_are_refused_and_the_name_is_optional(exposure):
    # A validated request cannot carry these; the check still guards a request built without validation.
    request = MeasurementRequest.model_construct(attempt_id="a", params={"configuration": "8m", "exposure_seconds": exposure})
    with pytest.raises(InstrumentLimitError, match=rf"^exposure_seconds={exposure!r} is not a finite number$"):
        check_sas_request(MODEL, request)


def test_wavelength_is_optional_and_positive():
    assert MODEL.configuration("8m").wavelength_angstrom is None
    assert MODEL.configuration("2m").wavelength_angstrom == 6.0
    restored = SASInstrumentModel.model_validate_json(MODEL.model_dump_json())
    assert restored.configuration("2m").wavelength_angstrom == 6.0
    with pytest.raises(ValidationError):
        _configuration("x", 1.0, wavelength_angstrom=0.0)
