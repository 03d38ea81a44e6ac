"""The synthesiser contract: a recipe is refused before anything is made, the field named."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from instruments.protocol import InstrumentLimitError
from instruments.synthesis import SynthesisModel, check_synthesis_request, sample_id_for
from instruments.types import MeasurementRequest

pytestmark = pytest.mark.timeout(30)
MODEL = SynthesisModel(components=["ti", "zr", "al"], process_limits={"anneal_c": (400.0, 1000.0)}, expected_seconds=3600)


def _check(**params: object) -> None:
    # model_construct: a driver may be sent what a validated request could not hold (NaN)
    check_synthesis_request(MODEL, MeasurementRequest.model_construct(attempt_id="a", params=params), instrument="furnace")


def test_a_recipe_on_the_simplex_within_the_limits_is_accepted() -> None:
    _check(ti=0.2, zr=0.3, al=0.5, anneal_c=700.0)
    _check(ti=1.0, zr=0.0, al=0.0, anneal_c=400.0)  # a corner and a limit are inside
    _check(ti=0.2, zr=0.3, al=0.5 + 5e-7, anneal_c=700.0)  # within 1e-6 of 1


@pytest.mark.parametrize(("params", "message"), [
    ({"ti": -0.1, "zr": 0.6, "al": 0.5, "anneal_c": 700.0}, r"furnace: ti=-0.1 is a negative fraction"),
    ({"ti": 0.2, "zr": 0.3, "al": 0.6, "anneal_c": 700.0}, r"furnace: the fractions of \['ti', 'zr', 'al'\] sum to 1.1, not 1"),
    ({"ti": 0.2, "zr": 0.3, "al": 0.5 + 2e-6, "anneal_c": 700.0}, r"sum to 1.000002"),
    ({"ti": 0.2, "zr": 0.3, "al": 0.5, "anneal_c": 1200.0}, r"furnace: anneal_c=1200.0 is outside the limits \[400.0, 1000.0\]"),
    ({"ti": 0.2, "zr": 0.3, "al": 0.5}, r"furnace: the recipe lacks 'anneal_c'"),
    ({"ti": 0.2, "zr": 0.3, "al": 0.5, "anneal_c": 700.0, "ph": 7.0}, r"furnace: unknown recipe fields \['ph'\]"),
    ({"ti": float("nan"), "zr": 0.3, "al": 0.5, "anneal_c": 700.0}, r"furnace: ti=nan is not a finite number"),
    ({"ti": "lots", "zr": 0.3, "al": 0.5, "anneal_c": 700.0}, r"furnace: ti='lots' is not a finite number"),
])
def test_a_recipe_the_synthesiser_must_not_make_is_refused_naming_the_field(params: dict[str, object], message: str) -> None:
    with pytest.raises(InstrumentLimitError, match=message):
        _check(**params)


def test_the_sample_id_is_a_function_of_the_attempt_id() -> None:
    assert sample_id_for("c-00003") == sample_id_for("c-00003") != sample_id_for("c-00004")


def test_an_inconsistent_model_is_refused() -> None:
    with pytest.raises(ValidationError, match="listed twice"):
        SynthesisModel(components=["ti", "ti"], expected_seconds=1)
    with pytest.raises(ValidationError, match="are components too"):
        SynthesisModel(components=["ti", "zr"], process_limits={"ti": (0, 1)}, expected_seconds=1)
    with pytest.raises(ValidationError, match="low .* must be below high"):
        SynthesisModel(components=["ti"], process_limits={"t": (5, 1)}, expected_seconds=1)
