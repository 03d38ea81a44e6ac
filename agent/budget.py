"""Requests that fit the instrument budget left: a request's duration, clipped to the time left or refused.

The guard (``agent/guard.py``) asks :func:`fit_to_budget` before the design space and the
instrument's ``check``: the last exposure of a campaign must not overshoot its
``max_instrument_seconds``. A request's duration comes from the instrument kind's planning model
(``instruments/sas.py``, ``instruments/xrd.py``), pessimistically (a configuration change or a slew
is assumed); an instrument without a planning model is not clipped.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from instruments.sas import SASInstrumentModel
from instruments.types import ParamValue
from instruments.xrd import XRDInstrumentModel
from physics.xrd import scan_points

#: The refusal reason's prefix of a request the budget left cannot hold (the loop stops on it).
BUDGET_REFUSAL = "budget:"


@dataclass(frozen=True)
class BudgetFit:
    """``params`` as they fit the time left (clipped or unchanged), or why they cannot (``refusal``)."""

    params: dict[str, ParamValue]
    refusal: str | None = None
    note: str | None = None


def request_seconds(model: Any, params: Mapping[str, ParamValue]) -> float | None:
    """The instrument time (s) ``params`` would take on an instrument with planning ``model``: the
    exposure or the scan, with overheads and a configuration change or slew; None if unknown."""
    try:
        if isinstance(model, SASInstrumentModel):
            return float(params["exposure_seconds"]) + model.overhead_seconds + model.change_seconds  # type: ignore[arg-type]
        if isinstance(model, XRDInstrumentModel):
            start, stop, step, dwell = (float(params[k]) for k in  # type: ignore[arg-type]
                                        ("two_theta_start", "two_theta_stop", "two_theta_step", "dwell_seconds"))
            slew = (model.goniometer_max_deg - model.goniometer_min_deg) / model.motion_deg_per_second
            return model.window_seconds(start, stop, step, dwell, None) + slew
    except (KeyError, TypeError, ValueError):
        return None  # a malformed request: the instrument's own check says why
    return None


def fit_to_budget(model: Any, params: dict[str, ParamValue], left: float | None) -> BudgetFit:
    """``params`` unchanged when they fit ``left`` seconds (None: no budget); else the exposure (SAS)
    or dwell (XRD) shortened to fit; else a refusal. The instrument's check then judges the result
    (a clipped SAS exposure below the configuration's minimum is refused there, with its reason)."""
    seconds = request_seconds(model, params)
    if left is None or seconds is None or seconds <= left:
        return BudgetFit(params)
    excess = seconds - left
    if isinstance(model, SASInstrumentModel):
        exposure = float(params["exposure_seconds"]) - excess  # type: ignore[arg-type]
        if exposure > 0:
            clipped = {**params, "exposure_seconds": round(exposure, 3)}
            return BudgetFit(clipped, note=f"exposure clipped from {params['exposure_seconds']} s to {exposure:.0f} s: "
                                           f"{left:.0f} instrument seconds left")
    elif isinstance(model, XRDInstrumentModel):
        n = len(scan_points(float(params["two_theta_start"]), float(params["two_theta_stop"]),  # type: ignore[arg-type]
                            float(params["two_theta_step"])))  # type: ignore[arg-type]
        dwell = float(params["dwell_seconds"]) - excess / max(n, 1)  # type: ignore[arg-type]
        if dwell > 0:
            clipped = {**params, "dwell_seconds": round(dwell, 4)}
            return BudgetFit(clipped, note=f"dwell clipped from {params['dwell_seconds']} s to {dwell:.3g} s: "
                                           f"{left:.0f} instrument seconds left")
    return BudgetFit(params, refusal=f"{BUDGET_REFUSAL} the request needs ≈ {seconds:.0f} s; {max(left, 0):.0f} instrument seconds left")
