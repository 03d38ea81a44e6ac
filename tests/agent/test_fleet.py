"""The fleet: actors built from import strings, made ready, described for the store, stopped."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
import ray

from agent.config import parse_campaign
from agent.fleet import Fleet, actor_names
from instruments.protocol import planning_model_of_kind
from tests.agent.campaign_files import quickstart, shipped

pytestmark = pytest.mark.timeout(120)


def test_actor_names_number_identical_instruments(tmp_path: Path) -> None:
    config = parse_campaign(quickstart(tmp_path))
    assert [name for name, _ in actor_names(config)] == ["reactor-1", "reactor-2"]


def test_an_in_process_fleet_describes_its_instruments_and_tracks_who_is_busy(tmp_path: Path) -> None:
    config = parse_campaign(shipped("adaptive_xrd.yaml", tmp_path))
    fleet = Fleet(config, tmp_path / "c", in_process=True)
    fleet.start()
    asyncio.run(fleet.ready())
    assert fleet.free() == ["diffractometer"]
    fleet.take("diffractometer", "c-00000")
    assert fleet.free() == [] and fleet.busy == {"diffractometer": "c-00000"}
    fleet.release("diffractometer")
    (record,) = fleet.records()
    assert (record.name, record.kind, record.model_kind) == ("diffractometer", "xrd", "xrd")
    # The stored form rebuilds the model the planner saw.
    assert planning_model_of_kind(record.model_kind, record.model) == fleet.instrument_models["diffractometer"]
    assert record.data_keys["counts"]["units"] == "counts"
    assert "p(best)" in fleet.estimates()
    asyncio.run(fleet.stop(True))


def test_a_ray_fleet_starts_and_ends_its_actor_processes(ray_local, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    config = parse_campaign(quickstart(tmp_path))
    fleet = Fleet(config, tmp_path / "c")
    fleet.start()
    asyncio.run(fleet.ready())
    assert sorted(fleet.data_keys) == ["reactor-1", "reactor-2"] and fleet.instrument_models == {"reactor-1": None, "reactor-2": None}
    handles = [*fleet.instruments.values(), fleet.analysis]
    asyncio.run(fleet.stop(False))
    # ray.kill is asynchronous: a call sent at once may still be served; the actor must be gone soon after.
    for handle in handles:
        with pytest.raises(ray.exceptions.RayActorError):
            for _ in range(60):
                ray.get(handle.health.remote(), timeout=30)
                time.sleep(0.5)


def test_missing_cluster_resources_name_the_instrument_and_what_is_offered(tmp_path: Path) -> None:
    from agent.config import parse_campaign
    from agent.fleet import MissingClusterResources, check_cluster_resources
    from tests.agent.campaign_files import quickstart

    data = quickstart(tmp_path)
    data["instruments"][0]["ray_resources"] = {"reactor_pc": 1}
    config = parse_campaign(data)  # count: 2 reactors → 2 units needed
    check_cluster_resources(config, {"CPU": 2, "reactor_pc": 2})
    with pytest.raises(MissingClusterResources, match=r"instrument 'reactor' needs Ray resources \{'reactor_pc': 1\.0\} \(× 2\)"):
        check_cluster_resources(config, {"CPU": 2, "reactor_pc": 1})
    data["instruments"][0]["ray_resources"] = {"reactor_pc": 0}
    with pytest.raises(Exception, match="ray_resources"):
        parse_campaign(data)
