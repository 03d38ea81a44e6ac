"""Plain-text formatting shared by the report's figures and page: numbers, durations, units, params.

Nothing here knows HTML (the page escapes what it writes) or matplotlib.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from policies.space import DesignSpace


def is_number(value: Any) -> bool:
    """Whether ``value`` is a finite int or float (``bool`` is not a number here)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(float(value))


def float_or_nan(value: Any) -> float:
    """``value`` as a float, NaN when it is not a finite number (NaN draws nothing in a plot)."""
    return float(value) if is_number(value) else math.nan


def in_units(units: str) -> str:
    """`` (units)`` to append to a label; empty for dimensionless quantities."""
    return f" ({units})" if units else ""


def time_unit(max_seconds: float) -> tuple[float, str]:
    """(seconds per unit, unit name) that keeps a duration of up to ``max_seconds`` readable."""
    if max_seconds >= 3 * 3600:
        return 3600.0, "h"
    if max_seconds >= 3 * 60:
        return 60.0, "min"
    return 1.0, "s"


def duration(seconds: float) -> str:
    """A duration in seconds, with minutes or hours in brackets when it is long."""
    scale, unit = time_unit(seconds)
    if unit == "s":
        return f"{seconds:.3g} s"
    return f"{seconds:,.0f} s" + (f" ({seconds / scale:.3g} {unit})" if unit != "s" else "")


def when(moment: datetime | None) -> str:
    """An ISO timestamp to the second, or a dash when the moment has not happened."""
    return "—" if moment is None else moment.isoformat(timespec="seconds")


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (its type name when the message is empty)."""
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def fmt(value: Any) -> str:
    """A free-form reason value, compactly: 4 significant digits, yes/no, nested lists and dicts."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(fmt(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{k}: {fmt(v)}" for k, v in value.items()) + "}"
    return str(value)


def format_params(params: Mapping[str, Any], space: DesignSpace | None) -> str:
    """``name=value units, …`` with the units the design space gives each parameter."""
    parts = []
    for name, value in params.items():
        units = ""
        if space is not None and name in space.names:
            units = space.parameter(name).units
        parts.append(f"{name}={fmt(value)}" + (f" {units}" if units else ""))
    return ", ".join(parts)
