"""Powder XRD scan steering: which 2θ window, step and dwell next — and its baselines.

Every policy here chooses one window of a diffractometer, ``{two_theta_start, two_theta_stop,
two_theta_step, dwell_seconds}``, through ``plan(context, n)`` with the campaign's targets as the
stopping rule (P(most probable phase set) ≥ the ``p(best)`` goal of its
:class:`~policies.protocol.PlanningGoals`). Each policy's options are its ``Options`` model.

- ``xrd_adaptive``: a fast survey scan first (AdaptiveXRD's: 10–60°, 0.04°, 0.1 s per step — half
  that dwell was tried and lost accuracy: a minor phase at 3–5 wt % then hides in the noise and the
  first look already reads as confident); then, from the analysis's top phase-set hypotheses
  (``analysis.xrd``: refined parameters of each), the window, step and dwell that buy the most
  expected discrimination per second of instrument time. For each rival set r of the most probable
  set b, the expected gain of log-odds from a step at 2θ with dwell t is t · J_r(2θ) / T, where J_r
  is the symmetrised Poisson Kullback–Leibler divergence of their predicted rates
  (½[r_b log(r_b/r_r) − r_b + r_r] + ½[r_r log(r_r/r_b) − r_r + r_b]) and T the analysis's
  tempering; each rival needs Δ_r = logit(target) + margin − log(p_b/p_r) nats. A window's value
  is Σ_r w_r · min(1, gain_r/Δ_r) (w_r ∝ p_r) divided by its time — set-up, slew from where the
  goniometer stands, and steps × (dwell + dead time) — so short windows pay their set-up and
  wide ones their dwell; windows anywhere on the goniometer compete, which is how the range gets
  extended. A rival that adds a phase is predicted with that phase's scale at least its σ: the
  amount the data cannot yet exclude. Windows are committed to gradually: one window costs at most
  ``growth`` × the time spent so far.
- ``xrd_full_scan``: the fixed full slow scan (one window, chosen up front).
- ``xrd_heuristic``: AdaptiveXRD-style (Szymanski et al. 2023): the same survey; then rescan, slower,
  the window of at least ``min_window_deg`` where the two most probable sets differ most (not yet
  rescanned); when every such window is done, extend the range by ``extension_deg`` at survey speed.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Self

import numpy as np
from pydantic import Field, field_validator, model_validator

from analysis.xrd.hypotheses import PhaseSetHypothesis, hypotheses_of, predict_rate
from analysis.xrd.settings import XRDPhaseIDSettings
from instruments.types import Record
from instruments.xrd import REQUEST_FIELDS, XRDInstrumentModel
from policies.futility import REASON_KEY, HypothesisNeed, forecast, probability_cap
from policies.protocol import PlanningContext, PlanningGoals, Proposal
from policies.space import ContinuousParameter, DesignSpace

REQUEST = REQUEST_FIELDS  # the diffractometer contract's request: start, stop, step (degrees), dwell (s)
Window = tuple[float, float, float, float]
"""(start, stop, step, dwell): degrees, degrees, degrees, seconds per step."""


def _window_shape(option: str, value: tuple[float, ...]) -> tuple[float, ...]:
    """``value`` if it is a window [start, stop, step, dwell_seconds] (degrees, degrees, degrees, s)
    with start < stop and a positive step and dwell; raises ValueError naming ``option`` otherwise."""
    if len(value) != 4:
        raise ValueError(f"option {option} is [start, stop, step, dwell_seconds], got {list(value)}")
    start, stop, step, dwell = (float(v) for v in value)
    if not (start < stop and step > 0 and dwell > 0):
        raise ValueError(f"option {option}: need start < stop and positive step and dwell, got {list(value)}")
    return value


class _XRDPolicy(ABC):
    """What every XRD policy shares: the request in the design space, windows so far, the survey."""

    name = "xrd"
    #: What the campaign passes to the constructor besides the space, the seed and the options
    #: (see :func:`policies.registry.build_policy`).
    campaign_arguments: ClassVar[tuple[str, ...]] = ()
    default_survey: Window = (10.0, 60.0, 0.04, 0.1)
    """[start, stop, step, dwell_seconds] of the first look: AdaptiveXRD's fast 10–60° scan."""

    class Options(Record):
        instrument: str | None = Field(
            default=None, description="the instrument whose planning model is used; the first XRD one by default"
        )
        survey: tuple[float, ...] | None = Field(
            default=None,
            description="the first look, [start, stop, step, dwell_seconds] (degrees, degrees, degrees, s); "
            "AdaptiveXRD's fast 10–60° scan by default",
        )

        @field_validator("survey")
        @classmethod
        def _survey_is_a_window(cls, survey: tuple[float, ...] | None) -> tuple[float, ...] | None:
            return None if survey is None else _window_shape("survey", survey)

    def __init__(self, space: DesignSpace, *, seed: int = 0, options: Options | None = None) -> None:
        options = options if options is not None else self.Options()
        self.options = options
        self.space, self.seed, self.instrument = space, seed, options.instrument
        params = {p.name: p for p in space.parameters}
        missing = [n for n in REQUEST if not isinstance(params.get(n), ContinuousParameter)]
        if missing:
            raise ValueError(
                f"policy {self.name!r}: the design space needs continuous parameters {list(REQUEST)}; "
                f"missing or not continuous: {missing}"
            )
        self.bounds = {n: (float(params[n].low), float(params[n].high)) for n in REQUEST}  # type: ignore[union-attr]
        self.survey: Window = self._window("survey", self.default_survey if options.survey is None else options.survey)

    def _window(self, option: str, value: Sequence[float]) -> Window:
        """The window ``value`` of option ``option`` (its shape checked by the options' validator),
        checked against the design space's bounds."""
        start, stop, step, dwell = (float(v) for v in value)
        for name, v in zip(REQUEST, (start, stop, step, dwell)):
            lo, hi = self.bounds[name]
            if not lo <= v <= hi:
                raise ValueError(f"policy {self.name!r}: option {option}: {name}={v} is outside the design space [{lo}, {hi}]")
        return (start, stop, step, dwell)

    @abstractmethod
    def plan(self, context: PlanningContext, n: int) -> list[Proposal]:
        """``n`` windows ``{two_theta_start, two_theta_stop, two_theta_step, dwell_seconds}``."""

    def _windows(self, context: PlanningContext) -> list[Window]:
        """Windows measured or in flight, oldest first."""
        steps = [m.params for m in context.measurements] + [dict(p) for p in context.unmeasured]
        return [tuple(float(p[k]) for k in REQUEST) for p in steps if all(k in p for k in REQUEST)]  # type: ignore[misc]

    def _instrument_model(self, context: PlanningContext) -> XRDInstrumentModel | None:
        models = {k: v for k, v in context.instrument_models.items() if isinstance(v, XRDInstrumentModel)}
        if self.instrument is not None:
            return models.get(self.instrument)
        return next(iter(models.values()), None)

    @staticmethod
    def _batch(proposal: Proposal, n: int) -> list[Proposal]:
        # Windows are planned one at a time from the newest analysis; a batch repeats the window
        # (more counts where they were worth having) rather than guessing past unseen data.
        return [proposal] + [proposal.model_copy(update={"reason": {**proposal.reason, "batch_repeat": i}}) for i in range(1, n)]

    def _request(self, window: Window, reason: dict[str, Any]) -> Proposal:
        values = {}
        for name, v in zip(REQUEST, window):
            lo, hi = self.bounds[name]
            values[name] = round(float(min(max(v, lo), hi)), 4)
        return Proposal(params=values, policy=self.name, reason=reason)


