"""How errors from other processes are told to users: the first line of what went wrong."""

from __future__ import annotations

import ray


def first_line(exc: BaseException) -> str:
    """The first line of what went wrong, from the remote exception when Ray wrapped one."""
    cause = getattr(exc, "cause", None) if isinstance(exc, ray.exceptions.RayTaskError) else None
    if isinstance(cause, BaseException):
        exc = cause
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
