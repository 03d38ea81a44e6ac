"""Starting and stopping the local Ray runtime the way labpilot needs it.

Two CPUs by default (the lab PC and CI are 2-core machines); ``RAY_ADDRESS`` connects to an existing
Ray cluster instead. Ray's own log noise stays out of the user's terminal.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Iterator
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
            ray.init(num_cpus=num_cpus, include_dashboard=False, logging_level="ERROR", log_to_driver=False)
    try:
        yield
    finally:
        ray.shutdown()


class LocalHandle:
    """A plain service object called the way a Ray actor handle is: ``await handle.method.remote(...)``.

    For running many small campaigns inside one Ray task (benchmarks): the instrument and analysis
    services then live in the task's process instead of two actor processes each, with the same code.
    """

    def __init__(self, service: Any) -> None:
        self._service = service

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._service, name)
        return type("_Method", (), {"remote": staticmethod(method)})()