class XRDFullScan(_XRDPolicy):
    """The fixed full slow scan: one window, chosen up front (``scan``)."""

    name = "xrd_full_scan"

    class Options(_XRDPolicy.Options):
        scan: tuple[float, ...] = Field(
            default=(10.0, 90.0, 0.02, 1.0),
            description="the one window, [start, stop, step, dwell_seconds] (degrees, degrees, degrees, s)",
        )

        @field_validator("scan")
        @classmethod
        def _scan_is_a_window(cls, scan: tuple[float, ...]) -> tuple[float, ...]:
            return _window_shape("scan", scan)

    def __init__(self, space: DesignSpace, *, seed: int = 0, options: Options | None = None) -> None:
        options = options if options is not None else self.Options()
        super().__init__(space, seed=seed, options=options)
        self.scan = self._window("scan", options.scan)

    def plan(self, context: PlanningContext, n: int) -> list[Proposal]:
        done = len(self._windows(context))
        return [self._request(self.scan, {"step": i, "rule": "full scan"}) for i in range(done, done + n)]


def _plausible_scales(best: PhaseSetHypothesis, rival: PhaseSetHypothesis) -> list[float]:
    # A phase the best set lacks is predicted at no less than its σ: what the data cannot exclude yet.
    return [s if n in best.phases else max(s, ss) for n, s, ss in zip(rival.phases, rival.scales, rival.scale_sigmas)]


