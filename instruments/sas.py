"""What a SAS instrument tells a planner about itself: its configurations and how it counts.

A SANS or SAXS facility knows, per configuration, its Q bins and resolution, and — from its flux
calibration, the sample's measured transmission and thickness — how many counts a unit of
absolute intensity gives per second in each bin, and the empty-cell/solvent background that is
subtracted. That is all a measurement planner needs to predict the σ(Q) of an exposure it has not
made yet::

    σ(Q; t)² = (I(Q) + B(Q)) / (k(Q) · t)       k in counts per second per 1/cm, I and B in 1/cm

(Poisson counting of sample plus background; the background itself taken as known). Drivers that
can plan offer ``planning_model()`` returning a :class:`SASInstrumentModel`; this module is the
contract, so planners never import a simulator.

It is also what simulated and real SAS drivers share: the request fields (:data:`REQUEST_FIELDS`)
and the request check (:func:`check_sas_request`) a driver's ``check`` runs against its own model.
"""

from __future__ import annotations

import math

from typing import Literal

import numpy as np
from pydantic import ConfigDict, Field, model_validator

from instruments.protocol import InstrumentLimitError
from instruments.types import FloatArray, MeasurementRequest, Record

REQUEST_FIELDS = ("configuration", "exposure_seconds")
"""A SAS request's params: a configuration name and an exposure time (s)."""


class SASConfigurationModel(Record):
    """One configuration as a planner sees it. Arrays have one entry per Q bin, q ascending."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, frozen=True, arbitrary_types_allowed=True)

    name: str = Field(min_length=1)
    q: FloatArray = Field(description="bin centres, 1/Å")
    dq: FloatArray = Field(description="1-σ Gaussian Q resolution, 1/Å (0 for a slit-smeared configuration)")
    slit_length: FloatArray | None = Field(
        default=None, description="slit half-length per bin, 1/Å, for a slit-smeared (USANS) configuration; None: pinhole")
    slit_width: FloatArray | None = Field(default=None, description="slit half-width per bin, 1/Å (with slit_length)")
    counts_per_second: FloatArray = Field(
        description="k: expected counts per second per 1/cm of dΣ/dΩ (flux × transmission × thickness × "
        "efficiency × solid angle)"
    )
    background: FloatArray = Field(description="B: subtracted empty-cell/solvent background, 1/cm")
    min_exposure_seconds: float = Field(ge=0)
    wavelength_angstrom: float | None = Field(
        default=None, gt=0, description="incident wavelength, Å; None if the instrument did not say"
    )

    @model_validator(mode="after")
    def _shapes(self) -> SASConfigurationModel:
        shapes = {a.shape for a in (self.q, self.dq, self.counts_per_second, self.background)}
        if len(shapes) != 1 or len(next(iter(shapes))) != 1:
            raise ValueError(f"configuration {self.name!r}: q, dq, counts_per_second, background must be 1-D of one length")
        slit = [a for a in (self.slit_length, self.slit_width) if a is not None]
        if slit and (len(slit) != 2 or any(a.shape != self.q.shape for a in slit)):
            raise ValueError(f"configuration {self.name!r}: slit_length and slit_width go together, each of q's length")
        if not np.all(np.isfinite(self.counts_per_second)) or np.any(self.counts_per_second <= 0):
            raise ValueError(f"configuration {self.name!r}: counts_per_second must be finite and positive")
        return self

    @property
    def slit(self) -> tuple[np.ndarray, np.ndarray] | None:
        """(slit half-length, half-width) per bin, 1/Å, of a slit-smeared configuration; None for pinhole."""
        if self.slit_length is None or self.slit_width is None:
            return None
        return self.slit_length, self.slit_width

    def variance_per_second(self, intensity: np.ndarray) -> np.ndarray:
        """σ²·t (1/cm²·s) for a sample of this ``intensity`` (1/cm): divide by t for an exposure of t s."""
        # A model may dip a hair below zero between data; the counts cannot.
        return np.maximum(np.asarray(intensity, dtype=float) + self.background, 1e-12) / self.counts_per_second


class SASInstrumentModel(Record):
    """The instrument's configurations and its time costs."""

    configurations: list[SASConfigurationModel] = Field(min_length=1)
    radiation: Literal["neutron", "xray"] | None = Field(default=None, description="the probe; None if not told")
    change_seconds: float = Field(ge=0, description="time to change configuration, s")
    overhead_seconds: float = Field(ge=0, description="per-exposure overhead (shutters, readout), s")

    def configuration(self, name: str) -> SASConfigurationModel:
        for c in self.configurations:
            if c.name == name:
                return c
        raise KeyError(f"no configuration {name!r}; configurations: {[c.name for c in self.configurations]}")


def check_sas_request(model: SASInstrumentModel, request: MeasurementRequest, *, instrument: str = "") -> None:
    """Raise :class:`InstrumentLimitError` for a request the instrument of ``model`` must not run.

    A request names one of the model's configurations and a finite, positive exposure (s) no
    shorter than the configuration's ``min_exposure_seconds``; it has no other fields.
    ``instrument`` (the driver's name) prefixes each message, as ``"<name>: ..."``.
    """
    prefix = f"{instrument}: " if instrument else ""
    params = request.params
    unknown = sorted(set(params) - set(REQUEST_FIELDS))
    if unknown:
        raise InstrumentLimitError(f"{prefix}unknown request fields {unknown}; known: {list(REQUEST_FIELDS)}")
    configurations = {c.name: c for c in model.configurations}
    valid = list(configurations)
    if "configuration" not in params:
        raise InstrumentLimitError(f"{prefix}request lacks 'configuration'; valid configurations: {valid}")
    configuration = params["configuration"]
    if not isinstance(configuration, str) or configuration not in configurations:
        raise InstrumentLimitError(
            f"{prefix}configuration={configuration!r} is not a configuration of this instrument; "
            f"valid configurations: {valid}"
        )
    if "exposure_seconds" not in params:
        raise InstrumentLimitError(f"{prefix}request lacks 'exposure_seconds'")
    exposure = params["exposure_seconds"]
    if isinstance(exposure, (str, bool)) or not math.isfinite(float(exposure)):
        raise InstrumentLimitError(f"{prefix}exposure_seconds={exposure!r} is not a finite number")
    if float(exposure) <= 0:
        raise InstrumentLimitError(f"{prefix}exposure_seconds={exposure} must be positive")
    minimum = configurations[configuration].min_exposure_seconds
    if float(exposure) < minimum:
        raise InstrumentLimitError(
            f"{prefix}exposure_seconds={exposure} is below configuration {configuration!r}'s minimum ({minimum} s)"
        )
