"""Stop a sample whose targets the planner forecasts to be out of reach (``stop_when_unreachable``).

The planner's forecast (:mod:`policies.futility`) travels in its proposals' ``reason``; this module
reads it and says, in words, why the campaign ends ``unreachable`` — or None to go on. The loop
(``agent/campaign.py``) owns the decision; the policy knows no campaign schema.
"""

from __future__ import annotations

from collections.abc import Sequence

from policies.futility import forecast_of
from policies.protocol import Proposal

#: The forecast probability that the targets need more than the budget left, above which the sample ends.
P_UNREACHABLE = 0.9
#: ... in forecasts made from this many different analyses in a row: one fit at a bound (a
#: polydispersity at 0) can make a linearised forecast wildly pessimistic; two in a row rarely are.
ANALYSES_IN_A_ROW = 2


class FutilityWatch:
    """Acts on the planner's forecasts only when they persist: ``observe`` returns the reason to end
    the sample once the forecasts made after ``in_a_row`` different analyses, consecutively, all said
    P(not reachable) ≥ ``threshold``."""

    def __init__(self, threshold: float = P_UNREACHABLE, in_a_row: int = ANALYSES_IN_A_ROW) -> None:
        self.threshold, self.in_a_row = threshold, in_a_row
        self._futile_after: list[int] = []  # analysis counts of the consecutive futile forecasts

    def observe(self, proposals: Sequence[Proposal], n_analyses: int) -> str | None:
        """The forecast of ``proposals`` (made after ``n_analyses`` analyses): the reason, or None to go on."""
        if not any(forecast_of(p.reason) is not None for p in proposals):
            return None  # no forecast: neither for nor against
        reason = unreachable_reason(proposals, self.threshold)
        if reason is None:
            self._futile_after.clear()
            return None
        if n_analyses not in self._futile_after:
            self._futile_after.append(n_analyses)
        return reason if len(self._futile_after) >= self.in_a_row else None


def unreachable_reason(proposals: Sequence[Proposal], threshold: float = P_UNREACHABLE) -> str | None:
    """Why the targets are out of reach (the newest forecast, in words), or None to go on measuring.

    A forecast is acted on only when it says P(not reachable) ≥ ``threshold``; proposals without a
    forecast (a policy that does not forecast, or before anything was analysed) never stop a campaign."""
    for proposal in proposals:
        forecast = forecast_of(proposal.reason)
        if forecast is not None:
            return f"target unreachable: {forecast.reason}" if forecast.p_unreachable >= threshold else None
    return None