class _HypothesisPolicy(_XRDPolicy):
    """Predicts each reported phase-set hypothesis on a 2θ grid (common background)."""

    campaign_arguments = ("analysis",)

    def __init__(
        self, space: DesignSpace, *, seed: int = 0, analysis: Mapping[str, Any], options: _XRDPolicy.Options | None = None
    ) -> None:
        super().__init__(space, seed=seed, options=options)
        if analysis.get("kind") != "xrd":
            raise ValueError(f"policy {self.name!r} plans from phase identification: analysis.kind must be 'xrd', not {analysis.get('kind')!r}")
        self.settings = XRDPhaseIDSettings.model_validate(analysis.get("settings", {}))

    def _predictions(self, hypotheses: list[PhaseSetHypothesis], grid: np.ndarray, covered: tuple[float, float]) -> list[np.ndarray]:
        """Rates of each hypothesis on ``grid``; one background (the best's, held flat outside the
        measured range, where its polynomial would be an extrapolation)."""
        best = hypotheses[0]
        background = np.maximum(self.settings.optics().background_rate(np.clip(grid, *covered), best.background), 1e-3)
        out = []
        for h in hypotheses:
            no_bg = PhaseSetHypothesis(**{**h.__dict__, "background": (0.0,)})
            scales = h.scales if h is best else _plausible_scales(best, h)
            out.append(background + predict_rate(self.settings, no_bg, grid, scales) - 1e-9)
        return out


