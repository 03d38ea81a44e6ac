"""What ``labpilot status`` prints: the campaigns table and one campaign's attempts.

Ids are what the user copies into ``resume``, ``report`` and ``export``, so they are never cut: their
column does not wrap and is as wide as the longest id. Each record is one line of short cells (state,
counts, seconds) and, under its id, an indented line of the long text (targets and stop reason; the
instrument and request), which wraps inside the id's column: on an 80-column terminal nothing is cut.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

if TYPE_CHECKING:
    from agent.store import Attempt, Store


def _table(console: Console, title: str | None, id_header: str, ids: list[str],
           short: list[tuple[str, list[str]]]) -> Table:
    """A table whose first column holds whole ids; ``short``: (header, cells) of the other columns.

    The id column is as wide as the terminal leaves it (up to 64; never narrower than the longest id), so the
    detail lines under the ids wrap there instead of widening it and pushing the short columns out."""
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, padding=(0, 1), pad_edge=False, show_edge=False)
    widths = [max([len(header), *(len(c) for c in cells)]) for header, cells in short]
    left = console.width - sum(widths) - 3 * len(widths)  # each further column: 2 of padding, 1 divider
    width = max([len(id_header), *(len(i) for i in ids), min(left, 64)])  # wide terminals: no gulf
    table.add_column(id_header, no_wrap=True, min_width=width, max_width=width)
    for (header, _), w in zip(short, widths, strict=True):
        table.add_column(header, justify="right", no_wrap=True, min_width=w)
    return table


def _detail(text: str) -> Text:
    """The second line of a record: indented, wrapping inside the id column."""
    return Text("  " + text, style="dim", no_wrap=False, overflow="fold")


def print_campaigns(console: Console, rows: list[dict[str, Any]]) -> None:
    """One record per campaign summary (``agent.progress.campaign_summary``)."""
    table = _table(console, None, "campaign", [r["campaign_id"] for r in rows], [("status", [r["status"] for r in rows])])
    for r in rows:
        table.add_row(r["campaign_id"], r["status"])
        targets = ", ".join(f"{k} {'✓' if v['met'] else '✗'}" for k, v in r["targets"].items())
        parts = [f"{r['n_measurements']} measured, {r['instrument_seconds']:,.0f} instrument s",
                 f"targets: {targets}" if targets else "", r["stop_reason"] or ""]
        table.add_row(_detail("; ".join(part for part in parts if part)))
    console.print(table)


def request_summary(params: dict[str, Any]) -> str:
    """``name=value`` pairs of an attempt's request, floats to 4 significant digits."""
    return ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items())


def attempt_rows(store: Store, campaign_id: str) -> list[dict[str, Any]]:
    """Every attempt of the campaign in order, as ``status ID --json`` prints them (``attempt_list``)."""
    return [_attempt_row(a) for a in store.attempts(campaign_id)]


def _attempt_row(a: Attempt) -> dict[str, Any]:
    return {
        "attempt_id": a.id,
        "state": a.state.value,
        "instrument": a.instrument,
        "sample_id": a.sample_id,
        "params": a.params,
        "instrument_seconds": a.instrument_seconds,
    }


def print_attempts(console: Console, rows: list[dict[str, Any]]) -> None:
    """The attempts of one campaign: the ids ``export`` takes, what each asked for and what it cost."""
    states = [r["state"] for r in rows]
    seconds = ["" if r["instrument_seconds"] is None else f"{r['instrument_seconds']:,.0f}" for r in rows]
    table = _table(console, "attempts", "attempt", [r["attempt_id"] for r in rows], [("state", states), ("instr. s", seconds)])
    for r, state, time in zip(rows, states, seconds, strict=True):
        table.add_row(r["attempt_id"], state, time)
        where = " ".join(part for part in (r["instrument"], f"sample {r['sample_id']}" if r["sample_id"] else None) if part)
        table.add_row(_detail(f"{where}: {request_summary(r['params'])}" if where else request_summary(r["params"])))
    console.print(table)
