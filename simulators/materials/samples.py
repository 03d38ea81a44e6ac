"""The samples a characterisation simulator has been handed, made by its materials system.

A simulator with a ``materials_system`` measures, for each request, the sample its ``recipe``
makes: the system's ``truth(recipe, sample_key)``, keyed on the request's ``sample_id`` (each
attempt its own sample when there is none). The truth is drawn once per sample and kept, so every
measurement of a sample sees the same sample; a sample id seen before with another recipe is a
mistake of the caller and is refused. Refusals are ``InstrumentLimitError`` naming ``recipe``, raised
from the driver's ``check`` — before anything moves.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

from instruments.protocol import InstrumentLimitError
from instruments.types import MeasurementRequest
from simulators.materials.base import MaterialsSystem, RecipeError, SampleTruth

Prepared = TypeVar("Prepared")


def sample_key(request: MeasurementRequest) -> str:
    """The key a sample's truth is drawn and kept under: its id, else the attempt's."""
    return request.sample_id if request.sample_id is not None else request.attempt_id


class MadeSamples(Generic[Prepared]):
    """Truths of the samples seen so far, and whatever the simulator prepares from each (e.g. a
    smeared I(Q) per configuration), built once per sample by ``prepare(truth)``."""

    def __init__(self, system: MaterialsSystem, instrument: str, prepare: Callable[[SampleTruth], Prepared]) -> None:
        self.system = system
        self.instrument = instrument
        self._prepare = prepare
        self._lock = threading.Lock()
        self._samples: dict[str, tuple[dict[str, object], SampleTruth, Prepared]] = {}

    def check(self, request: MeasurementRequest) -> None:
        """Refuse a request without a recipe, with a recipe the system cannot make, or naming a
        sample made from another recipe (``InstrumentLimitError`` naming ``recipe``)."""
        if request.recipe is None:
            raise InstrumentLimitError(
                f"{self.instrument}: recipe: this simulator measures samples of a materials system and needs the "
                "request's recipe (how the sample was made); the request has none"
            )
        key = sample_key(request)
        with self._lock:
            known = self._samples.get(key)
        if known is not None and known[0] != dict(request.recipe):
            raise InstrumentLimitError(
                f"{self.instrument}: recipe: sample {key!r} was made from {known[0]}, this request says {dict(request.recipe)}"
            )
        try:
            self.system.label(request.recipe)  # parses it: fractions, ranges, process variables
        except RecipeError as exc:
            raise InstrumentLimitError(f"{self.instrument}: {exc}") from exc

    def get(self, request: MeasurementRequest) -> tuple[SampleTruth, Prepared]:
        """The sample's truth and what was prepared from it (made now if it is new); checks first."""
        self.check(request)
        assert request.recipe is not None
        key = sample_key(request)
        with self._lock:
            known = self._samples.get(key)
        if known is None:
            truth = self.system.truth(request.recipe, key)
            known = (dict(request.recipe), truth, self._prepare(truth))
            with self._lock:
                known = self._samples.setdefault(key, known)
        return known[1], known[2]

    def of_request(self, request: MeasurementRequest | None) -> tuple[SampleTruth, Prepared]:
        """(truth, prepared sample) of the sample ``request`` names; a clear error without a request."""
        if request is None:
            raise ValueError(f"{self.instrument}: the samples come from a materials system; name one by its request (recipe)")
        return self.get(request)

    def known(self, key: str) -> tuple[SampleTruth, Prepared] | None:
        """The truth and prepared data of sample ``key`` if it has been made, else None."""
        with self._lock:
            known = self._samples.get(key)
        return None if known is None else (known[1], known[2])
