"""SAS fit settings: unknown models and parameters, bad bounds and fixed values are named."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from tests.analysis.sas.data import CORE_SHELL, CYLINDER, SPHERE, settings

pytestmark = pytest.mark.timeout(120)


def test_settings_name_an_unknown_model_and_list_valid_ones():
    with pytest.raises(ValidationError, match="spheer") as info:
        settings({**SPHERE, "model": "spheer"})
    assert "core_shell_sphere" in str(info.value)  # the list of valid model names
    with pytest.raises(ValidationError, match="cylindr"):
        settings({**SPHERE, "model": "sphere+cylindr"})


def test_settings_name_an_unknown_parameter_and_list_the_models_parameters():
    params = {**SPHERE["parameters"], "radus": {"value": 1, "bounds": [0, 2]}}
    with pytest.raises(ValidationError, match="radus") as info:
        settings({**SPHERE, "parameters": params})
    message = str(info.value)
    assert "radius_pd" in message and "sld_solvent" in message
    with pytest.raises(ValidationError, match="thikness"):
        settings({**CORE_SHELL, "fixed": {**CORE_SHELL["fixed"], "thikness": 3}})


@pytest.mark.parametrize(
    "change, match",
    [
        ({"radius": {"value": 40, "bounds": [-5, 300]}}, "limits"),
        ({"radius": {"value": 400, "bounds": [10, 300]}}, "outside bounds"),
        ({"radius": {"value": 40, "bounds": [300, 10]}}, "low < high"),
        ({"radius_pd_n": {"value": 3, "bounds": [1, 5]}}, "cannot be fitted"),
    ],
)
def test_settings_reject_bad_parameters(change, match):
    with pytest.raises(ValidationError, match=match):
        settings({**SPHERE, "parameters": {**SPHERE["parameters"], **change}})


def test_settings_reject_bad_fixed_values_and_names():
    with pytest.raises(ValidationError, match="radius_pd_type"):
        settings({**SPHERE, "fixed": {**SPHERE["fixed"], "radius_pd_type": "cauchy"}})
    with pytest.raises(ValidationError, match="both fitted and fixed"):
        settings({**SPHERE, "fixed": {**SPHERE["fixed"], "radius": 50}})
    with pytest.raises(ValidationError, match="unique"):
        settings(SPHERE, SPHERE)
    with pytest.raises(ValidationError, match="model_prior"):
        settings(SPHERE, model_prior={"ellipsoid": 1.0})
    with pytest.raises(ValidationError, match="report"):
        settings(SPHERE, report=["length"])
    with pytest.raises(ValidationError):
        settings({**SPHERE, "parameters": {**SPHERE["parameters"], "radius": {"value": 40, "bounds": [10, float("inf")]}}})
    s = settings(SPHERE, CYLINDER, report=["radius", "length"])
    assert s.estimate_names() == ["radius", "length", "p(sphere)", "p(cylinder)", "p(best)"]
