"""The start and descriptors of every shipped campaign carry what bluesky's callbacks read: plan type
and name, an integer scan id, the design space as the primary stream's dimensions, units on every
data key of every stream (estimates in their analysis' units, probabilities dimensionless) and
per-object hints naming only numeric scalars — all valid under event-model's schemas."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import event_model
import pytest

from agent.config import parse_campaign
from agent.documents import RunComposer
from agent.fleet import Fleet
from tests.agent.campaign_files import shipped

pytestmark = pytest.mark.timeout(240)


def _opened(file: str, tmp_path: Path, scan_id: int = 7) -> tuple[Any, dict[str, str], list[Any]]:
    """(config, estimate units, start + descriptors) of a shipped campaign, its instruments built in
    this process (no Ray) so their own data keys are described."""
    config = parse_campaign(shipped(file, tmp_path))
    fleet = Fleet(config, tmp_path / "fleet", in_process=True)
    fleet.start()
    asyncio.run(fleet.ready())
    try:
        estimates = fleet.estimates()
        documents = RunComposer("c", 0, None, {}, {}).open(
            config=config.stored_form(), started=1.0e9, data_keys=fleet.data_keys, estimates=estimates,
            previous_start=None, scan_id=scan_id,
        )
    finally:
        asyncio.run(fleet.stop(True))
    return config, estimates, documents


@pytest.mark.parametrize("file", ["quickstart.yaml", "adaptive_sans.yaml", "adaptive_xrd.yaml"])
def test_every_stream_has_units_hints_and_dimensions(file: str, tmp_path: Path) -> None:
    config, estimates, documents = _opened(file, tmp_path)
    for d in documents:
        event_model.schema_validators[event_model.DocumentNames[d.name]].validate(d.doc)
    start = documents[0].doc
    assert (start["plan_type"], start["plan_name"], start["scan_id"]) == ("campaign", "labpilot_campaign", 7)
    parameters = [p.name for p in config.design_space.parameters]
    assert start["hints"]["dimensions"] == [[[name], "primary"] for name in parameters]
    descriptors = {d.stream: d.doc for d in documents[1:]}
    assert set(descriptors) == {"primary", "interpretations", "decisions"}
    for stream, descriptor in descriptors.items():
        keys = descriptor["data_keys"]
        assert all(isinstance(key.get("units"), str) for key in keys.values()), stream
        assert sorted(k for fields in descriptor["object_keys"].values() for k in fields) == sorted(keys), stream
        # Every object hints (an object without hints means "all its keys" to BestEffortCallback) …
        assert set(descriptor["hints"]) == set(descriptor["object_keys"]), stream
        hinted = [f for h in descriptor["hints"].values() for f in h["fields"]]
        assert hinted, stream
        # … and besides the dimensions (a categorical one is a string), only numeric scalars a
        # table and a line plot can show — never a σ, which may be null.
        columns = [f for f in hinted if f not in parameters]
        assert all(keys[f]["dtype"] in ("number", "integer") and keys[f]["shape"] == [] for f in columns), stream
        assert not any(f.endswith("_sigma") for f in hinted), stream
    primary = descriptors["primary"]
    assert primary["hints"]["request"]["fields"] == parameters
    for p in config.design_space.parameters:
        assert primary["data_keys"][p.name]["units"] == p.units
    categorical = [p for p in config.design_space.parameters if p.type == "categorical"]
    for p in categorical:
        assert primary["data_keys"][p.name]["choices"] == p.choices
    # Fixed plot limits for BestEffortCallback, when every dimension has bounds.
    assert start.get("extents") == (None if categorical else [[p.low, p.high] for p in config.design_space.parameters])
    interpretations = descriptors["interpretations"]["data_keys"]
    for name, units in estimates.items():
        assert interpretations[name]["units"] == interpretations[f"{name}_sigma"]["units"] == units
    assert all(units == "" for name, units in estimates.items() if name.startswith("p"))  # probabilities


def test_estimates_carry_their_analysis_units(tmp_path: Path) -> None:
    """SAS sizes in sasmodels' units (Å), the scalar estimate in the campaign's units."""
    _, sas, _ = _opened("adaptive_sans.yaml", tmp_path / "sas")
    assert sas["radius"] == "Ang" and sas["p(best)"] == "" and sas["p(sphere)"] == ""
    config, scalar, _ = _opened("quickstart.yaml", tmp_path / "quick")
    assert scalar == {"yield": config.analysis.settings["units"]} and scalar["yield"] == "fraction"
