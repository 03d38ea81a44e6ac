"""The driver protocol: what any instrument, real or simulated, must offer.

Safety contract (after bluesky's protocols): ``check`` is called before every ``measure`` and must
raise ``InstrumentLimitError`` for a request the hardware must not execute; ``measure`` may assume
``check`` passed. Drivers are plain classes, testable without Ray; ``instruments.actor`` is the
transport that puts any of them behind a Ray async actor.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from instruments.types import DataKey, Measurement, MeasurementRequest


class InstrumentLimitError(ValueError):
    """A request lies outside what the instrument can or may do; the message names the field."""


class InstrumentNotReady(RuntimeError):
    """The instrument cannot measure *now* (interlock open, beam down, sample changer busy), but the
    request itself is fine: raised by ``check`` or ``measure`` before anything is acquired. The
    campaign pauses and asks again later (as bluesky's suspenders do); nothing is refused or failed."""


@runtime_checkable
class Driver(Protocol):
    """A measurement device."""

    name: str

    def describe(self) -> dict[str, DataKey]:
        """Data keys this driver produces, with dtype, shape and units."""
        ...

    def check(self, request: MeasurementRequest) -> None:
        """Raise ``InstrumentLimitError`` naming the offending field if ``request`` is not allowed."""
        ...

    def measure(self, request: MeasurementRequest) -> Measurement:
        """Acquire data for ``request``. Blocking; may take real time. Raises on instrument failure."""
        ...

    def stop(self, success: bool) -> None:
        """Bring the instrument to a safe idle state; ``success`` tells whether the run ended well."""
        ...


@runtime_checkable
class RecoverableDriver(Driver, Protocol):
    """A driver that keeps its own record of finished attempts (data files, a journal).

    ``recover`` lets a resumed campaign adopt a result measured before a crash instead of measuring
    again: it returns the measurement for ``attempt_id`` if the instrument finished it, else None.
    """

    def recover(self, attempt_id: str) -> Measurement | None: ...


@runtime_checkable
class PlanningModelDriver(Protocol):
    """A driver that can describe itself to a measurement planner (``InstrumentService.planning_model``).

    The model carries no ground truth: what a facility knows about its instrument — a SAS
    instrument's configurations and counting model (``instruments.sas.SASInstrumentModel``), a
    diffractometer's optics and scan costs (``instruments.xrd.XRDInstrumentModel``).
    """

    def planning_model(self) -> Any: ...


def planning_model_kinds() -> dict[str, type]:
    """Kind name → planning-model class: how a model is named where it is stored or sent (the store,
    the ZMQ wire). Imported on use: ``instruments.xrd`` pulls in profile physics a plain client never needs."""
    from instruments.sas import SASInstrumentModel
    from instruments.synthesis import SynthesisModel
    from instruments.xrd import XRDInstrumentModel

    return {"sas": SASInstrumentModel, "xrd": XRDInstrumentModel, "synthesis": SynthesisModel}


def planning_model_kind(model: Any) -> str | None:
    """The kind name of a planning model, or None for one that has no stored/wire form."""
    return next((kind for kind, cls in planning_model_kinds().items() if isinstance(model, cls)), None)


def planning_model_of_kind(kind: str, data: Any) -> Any:
    """A planning model rebuilt from its kind name and data; None for an unknown kind."""
    cls = planning_model_kinds().get(kind)
    return None if cls is None else cls.model_validate(data)


@runtime_checkable
class DurationDriver(Protocol):
    """A driver that can say how long a request should take, in real (wall) seconds: the campaign's
    per-request timeout is that × a factor + a margin (``agent/faults.py``)."""

    def expected_seconds(self, request: MeasurementRequest) -> float: ...


class InstrumentUnreachable(RuntimeError):
    """The instrument did not answer (a remote server gone, a link down): the outcome of the request
    in flight is *unknown* — it may have been measured. The campaign marks the attempt ``unknown``
    and reconciles it (``recover`` by attempt id, else one re-run) when the instrument is back."""
