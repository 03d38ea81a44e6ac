"""Starting and stopping the local Ray runtime the way labpilot needs it.

Two CPUs by default (the lab PC and CI are 2-core machines); ``RAY_ADDRESS`` connects to an existing
Ray cluster instead. Ray's own log noise stays out of the user's terminal.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Iterator

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
