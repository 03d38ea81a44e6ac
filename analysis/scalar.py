"""Scalar property analysis: one measured number (± σ) per sample becomes one estimate.

Repeated measurements of one sample are combined by inverse-variance weighting. Non-finite data,
non-finite or negative σ produce a flagged, invalid interpretation (kept, never trained on).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from pydantic import Field

from analysis.protocol import Estimate, Interpretation
from instruments.types import Measurement, Record


class ScalarSettings(Record):
    key: str = Field(default="yield", min_length=1, description="data key holding the measured property")
    estimate: str | None = Field(default=None, description="name of the estimate; defaults to `key`")
    units: str = ""

    def estimate_units(self) -> dict[str, str]:
        """The one estimate's name → its units."""
        return {self.estimate or self.key: self.units}


class ScalarAnalysis:
    name = "scalar"

    def __init__(self, settings: ScalarSettings) -> None:
        self.settings = settings

    def interpret(self, measurements: Sequence[Measurement]) -> Interpretation:
        if not measurements:
            raise ValueError("interpret() needs at least one measurement")
        key = self.settings.key
        estimate_name = self.settings.estimate or key
        newest = measurements[-1]
        flags: list[str] = []
        values, sigmas = [], []
        for m in measurements:
            if key not in m.data:
                flags.append(f"missing-key:{key}")
                continue
            value = m.data[key].reshape(-1)
            sigma = m.sigma[key].reshape(-1) if key in m.sigma else np.array([np.nan])
            if value.size != 1:
                flags.append(f"not-scalar:{key}")
                continue
            if not np.all(np.isfinite(value)):
                flags.append("non-finite-data")
                continue
            if key in m.sigma and not np.all(np.isfinite(sigma)):
                flags.append("non-finite-sigma")
                continue
            if np.any(sigma < 0):
                flags.append("negative-variance")
                continue
            values.append(float(value[0]))
            sigmas.append(float(sigma[0]) if key in m.sigma else None)
        flags = sorted(set(flags))
        if not values:
            est = Estimate(value=None, sigma=None, units=self.settings.units)
            return Interpretation(
                attempt_id=newest.attempt_id,
                sample_id=newest.sample_id or newest.attempt_id,
                analysis=self.name,
                estimates={estimate_name: est},
                flags=flags or ["no-data"],
                valid=False,
            )
        if all(s is not None and s > 0 for s in sigmas):
            w = 1.0 / np.square(np.array(sigmas, dtype=float))
            value = float(np.sum(w * np.array(values)) / np.sum(w))
            sigma: float | None = float(np.sqrt(1.0 / np.sum(w)))
        else:
            # σ unknown (or zero) for some: plain mean, σ from scatter when there is any.
            value = float(np.mean(values))
            sigma = float(np.std(values, ddof=1) / np.sqrt(len(values))) if len(values) > 1 else (
                sigmas[0] if len(sigmas) == 1 else None
            )
        return Interpretation(
            attempt_id=newest.attempt_id,
            sample_id=newest.sample_id or newest.attempt_id,
            analysis=self.name,
            estimates={estimate_name: Estimate(value=value, sigma=sigma, units=self.settings.units)},
            flags=flags,
            # Some measurements of the sample were bad but others good: usable, and flagged.
            valid=True,
            details={"n_measurements": len(values)},
        )
