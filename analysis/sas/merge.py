"""Merging the SAS exposures of one sample, per configuration, before the fit.

Exposures with the same ``params["configuration"]`` and the same Q grid are combined point by point
by inverse-variance weighting (``merge="inverse_variance"``, the default) or by exposure-time
weighting (``merge="exposure_time"``, exactly "accumulate the counts" when σ² ∝ I/t).
Configurations stay separate blocks, each with its own resolution: a pinhole ``dq`` (1-σ, 1/Å), or
a slit (``dq_slit_length``, ``dq_slit_width``, 1/Å, e.g. a Bonse–Hart USANS; a missing width is 0).
A slit and a pinhole exposure under one configuration name are kept apart (a different resolution
is a different block). Points with a non-finite value, σ ≤ 0, q ≤ 0 or a negative width are dropped
and flagged; points outside ``[q_min, q_max]`` are dropped
silently (a deliberate choice of the campaign, counted). Never raises on data.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from instruments.types import Measurement

MergeMethod = Literal["inverse_variance", "exposure_time"]


@dataclass(frozen=True)
class MergedBlock:
    """All exposures of one configuration on one Q grid, merged point by point (q ascending).

    Shapes: every array is (n,); q, dq in 1/Å, intensity and sigma in 1/cm. ``slit_length`` and
    ``slit_width`` (1/Å) are set for a slit-smeared block (then ``dq`` is 0), else None.
    """

    configuration: str
    q: np.ndarray
    dq: np.ndarray
    intensity: np.ndarray
    sigma: np.ndarray
    n_exposures: int
    exposure_seconds: float
    slit_length: np.ndarray | None = None
    slit_width: np.ndarray | None = None

    @property
    def is_slit(self) -> bool:
        return self.slit_length is not None


@dataclass
class _Accumulator:
    q: np.ndarray
    dq_sum: np.ndarray
    w_sum: np.ndarray  # Σ weights per point
    wi_sum: np.ndarray  # Σ weight·I
    w2v_sum: np.ndarray  # Σ weight²·σ² (exposure-time merge)
    n_valid: np.ndarray
    slit: bool = False
    slit_sum: np.ndarray | None = None  # Σ (slit length, slit width), shape (2, n), of a slit block
    n_exposures: int = 0
    exposure_seconds: float = 0.0


def merge_measurements(
    measurements: Sequence[Measurement],
    q_min: float = 0.0,
    q_max: float | None = None,
    merge: MergeMethod = "inverse_variance",
) -> tuple[list[MergedBlock], list[str], dict[str, int]]:
    """Merge exposures per configuration; returns (blocks, flags, counts).

    ``counts`` has ``n_dropped`` (invalid points) and ``n_outside_q_range``. Never raises on data.
    """
    flags: set[str] = set()
    counts = {"n_dropped": 0, "n_outside_q_range": 0}
    groups: dict[tuple[str, int], _Accumulator] = {}
    grids: dict[str, list[np.ndarray]] = {}
    for m in measurements:
        arrays = _exposure_arrays(m, flags)
        if arrays is None:
            continue
        q, y, dq, s, slit = arrays
        ok = _valid_points(q, y, dq, s, flags)
        if slit is not None:
            ok &= _valid_slit(slit, flags)
        counts["n_dropped"] += int((~ok).sum())
        config = str(m.params.get("configuration", "default"))
        order = np.argsort(np.where(np.isfinite(q), q, np.inf), kind="stable")
        acc = _accumulator_for(grids, groups, config, q[order], slit is not None, flags)
        if slit is not None:
            acc.slit_sum = (acc.slit_sum if acc.slit_sum is not None else 0.0) + np.where(ok[order], slit[:, order], 0.0)
        _add_exposure(acc, ok[order], y[order], dq[order], s[order], _exposure_seconds(m), merge, flags, counts)
    return _merged_blocks(groups, q_min, q_max, merge, counts), sorted(flags), counts


ExposureArrays = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]


def _exposure_arrays(m: Measurement, flags: set[str]) -> ExposureArrays | None:
    """(q, intensity, dq, σ, slit) of one exposure as flat float arrays, or None (flagged) if unusable.

    ``slit``: (2, n) slit length and width (1/Å) of a slit-smeared exposure (``dq`` is then 0), else None.
    """
    is_slit = "dq" not in m.data and ("dq_slit_length" in m.data or "dq_slit_width" in m.data)
    missing = [k for k in ("q", "intensity") if k not in m.data]
    if "dq" not in m.data and not is_slit:
        missing.append("dq")
    if "intensity" not in m.sigma:
        missing.append("sigma.intensity")
    if missing:
        flags.update(f"missing-key:{k}" for k in missing)
        return None
    q = np.asarray(m.data["q"], dtype=float).reshape(-1)
    y = np.asarray(m.data["intensity"], dtype=float).reshape(-1)
    s = np.asarray(m.sigma["intensity"], dtype=float).reshape(-1)
    slit = None
    if is_slit:
        slit = np.stack([_width(m, key, q.size) for key in ("dq_slit_length", "dq_slit_width")])
        dq = np.zeros(q.size)
    else:
        dq = np.asarray(m.data["dq"], dtype=float).reshape(-1)
    if not (q.size == y.size == dq.size == s.size) or q.size == 0 or (slit is not None and slit.shape[1] != q.size):
        flags.add("shape-mismatch")
        return None
    return q, y, dq, s, slit


def _width(m: Measurement, key: str, n: int) -> np.ndarray:
    """A slit width key as (n,) floats: a scalar is broadcast, a missing key is 0 (a (n+1,) array is
    left alone for the shape check to flag)."""
    if key not in m.data:
        return np.zeros(n)
    value = np.asarray(m.data[key], dtype=float).reshape(-1)
    return np.full(n, float(value[0])) if value.size == 1 else value


def _valid_slit(slit: np.ndarray, flags: set[str]) -> np.ndarray:
    """Which points have a usable slit (finite, ≥ 0), shape (n,); flags what is not."""
    finite = np.all(np.isfinite(slit), axis=0)
    if not finite.all():
        flags.add("non-finite-data")
    with np.errstate(invalid="ignore"):
        negative = finite & np.any(slit < 0, axis=0)
    if negative.any():
        flags.add("negative-dq")
    return finite & ~negative


def _valid_points(q: np.ndarray, y: np.ndarray, dq: np.ndarray, s: np.ndarray, flags: set[str]) -> np.ndarray:
    """Which points are usable (finite, σ > 0, q > 0, dq ≥ 0), shape (n,); flags what is not."""
    finite = np.isfinite(q) & np.isfinite(y) & np.isfinite(dq) & np.isfinite(s)
    if not finite.all():
        flags.add("non-finite-data")
    with np.errstate(invalid="ignore"):  # comparisons with NaN are False, which is what we want
        bad_sigma = finite & ~(s > 0)
        bad_q = finite & ~(q > 0)
        bad_dq = finite & (dq < 0)
    if bad_sigma.any():
        flags.add("non-positive-sigma")
    if bad_q.any():
        flags.add("non-positive-q")
    if bad_dq.any():
        flags.add("negative-dq")
    return finite & ~bad_sigma & ~bad_q & ~bad_dq


def _accumulator_for(
    grids: dict[str, list[np.ndarray]],
    groups: dict[tuple[str, int], _Accumulator],
    config: str,
    q_sorted: np.ndarray,
    slit: bool,
    flags: set[str],
) -> _Accumulator:
    """The running sums of ``config`` on this Q grid and resolution kind; a different grid under one
    name is kept apart (flagged), as is a different kind (not flagged: SANS and USANS may share a name)."""
    for i, grid in enumerate(grids.setdefault(config, [])):
        same = grid.shape == q_sorted.shape and np.allclose(grid, q_sorted, rtol=1e-9, atol=0, equal_nan=True)
        if same and groups[(config, i)].slit == slit:
            return groups[(config, i)]
    if any(groups[(config, i)].slit == slit for i in range(len(grids[config]))):
        flags.add(f"q-grid-mismatch:{config}")
    grids[config].append(q_sorted)
    n = q_sorted.size
    acc = _Accumulator(
        q=q_sorted.copy(), dq_sum=np.zeros(n), w_sum=np.zeros(n), wi_sum=np.zeros(n),
        w2v_sum=np.zeros(n), n_valid=np.zeros(n, dtype=int), slit=slit,
    )
    groups[(config, len(grids[config]) - 1)] = acc
    return acc


def _exposure_seconds(m: Measurement) -> float:
    """The exposure time (s) the request asked for, else the one the instrument timed."""
    exposure = m.params.get("exposure_seconds", m.timing.exposure_seconds)
    try:
        exposure = float(exposure)
    except (TypeError, ValueError):
        exposure = float(m.timing.exposure_seconds)
    if not np.isfinite(exposure):
        exposure = float(m.timing.exposure_seconds)
    return exposure


def _add_exposure(
    acc: _Accumulator,
    ok_s: np.ndarray,
    y_sorted: np.ndarray,
    dq_sorted: np.ndarray,
    s_sorted: np.ndarray,
    exposure: float,
    merge: MergeMethod,
    flags: set[str],
    counts: dict[str, int],
) -> None:
    """Add one exposure (arrays in the accumulator's q order) to the running sums."""
    # Invalid points are zeroed (σ set to 1) before any arithmetic, so no NaN/inf propagates.
    y_s = np.where(ok_s, y_sorted, 0.0)
    dq_s = np.where(ok_s, dq_sorted, 0.0)
    s_s = np.where(ok_s, s_sorted, 1.0)
    if merge == "exposure_time":
        if not exposure > 0:
            # No time to weight by: counting this exposure would break the accumulation.
            flags.add("missing-exposure-time")
            counts["n_dropped"] += int(ok_s.sum())
            ok_s = np.zeros_like(ok_s)
        w = np.where(ok_s, exposure, 0.0)
    else:
        w = np.where(ok_s, 1.0 / np.square(s_s), 0.0)
    acc.w_sum += w
    acc.wi_sum += w * y_s
    acc.w2v_sum += w * w * np.square(s_s) * ok_s
    acc.dq_sum += dq_s
    acc.n_valid += ok_s
    acc.n_exposures += 1
    acc.exposure_seconds += max(exposure, 0.0)


def _merged_blocks(
    groups: dict[tuple[str, int], _Accumulator],
    q_min: float,
    q_max: float | None,
    merge: MergeMethod,
    counts: dict[str, int],
) -> list[MergedBlock]:
    """The merged blocks inside [q_min, q_max], in order of first appearance."""
    blocks: list[MergedBlock] = []
    for (config, slot), acc in groups.items():
        keep = acc.n_valid > 0
        in_range = acc.q >= q_min
        if q_max is not None:
            in_range &= acc.q <= q_max
        counts["n_outside_q_range"] += int((keep & ~in_range).sum())
        keep &= in_range
        if not keep.any():
            continue
        w = acc.w_sum[keep]
        intensity = acc.wi_sum[keep] / w
        if merge == "inverse_variance":
            sigma = 1.0 / np.sqrt(w)
        else:
            sigma = np.sqrt(acc.w2v_sum[keep]) / w
        name = config if slot == 0 else f"{config}#{slot}"
        slit = acc.slit_sum[:, keep] / acc.n_valid[keep] if acc.slit and acc.slit_sum is not None else None
        blocks.append(
            MergedBlock(
                configuration=name, q=acc.q[keep], dq=acc.dq_sum[keep] / acc.n_valid[keep],
                intensity=intensity, sigma=sigma, n_exposures=acc.n_exposures,
                exposure_seconds=acc.exposure_seconds,
                slit_length=None if slit is None else slit[0], slit_width=None if slit is None else slit[1],
            )
        )
    return blocks
