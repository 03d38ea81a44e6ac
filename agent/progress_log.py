"""Progress as plain log lines, for when stderr is not a terminal (nohup, systemd, CI, a pipe).

A live display redraws one screen in place, which a file cannot hold (a whole run used to leave 55
bytes). Instead: one line per measurement — time, attempt, sample, instrument, the request with its
units, the instrument time it took and the budgets spent, and the targets' state — one per refused
or failed attempt, and one when the campaign stops, with its status and reason. The lines go through
Python ``logging`` (logger ``labpilot.progress``), so an embedding program routes them where it
wants; ``log_to_stderr()`` is the command line's own handler.

The details of each measurement come from the store (the front-ends' source of truth), read only
when the loop's counts say something new ended.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from agent.store import AttemptState, Store, StoreUnavailable

if TYPE_CHECKING:
    from agent.campaign import Progress
    from agent.config import CampaignConfig
    from agent.store import Attempt

LOGGER = logging.getLogger("labpilot.progress")
ENDED = (AttemptState.MEASURED, AttemptState.ANALYSED, AttemptState.REFUSED, AttemptState.FAILED)
VERB = {AttemptState.MEASURED: "measured", AttemptState.ANALYSED: "measured",
        AttemptState.REFUSED: "refused", AttemptState.FAILED: "failed"}


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is when a line is written (a test runner or a daemon may
    swap it after the handler was made), like ``logging.lastResort``."""

    @property  # type: ignore[override]
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, _value: Any) -> None:
        pass


def log_to_stderr(level: int = logging.INFO) -> None:
    """Send labpilot's log lines to stderr, one per record, UTC timestamps (once per process)."""
    logger = logging.getLogger("labpilot")
    if any(isinstance(h, _StderrHandler) for h in logger.handlers):
        return
    handler = _StderrHandler()
    formatter = logging.Formatter("%(asctime)s %(message)s", datefmt="%Y-%m-%dT%H:%M:%SZ")
    formatter.converter = time.gmtime  # type: ignore[assignment]
    handler.setFormatter(formatter)
    logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False  # the command's own handler: not twice if a library configured the root logger


def _number(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def request_summary(params: Mapping[str, Any], units: Mapping[str, str]) -> str:
    """``temperature=330.5 K, time=30.43 min``: the request's values with their units."""
    return ", ".join(f"{k}={_number(v)}{' ' + units[k] if units.get(k) else ''}" for k, v in params.items())


def budget_summary(config: CampaignConfig, p: Progress) -> str:
    """Measurements, instrument and wall time spent, each against its budget when there is one."""
    b = config.budgets

    def spent(label: str, used: float, limit: float | None, unit: str, fmt: str) -> str:
        return f"{label} {used:{fmt}}{'' if limit is None else f'/{limit:,.0f}'}{unit}"

    return ", ".join([
        spent("measurements", p.n_measurements, b.max_measurements, "", "d"),
        spent("instrument", p.instrument_seconds, b.max_instrument_seconds, " s", ",.0f"),
        spent("wall", p.wall_seconds, b.max_wall_seconds, " s", ",.1f"),
    ])


def targets_summary(p: Progress) -> str:
    """``near_optimum=0.41/0.9 not met``, each target's value against its goal."""
    parts = [f"{name}={'—' if r.value is None else f'{r.value:.4g}'}/{r.goal:.4g} {'met' if r.met else 'not met'}"
             for name, r in p.targets.items()]
    return "targets " + ("; ".join(parts) if parts else "none evaluated yet")


class ProgressLog:
    """A ``CampaignRunner`` progress callback that logs each attempt that ended, once, and the stop."""

    def __init__(self, config: CampaignConfig, store: Store | None, campaign_id: str | None,
                 logger: logging.Logger = LOGGER) -> None:
        self.config, self.store, self.campaign_id, self.logger = config, store, campaign_id, logger
        self.units = {p.name: p.units for p in config.design_space.parameters}
        self.last: Progress | None = None
        self._counts: tuple[int, int, int] | None = None
        # On a resume, what ended before was logged by the run that did it.
        self._seen = {a.id for a in self._ended()}

    def _ended(self) -> list[Attempt]:
        if self.store is None or self.campaign_id is None:
            return []
        return self.store.attempts(self.campaign_id, states=ENDED)

    def __call__(self, p: Progress) -> None:
        self.last = p
        counts = (p.n_measurements, p.refused, p.failed)
        if counts == self._counts:
            return  # nothing new ended: no store read
        self._counts = counts
        if self.store is None:
            self.logger.info("%s measurement %d | %s | %s", p.campaign_id, p.n_measurements,
                             budget_summary(self.config, p), targets_summary(p))
            return
        try:
            ended = [a for a in self._ended() if a.id not in self._seen]
        except StoreUnavailable as exc:
            self.logger.warning("%s progress: the store is unavailable (%s)", p.campaign_id, exc)
            self._counts = None  # try again next time
            return
        for a in ended:
            self._seen.add(a.id)
            self.logger.info("%s", self.attempt_line(a, p))

    def attempt_line(self, a: Attempt, p: Progress) -> str:
        request = request_summary(a.params, self.units)
        if a.state in (AttemptState.REFUSED, AttemptState.FAILED):
            return f"{a.id} {VERB[a.state]}: {a.reason or 'no reason recorded'} | request {request}"
        took = "" if a.instrument_seconds is None else f", took {a.instrument_seconds:,.0f} s"
        return (f"{a.id} measured sample={a.sample_id or a.id} instrument={a.instrument}{took} | request {request} "
                f"| {budget_summary(self.config, p)} | {targets_summary(p)}")

    def stopped(self) -> None:
        """One line: how the campaign ended (as the store says) and what it spent."""
        status, reason = "stopped", ""
        if self.store is not None and self.campaign_id is not None:
            with contextlib.suppress(Exception):  # a campaign that never started, an unreachable store
                campaign = self.store.campaign(self.campaign_id)
                status, reason = campaign.status.value, campaign.stop_reason or ""
        tail = "" if self.last is None else f" | {budget_summary(self.config, self.last)} | {targets_summary(self.last)}"
        self.logger.info("%s %s: %s%s", self.campaign_id or "campaign", status, reason, tail)


@contextlib.contextmanager
def logged_progress(config: CampaignConfig, store: Store | None, campaign_id: str | None) -> Iterator[Callable[[Progress], None]]:
    """A progress callback writing log lines; the stop line when the run ends, however it ends."""
    log = ProgressLog(config, store, campaign_id)
    try:
        yield log
    finally:
        log.stopped()


@contextlib.contextmanager
def logged_bench(label: str, total: int) -> Iterator[Callable[[int, int], None]]:
    """``on_done(done, total)`` for a benchmark: a line per finished campaign, with the time so far."""
    started = time.monotonic()
    LOGGER.info("%s: %d campaigns", label, total)

    def on_done(done: int, total: int) -> None:
        LOGGER.info("%s: %d/%d campaigns done, %.0f s", label, done, total, time.monotonic() - started)

    yield on_done
    LOGGER.info("%s: all %d campaigns done in %.0f s", label, total, time.monotonic() - started)
