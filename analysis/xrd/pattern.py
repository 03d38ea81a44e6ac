"""The measured pattern of a sample: every usable window concatenated, and its smoothing.

Windows are concatenated in the order measured (overlaps stay: each step is one observation);
a window with unusable data is skipped and flagged, naming its attempt.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from instruments.types import Measurement


@dataclass
class Pattern:
    """All measured steps of a sample, concatenated: 2θ (deg), counts, dwell per step (s); each (n,)."""

    two_theta: np.ndarray
    counts: np.ndarray
    dwell: np.ndarray

    @property
    def n(self) -> int:
        return int(self.two_theta.size)


def collect(measurements: Sequence[Measurement], dwell_parameter: str) -> tuple[Pattern | None, list[str]]:
    """Concatenate the usable windows; flag (and skip) the others, naming the attempt."""
    xs, ns, ts, flags = [], [], [], []
    for m in measurements:
        problem = _problem(m, dwell_parameter)
        if problem:
            flags.append(f"bad-data:{m.attempt_id}: {problem}")
            continue
        x, n, dwell = m.data["two_theta"], m.data["counts"], m.params[dwell_parameter]
        xs.append(np.asarray(x, float))
        ns.append(np.rint(np.asarray(n, float)))
        ts.append(np.full(x.size, float(dwell)))
    if not xs:
        return None, flags
    return Pattern(np.concatenate(xs), np.concatenate(ns), np.concatenate(ts)), flags


def _problem(m: Measurement, dwell_parameter: str) -> str | None:
    """Why a window cannot be used (None: it can)."""
    x, n = m.data.get("two_theta"), m.data.get("counts")
    dwell = m.params.get(dwell_parameter)
    if x is None or n is None:
        return "lacks two_theta or counts"
    if x.shape != n.shape or x.ndim != 1:
        return "two_theta and counts differ in shape"
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(n))):
        return "non-finite data"
    if np.any(n < 0):
        return "negative counts"
    if isinstance(dwell, (str, bool)) or dwell is None or not (math.isfinite(float(dwell)) and float(dwell) > 0):
        return f"{dwell_parameter}={dwell!r} is not a positive number"
    return None


def smoothed(counts: np.ndarray, width: int = 5) -> np.ndarray:
    """Running mean of ``counts`` (n,) over ``width`` steps, same length (zero-padded ends)."""
    kernel = np.ones(width) / width
    return np.convolve(counts, kernel, mode="same")
