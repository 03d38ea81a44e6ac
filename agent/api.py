"""The Python API: campaigns in scripts and notebooks, and ask/tell for labs that drive their own instruments.

    from labpilot import Campaign

    c = Campaign.from_file("experiments/adaptive_sans.yaml")
    result = c.run(on_progress=print)          # a script, or a Jupyter cell (its event loop is running)
    result.to_pandas()

``run()``/``resume()`` work with or without a running event loop: without one they run the loop with
``asyncio.run``; inside one (Jupyter, an async application) the campaign runs on its own event loop
in a worker thread, and the call waits for it. ``await arun()`` runs it on the caller's loop. Ray is
started for the call and shut down after it, unless it was initialised already (then it is left as
it was). The CLI (``agent/cli.py``) calls the same runner.

Ask/tell (``agent/asktell.py``): ``ask(n)`` → proposals recorded exactly as the loop records them;
``tell(attempt_id, ...)`` → the measurement recorded, analysed, the targets evaluated.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from pydantic import Field

from agent.config import CampaignConfig, load_campaign, parse_campaign
from agent.results import CampaignOutcome, ProgressEvent, TargetState
from agent.store import Attempt, Store, UnknownCampaign
from analysis.protocol import Interpretation
from instruments.types import Measurement, ParamValue, Record

T = TypeVar("T")

#: The store a campaign is looked up in when neither ``db`` nor ``$LABPILOT_DB`` names one (as the CLI).
DEFAULT_DB = "sqlite:///labpilot.db"


class CampaignError(RuntimeError):
    """The campaign cannot do what was asked in its present state (run twice, resume before it ran, …)."""


class Proposal(Record):
    """A point to measure, handed out by ``Campaign.ask``: measure it, then ``tell`` its attempt id."""

    attempt_id: str
    params: dict[str, ParamValue]
    instrument: str = Field(description="the campaign's instrument it was checked against (and is measured as)")
    sample_id: str | None
    reason: dict[str, Any] = Field(description="why the policy proposed it (acquisition value, model state, …)")


class AskTellStatus(Record):
    """Where an ask/tell campaign stands: ``done`` once a stop rule holds (targets met, a budget spent)."""

    campaign_id: str
    status: str = Field(description="new (not in the store yet), running, completed, budget_exhausted, unreachable, failed, interrupted")
    done: bool
    stop_reason: str | None
    targets: dict[str, TargetState]
    n_measurements: int
    instrument_seconds: float
    open_proposals: list[str] = Field(description="attempt ids asked and not yet told")


def call_blocking(make: Callable[[], Awaitable[T]]) -> T:
    """Run the coroutine ``make()`` to its end from synchronous code, whether or not an event loop
    runs in this thread. With one running (Jupyter), on a new loop in a worker thread; Ctrl-C (a
    kernel interrupt) cancels it there — the campaign records ``interrupted`` — and is re-raised."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(_as_coroutine(make))
    box: dict[str, Any] = {}
    started, finished = threading.Event(), threading.Event()

    async def main() -> T:
        box["loop"], box["task"] = asyncio.get_running_loop(), asyncio.current_task()
        started.set()
        return await make()

    def work() -> None:
        try:
            box["result"] = asyncio.run(main())
        except BaseException as exc:  # noqa: BLE001 — handed to the waiting thread, raised there
            box["error"] = exc
        finally:
            started.set()
            finished.set()

    threading.Thread(target=work, name="labpilot-campaign", daemon=True).start()
    try:
        # An Event, not Thread.join: an interrupted join marks the thread stopped while it still runs
        # (Python 3.11), and the campaign's shutdown would not be waited for.
        while not finished.wait(0.2):  # wake up now and then so a KeyboardInterrupt reaches this thread
            pass
    except KeyboardInterrupt:
        started.wait()
        if "loop" in box:
            box["loop"].call_soon_threadsafe(box["task"].cancel)
        finished.wait()
        raise
    if "error" in box:
        raise box["error"]
    return box["result"]  # type: ignore[no-any-return]


async def _as_coroutine(make: Callable[[], Awaitable[T]]) -> T:
    return await make()


