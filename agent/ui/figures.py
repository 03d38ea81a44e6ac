"""The live page's figures, drawn by the report's own figure code (``agent/report``) from the store:
the sample's data with the best answer's fit (SAS, XRD), or the measured points over the design space,
and target progress. PNG bytes, cached per campaign and change mark: a figure is drawn once per change,
however many pages watch."""

from __future__ import annotations

import io
import threading
from collections import OrderedDict
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from agent.report.data import attempt_points, load_report_data
from agent.report.figures import design_space_figure, targets_figure
from agent.report.formatting import first_line, in_units
from agent.report.sample import sample_figures
from agent.store import Store

DPI = 90
CACHED_CAMPAIGNS = 8


def _png(fig: Figure) -> bytes:
    FigureCanvasAgg(fig)  # the Agg canvas explicitly: no pyplot, no backend selection (as the report)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, bbox_inches="tight", metadata={"Software": None})
    fig.clear()
    return buffer.getvalue()


def draw_figures(store: Store, campaign_id: str) -> list[tuple[str, bytes]]:
    """(alt text, PNG) of each figure: the data with fits, then target progress. A figure that cannot
    be drawn is left out (the page says nothing is drawn yet rather than failing)."""
    d = load_report_data(store, campaign_id)
    out: list[tuple[str, bytes]] = []
    figures: list[tuple[Figure, str]] = []
    if d.config is not None and d.config.sample is not None:
        figures += _safely(lambda: sample_figures(d.config, d.measurements, list(d.interpretations.values())))
    elif d.config is not None and d.space is not None and d.space.numeric_names and d.attempts:
        names = d.space.numeric_names[:2]
        label = f"{d.config.objective.estimate}{in_units(d.objective_units())}"
        figures += _safely(lambda: [(design_space_figure(d.space, names, attempt_points(d), label),
                                     f"measured points over {', '.join(names)}")])
    if d.evaluations:
        names = list(dict.fromkeys(n for e in d.evaluations for n in e.results))
        first_met = next((e for e in d.evaluations if e.all_met), None)
        figures += _safely(lambda: [(targets_figure(names, d.evaluations, first_met), "targets against instrument time")])
    for fig, alt in figures:
        out.append((alt, _png(fig)))
    return out


def _safely(draw: Any) -> list[tuple[Figure, str]]:
    try:
        return list(draw())
    except Exception as exc:  # noqa: BLE001 — one figure must not take the page down
        return [(_message_figure(f"not drawn: {type(exc).__name__}: {first_line(exc)}"), "figure not drawn")]


def _message_figure(text: str) -> Figure:
    fig = Figure(figsize=(6, 1))
    fig.text(0.01, 0.5, text, va="center", fontsize=9)
    return fig


class FigureCache:
    """The figures of the newest change mark of each recently viewed campaign (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: OrderedDict[str, tuple[Any, list[tuple[str, bytes]]]] = OrderedDict()

    def figures(self, store: Store, campaign_id: str, mark: Any) -> list[tuple[str, bytes]]:
        with self._lock:
            entry = self._entries.get(campaign_id)
            if entry is not None and entry[0] == mark:
                return entry[1]
        drawn = draw_figures(store, campaign_id)
        with self._lock:
            self._entries[campaign_id] = (mark, drawn)
            self._entries.move_to_end(campaign_id)
            while len(self._entries) > CACHED_CAMPAIGNS:
                self._entries.popitem(last=False)
        return drawn
