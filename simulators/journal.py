"""A simulated instrument's own data files: one JSON file per finished attempt, and an append-only
acquisition log with one line per physical measurement (so tests can prove nothing was measured twice).

Real instruments write their data to disk whatever the controller does; that is what lets a
resumed campaign *adopt* a measurement finished just before a crash instead of measuring it again.
Writes are atomic (write to a temporary file, then rename) so a kill never leaves half a record.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from instruments.types import Measurement


class MeasurementJournal:
    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)

    def _path(self, attempt_id: str) -> Path:
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in attempt_id)
        return self.directory / f"{safe}.json"

    def write(self, measurement: Measurement) -> None:
        fd, tmp = tempfile.mkstemp(dir=self.directory, suffix=".tmp")
        with os.fdopen(fd, "w") as f:
            f.write(measurement.model_dump_json())
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self._path(measurement.attempt_id))
        with open(self.directory / "acquisitions.log", "a") as log:
            log.write(measurement.attempt_id + "\n")

    def acquisitions(self) -> list[str]:
        """Attempt ids in the order they were physically measured (repeats included)."""
        path = self.directory / "acquisitions.log"
        return path.read_text().split() if path.exists() else []

    def read(self, attempt_id: str) -> Measurement | None:
        path = self._path(attempt_id)
        if not path.exists():
            return None
        return Measurement.model_validate_json(path.read_text()).model_copy(update={"recovered": True})


class JournalledDriver:
    """What simulated drivers that keep a ``MeasurementJournal`` share: writing each finished
    measurement, ``recover`` from it (``RecoverableDriver``), and ``stop``."""

    _journal: MeasurementJournal | None
    stopped: bool | None = None

    def _journalled(self, measurement: Measurement) -> Measurement:
        if self._journal is not None:
            self._journal.write(measurement)
        return measurement

    def stop(self, success: bool) -> None:
        self.stopped = success

    def recover(self, attempt_id: str) -> Measurement | None:
        return None if self._journal is None else self._journal.read(attempt_id)