class Campaign:
    """One campaign: built from a file or a configuration, or loaded from a store; run, resumed, or
    driven by ask/tell. Its results come from the store."""

    def __init__(self, config: CampaignConfig | Mapping[str, Any], *, db: str | None = None,
                 campaign_id: str | None = None) -> None:
        """``config``: a validated configuration or a campaign document (validated here, all errors at
        once: ``CampaignFileError``); ``db``: the store's SQLAlchemy URL (default ``$LABPILOT_DB``, else
        the configuration's ``storage``); ``campaign_id``: default ``<name>-<random>``."""
        from agent.campaign import new_campaign_id

        self.config = config if isinstance(config, CampaignConfig) else parse_campaign(dict(config), "<configuration>")
        self.db = db or os.environ.get("LABPILOT_DB") or self.config.storage
        self.campaign_id = campaign_id or new_campaign_id(self.config.name)
        self._store: Store | None = None
        self._asktell: Any = None

    @classmethod
    def from_file(cls, path: str | Path, *, db: str | None = None, seed: int | None = None,
                  campaign_id: str | None = None) -> Campaign:
        """A new campaign from a campaign file (``seed`` overrides the file's)."""
        config = load_campaign(path)
        if seed is not None:
            config = config.model_copy(update={"seed": seed})
        return cls(config, db=db, campaign_id=campaign_id)

    @classmethod
    def load(cls, campaign_id: str, *, db: str | None = None, file: str | Path | None = None) -> Campaign:
        """A campaign already in the store (``db``: default ``$LABPILOT_DB``, else ``sqlite:///labpilot.db``).
        Its stored configuration may name only code that is allowed (``agent/trust.py``; ``file``: the
        campaign file, whose own references are then allowed too) — checked before anything is imported."""
        from agent.trust import allowed_patterns, check_references

        url = db or os.environ.get("LABPILOT_DB") or DEFAULT_DB
        store = Store(url)
        stored = store.campaign(campaign_id)  # UnknownCampaign names the id
        allowed = allowed_patterns(Path(file) if file is not None else None)
        source = f"campaign {campaign_id} (stored configuration)"
        check_references(stored.config, allowed, source)
        campaign = cls(parse_campaign(stored.config, source), db=url, campaign_id=campaign_id)
        campaign._store = store
        return campaign

    # -- the store --------------------------------------------------------------------------------
    @property
    def store(self) -> Store:
        if self._store is None:
            self._store = Store(self.db)
        return self._store

    def exists(self) -> bool:
        """Whether the store holds this campaign yet."""
        try:
            self.store.campaign(self.campaign_id)
        except UnknownCampaign:
            return False
        return True

    def result(self) -> CampaignOutcome:
        """The campaign as the store holds it now."""
        return CampaignOutcome.from_store(self.store, self.campaign_id)

    # -- run and resume ----------------------------------------------------------------------------
    def run(self, on_progress: Callable[[ProgressEvent], None] | None = None) -> CampaignOutcome:
        """Run the campaign until its targets are met or a budget runs out; ``on_progress`` gets a
        ``ProgressEvent`` after every turn of the loop (from the worker thread, inside a running loop)."""
        return call_blocking(lambda: self.arun(on_progress))

    async def arun(self, on_progress: Callable[[ProgressEvent], None] | None = None) -> CampaignOutcome:
        """``run()`` on the caller's event loop."""
        if self.exists():
            raise CampaignError(f"campaign {self.campaign_id} is in the store already ({self.db}); resume() it")
        return await self._drive(resume=False, on_progress=on_progress)

    def resume(self, on_progress: Callable[[ProgressEvent], None] | None = None) -> CampaignOutcome:
        """Continue the campaign from what its store holds: nothing lost, nothing measured twice."""
        return call_blocking(lambda: self.aresume(on_progress))

    async def aresume(self, on_progress: Callable[[ProgressEvent], None] | None = None) -> CampaignOutcome:
        """``resume()`` on the caller's event loop."""
        if not self.exists():
            raise CampaignError(f"campaign {self.campaign_id} is not in the store ({self.db}); run() it first")
        return await self._drive(resume=True, on_progress=on_progress)

    async def _drive(self, *, resume: bool, on_progress: Callable[[ProgressEvent], None] | None) -> CampaignOutcome:
        from agent.campaign import CampaignRunner
        from agent.runtime import ray_runtime

        report = None if on_progress is None else (lambda p: on_progress(ProgressEvent.of(p)))
        with ray_runtime(needed=not getattr(self.config, "in_process", False)):  # in-process services need no Ray
            if isinstance(self.config, CampaignConfig):
                runner: Any = CampaignRunner(self.config, self.store, self.campaign_id, on_progress=report)
            else:  # a campaign over samples (agent/sample_campaign.py)
                from agent.sample_campaign import SampleCampaignRunner

                runner = SampleCampaignRunner(self.config, self.store, self.campaign_id, on_progress=report)
            await runner.run(resume=resume)
        return self.result()

    # -- ask / tell --------------------------------------------------------------------------------
    def _runner(self) -> Any:
        from agent.asktell import AskTellRunner

        if self._asktell is None:
            self._asktell = AskTellRunner(self.config, self.store, self.campaign_id, new=not self.exists())
        return self._asktell

    def ask(self, n: int = 1) -> list[Proposal]:
        """``n`` points to measure: proposals still open (asked, not told) first, then new ones decided
        by the campaign's policy and guard (none once a stop rule holds; fewer near a budget's end)."""
        attempts = call_blocking(lambda: self._runner().ask(n))
        return self._proposals(attempts)

    def tell(self, attempt_id: str, measurement: Measurement | None = None, *, data: Mapping[str, Any] | None = None,
             sigma: Mapping[str, Any] | None = None, seconds: float | None = None) -> Interpretation:
        """Record the measurement of a proposal, analyse it, evaluate the targets; returns the interpretation.

        Either a ``Measurement`` record, or ``data`` (arrays by data key), ``sigma`` (1-σ, same units)
        and ``seconds`` (instrument time charged to it, s). An unknown or already-told attempt, or data
        that does not match the proposal, raises ``TellError`` naming the field; nothing is written."""
        from agent.asktell import TellError, measurement_for

        if (measurement is None) == (data is None):
            raise TellError("tell: give a Measurement or data= (with seconds=), not both or neither")
        if measurement is None:
            if seconds is None:
                raise TellError("seconds: the instrument time of the measurement is needed (the budgets count it)")
            measurement = measurement_for(self._attempt_to_tell(attempt_id), data or {}, seconds=seconds, sigma=sigma)
        return call_blocking(lambda: self._runner().tell(attempt_id, measurement))  # type: ignore[no-any-return]

    def fail(self, attempt_id: str, reason: str) -> None:
        """Your instrument could not measure a proposal: it ends ``failed`` with ``reason`` (not re-proposed)."""
        call_blocking(lambda: self._runner().fail(attempt_id, reason))

    def _attempt_to_tell(self, attempt_id: str) -> Attempt:
        from agent.asktell import TellError

        try:
            return self.store.attempt(attempt_id)
        except KeyError:
            raise TellError(f"attempt_id: no attempt {attempt_id!r} in campaign {self.campaign_id}") from None

    def _proposals(self, attempts: list[Attempt]) -> list[Proposal]:
        reasons = _reasons(self.store, self.campaign_id)
        return [Proposal(attempt_id=a.id, params=a.params, instrument=a.instrument or "", sample_id=a.sample_id,
                         reason=reasons.get(a.id, {})) for a in attempts]

    @property
    def done(self) -> bool:
        """True once a stop rule holds: the targets are met, or a budget (or the guard's patience) ran out."""
        return self.status.done

    @property
    def status(self) -> AskTellStatus:
        """Where the campaign stands (read from the store)."""
        if not self.exists():
            return AskTellStatus(campaign_id=self.campaign_id, status="new", done=False, stop_reason=None, targets={},
                                 n_measurements=0, instrument_seconds=0.0, open_proposals=[])
        from agent.asktell import ENDED, OPEN_PROPOSAL_STATES

        outcome = self.result()
        # This object's last ask/tell saw the store as it was then; a loaded campaign not yet asked
        # knows what the store's last target evaluation says.
        stop = self._asktell.stop_rule() if self._asktell is not None and self._asktell.prepared else None
        ended = outcome.status in {s.value for s in ENDED}
        targets_met = self.config.stop_on_targets and outcome.all_met
        return AskTellStatus(
            campaign_id=self.campaign_id, status=outcome.status, done=ended or targets_met or stop is not None,
            stop_reason=outcome.stop_reason or (stop[1] if stop else None), targets=outcome.targets,
            n_measurements=outcome.n_measurements, instrument_seconds=outcome.instrument_seconds,
            open_proposals=[a.attempt_id for a in outcome.attempts if a.state in {s.value for s in OPEN_PROPOSAL_STATES}],
        )


def _reasons(store: Store, campaign_id: str) -> dict[str, dict[str, Any]]:
    """Attempt id → the policy's reason for it (a decision's reasons are in its attempts' order)."""
    reasons_by_decision = {d.id: d.reasons for d in store.decisions(campaign_id)}
    out: dict[str, dict[str, Any]] = {}
    position: dict[int, int] = {}
    for a in store.attempts(campaign_id):  # in seq order: a decision's attempts are consecutive
        if a.decision_id is None:
            continue
        i = position[a.decision_id] = position.get(a.decision_id, -1) + 1
        reasons = reasons_by_decision.get(a.decision_id, [])
        if i < len(reasons):
            out[a.id] = reasons[i]
    return out


__all__ = ["AskTellStatus", "Campaign", "CampaignError", "CampaignOutcome", "DEFAULT_DB", "ProgressEvent", "Proposal",
           "TargetState", "call_blocking"]