class XRDHeuristic(_HypothesisPolicy):
    """AdaptiveXRD-style steering; see the module docstring."""

    name = "xrd_heuristic"

    class Options(_XRDPolicy.Options):
        rescan_step: float = Field(default=0.02, description="2θ step of a rescan, degrees")
        rescan_dwell: float = Field(default=1.0, description="dwell per step of a rescan, s")
        min_window_deg: float = Field(default=5.0, description="narrowest rescan window, degrees")
        extension_deg: float = Field(default=10.0, description="how far the range is extended at once, degrees")

        @model_validator(mode="after")
        def _positive(self) -> Self:
            if min(self.rescan_step, self.rescan_dwell, self.min_window_deg, self.extension_deg) <= 0:
                raise ValueError("rescan_step, rescan_dwell, min_window_deg and extension_deg must be positive")
            return self

    def __init__(
        self, space: DesignSpace, *, seed: int = 0, analysis: Mapping[str, Any], options: Options | None = None
    ) -> None:
        options = options if options is not None else self.Options()
        super().__init__(space, seed=seed, analysis=analysis, options=options)
        self.rescan_step, self.rescan_dwell = float(options.rescan_step), float(options.rescan_dwell)
        self.min_window_deg, self.extension_deg = float(options.min_window_deg), float(options.extension_deg)

    def plan(self, context: PlanningContext, n: int) -> list[Proposal]:
        return self._batch(self._next(context), n)

    def _next(self, context: PlanningContext) -> Proposal:
        windows = self._windows(context)
        if not windows:
            return self._request(self.survey, {"rule": "survey"})
        latest = context.latest_valid()
        hypotheses = hypotheses_of(latest.details) if latest is not None else []
        lo = min(w[0] for w in windows)
        hi = max(w[1] for w in windows)
        gon_hi = self.bounds["two_theta_stop"][1]
        model = self._instrument_model(context)
        if model is not None:
            gon_hi = min(gon_hi, model.goniometer_max_deg)
        rescans = [w for w in windows if w[3] >= self.rescan_dwell]
        if len(hypotheses) >= 2:
            grid = np.arange(lo, hi, self.rescan_step)
            first, second = self._predictions(hypotheses[:2], grid, (lo, hi))
            diff = np.abs(first - second)
            width = self.min_window_deg
            starts = np.arange(lo, max(hi - width, lo) + 1e-9, 0.5)
            cum = np.concatenate([[0.0], np.cumsum(diff)])
            sums = np.array([cum[np.searchsorted(grid, s + width)] - cum[np.searchsorted(grid, s)] for s in starts])
            for i in np.argsort(-sums):
                s = float(starts[i])
                if sums[i] <= 0.1 * sums.max() or sums.max() <= 0:
                    break
                if not any(min(r[1], s + width) - max(r[0], s) >= 0.5 * width for r in rescans):
                    return self._request((s, s + width, self.rescan_step, self.rescan_dwell),
                                         {"rule": "rescan where the top two differ", "sets": [h.label for h in hypotheses[:2]]})
        if hi < gon_hi - 1e-6:
            stop = min(hi + self.extension_deg, gon_hi)
            start = max(hi, stop - self.min_window_deg)
            return self._request((start, stop, self.survey[2], self.survey[3]), {"rule": "extend the range"})
        # Everything rescanned and the range exhausted: rescan the survey range slower.
        longest = max(w[3] for w in windows)
        return self._request((lo, hi, self.rescan_step, min(2 * longest, self.bounds["dwell_seconds"][1])),
                             {"rule": "range exhausted: rescan slower"})


