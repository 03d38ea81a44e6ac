"""How errors from other processes are told to users: the first line of what went wrong."""

from __future__ import annotations

import sys


def first_line(exc: BaseException) -> str:
    """The first line of what went wrong, from the remote exception when Ray wrapped one."""
    ray = sys.modules.get("ray")  # not imported here: only a process that imported Ray holds Ray's errors
    wrapped = ray is not None and isinstance(exc, ray.exceptions.RayTaskError)
    cause = getattr(exc, "cause", None) if wrapped else None
    if isinstance(cause, BaseException):
        exc = cause
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
