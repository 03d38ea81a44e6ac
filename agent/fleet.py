"""The campaign's actors: one per instrument and one for the analysis — built, made ready, watched, stopped.

Actors are Ray actors (``num_cpus=0``: they wait on hardware, not on a CPU) or, for benchmarks that
run many campaigns as Ray tasks, the same services in this process behind ``LocalHandle``. Drivers
and analyses are named by import string (``agent/kinds.py``) and built *inside* the actor, so the
campaign process never loads a simulator or a device library.

The fleet also knows which instruments are busy: one measurement at a time per instrument, and
restarts an instrument actor whose process died or hung, within the campaign's restart budget
(``faults.max_restarts``): the campaign then reconciles the attempt that was in flight. An instrument
pinned to a node (``ray_resources``) whose node went down is restarted when the node is back, waiting
at most ``faults.restart_wait_seconds``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import ray

from agent.config import CampaignConfig, InstrumentConfig
from agent.errors import first_line
from agent.faults import request_timeout
from agent.kinds import ANALYSIS_KINDS, INSTRUMENT_KINDS, analysis_factory, driver_factory
from agent.runtime import LocalHandle, wait_for_ray
from agent.store import InstrumentRecord
from analysis.actor import AnalysisActor, AnalysisService
from instruments.actor import InstrumentActor, InstrumentService
from instruments.protocol import planning_model_kind
from instruments.types import DataKey, MeasurementRequest


#: How often Ray may restart a crashed analysis process (and retry its call) before the campaign stops.
ANALYSIS_RESTARTS = 2


def actor_names(config: CampaignConfig) -> list[tuple[str, InstrumentConfig]]:
    """(actor name, its instrument entry): ``name``, or ``name-1`` … ``name-k`` of a ``count: k`` entry."""
    out = []
    for inst in config.instruments:
        for i in range(inst.count):
            out.append((inst.name if inst.count == 1 else f"{inst.name}-{i + 1}", inst))
    return out


def instrument_record(name: str, kind: str, model: Any, data_keys: Mapping[str, DataKey]) -> InstrumentRecord:
    """What an instrument said about itself, as the store keeps it: its planning model by kind name
    (``instruments.protocol.planning_model_kind``; None for a model that has no stored form) and its data keys."""
    model_kind = planning_model_kind(model)
    return InstrumentRecord(
        name=name, kind=kind, model_kind=model_kind,
        model=model.model_dump(mode="json") if model_kind is not None else None,
        data_keys={k: v.model_dump(mode="json") for k, v in data_keys.items()},
    )


class MissingClusterResources(RuntimeError):
    """An instrument needs Ray resources that no node of the cluster offers (its node is not up)."""


def check_cluster_resources(config: CampaignConfig, offered: Mapping[str, float]) -> None:
    """Refuse to start instruments whose ``ray_resources`` the cluster cannot provide: Ray would leave
    their actors pending forever (waiting for a node that offers them) and the campaign would hang.

    Raises:
        MissingClusterResources: naming each instrument, what it needs and what the cluster offers.
    """
    problems = []
    for inst in config.instruments:
        short = {k: v for k, v in inst.ray_resources.items() if offered.get(k, 0.0) < v * inst.count}
        if short:
            problems.append(f"instrument {inst.name!r} needs Ray resources {short} (× {inst.count}), the cluster offers "
                            f"{ {k: offered.get(k, 0.0) for k in short} }")
    if problems:
        raise MissingClusterResources(
            "; ".join(problems) + " — start the instrument's node with `ray start --address <head> --resources "
            "'{\"<name>\": 1}'` and set RAY_ADDRESS, or remove ray_resources to run the instrument here")


class InstrumentNotBack(RuntimeError):
    """A restarted instrument actor did not answer within ``faults.restart_wait_seconds`` (its node is down)."""


class Fleet:
    """The instrument actors (by name) and the analysis actor of one campaign run."""

    def __init__(self, config: CampaignConfig, data_dir: Path, *, in_process: bool = False, inline: bool = False) -> None:
        """``data_dir``: the campaign's own folder (instrument journals go below it); ``in_process``:
        the services in this process instead of actor processes; ``inline`` (with ``in_process``): their
        driver and analysis calls on this event loop, not in worker threads (the fast path)."""
        self.config, self.data_dir, self.in_process, self.inline = config, data_dir, in_process, inline
        self.instruments: dict[str, Any] = {}
        self.kinds: dict[str, str] = {}  # actor name → instrument kind
        self.analysis: Any = None
        self.instrument_models: dict[str, Any] = {}  # actor name → planning_model() (None if it has none)
        self.data_keys: dict[str, dict[str, DataKey]] = {}
        self.busy: dict[str, str] = {}  # actor name → attempt id it is measuring
        self.factories: dict[str, Any] = {}  # actor name → its driver factory (to restart it)
        self.resources: dict[str, dict[str, float] | None] = {}  # actor name → Ray custom resources it needs
        self.restarts: dict[str, int] = {}  # actor name → restarts this run
        self.timed: set[str] = set()  # actors whose driver states a request's expected duration

    # -- life cycle ---------------------------------------------------------------------------------
    def start(self) -> None:
        if not self.in_process:
            wait_for_ray()  # started in the background while the campaign was being set up (agent/runtime.py)
            check_cluster_resources(self.config, ray.cluster_resources())
        for name, inst in actor_names(self.config):
            settings = INSTRUMENT_KINDS[inst.kind].complete(inst.settings, self.config.design_space, self.data_dir / "instruments" / name)
            self.factories[name] = driver_factory(inst.kind, name, settings)
            self.resources[name] = dict(inst.ray_resources) or None  # the node that holds the instrument
            self.instruments[name] = self._instrument(name)
            self.kinds[name] = inst.kind
        factory = analysis_factory(self.config.analysis.kind, self.config.analysis.settings)
        # The analysis holds no state between calls, so Ray may restart its process and retry the call
        # (a crash in native fitting code is not the end of the campaign); instruments are never
        # restarted behind the campaign's back: their outcome must be reconciled.
        self.analysis = (
            LocalHandle(AnalysisService(factory, inline=self.inline)) if self.in_process
            else AnalysisActor.options(num_cpus=0, max_restarts=ANALYSIS_RESTARTS, max_task_retries=ANALYSIS_RESTARTS).remote(factory)
        )

    def _instrument(self, name: str) -> Any:
        """A new actor (or in-process service) for instrument ``name``, on the node that holds it."""
        factory = self.factories[name]
        if self.in_process:
            return LocalHandle(InstrumentService(factory, inline=self.inline))
        return InstrumentActor.options(num_cpus=0, resources=self.resources[name]).remote(factory)

    async def ready(self) -> None:
        """Wait until every actor's process is up, so the loop's clock starts with working parts;
        ask each instrument what it tells planners about itself and which data keys it produces."""
        handles = list(self.instruments.values())
        # Every question at once (each is a read of what the driver says about itself): one wait, not four.
        asked = [(a.health.remote(), a.planning_model.remote(), a.describe.remote(), a.states_duration.remote())
                 for a in handles]
        answers = await asyncio.gather(*(c for calls in asked for c in calls), self.analysis.health.remote())
        per_actor = [answers[4 * i: 4 * i + 4] for i in range(len(handles))]
        self.instrument_models = {name: a[1] for name, a in zip(self.instruments, per_actor)}
        self.data_keys = {name: a[2] for name, a in zip(self.instruments, per_actor)}
        self.timed = {name for name, a in zip(self.instruments, per_actor) if a[3]}

    async def stop(self, success: bool) -> None:
        """Bring every instrument to a safe idle state, then end the actor processes."""
        for actor in self.instruments.values():
            try:
                await asyncio.wait_for(actor.stop.remote(success), timeout=10)
            except Exception:  # noqa: BLE001,S110 — a dead instrument cannot be stopped; the status says why
                pass
            if not self.in_process:
                ray.kill(actor)
        if self.analysis is not None and not self.in_process:
            ray.kill(self.analysis)

    # -- availability ------------------------------------------------------------------------------
    def free(self) -> list[str]:
        """Instruments not measuring now, in campaign-file order."""
        return [name for name in self.instruments if name not in self.busy]

    def take(self, name: str, attempt_id: str) -> None:
        self.busy[name] = attempt_id

    def release(self, name: str) -> None:
        self.busy.pop(name, None)

    async def wait_until_reachable(self, name: str, seconds: float) -> bool:
        """Poll an unreachable (remote) instrument's health until it answers, for up to ``seconds``."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                health = await self.instruments[name].health.remote()
                if health.get("reachable", True):
                    return True
            except Exception:  # noqa: BLE001,S110 — still unreachable; keep waiting
                pass
            await asyncio.sleep(1.0)
        return False

    # -- faults ------------------------------------------------------------------------------------
    async def measure_timeout(self, name: str, request: MeasurementRequest, remaining_wall: float | None) -> float | None:
        """Real seconds to wait for ``request`` on ``name`` (``agent.faults.request_timeout``)."""
        expected = None
        if name in self.timed:
            margin = self.config.faults.timeout_margin_seconds
            try:  # an actor too stuck to say is a hung one: its timeout is then the margin, spent already
                expected = await asyncio.wait_for(self.instruments[name].expected_seconds.remote(request), margin)
            except TimeoutError:
                return margin
        return request_timeout(self.config.faults, expected, remaining_wall)

    async def restart(self, name: str) -> bool:
        """End the actor ``name`` (dead, or hung in its driver) and start a new one from the same
        factory; False, without restarting, once ``faults.max_restarts`` restarts were used this run."""
        if self.restarts.get(name, 0) >= self.config.faults.max_restarts:
            if not self.in_process:
                ray.kill(self.instruments[name], no_restart=True)  # a hung driver stops holding the hardware
            return False
        self.restarts[name] = self.restarts.get(name, 0) + 1
        if not self.in_process:
            ray.kill(self.instruments[name], no_restart=True)
        await self._start_again(name)
        return True

    async def _start_again(self, name: str) -> None:
        """A new actor for ``name`` that answers, within ``faults.restart_wait_seconds``. While the node
        that holds the instrument is down, Ray keeps the new actor pending (no node offers its resources)
        — or, in the seconds before it notices the node is gone, places it there, and it dies with the
        node: then it is made again.

        Raises:
            InstrumentNotBack: no actor answered in time (the last one is ended: it must not start
                measuring later, behind the stopped campaign's back).
        """
        wait = self.config.faults.restart_wait_seconds
        deadline, last_error = time.monotonic() + wait, ""
        while True:
            self.instruments[name] = self._instrument(name)
            try:
                await asyncio.wait_for(self.instruments[name].health.remote(), max(deadline - time.monotonic(), 0.01))
                return
            except ray.exceptions.RayActorError as exc:  # placed on the dying node, or its process died again
                last_error = f"; last error: {first_line(exc)}"
            except TimeoutError:
                pass
            if not self.in_process:
                ray.kill(self.instruments[name], no_restart=True)
            if time.monotonic() >= deadline:
                needs = self.resources.get(name)
                where = f" (it needs a node offering {needs}: is that node up?)" if needs else ""
                raise InstrumentNotBack(f"did not come back within {wait:g} s{where}{last_error}")
            await asyncio.sleep(1.0)

    # -- facts for the store ------------------------------------------------------------------------
    def records(self) -> list[InstrumentRecord]:
        """What each instrument said about itself (planning model, data keys), for the store."""
        return [instrument_record(name, self.kinds[name], model, self.data_keys.get(name, {}))
                for name, model in self.instrument_models.items()]

    def estimates(self) -> dict[str, str]:
        """The estimates the campaign's analysis produces, name → units."""
        analysis = ANALYSIS_KINDS[self.config.analysis.kind]
        return analysis.estimate_units(analysis.settings_model().model_validate(self.config.analysis.settings))