class XRDAdaptivePlanner(_HypothesisPolicy):
    """Discrimination per second between the top phase-set hypotheses; see the module docstring."""

    name = "xrd_adaptive"
    campaign_arguments = ("analysis", "goals")

    class Options(_XRDPolicy.Options):
        step: float = Field(default=0.02, description="2θ step of every planned window, degrees")
        dwell_ladder: tuple[float, ...] = Field(
            default=(0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 4.0, 8.0), description="dwells per step considered, s"
        )
        widths_deg: tuple[float, ...] = Field(default=(2.0, 5.0, 10.0, 20.0, 40.0), description="window widths considered, degrees")
        hypothesis_min_probability: float = Field(
            default=1e-3, description="rival phase sets at least this probable are planned against"
        )
        margin_nats: float = Field(default=1.0, description="log odds beyond the p(best) goal that the plan asks for, nats")
        capped_analyses: int = Field(
            default=2, ge=1,
            description="forecast the p(best) goal out of reach when this many analyses in a row cap every answer's "
            "probability below it (unexplained intensity: a phase outside the candidates)",
        )
        growth: float = Field(default=2.0, description="a window costs at most growth × the time spent so far")

        @field_validator("hypothesis_min_probability")
        @classmethod
        def _a_minority_probability(cls, probability: float) -> float:
            if not 0 < probability < 0.5:
                raise ValueError("hypothesis_min_probability must be in (0, 0.5)")
            return probability

        @model_validator(mode="after")
        def _positive(self) -> Self:
            step, growth, dwell_ladder, widths_deg = self.step, self.growth, self.dwell_ladder, self.widths_deg
            if step <= 0 or growth <= 0 or not dwell_ladder or not widths_deg or min(dwell_ladder) <= 0 or min(widths_deg) <= 0:
                raise ValueError("step, growth, dwell_ladder and widths_deg must be positive and non-empty")
            return self

    def __init__(
        self,
        space: DesignSpace,
        *,
        seed: int = 0,
        analysis: Mapping[str, Any],
        goals: PlanningGoals,
        options: Options | None = None,
    ) -> None:
        options = options if options is not None else self.Options()
        super().__init__(space, seed=seed, analysis=analysis, options=options)
        _best_probability_goal(self.name, goals)  # validates: the campaign has a usable p(best) goal
        self.goals = goals
        self.step, self.growth, self.margin_nats = float(options.step), float(options.growth), float(options.margin_nats)
        lo, hi = self.bounds["dwell_seconds"]
        self.dwell_ladder = sorted({min(max(float(d), lo), hi) for d in options.dwell_ladder})
        self.widths = sorted(float(w) for w in options.widths_deg)
        self.hypothesis_min_probability = float(options.hypothesis_min_probability)

    def plan(self, context: PlanningContext, n: int) -> list[Proposal]:
        proposal = self._next(context)
        futility = self._futility(context, _best_probability_goal(self.name, context.goals_or(self.goals)))
        if futility is not None:
            proposal = proposal.model_copy(update={"reason": {**proposal.reason, REASON_KEY: futility}})
        return self._batch(proposal, n)

    def _futility(self, context: PlanningContext, target: float) -> dict[str, Any] | None:
        """The futility forecast (:mod:`policies.futility`) once ``capped_analyses`` analyses exist: the
        p(best) goal is out of reach at any time when each of the newest ``capped_analyses`` analyses caps
        every answer's probability below it (:func:`~policies.futility.probability_cap` — the analysis'
        open-world rule or its p(missing phase)); None before."""
        valid = [i for i in context.interpretations if i.valid][-self.options.capped_analyses:]
        if len(valid) < self.options.capped_analyses:
            return None
        caps = [probability_cap(i.details, i.flags) for i in valid]
        p_capped = 1.0 if max(caps) < target else 0.0
        left = context.remaining_instrument_seconds
        if left is not None:
            model = self._instrument_model(context)
            left -= sum(model.window_seconds(*self._window_of(p), position=None) for p in context.unmeasured) if model else 0.0
        needs = [
            HypothesisNeed(hypothesis="a phase outside the candidates", weight=p_capped, seconds=None,
                           binding=f"p(best) ≥ {target:g}"),
            HypothesisNeed(hypothesis="the candidates explain the data", weight=1.0 - p_capped, seconds=0.0,
                           binding=f"p(best) ≥ {target:g}"),
        ]
        result = forecast(needs, left, horizon_seconds=left if left is not None else 0.0, log_sigma=0.0)
        words = (f"p(best) ≥ {target:g} cannot be reached at any time: the newest {len(caps)} analyses cap every answer "
                 f"at p ≤ {max(caps):.2f} (intensity no candidate explains: a phase outside the library?)"
                 if p_capped else f"p(best) is not capped below {target:g} (cap {max(caps):.2f})")
        return result.model_copy(update={"reason": words}).as_reason()

    def _window_of(self, params: Mapping[str, Any]) -> Window:
        return tuple(float(params[k]) for k in REQUEST)  # type: ignore[return-value]

    def _next(self, context: PlanningContext) -> Proposal:
        target = _best_probability_goal(self.name, context.goals_or(self.goals))
        windows = self._windows(context)
        latest = context.latest_valid()
        hypotheses = hypotheses_of(latest.details) if latest is not None else []
        model = self._instrument_model(context)
        if windows and model is not None and latest is None:
            # The survey is measured or in flight but not analysed yet: a second survey would repeat it.
            return self._extension(windows, model, "analysis pending: extend the range")
        if not windows or model is None or latest is None or not hypotheses:
            return self._request(self.survey, {"rule": "survey"})
        best, *others = hypotheses
        rivals = [h for h in others if h.probability >= self.hypothesis_min_probability]
        if not rivals:
            rivals = others[:1]
        if not rivals:  # a single hypothesis and the target not met: look where nothing was measured
            return self._extension(windows, model, "single hypothesis: extend the range")
        temperature = float(latest.details.get("temperature") or 1.0)  # type: ignore[arg-type]
        logit = math.log(target / (1 - target)) + self.margin_nats
        needed = np.array([max(logit - math.log(max(best.probability, 1e-300) / max(r.probability, 1e-300)), 0.25) for r in rivals])
        weights = np.array([r.probability for r in rivals])
        weights = weights / weights.sum() if weights.sum() > 0 else np.full(len(rivals), 1 / len(rivals))

        lo_g = max(model.goniometer_min_deg, self.bounds["two_theta_start"][0])
        hi_g = min(model.goniometer_max_deg, self.bounds["two_theta_stop"][1])
        grid = np.arange(lo_g, hi_g + self.step / 2, self.step)
        covered = (min(w[0] for w in windows), max(w[1] for w in windows))
        rates = self._predictions([best, *rivals], grid, covered)
        r_b = rates[0]
        divergence = np.array([0.5 * (r_b * np.log(r_b / r) - r_b + r) + 0.5 * (r * np.log(r / r_b) - r + r_b)
                               for r in rates[1:]]) / temperature  # (n_rivals, n_grid), nats per second
        cum = np.concatenate([np.zeros((len(rivals), 1)), np.cumsum(divergence, axis=1)], axis=1)
        position = windows[-1][1]
        spent = sum(model.window_seconds(*w, position=None) for w in windows)
        cap = max(self.growth * spent, model.setup_seconds + 60.0)
        best_choice: tuple[float, Window, float, np.ndarray] | None = None
        fallback: tuple[float, Window, float, np.ndarray] | None = None
        for width in self.widths:
            if width > hi_g - lo_g:
                continue
            for start in np.arange(lo_g, hi_g - width + 1e-9, max(width / 4, 0.5)):
                i0 = int(np.searchsorted(grid, start - 1e-9))
                i1 = int(np.searchsorted(grid, start + width + 1e-9))
                info = cum[:, i1] - cum[:, i0]  # nats per second of dwell at every step
                for dwell in self.dwell_ladder:
                    seconds = model.window_seconds(float(start), float(start + width), self.step, dwell, position)
                    progress = float(np.sum(weights * np.minimum(1.0, dwell * info / needed)))
                    value = progress / seconds
                    choice = (value, (float(start), float(start + width), self.step, dwell), seconds, dwell * info)
                    if seconds <= cap and (best_choice is None or value > best_choice[0]):
                        best_choice = choice
                    if fallback is None or seconds < fallback[2]:
                        fallback = choice
        value, window, seconds, gain = best_choice or fallback  # type: ignore[misc]
        return self._request(window, _discrimination_reason(best, rivals, gain, needed, seconds, temperature))

    def _extension(self, windows: list[Window], model: XRDInstrumentModel, rule: str) -> Proposal:
        hi = max(w[1] for w in windows)
        stop = min(hi + 20.0, model.goniometer_max_deg, self.bounds["two_theta_stop"][1])
        if stop - hi < 2.0:
            return self._request((self.survey[0], self.survey[1], self.step, 4 * self.survey[3]), {"rule": rule + " (range exhausted)"})
        return self._request((hi, stop, self.survey[2], self.survey[3]), {"rule": rule})


def _discrimination_reason(best: Any, rivals: list[Any], gain: np.ndarray, needed: np.ndarray, seconds: float,
                           temperature: float) -> dict[str, Any]:
    """Why the discrimination window was chosen, for the decision log."""
    return {
        "rule": "discrimination per second", "best": best.label, "p_best": round(best.probability, 4),
        "rivals": {r.label: round(r.probability, 4) for r in rivals},
        "expected_gain_nats": {r.label: round(float(g), 3) for r, g in zip(rivals, gain)},
        "needed_nats": {r.label: round(float(d), 3) for r, d in zip(rivals, needed)},
        "seconds": round(seconds, 1), "temperature": round(temperature, 3),
    }


def _best_probability_goal(name: str, goals: PlanningGoals) -> float:
    """The ``p(best)`` goal of ``goals``; raises ValueError (naming policy ``name``) without one in (0.5, 1)."""
    goal = goals.best_probability
    if goal is None:
        raise ValueError(f"policy {name!r} plans toward a p(best) estimate_threshold target; the campaign has none")
    if not 0.5 < goal < 1:
        raise ValueError(f"policy {name!r}: the p(best) target must be in (0.5, 1), got {goal}")
    return goal
