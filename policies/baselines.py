"""Model-free baselines: space-filling (scrambled Sobol) and uniform random designs.

Both are functions of ``(seed, k)`` only, where ``k = len(history) + len(pending)`` is the number of
points already asked for: the k-th point of a campaign is the same however the campaign batches
its requests, and a resumed campaign continues the same sequence.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Literal

from instruments.types import ParamValue, Record
from policies.protocol import ObjectivePolicy, Observation, Proposal
from policies.space import DesignSpace


def space_filling_points(
    space: DesignSpace, start: int, n: int, seed: int, method: Literal["sobol", "random"] = "sobol"
) -> list[dict[str, ParamValue]]:
    """Points ``[start, start + n)`` of the space's feasible sequence for ``seed``.

    ``DesignSpace.sample`` accepts points in sequence order, so the first ``start + n`` points of
    any call are the same: slicing gives batch-invariant points at O(start + n) cost.
    """
    if n <= 0:
        return []
    with warnings.catch_warnings():
        # scipy warns that Sobol balance needs power-of-2 draws; DesignSpace.sample draws in
        # rejection-sized batches of one continuing sequence, so the sequence itself is intact.
        warnings.filterwarnings("ignore", message=r"The balance properties of Sobol", category=UserWarning)
        return space.sample(start + n, seed, method)[start:]


class SobolPolicy(ObjectivePolicy):
    """Feasible scrambled-Sobol points, in sequence order, whatever the batching."""

    name = "sobol"
    method: Literal["sobol", "random"] = "sobol"

    class Options(Record):
        """No options: the sequence is a function of the campaign's seed and the step alone."""

    def __init__(self, space: DesignSpace, *, seed: int = 0, options: Options | None = None) -> None:
        self.space = space
        self.seed = int(seed)
        self.options = options if options is not None else self.Options()
        # The sequence's first points, generated once and extended by doubling: a decision then costs
        # O(n) amortised over a campaign instead of regenerating the whole prefix at every step
        # (which made the k-th decision O(k), ~60 ms at k = 1000). Same points: the sequence is
        # prefix-stable (``space_filling_points``).
        self._sequence: list[dict[str, ParamValue]] = []

    def propose(
        self, history: Sequence[Observation], pending: Sequence[Mapping[str, ParamValue]], n: int
    ) -> list[Proposal]:
        """The next ``n`` points of the sequence; index ``k = len(history) + len(pending)`` onwards."""
        if n < 0:
            raise ValueError(f"n must be >= 0, not {n}")
        start = len(history) + len(pending)
        if start + n > len(self._sequence):
            self._sequence = space_filling_points(self.space, 0, max(start + n, 2 * len(self._sequence)), self.seed, self.method)
        points = [dict(p) for p in self._sequence[start:start + n]]
        return [
            Proposal(
                params=p,
                policy=self.name,
                reason={"phase": "space-filling", "index": start + i, "seed": self.seed, "method": self.method},
            )
            for i, p in enumerate(points)
        ]


class RandomPolicy(SobolPolicy):
    """Feasible uniform-random points, in sequence order, whatever the batching."""

    name = "random"
    method: Literal["sobol", "random"] = "random"


def fallback_proposals(space: DesignSpace, n: int, seed: int, index: int, error: str) -> list[Proposal]:
    """Sobol points ``[index, index + n)`` to use when a policy raised ``error``.

    The campaign keeps measuring something sensible (and says why in the reason) rather than
    stalling; ``index`` should be the number of points already asked for, as for the baselines.
    """
    points = space_filling_points(space, index, n, seed, "sobol")
    return [
        Proposal(
            params=p,
            policy="fallback-sobol",
            reason={"fallback": True, "error": error, "phase": "space-filling", "index": index + i, "seed": seed},
        )
        for i, p in enumerate(points)
    ]


__all__ = ["RandomPolicy", "SobolPolicy", "fallback_proposals", "space_filling_points"]
