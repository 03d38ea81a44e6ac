"""The ``replay`` instrument: a recorded experiment served from files, so planners run on real data.

- **Powder (``xrd``)**: one counted pattern (any powder file ``instruments.files`` reads, with counts).
  A request is a diffractometer window (``instruments.xrd``); the driver answers with the recorded
  steps nearest the requested ones (their real 2θ) and a dwell emulated by *binomial thinning*: a
  step recorded with n counts in t₀ s, asked for t s, gives Binomial(n, t/t₀) — exactly the Poisson
  counts of a t-second dwell. Successive requests draw from what is left (n − drawn, t₀ − t), so two
  windows over the same steps are independent, as two real scans are; a window asking more dwell
  than remains at a step, or reaching outside the recorded range, is refused in ``check``.
- **SAS (``sas``)**: per (sample, configuration) a recorded block and its exposure. A request names
  a configuration and an exposure (``instruments.sas``); a shorter exposure is the Gaussian analogue
  of thinning (the recorded I ± σ split into independent parts of the requested exposure), so again
  what is served never sums to more than was recorded.

Noise is seeded per attempt (``attempt_seed``), so one attempt always draws the same counts; each
served request is logged (``journal_dir``) and a restarted driver serves the log again, which
rebuilds exactly what is left of the recording and what ``recover`` returns. The planning models
are built from the recording alone: the pattern's range, step and wavelength; per SAS configuration
its q, resolution and k(Q) = I / (σ² t₀) counts per second per 1/cm (background taken as 0).
File names may be paths or ``package:relative/path`` inside an installed package
(``sasdata:example_data/1d_data/ISIS_Polymer_Blend_TK49.xml``).
"""

from __future__ import annotations

import importlib.resources
import os
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from instruments.noise import attempt_seed
from instruments.types import DataKey, Measurement, MeasurementRequest, Record

ReplayKind = Literal["xrd", "sas"]


def resolve_file(name: str) -> Path:
    """A path, or ``package:relative/path`` inside an installed package (not a Windows drive letter)."""
    package, sep, rest = name.partition(":")
    if sep and len(package) > 1 and package.isidentifier():
        return Path(str(importlib.resources.files(package).joinpath(rest)))
    return Path(name)


def absolute_files(settings: dict[str, Any]) -> dict[str, Any]:
    """``settings`` (a replay settings mapping) with relative file paths made absolute (package paths kept)."""

    def absolute(name: Any) -> Any:
        if not isinstance(name, str) or resolve_file(name) != Path(name):
            return name
        return str(Path(name).absolute())

    out = dict(settings)
    if isinstance(out.get("xrd"), dict):
        out["xrd"] = {**out["xrd"], "file": absolute(out["xrd"].get("file"))}
    if isinstance(out.get("sas"), dict) and isinstance(out["sas"].get("recordings"), list):
        recordings = [{**r, "file": absolute(r.get("file"))} if isinstance(r, dict) else r for r in out["sas"]["recordings"]]
        out["sas"] = {**out["sas"], "recordings": recordings}
    return out


class ReplayXRD(Record):
    """A recorded powder pattern and the diffractometer facts a planner needs."""

    file: str = Field(min_length=1, description="a counted powder pattern (.xy/.xye/.dat/GSAS/.xrdml); path or package:path")
    wavelength: str | float | None = Field(default=None, description="'CuKa1', 'CuKa' or Å; default: the file's")
    recorded_dwell_seconds: float | None = Field(default=None, gt=0, description="dwell per recorded step, s; default: the file's")
    caglioti_u: float = Field(default=0.010, description="Caglioti U of the recording instrument, deg²")
    caglioti_v: float = Field(default=-0.003, description="deg²")
    caglioti_w: float = Field(default=0.004, ge=0, description="deg²")
    goniometer_radius_mm: float = Field(default=240.0, gt=0)
    setup_seconds: float = Field(default=15.0, ge=0, description="time charged per window, s")
    motion_deg_per_second: float = Field(default=5.0, gt=0)
    step_overhead_seconds: float = Field(default=0.0, ge=0)
    max_points: int = Field(default=20000, ge=2)

    @model_validator(mode="after")
    def _readable(self) -> ReplayXRD:
        # The campaign is checked before anything starts: the file must read as a counted pattern now.
        from instruments.files.replay_xrd import load_pattern

        load_pattern(self)
        return self


class ReplayRecording(Record):
    """One recorded SAS block: which sample and configuration it answers, and its exposure."""

    configuration: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.+-]+$", description="what a request names")
    file: str = Field(min_length=1, description="a SAS file (canSAS XML, NXcanSAS, ABS, …); path or package:path")
    block: str | None = Field(default=None, description="the file's block (its configuration name) for a multi-block file")
    sample: str | None = Field(default=None, description="the sample id it answers; None: any sample")
    exposure_seconds: float = Field(gt=0, description="the recorded exposure, s")
    q_units: str | None = Field(default=None, description="for files that do not say: '1/A' or '1/nm'")

    @model_validator(mode="after")
    def _readable(self) -> ReplayRecording:
        from instruments.files.replay_sas import load_recording

        load_recording(self)  # the file, its block and its σ column are checked before anything starts
        return self


