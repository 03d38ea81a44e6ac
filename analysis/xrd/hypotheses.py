"""The planner's contract: the refined phase sets an interpretation reports, and their patterns.

An interpretation's ``details`` carry its top hypotheses as flat ``hyp:<i>:…`` entries (a store
row holds scalars only); ``hypotheses_of`` reads them back, and ``predict_rate`` gives the counts
per second a hypothesis expects anywhere on the goniometer, so a planner can choose the window
where rival sets differ most without refitting anything.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from analysis.xrd.fit import GLOBAL, INSTRUMENT, PER_PHASE, SetFit, SetView, rate_on
from analysis.xrd.settings import XRDPhaseIDSettings

SET_SEPARATOR = "+"
"""Joins the phase names of a set into its label (names sorted)."""


@dataclass(frozen=True)
class PhaseSetHypothesis(SetView):
    """A refined phase set: enough to predict its pattern anywhere on the goniometer.

    Per-phase tuples follow ``phases``; ``refined`` maps each of ``PER_PHASE`` to them."""

    phases: tuple[str, ...]
    probability: float
    scales: tuple[float, ...]
    scale_sigmas: tuple[float, ...]
    refined: dict[str, tuple[float, ...]]
    poles: tuple[tuple[int, int, int], ...]
    common: dict[str, float]
    """The ``GLOBAL`` parameters: zero (deg), displacement (mm), the instrument profile."""
    background: tuple[float, ...]


    @classmethod
    def of(cls, fit: SetFit, probability: float, temperature: float) -> PhaseSetHypothesis:
        return cls(
            phases=fit.phases, probability=probability, scales=tuple(map(float, fit.scales)),
            scale_sigmas=tuple(map(float, fit.scale_sigmas * math.sqrt(temperature))),
            refined={k: tuple(map(float, v)) for k, v in fit.refined.items()}, poles=fit.poles,
            common=dict(fit.common), background=tuple(map(float, fit.background)),
        )

    def to_details(self, i: int) -> dict[str, float | str]:
        out: dict[str, float | str] = {f"hyp:{i}:set": self.label, f"hyp:{i}:p": self.probability}
        out |= {f"hyp:{i}:{k}": self.common[k] for k in GLOBAL}
        for j, name in enumerate(self.phases):
            out |= {f"hyp:{i}:scale:{name}": self.scales[j], f"hyp:{i}:scale_sigma:{name}": self.scale_sigmas[j],
                    f"hyp:{i}:pole:{name}": " ".join(map(str, self.poles[j]))}
            out |= {f"hyp:{i}:{k}:{name}": self.refined[k][j] for k in PER_PHASE}
        out |= {f"hyp:{i}:bg:{k}": c for k, c in enumerate(self.background)}
        return out

    @classmethod
    def from_details(cls, details: Mapping[str, Any], i: int) -> PhaseSetHypothesis | None:
        label = details.get(f"hyp:{i}:set")
        if not isinstance(label, str):
            return None
        phases = tuple(label.split(SET_SEPARATOR))
        k = 0
        while f"hyp:{i}:bg:{k}" in details:
            k += 1
        return cls(
            phases=phases, probability=float(details[f"hyp:{i}:p"]),
            scales=tuple(float(details[f"hyp:{i}:scale:{n}"]) for n in phases),
            scale_sigmas=tuple(float(details[f"hyp:{i}:scale_sigma:{n}"]) for n in phases),
            refined={key: tuple(float(details[f"hyp:{i}:{key}:{n}"]) for n in phases) for key in PER_PHASE},
            poles=tuple(tuple(int(v) for v in str(details[f"hyp:{i}:pole:{n}"]).split()) for n in phases),  # type: ignore[misc]
            common={k: float(details[f"hyp:{i}:{k}"]) for k in GLOBAL},
            background=tuple(float(details[f"hyp:{i}:bg:{j}"]) for j in range(k)),
        )


def hypotheses_of(details: Mapping[str, Any]) -> list[PhaseSetHypothesis]:
    """The hypotheses an interpretation reported, most probable first."""
    out, i = [], 0
    while (h := PhaseSetHypothesis.from_details(details, i)) is not None:
        out.append(h)
        i += 1
    return out


def predict_rate(settings: XRDPhaseIDSettings, hypothesis: PhaseSetHypothesis, two_theta: np.ndarray,
                 scales: Sequence[float] | None = None) -> np.ndarray:
    """Expected counts per second of ``hypothesis`` at ``two_theta`` (degrees, (n,)), (n,);
    ``scales`` override the hypothesis's."""
    library, optics = settings.phase_library(), settings.optics()
    rate = optics.background_rate(two_theta, hypothesis.background)
    for j, (name, s) in enumerate(zip(hypothesis.phases, scales or hypothesis.scales)):
        v = {k: hypothesis.refined[k][j] for k in PER_PHASE}
        rate = rate + s * rate_on(library.phase(name), optics, two_theta, settings.d_min(), v["strain"], v["inverse_size"],
                                  hypothesis.zero, v["microstrain"], hypothesis.poles[j], v["log_r"], hypothesis.displacement,
                                  v["b_iso"], {k: hypothesis.common[k] for k in INSTRUMENT}, v["axial_strain"],
                                  v["axial_inverse_size"])
    return np.maximum(rate, 1e-9)
