"""``labpilot`` with its start-up phases marked: for ``benchmarks/resume_time.py``.

Run as ``python -m benchmarks.resume_phases MARKS_FILE labpilot-args...``: runs ``agent.cli:main`` with
those arguments and appends one JSON line ``{"phase": name, "t": time.monotonic()}`` to MARKS_FILE as
each phase ends (written unbuffered: the process is SIGKILLed). ``time.monotonic`` is the system's
monotonic clock, so the parent compares the marks with the instant it launched the process.

The marks are set by wrapping labpilot's functions when their module is first imported (an import
hook), so no module is imported earlier than labpilot itself would import it. Only this module and
the standard library are loaded before ``agent.cli``.
"""

from __future__ import annotations

import functools
import importlib.abc
import importlib.util
import inspect
import json
import os
import sys
import time
from collections.abc import Callable
from typing import Any

_FD = -1

#: module → [(attribute path, phase marked when it returns)]; a name that is missing is skipped (other versions).
WRAPPED: dict[str, list[tuple[str, str]]] = {
    "agent.cli": [("_open_store", "store opened")],
    "agent.runtime": [("_start_ray", "ray started"), ("ray_runtime", "ray runtime entered")],
    "agent.campaign": [("CampaignRunner.__init__", "runner built (policy)"),
                       ("CampaignRunner._open_campaign", "lease taken"),
                       ("CampaignRunner._reconcile", "reconciled"),
                       ("CampaignRunner._decide", "policy decided"),
                       ("resume_campaign", "resume_campaign returned")],
    "agent.fleet": [("Fleet.start", "actors created"), ("Fleet.ready", "actors ready")],
    "agent.ledger": [("CampaignLedger.load", "ledger loaded")],
    "agent.recorder": [("Recorder.open_run", "run documents opened"), ("Recorder.decision", "decision committed")],
}
IMPORTED = ("agent.campaign", "torch", "botorch", "ray", "sasmodels.core", "pymatgen.core")
"""Modules whose import end is marked too."""


_PROFILE: Any = None
"""With ``RESUME_PROFILE=FILE``: a cProfile of the main thread from ``agent.cli``'s import to the first
decision, written to FILE when the decision is committed (then the process exits at once)."""


def mark(phase: str) -> None:
    os.write(_FD, (json.dumps({"phase": phase, "t": time.monotonic()}) + "\n").encode())
    if phase == "decision committed" and _PROFILE is not None:
        _PROFILE.disable()
        _PROFILE.dump_stats(os.environ["RESUME_PROFILE"])
        os._exit(0)


def _wrap(owner: Any, attr: str, phase: str) -> None:
    fn = inspect.getattr_static(owner, attr)
    if isinstance(fn, staticmethod | classmethod):
        return
    if inspect.iscoroutinefunction(fn):
        async def wrapped_async(*args: Any, **kwargs: Any) -> Any:
            try:
                return await fn(*args, **kwargs)
            finally:
                mark(phase)
        setattr(owner, attr, functools.wraps(fn)(wrapped_async))
    elif hasattr(fn, "__wrapped__") and getattr(fn, "__name__", "") == "ray_runtime":  # a context manager
        manager: Callable[..., Any] = fn

        def entered(*args: Any, **kwargs: Any) -> Any:
            return _MarkEnter(manager(*args, **kwargs), phase)
        setattr(owner, attr, functools.wraps(fn)(entered))
    else:
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            try:
                return fn(*args, **kwargs)
            finally:
                mark(phase)
        setattr(owner, attr, functools.wraps(fn)(wrapped))


class _MarkEnter:
    def __init__(self, inner: Any, phase: str) -> None:
        self.inner, self.phase = inner, phase

    def __enter__(self) -> Any:
        out = self.inner.__enter__()
        mark(self.phase)
        return out

    def __exit__(self, *exc: Any) -> Any:
        return self.inner.__exit__(*exc)


def _patch(module: Any) -> None:
    for path, phase in WRAPPED.get(module.__name__, []):
        *owners, attr = path.split(".")
        owner = module
        for name in owners:
            owner = getattr(owner, name, None)
        if owner is not None and hasattr(owner, attr):
            _wrap(owner, attr, phase)
    if module.__name__ in IMPORTED:
        mark(f"import {module.__name__}")


class _AfterImport(importlib.abc.MetaPathFinder):
    """Runs ``_patch`` on a watched module right after its code has run."""

    def find_spec(self, name: str, path: Any, target: Any = None) -> Any:
        if name not in WRAPPED and name not in IMPORTED:
            return None
        sys.meta_path.remove(self)
        try:
            spec = importlib.util.find_spec(name)
        finally:
            sys.meta_path.insert(0, self)
        if spec is None or spec.loader is None:
            return spec
        execute = spec.loader.exec_module

        def exec_and_patch(module: Any) -> None:
            execute(module)
            _patch(module)
        spec.loader.exec_module = exec_and_patch  # type: ignore[method-assign]
        return spec


def main() -> None:
    global _FD, _PROFILE
    _FD = os.open(sys.argv[1], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    mark("interpreter up")
    sys.meta_path.insert(0, _AfterImport())
    sys.argv = ["labpilot", *sys.argv[2:]]
    if os.environ.get("RESUME_PROFILE"):
        import cProfile

        _PROFILE = cProfile.Profile()
        _PROFILE.enable()
    import agent.cli as cli

    mark("cli imported")
    (getattr(cli, "main", None) or cli.app)()


if __name__ == "__main__":
    main()
