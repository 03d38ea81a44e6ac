"""The generic instrument service, without Ray and as a real Ray actor."""

from __future__ import annotations

import asyncio
import time
from functools import partial

import pytest
import ray

from instruments.actor import InstrumentActor, InstrumentService
from instruments.types import MeasurementRequest
from simulators.synthetic import SyntheticPropertyDriver, SyntheticSettings

pytestmark = pytest.mark.timeout(120)


def _factory(tmp_path, realtime_factor: float = 0.0):  # type: ignore[no-untyped-def]
    settings = SyntheticSettings(
        inputs={"x": (0.0, 1.0)}, journal_dir=str(tmp_path), realtime_factor=realtime_factor, synthesis_seconds=1.0,
        motion_seconds=0.0, overhead_seconds=0.0,
    )
    return partial(SyntheticPropertyDriver, "probe", settings)


def test_service_is_idempotent_per_attempt_and_serialises_measurements(tmp_path) -> None:  # type: ignore[no-untyped-def]
    async def scenario() -> None:
        service = InstrumentService(_factory(tmp_path, realtime_factor=0.2))
        request = MeasurementRequest(attempt_id="a1", params={"x": 0.5})
        # The same attempt asked twice at once is measured once.
        first, second = await asyncio.gather(service.measure(request), service.measure(request))
        assert first.scalar("yield") == second.scalar("yield")
        assert (await service.health())["measured"] == 1
        assert (await service.measure(request)).timing == first.timing
        assert (await service.recover("a1")).recovered  # type: ignore[union-attr]
        assert await service.check(MeasurementRequest(attempt_id="a2", params={"x": 2.0})) is not None
        assert await service.check(MeasurementRequest(attempt_id="a2", params={"x": 0.2})) is None

    asyncio.run(scenario())


def test_ray_actors_measure_in_parallel(ray_local, tmp_path) -> None:  # type: ignore[no-untyped-def]
    actors = [InstrumentActor.options(num_cpus=0).remote(_factory(tmp_path / f"i{i}", realtime_factor=2.0)) for i in range(2)]
    requests = [MeasurementRequest(attempt_id=f"p{i}", params={"x": 0.1 * i}) for i in range(2)]
    ray.get([a.health.remote() for a in actors])  # wait for the actor processes to start
    started = time.perf_counter()
    results = ray.get([a.measure.remote(r) for a, r in zip(actors, requests)])
    elapsed = time.perf_counter() - started
    assert [m.attempt_id for m in results] == ["p0", "p1"]
    # In series they would take 2 × 2 s; allow for a busy 2-core machine.
    assert elapsed < 3.5, f"two 2-s measurements on two actors took {elapsed:.2f} s: not parallel"
    # A fresh actor over the same data folder recovers what the first one measured.
    reborn = InstrumentActor.options(num_cpus=0).remote(_factory(tmp_path / "i0"))
    assert ray.get(reborn.recover.remote("p0")).scalar("yield") == results[0].scalar("yield")
    for a in [*actors, reborn]:
        ray.kill(a)


class _Unpicklable(Exception):
    """An exception a driver library might define: it cannot be rebuilt from its args."""

    def __init__(self, code: int, detail: str) -> None:
        super().__init__(f"code {code}: {detail}")


class _FaultyDriver(SyntheticPropertyDriver):
    def measure(self, request):  # type: ignore[no-untyped-def]
        raise _Unpicklable(7, "shutter stuck")


def test_a_driver_error_that_cannot_be_pickled_still_reaches_the_campaign_with_its_words(ray_local, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from agent.errors import first_line

    settings = SyntheticSettings(inputs={"x": (0.0, 1.0)}, journal_dir=str(tmp_path))
    actor = InstrumentActor.options(num_cpus=0).remote(partial(_FaultyDriver, "probe", settings))
    with pytest.raises(Exception) as info:
        ray.get(actor.measure.remote(MeasurementRequest(attempt_id="a1", params={"x": 0.5})))
    assert first_line(info.value) == "_Unpicklable: code 7: shutter stuck"
    ray.kill(actor)
