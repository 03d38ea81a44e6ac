"""Figure layout that costs one draw: fixed margins in inches — no ``tight_layout`` or
``bbox_inches="tight"``, each of which draws the whole figure again to measure its text (most of a
report's time went there) — and plain-number log ticks (no mathtext)."""

from __future__ import annotations

import math
from typing import Any

from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter


def fixed_margins(fig: Figure, *, left: float = 0.9, right: float = 0.25, top: float = 0.45, bottom: float = 0.6,
                  hspace: float = 0.12) -> None:
    """Set the subplot area by margins in inches (``hspace``: the gap between stacked panels, as a
    fraction of a panel's height)."""
    width, height = fig.get_size_inches()
    fig.subplots_adjust(left=left / width, right=1 - right / width, top=1 - top / height, bottom=bottom / height,
                        hspace=hspace)


def plain_log_ticks(axis: Any) -> None:
    """Tick labels of a log (or symlog) ``axis`` as plain numbers (``0.02``, ``100``), not mathtext
    (``2×10⁻²``): parsing mathtext the first time costs more than drawing the figure. Within one or
    two decades the 2 and 5 of each decade are labelled too."""
    low, high = sorted(abs(v) for v in axis.get_view_interval())
    decades = math.log10(high / low) if low > 0 else 3.0

    def label(value: float, _position: int) -> str:
        if value == 0:
            return "0"
        mantissa = round(abs(value) / 10 ** math.floor(math.log10(abs(value))), 6)
        return f"{value:g}" if mantissa == 1 or (decades < 2.5 and mantissa in (2, 5)) else ""

    axis.set_major_formatter(FuncFormatter(label))
    axis.set_minor_formatter(FuncFormatter(label))
