"""Futility forecasts: how much instrument time the targets still need, and the chance it exceeds the budget left.

A measurement planner forecasts, after each analysis, the instrument time (s) its targets need under
each plausible hypothesis (its planning model's answer for that hypothesis alone). The forecast's
uncertainty has two parts:

- *which hypothesis is true*: the hypotheses' probabilities weight their needs;
- *how good the linearised need is*: each hypothesis' need is taken as log-normal about the planned
  time with log-σ ``log_sigma`` (the plan is made from fitted parameters and a linearised model, so
  a factor of ~e^σ either way is plausible). A need beyond the planner's horizon is certain to
  exceed any budget.

``P(unreachable) = Σ_h w_h · P(T_h > remaining)``. The forecast travels in the proposal's ``reason``
(``reason["futility"]``, plain JSON) so the campaign loop — which owns the budgets and the stop
rules — decides; policies know no campaign schema.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import Field

from instruments.types import Record

#: The reason key a planner's forecast travels under.
REASON_KEY = "futility"


class HypothesisNeed(Record):
    """What one hypothesis needs: its weight, the instrument seconds to reach the targets, and the
    target that sets that time. ``seconds`` None: not reachable within the planner's horizon."""

    hypothesis: str
    weight: float = Field(ge=0, le=1)
    seconds: float | None = Field(default=None, ge=0, description="instrument time still needed, s; None: beyond the horizon")
    binding: str = ""


class Forecast(Record):
    """The forecast instrument time to the targets, with its uncertainty, against the budget left."""

    needs: list[HypothesisNeed]
    remaining_seconds: float | None = Field(description="instrument budget left, s; None: no instrument-time budget")
    horizon_seconds: float = Field(description="the longest plan the planner considers, s")
    log_sigma: float = Field(ge=0, description="log-normal spread of each hypothesis' need")
    p_unreachable: float = Field(ge=0, le=1, description="P(time needed > budget left)")
    median_seconds: float | None = Field(description="median of the forecast time needed, s; None: beyond the horizon")
    reason: str = Field(description="the forecast in words")

    def as_reason(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


def _p_exceeds(need: HypothesisNeed, remaining: float, log_sigma: float) -> float:
    if need.seconds is None:
        return 1.0
    if remaining <= 0:
        return 1.0
    if need.seconds <= 0:
        return 0.0
    if log_sigma == 0:
        return float(need.seconds > remaining)
    z = (math.log(remaining) - math.log(need.seconds)) / log_sigma
    return 0.5 * math.erfc(z / math.sqrt(2.0))  # the standard normal's survival function (no scipy.stats import)


def _weighted_median(needs: Sequence[HypothesisNeed]) -> float | None:
    """The median of the mixture's central values (None when it lies beyond the horizon)."""
    total = sum(n.weight for n in needs)
    acc = 0.0
    for n in sorted(needs, key=lambda n: math.inf if n.seconds is None else n.seconds):
        acc += n.weight
        if acc >= 0.5 * total:
            return n.seconds
    return None


def seconds_text(seconds: float) -> str:
    """``3.1 × 10⁵`` for large numbers, ``12,000`` for ordinary ones (s)."""
    if seconds >= 1e5:
        exponent = int(math.floor(math.log10(seconds)))
        digits = "".join("⁰¹²³⁴⁵⁶⁷⁸⁹"[int(c)] for c in str(exponent))
        return f"{seconds / 10**exponent:.1f} × 10{digits}"
    return f"{seconds:,.0f}"


def forecast(
    needs: Sequence[HypothesisNeed], remaining_seconds: float | None, *, horizon_seconds: float, log_sigma: float = 0.5,
) -> Forecast:
    """The forecast from each hypothesis' need (weights renormalised over ``needs``)."""
    total = sum(n.weight for n in needs)
    needs = [n.model_copy(update={"weight": n.weight / total if total > 0 else 1 / len(needs)}) for n in needs]
    if remaining_seconds is None:  # no instrument-time budget: only a need beyond the horizon is out of reach
        p = sum(n.weight for n in needs if n.seconds is None)
    else:
        p = sum(n.weight * _p_exceeds(n, remaining_seconds, log_sigma) for n in needs)
    median = _weighted_median(needs)
    binding = max(needs, key=lambda n: (n.weight, -(n.seconds or math.inf))).binding if needs else ""
    need_text = f"> {seconds_text(horizon_seconds)}" if median is None else f"≈ {seconds_text(median)}"
    left = "no instrument-time budget" if remaining_seconds is None else f"{seconds_text(max(remaining_seconds, 0.0))} s left"
    if median == 0:
        words = f"the targets are forecast to hold with the data so far; {left} (P(not reachable) = {p:.2f})"
    else:
        words = f"{binding or 'the targets'} would need {need_text} s; {left} (P(not reachable) = {p:.2f})"
    return Forecast(needs=needs, remaining_seconds=remaining_seconds, horizon_seconds=horizon_seconds,
                    log_sigma=log_sigma, p_unreachable=min(max(p, 0.0), 1.0), median_seconds=median, reason=words)


def probability_cap(details: Mapping[str, Any], flags: Sequence[str]) -> float:
    """The highest probability any answer of an interpretation can reach on more data of the same kind:
    ``details["probability_cap"]`` when the analysis states it, else 1 − ``details["p_missing_phase"]``
    (the probability that the data hold a phase outside the candidates), else 0.5 under the open-world
    rule's flag (``open-world: p halved``: unexplained intensity keeps half the mass for "none of
    these"), else 1."""
    for key, transform in (("probability_cap", lambda v: v), ("p_missing_phase", lambda v: 1.0 - v)):
        value = details.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            return float(min(max(transform(float(value)), 0.0), 1.0))
    return 0.5 if any(f.startswith("open-world") for f in flags) else 1.0


def forecast_of(reason: Mapping[str, Any]) -> Forecast | None:
    """The forecast a proposal's ``reason`` carries, or None (a policy that does not forecast)."""
    raw = reason.get(REASON_KEY)
    return None if raw is None else Forecast.model_validate(raw)
