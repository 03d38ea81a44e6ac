"""Starting and stopping the local Ray runtime the way labpilot needs it.

Two CPUs by default (the lab PC and CI are 2-core machines); ``RAY_ADDRESS`` connects to an existing
Ray cluster instead. Ray's own log noise stays out of the user's terminal.

A local Ray is a single-node cluster that nobody else should reach: every Ray server (GCS, raylet,
workers, agents) listens on loopback only, no dashboard is started, and Ray's token authentication
(on by default for local clusters since Ray 2.59) is left on. A multi-node cluster is the user's to
secure (README, "Security").
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import subprocess
import sys
import tempfile
import threading
import uuid
import warnings
from collections.abc import Awaitable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import ray

T = TypeVar("T")


@contextlib.contextmanager
def ray_runtime(num_cpus: int = 2, *, background: bool = False, needed: bool = True) -> Iterator[None]:
    """Initialise Ray for the duration of the block (unless it already is), then shut it down.

    ``background``: start it in a thread and enter the block at once, so that what the caller does
    meanwhile (importing the policy's libraries, building the policy, reading the store — seconds of
    work in this process) overlaps Ray's start-up (seconds spent mostly in Ray's own processes);
    whatever uses Ray first calls ``wait_for_ray()``. ``needed=False``: no Ray at all (a campaign
    whose services all run in this process)."""
    if not needed or ray.is_initialized():
        yield
        return
    global _pending
    starter = _Starter(num_cpus)
    try:
        if background:
            _keep_sigterm_exit()
            _pending = starter
            starter.thread.start()
        else:
            starter.start()
            starter.raise_failure()
            _keep_sigterm_exit()  # ray.init set an equivalent handler; ours also remembers the signal came
        yield
    finally:
        _pending = None
        starter.up.wait()  # a start still running ends first: then Ray is shut down, not left up
        if ray.is_initialized():
            if not os.environ.get("RAY_ADDRESS"):
                _stop_autoscaler_monitor()
            ray.shutdown()
        starter.done.set()
        if background:
            starter.thread.join()
        if starter.reaper is not None:
            _stop_reaper(starter.reaper)


def wait_for_ray() -> None:
    """Block until a Ray started in the background (``ray_runtime(background=True)``) is up; re-raise
    what made its start fail. Returns at once when no start is pending."""
    starter = _pending
    if starter is not None:
        starter.up.wait()
        starter.raise_failure()


class _Starter:
    """One start of Ray, in this thread (``start``) or in ``thread``; a failure is kept for the caller.

    The thread lives until Ray is shut down (``done``): Ray starts its GCS and raylet with the kernel's
    parent-death signal, which Linux sends when the *thread* that started them ends — a thread that
    returned after ``ray.init`` would take the node down with it."""

    def __init__(self, num_cpus: int) -> None:
        self.num_cpus = num_cpus
        self.reaper: subprocess.Popen[bytes] | None = None
        self.failure: BaseException | None = None
        self.up, self.done = threading.Event(), threading.Event()
        self.thread = threading.Thread(target=self._run_until_done, name="labpilot-ray", daemon=True)

    def start(self) -> None:
        try:
            _start_ray(self)
        except BaseException as exc:  # noqa: BLE001 — handed to the thread that waits for Ray
            self.failure = exc
        finally:
            self.up.set()

    def _run_until_done(self) -> None:
        self.start()
        self.done.wait()

    def raise_failure(self) -> None:
        if self.failure is not None:
            raise self.failure


def _start_ray(starter: _Starter) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Ray warns about /dev/shm size etc. on small machines
        if os.environ.get("RAY_ADDRESS"):
            ray.init(address=os.environ["RAY_ADDRESS"], logging_level="ERROR", log_to_driver=False)
        else:
            # A temp folder of this node's own: the reaper finds the node's processes by the files they hold in it.
            temp_dir = str(Path(tempfile.gettempdir()) / "ray" / f"lp-{uuid.uuid4().hex[:10]}")
            starter.reaper = _start_reaper(temp_dir)
            with _loopback_only(), _lean_node(), _quiet_ray_logger():
                ray.init(num_cpus=starter.num_cpus, include_dashboard=False, logging_level="ERROR", log_to_driver=False,
                         _temp_dir=temp_dir)


_pending: _Starter | None = None
"""The Ray start running in the background, if any (``wait_for_ray``)."""


_sigterm_received = threading.Event()


def sigterm_received() -> bool:
    """Whether this process was sent SIGTERM. The ``SystemExit`` it raises may surface in a campaign as
    the ``CancelledError`` of its main task (when the signal lands while another asyncio task runs,
    ``asyncio.run`` cancels the rest on the way out), which alone would read as Ctrl-C."""
    return _sigterm_received.is_set()


def _exit_on_sigterm(signum: int, frame: object) -> None:
    _sigterm_received.set()
    sys.exit(signum)


async def until_sigterm(coroutine: Awaitable[T]) -> T:
    """Await ``coroutine`` (a campaign's run) in the current task; meanwhile SIGTERM cancels this task
    — the campaign records itself interrupted and shuts its services down in its own ``finally`` —
    and once that is done the ending is ``SystemExit`` as before.

    Why not the plain handler: its ``SystemExit`` is raised in whichever asyncio task happens to run;
    raised in another task it leaves ``asyncio.run``, which then cancels every task at once, the
    shutdown's own included, and the ending could go unrecorded (a campaign left ``running``: seen in
    CI). Off the main thread (an application's own loop) signals cannot be handled here: no change."""
    if threading.current_thread() is not threading.main_thread():
        return await coroutine
    loop, task = asyncio.get_running_loop(), asyncio.current_task()
    previous = signal.getsignal(signal.SIGTERM)

    def cancel() -> None:
        _sigterm_received.set()
        if task is not None:
            task.cancel("SIGTERM")

    loop.add_signal_handler(signal.SIGTERM, cancel)
    try:
        return await coroutine
    except asyncio.CancelledError:
        if sigterm_received():
            raise SystemExit(signal.SIGTERM) from None
        raise
    finally:
        loop.remove_signal_handler(signal.SIGTERM)
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _keep_sigterm_exit() -> None:
    """What ``ray.init`` does in the main thread, done here because it runs in another: SIGTERM exits
    through ``sys.exit`` (``finally`` blocks run, Ray is shut down), not by the default action."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _exit_on_sigterm)


@contextlib.contextmanager
def _quiet_ray_logger() -> Iterator[None]:
    """``ray.init`` off the main thread warns that it sets no SIGTERM handler (``_keep_sigterm_exit`` did)."""
    logger = logging.getLogger("ray")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def _start_reaper(temp_dir: str) -> subprocess.Popen[bytes]:
    """The reaper of the Ray node this process starts in ``temp_dir`` (``agent/reaper.py``): when this
    process ends — even by SIGKILL, which Ray's agents otherwise outlive — it ends every process of the node."""
    command = [sys.executable, str(Path(__file__).with_name("reaper.py")), str(os.getpid()), temp_dir]
    return subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


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
def _environment(name: str, value: str) -> Iterator[None]:
    """``name=value`` in this process's environment for the block (the processes started meanwhile
    inherit it), then as it was."""
    previous = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = previous


@contextlib.contextmanager
def _loopback_only() -> Iterator[None]:
    """Start Ray as a loopback-only node.

    Ray binds its servers to the node's IP, and on Linux takes the routable address as the node's IP
    even for ``ray.init()``; its own switch for a single-machine node (loopback IP, servers on
    loopback) is ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0``, which Ray reads when it is imported. So the
    variable is set for the processes Ray starts, and Ray's already-imported constant for this one
    (written by hand: Ray offers no public option for it)."""
    from ray._private import ray_constants

    previous = ray_constants.ENABLE_RAY_CLUSTER
    ray_constants.ENABLE_RAY_CLUSTER = False
    try:
        with _environment(_SINGLE_NODE, "0"):
            yield
    finally:
        ray_constants.ENABLE_RAY_CLUSTER = previous


_SINGLE_NODE = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"


_NOT_STARTED = ("start_api_server", "start_monitor", "start_log_monitor")
"""Processes of a Ray head node that a local campaign does not use, and that ``ray.init`` offers no
switch for: the dashboard's API server (with ``include_dashboard=False`` it still starts one that only
reports usage statistics, and ``ray.init`` waits for it — about a second, most of it on the start-up's
critical path), the autoscaler monitor (nothing to scale on one node of our own) and the log monitor
(it forwards workers' output to the driver, which ``log_to_driver=False`` turns off). About 1.7 s of
CPU at every start on a 2-core machine."""


@contextlib.contextmanager
def _lean_node() -> Iterator[None]:
    """Start a local node without the processes in ``_NOT_STARTED`` (Ray's ``Node`` methods that start
    them do nothing while ``ray.init`` runs; written by hand: Ray offers no public option for it). With
    a Ray whose ``Node`` has other methods, nothing is changed."""
    from ray._private import node

    originals = {name: getattr(node.Node, name, None) for name in _NOT_STARTED}
    if any(fn is None for fn in originals.values()):
        yield
        return
    for name in _NOT_STARTED:
        setattr(node.Node, name, _start_nothing)
    try:
        yield
    finally:
        for name, fn in originals.items():
            setattr(node.Node, name, fn)


def _start_nothing(self: Any, *args: Any, **kwargs: Any) -> None:
    """In place of a ``Node.start_…`` method of ``_NOT_STARTED``."""


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