class ReplaySAS(Record):
    recordings: list[ReplayRecording] = Field(min_length=1)
    radiation: Literal["neutron", "xray"] | None = None
    change_seconds: float = Field(default=60.0, ge=0, description="time to change configuration, s")
    overhead_seconds: float = Field(default=10.0, ge=0, description="per exposure, s")
    min_exposure_fraction: float = Field(default=0.01, gt=0, le=1, description="shortest exposure, × recorded")

    @model_validator(mode="after")
    def _unique(self) -> ReplaySAS:
        keys = [(r.sample, r.configuration) for r in self.recordings]
        if len(set(keys)) != len(keys):
            raise ValueError(f"recordings: a (sample, configuration) is listed twice: {keys}")
        return self


class ReplaySettings(Record):
    """Settings of the ``replay`` instrument (campaign file: ``instruments[].settings``): exactly one of ``xrd``, ``sas``."""

    xrd: ReplayXRD | None = None
    sas: ReplaySAS | None = None
    seed: int = 0
    journal_dir: str | None = Field(
        default=None, description="folder of the served-request log (default: the campaign's data folder); without "
        "it a restarted driver would serve the recording's counts again")

    @model_validator(mode="after")
    def _one(self) -> ReplaySettings:
        if (self.xrd is None) == (self.sas is None):
            raise ValueError("give exactly one of 'xrd' (a powder pattern) or 'sas' (recorded SAS blocks)")
        return self

    @property
    def kind(self) -> ReplayKind:
        return "xrd" if self.xrd is not None else "sas"


class ReplayDriver:
    """The ``replay`` instrument's driver (``Driver`` and ``PlanningModelDriver``); plain class, Ray wraps it."""

    def __init__(self, name: str, settings: ReplaySettings) -> None:
        from instruments.files.replay_sas import SASReplay
        from instruments.files.replay_xrd import PatternReplay

        self.name = name
        self.settings = settings
        self.stopped: bool | None = None
        if settings.xrd is not None:
            self._impl: PatternReplay | SASReplay = PatternReplay(name, settings.xrd, settings.seed)
        else:
            self._impl = SASReplay(name, settings.sas, settings.seed)  # type: ignore[arg-type]
        self._served: dict[str, Measurement] = {}
        self._log = Path(settings.journal_dir) / "replay-served.jsonl" if settings.journal_dir else None
        self._replay_log()

    def _replay_log(self) -> None:
        """Serve again, in order, every request logged before a restart: draws are seeded per attempt,
        so this rebuilds exactly what is left of the recording (and what ``recover`` returns)."""
        if self._log is None or not self._log.exists():
            return
        for line in self._log.read_text().splitlines():
            if line.strip():
                request = MeasurementRequest.model_validate_json(line)
                if request.attempt_id not in self._served:
                    self._served[request.attempt_id] = self._impl.measure(request)

    def describe(self) -> dict[str, DataKey]:
        if self.settings.kind == "xrd":
            n = self.settings.xrd.max_points  # type: ignore[union-attr]
            return {"two_theta": DataKey(dtype="array", shape=[n], units="deg", description="recorded 2θ of each step"),
                    "counts": DataKey(dtype="array", shape=[n], units="counts", description="thinned recorded counts")}
        n = max(c.q.size for c in self._impl.model.configurations)  # type: ignore[union-attr]
        return {"q": DataKey(dtype="array", shape=[n], units="1/angstrom"),
                "intensity": DataKey(dtype="array", shape=[n], units="1/cm")}

    def planning_model(self) -> Any:
        return self._impl.model

    def check(self, request: MeasurementRequest) -> None:
        self._impl.check(request)

    def measure(self, request: MeasurementRequest) -> Measurement:
        if request.attempt_id in self._served:  # the same attempt twice is not measured twice
            return self._served[request.attempt_id]
        measurement = self._impl.measure(request)
        self._served[request.attempt_id] = measurement
        if self._log is not None:
            self._log.parent.mkdir(parents=True, exist_ok=True)
            with open(self._log, "a") as log:
                log.write(request.model_dump_json() + "\n")
                log.flush()
                os.fsync(log.fileno())
        return measurement

    def recover(self, attempt_id: str) -> Measurement | None:
        """The measurement served for ``attempt_id`` (before a restart too, through the log), or None."""
        found = self._served.get(attempt_id)
        return None if found is None else found.model_copy(update={"recovered": True})

    def stop(self, success: bool) -> None:
        self.stopped = success
