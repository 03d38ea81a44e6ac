"""What the loop knows: history, pending points, measurements per sample, counts — rebuilt from the
store (the truth) when a run starts, then kept in memory so the hot path never reads the store.

The ledger only *remembers*; it writes nothing. ``agent/recorder.py`` writes, and the loop tells the
ledger what was written (``decided``, ``measured``, ``ingest``, ``ended``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from itertools import islice
from typing import Any, TypeVar

from agent.store import Attempt, AttemptState, Store
from agent.store.lifecycle import ANALYSIS_ERROR, OPEN_STATES
from analysis.protocol import Interpretation
from instruments.types import Measurement, ParamValue
from policies.protocol import Observation, PlanningContext, PlanningGoals


T = TypeVar("T")


class Prefix(Sequence[T]):
    """An immutable view of the first ``len`` items of an append-only list, taken in O(1).

    The planning context gave each decision copies of the history and the interpretations: O(k) per
    decision, a drift of the loop's per-measurement cost over a long campaign. The ledger only appends
    to those lists (``load`` and ``replace`` build new ones), so a view of the items there now never
    changes. Slices are lists; equal to any sequence with the same items."""

    __slots__ = ("_items", "_n")

    def __init__(self, items: list[T]) -> None:
        self._items, self._n = items, len(items)

    def __len__(self) -> int:
        return self._n

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return self._items[:self._n][index]
        i = index + self._n if index < 0 else index
        if not 0 <= i < self._n:
            raise IndexError("index out of range")
        return self._items[i]

    def __iter__(self) -> Iterator[T]:
        return islice(self._items, self._n)

    def __reversed__(self) -> Iterator[T]:
        return (self._items[i] for i in range(self._n - 1, -1, -1))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Sequence) and not isinstance(other, str) and list(self) == list(other)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Prefix({list(self)!r})"


class CampaignLedger:
    """The loop's memory of one campaign.

    ``objective``: the estimate an observation of the objective is read from (the campaign's
    ``objective.estimate``); ``sample``: the one sample every attempt measures, or None (every
    attempt is a sample of its own).
    """

    def __init__(self, store: Store, campaign_id: str, *, objective: str, sample: str | None) -> None:
        self.store, self.campaign_id = store, campaign_id
        self.objective, self.sample = objective, sample
        self.history: list[Observation] = []  # valid analysed observations of the objective
        self.interpretations: list[Interpretation] = []
        self._params: dict[str, dict[str, ParamValue]] = {}  # attempt id → params, of every interpretation
        # Decided, not yet analysed or ended (attempt id → params), in decision order: the pending points.
        self.open: dict[str, dict[str, ParamValue]] = {}
        self.samples: dict[str, list[Measurement]] = {}  # sample → its measurements, oldest first (loaded lazily)
        self.analysing: set[str] = set()  # measured, analysis not yet recorded
        self.refused = 0
        self.failed = 0
        self.n_measurements = 0
        self.instrument_seconds = 0.0
        self.next_seq = 0  # the next attempt's sequence number
        self.next_decision = 0  # the next decision's sequence number
        self.failed_analyses: list[Attempt] = []  # analysed attempts whose analysis failed (re-analysed on resume)

    # -- rebuilding -------------------------------------------------------------------------------
    def load(self) -> list[Attempt]:
        """Rebuild everything from the store; returns the open attempts (oldest first) for resume to reconcile."""
        self.n_measurements, self.instrument_seconds = self.store.totals(self.campaign_id)
        self.next_seq, self.next_decision = self.store.next_seq(self.campaign_id)
        attempts = {a.id: a for a in self.store.attempts(self.campaign_id)}
        open_attempts = [a for a in attempts.values() if a.state in OPEN_STATES]
        self.open = {a.id: a.params for a in open_attempts}
        self.refused = sum(a.state == AttemptState.REFUSED for a in attempts.values())
        self.failed = sum(a.state == AttemptState.FAILED for a in attempts.values())
        self.history, self.interpretations = [], []
        for interpretation in self.store.interpretations(self.campaign_id):
            self.ingest(interpretation, attempts[interpretation.attempt_id].params)
        self.failed_analyses = [attempts[i.attempt_id] for i in self.interpretations
                                if any(f.startswith(ANALYSIS_ERROR) for f in i.flags)]
        return open_attempts

    # -- what happened ------------------------------------------------------------------------------
    def decided(self, attempt_id: str, params: dict[str, ParamValue]) -> None:
        """An attempt was dispatched: pending until it is analysed or ends."""
        self.open[attempt_id] = params

    def ended(self, attempt_id: str, state: AttemptState) -> None:
        """An attempt ended without an analysis (refused or failed)."""
        if state == AttemptState.REFUSED:
            self.refused += 1
        elif state == AttemptState.FAILED:
            self.failed += 1
        self.open.pop(attempt_id, None)

    def measured(self, m: Measurement) -> None:
        self.n_measurements += 1
        self.instrument_seconds += m.timing.instrument_seconds
        if m.sample_id is None:
            # A sample of its own (no ``sample`` in the campaign): this is its only measurement, so the
            # analysis needs no store read (which cost a query per measurement on the hot path).
            self.samples[m.attempt_id] = [m]
        elif m.sample_id in self.samples:
            self.samples[m.sample_id].append(m)
        # else: loaded from the store (which now holds m too) when the sample is first needed

    def replace(self, interpretation: Interpretation, params: dict[str, ParamValue]) -> None:
        """A re-analysis replaced the failed interpretation of its attempt: same place in the order,
        and the history rebuilt in that order (as a fresh ``load`` would build it)."""
        previous = self.interpretations
        self.interpretations, self.history = [], []
        for i in previous:
            self.ingest(interpretation if i.attempt_id == interpretation.attempt_id else i, self._params[i.attempt_id])
        self._params[interpretation.attempt_id] = params

    def ingest(self, interpretation: Interpretation, params: dict[str, ParamValue]) -> None:
        """An analysis was recorded: the attempt is no longer pending; a valid objective value is history."""
        self.interpretations.append(interpretation)
        self._params[interpretation.attempt_id] = params
        self.open.pop(interpretation.attempt_id, None)
        if self.sample is None:  # a sample of its own is analysed once: its data need not stay in memory
            self.samples.pop(interpretation.attempt_id, None)
        estimate = interpretation.estimates.get(self.objective)
        if interpretation.valid and estimate is not None and estimate.value is not None:
            self.history.append(Observation(params=params, value=estimate.value, sigma=estimate.sigma,
                                            attempt_id=interpretation.attempt_id))

    # -- what planners see ------------------------------------------------------------------------
    def measurements_of(self, sample: str) -> list[Measurement]:
        """Every measurement of ``sample``, oldest first (read from the store once, then kept)."""
        if sample not in self.samples:
            self.samples[sample] = self.store.measurements(self.campaign_id, sample_id=sample)
        return self.samples[sample]

    def pending(self) -> list[dict[str, ParamValue]]:
        """Params decided and not yet analysed, in decision order."""
        return list(self.open.values())

    def planning_context(
        self, instrument_models: dict[str, object], goals: PlanningGoals, remaining_instrument_seconds: float | None = None,
    ) -> PlanningContext:
        """Everything a policy may look at now (see ``policies.protocol.PlanningContext``)."""
        measurements = list(self.measurements_of(self.sample)) if self.sample is not None else []
        measured = {m.attempt_id for m in measurements}
        return PlanningContext(
            history=Prefix(self.history),  # O(1) views, not copies (see ``Prefix``)
            pending=self.pending(),
            unmeasured=[p for a, p in self.open.items() if a not in measured],
            measurements=measurements,
            interpretations=Prefix(self.interpretations),
            instrument_models=dict(instrument_models),
            goals=goals,
            remaining_instrument_seconds=remaining_instrument_seconds,
        )
