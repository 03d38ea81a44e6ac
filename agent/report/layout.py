"""Fixed figure margins, in inches: the report's own figures are laid out once, without
``tight_layout`` or ``bbox_inches="tight"``, each of which draws the whole figure again to measure
its text (most of a report's time went there)."""

from __future__ import annotations

from matplotlib.figure import Figure


def fixed_margins(fig: Figure, *, left: float = 0.9, right: float = 0.25, top: float = 0.45, bottom: float = 0.6,
                  hspace: float = 0.12) -> None:
    """Set the subplot area by margins in inches (``hspace``: the gap between stacked panels, as a
    fraction of a panel's height)."""
    width, height = fig.get_size_inches()
    fig.subplots_adjust(left=left / width, right=1 - right / width, top=1 - top / height, bottom=bottom / height,
                        hspace=hspace)
