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
"""

from __future__ import annotations

import numpy as np
from pydantic import ConfigDict, Field, model_validator

from instruments.types import FloatArray, Record


class SASConfigurationModel(Record):
    """One configuration as a planner sees it. Arrays have one entry per Q bin, q ascending."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, frozen=True, arbitrary_types_allowed=True)

    name: str = Field(min_length=1)
    q: FloatArray = Field(description="bin centres, 1/Å")
    dq: FloatArray = Field(description="1-σ Gaussian Q resolution, 1/Å")
    counts_per_second: FloatArray = Field(
        description="k: expected counts per second per 1/cm of dΣ/dΩ (flux × transmission × thickness × "
        "efficiency × solid angle)"
    )
    background: FloatArray = Field(description="B: subtracted empty-cell/solvent background, 1/cm")
    min_exposure_seconds: float = Field(ge=0)

    @model_validator(mode="after")
    def _shapes(self) -> SASConfigurationModel:
        shapes = {a.shape for a in (self.q, self.dq, self.counts_per_second, self.background)}
        if len(shapes) != 1 or len(next(iter(shapes))) != 1:
            raise ValueError(f"configuration {self.name!r}: q, dq, counts_per_second, background must be 1-D of one length")
        if not np.all(np.isfinite(self.counts_per_second)) or np.any(self.counts_per_second <= 0):
            raise ValueError(f"configuration {self.name!r}: counts_per_second must be finite and positive")
        return self

    def variance_per_second(self, intensity: np.ndarray) -> np.ndarray:
        """σ²·t (1/cm²·s) for a sample of this ``intensity`` (1/cm): divide by t for an exposure of t s."""
        # A model may dip a hair below zero between data; the counts cannot.
        return np.maximum(np.asarray(intensity, dtype=float) + self.background, 1e-12) / self.counts_per_second


class SASInstrumentModel(Record):
    """The instrument's configurations and its time costs."""

    configurations: list[SASConfigurationModel] = Field(min_length=1)
    change_seconds: float = Field(ge=0, description="time to change configuration, s")
    overhead_seconds: float = Field(ge=0, description="per-exposure overhead (shutters, readout), s")

    def configuration(self, name: str) -> SASConfigurationModel:
        for c in self.configurations:
            if c.name == name:
                return c
        raise KeyError(f"no configuration {name!r}; configurations: {[c.name for c in self.configurations]}")
