"""What the user sees while a campaign runs and when it ends (rich, on stderr)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from rich.console import Console, Group
from rich.markup import escape
from rich.live import Live
from rich.progress import BarColumn, Progress as Bars, TextColumn
from rich.table import Table

from agent.answer import Answer, campaign_answer

if TYPE_CHECKING:  # types only: `status` must not import the loop (and with it Ray and BoTorch)
    from agent.campaign import CampaignResult, Progress
    from agent.config import CampaignConfig
    from agent.store import Store


def _budget_rows(config: CampaignConfig, p: Progress) -> list[tuple[str, float, float, str]]:
    b = config.budgets
    rows = []
    if b.max_measurements is not None:
        rows.append(("measurements", p.n_measurements, b.max_measurements, f"{p.n_measurements}/{b.max_measurements}"))
    if b.max_instrument_seconds is not None:
        rows.append(("instrument s", p.instrument_seconds, b.max_instrument_seconds,
                     f"{p.instrument_seconds:,.0f}/{b.max_instrument_seconds:,.0f}"))
    if b.max_wall_seconds is not None:
        rows.append(("wall s", p.wall_seconds, b.max_wall_seconds, f"{p.wall_seconds:,.1f}/{b.max_wall_seconds:,.0f}"))
    return rows


def render(config: CampaignConfig, p: Progress) -> Group:
    bars = Bars(TextColumn("{task.description:>14}"), BarColumn(), TextColumn("{task.fields[text]}"), expand=False)
    for name, done, total, text in _budget_rows(config, p):
        bars.add_task(name, completed=min(done, total), total=total, text=text)
    targets = Table("target", "value", "goal", "met")
    for name, r in p.targets.items():
        targets.add_row(name, "—" if r.value is None else f"{r.value:.4g}", f"{r.goal:.4g}", "[green]yes[/]" if r.met else "no")
    status = f"{p.campaign_id}: {p.in_flight} measuring, {p.refused} refused, {p.failed} failed"
    return Group(bars, status, targets)


@contextlib.contextmanager
def live_progress(console: Console, config: CampaignConfig, *, enabled: bool = True, store: Store | None = None,
                  campaign_id: str | None = None) -> Iterator[Callable[[Progress], None]]:
    """A callback for ``CampaignRunner``: on a terminal, budgets and targets redrawn live; otherwise
    (nohup, systemd, CI, a pipe) a log line per measurement and one at the stop, with the details
    read from ``store`` (``agent/progress_log.py``)."""
    if not enabled:
        yield lambda _p: None
        return
    if not console.is_terminal:
        from agent.progress_log import log_to_stderr, logged_progress

        log_to_stderr()
        with logged_progress(config, store, campaign_id) as on_progress:
            yield on_progress
        return
    with Live(console=console, refresh_per_second=4, transient=False) as live:
        yield lambda p: live.update(render(config, p))


def print_answer(console: Console, answer: Answer) -> None:
    """The answer first, in words: summary, then warnings and notes (flags explained)."""
    colour = {"answered": "green", "not identified": "yellow", "target unreachable": "yellow"}.get(answer.status, "red")
    lines = answer.lines()
    console.print(f"[bold {colour}]{escape(lines[0])}[/]")
    for line in lines[1:]:
        console.print(escape(line))


def print_result(console: Console, result: CampaignResult) -> None:
    if result.answer is not None:
        print_answer(console, result.answer)
    colour = {"completed": "green", "budget_exhausted": "yellow", "unreachable": "yellow"}.get(result.status, "red")
    console.print(f"[{colour}]{result.status}[/]: {result.stop_reason}")
    console.print(
        f"{result.n_measurements} measurements, {result.instrument_seconds:,.0f} instrument s, "
        f"{result.wall_seconds:.1f} wall s; attempts {result.counts}"
    )


def campaign_summary(store: Store, campaign_id: str, *, with_answer: bool = False) -> dict[str, Any]:
    """The machine-readable state of a campaign, as ``status --json`` prints it (``with_answer``: and
    its answer under ``answer``, as ``status ID`` shows it)."""
    c = store.campaign(campaign_id)
    n, seconds = store.totals(campaign_id)
    evaluations = store.target_evaluations(campaign_id)
    counts: dict[str, int] = {}
    for a in store.attempts(campaign_id):
        counts[a.state.value] = counts.get(a.state.value, 0) + 1
    summary: dict[str, Any] = {"answer": campaign_answer(store, campaign_id).model_dump(mode="json")} if with_answer else {}
    return summary | {
        "campaign_id": c.id,
        "name": c.name,
        "status": c.status.value,
        "stop_reason": c.stop_reason,
        "targets": evaluations[-1].results if evaluations else {},
        "n_measurements": n,
        "instrument_seconds": seconds,
        "wall_seconds": c.wall_seconds,
        "runs": c.runs,
        "attempts": counts,
    }
