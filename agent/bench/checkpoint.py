"""A benchmark's finished runs on disk as they finish, so a crash hours into ``labpilot bench`` loses
only the campaigns in flight, and ``--resume`` re-runs only what is missing.

One JSON line per finished run: ``{"key": …, "result": …}``. The key is a digest of the run's
arguments (sample, policy, budget — or system, truth, policy, sample budget), so a changed family,
seed or budget does not match and is run again. A line cut short by a kill is ignored (it is the
run that was being written; it runs again)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any


def run_key(arguments: tuple[Any, ...]) -> str:
    """The run's identity: its arguments' repr (frozen dataclasses, strings and numbers: stable
    across processes), hashed to keep the lines short."""
    return hashlib.sha256(repr(arguments).encode()).hexdigest()[:32]


def _jsonable(value: Any) -> Any:
    """numpy arrays and scalars as lists and numbers (a run's final map holds them)."""
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"a benchmark run's result holds a {type(value).__name__}, which JSON cannot carry")


class RunCheckpoint:
    """The finished runs of one benchmark in ``path``. ``reuse`` false: the file starts empty (a
    fresh benchmark must not mix in a former run's results); true: the runs it holds are kept."""

    def __init__(self, path: Path, *, reuse: bool) -> None:
        self.path = path
        self._finished: dict[str, dict[str, Any]] = self._read() if reuse and path.exists() else {}
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w") as out:  # rewritten whole: drops a line a kill cut short
            for key, result in self._finished.items():
                out.write(json.dumps({"key": key, "result": result}, default=_jsonable) + "\n")

    def _read(self) -> dict[str, dict[str, Any]]:
        finished = {}
        for line in self.path.read_text().splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue  # the line a kill cut short
            finished[row["key"]] = row["result"]
        return finished

    def finished(self, arguments: tuple[Any, ...]) -> dict[str, Any] | None:
        """The stored result of the run with these arguments, if it finished before."""
        return self._finished.get(run_key(arguments))

    def record(self, arguments: tuple[Any, ...], result: dict[str, Any]) -> None:
        """Append one finished run (flushed before the next run is waited for)."""
        key = run_key(arguments)
        self._finished[key] = result
        with self.path.open("a") as out:
            out.write(json.dumps({"key": key, "result": result}, default=_jsonable) + "\n")
