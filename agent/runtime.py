"""Starting and stopping the local Ray runtime the way labpilot needs it.

Two CPUs by default (the lab PC and CI are 2-core machines); ``RAY_ADDRESS`` connects to an existing
Ray cluster instead. Ray's own log noise stays out of the user's terminal.

A local Ray is a single-node cluster that nobody else should reach: every Ray server (GCS, raylet,
workers, agents) listens on loopback only, no dashboard is started, and Ray's token authentication
(on by default for local clusters since Ray 2.59) is left on. A multi-node cluster is the user's to
secure (README, "Security").
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import ray


@contextlib.contextmanager
def ray_runtime(num_cpus: int = 2) -> Iterator[None]:
    """Initialise Ray for the duration of the block (unless it already is), then shut it down."""
    if ray.is_initialized():
        yield
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Ray warns about /dev/shm size etc. on small machines
        if os.environ.get("RAY_ADDRESS"):
            ray.init(address=os.environ["RAY_ADDRESS"], logging_level="ERROR", log_to_driver=False)
        else:
            reaper = _start_reaper()
            with _loopback_only():
                ray.init(num_cpus=num_cpus, include_dashboard=False, logging_level="ERROR", log_to_driver=False)
    try:
        yield
    finally:
        if not os.environ.get("RAY_ADDRESS"):
            _stop_autoscaler_monitor()
        ray.shutdown()
        if not os.environ.get("RAY_ADDRESS"):
            _stop_reaper(reaper)


def _start_reaper() -> subprocess.Popen[bytes]:
    """The reaper of the processes Ray starts under this one (``agent/reaper.py``): it ends them, and
    what they started, when this process ends — even by SIGKILL, which Ray's agents otherwise outlive."""
    ray_dir = str(Path(ray.__file__).parent)
    return subprocess.Popen([sys.executable, str(Path(__file__).with_name("reaper.py")), str(os.getpid()), ray_dir],
                            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _stop_reaper(reaper: subprocess.Popen[bytes]) -> None:
    """After ``ray.shutdown``: close the reaper's pipe (it ends any Ray process left), wait for it."""
    with contextlib.suppress(OSError):
        reaper.stdin.close()  # type: ignore[union-attr]
    try:
        reaper.wait(timeout=10)
    except subprocess.TimeoutExpired:
        reaper.kill()


def _stop_autoscaler_monitor() -> None:
    """Kill the local node's autoscaler monitor before ``ray.shutdown``.

    ``ray.shutdown`` stops each process it started with SIGTERM and then waits up to 1 s for it; the
    monitor (autoscaling, meaningless on a one-node cluster of our own) never exits on SIGTERM in
    time, so every shutdown waited the full second for it. It holds no state, so it is killed at
    once (Ray offers no public switch to not start it; ``_global_node`` is Ray's own handle on the
    processes of the node ``ray.init`` started)."""
    from ray._private import ray_constants, worker

    node = getattr(worker, "_global_node", None)
    processes = getattr(node, "all_processes", {}) or {}
    for info in processes.get(ray_constants.PROCESS_TYPE_MONITOR, []):
        if info.process.poll() is None:
            info.process.kill()
            info.process.wait(timeout=5)


@contextlib.contextmanager
def _loopback_only() -> Iterator[None]:
    """Start Ray as a loopback-only node.

    Ray binds its servers to the node's IP, and on Linux takes the routable address as the node's IP
    even for ``ray.init()``; its own switch for a single-machine node (loopback IP, servers on
    loopback) is ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0``, which Ray reads when it is imported. So the
    variable is set for the processes Ray starts, and Ray's already-imported constant for this one
    (written by hand: Ray offers no public option for it)."""
    from ray._private import ray_constants

    previous = (os.environ.get(_SINGLE_NODE), ray_constants.ENABLE_RAY_CLUSTER)
    os.environ[_SINGLE_NODE] = "0"
    ray_constants.ENABLE_RAY_CLUSTER = False
    try:
        yield
    finally:
        if previous[0] is None:
            os.environ.pop(_SINGLE_NODE, None)
        else:
            os.environ[_SINGLE_NODE] = previous[0]
        ray_constants.ENABLE_RAY_CLUSTER = previous[1]


_SINGLE_NODE = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"


class LocalHandle:
    """A plain service object called the way a Ray actor handle is: ``await handle.method.remote(...)``.

    For running many small campaigns inside one Ray task (benchmarks): the instrument and analysis
    services then live in the task's process instead of two actor processes each, with the same code.
    """

    def __init__(self, service: Any) -> None:
        self._service = service

    def __getattr__(self, name: str) -> Any:
        method = _LocalMethod(getattr(self._service, name))
        setattr(self, name, method)  # built once per name: the next lookups do not reach __getattr__
        return method


class _LocalMethod:
    """``handle.method.remote(...)`` of a ``LocalHandle``: the service's method, called in this process."""

    __slots__ = ("remote",)

    def __init__(self, method: Any) -> None:
        self.remote = method
