"""What a new sample is expected to cost (synthesis + instrument seconds), learned from past samples.

A GP on log seconds over the design space when there are enough samples whose costs differ (a
recipe whose phase needs a long scan, a slow anneal); otherwise the median of past costs, the same
everywhere. The model is of what a *made* sample costs at a recipe: failed syntheses are left out
of it while some sample has not failed. A failure is a chance event, not a property of the recipe
(the synthesiser's failure rate), and it is cheaper (no characterisation): fitted with the others,
one failure made the GP predict half the cost around it (oxide benchmark: 3 500 s against 7 000 s)
and the acquisition per second favour recipes next to a failed one. Its time still counts in
budgets; a constant failure rate scales every candidate's expected cost alike.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

# policies.models first: it imports BoTorch with a harmless torch deprecation silenced.
from policies.models import ModelCache

from botorch.exceptions.errors import ModelFittingError  # noqa: E402

from policies.protocol import Observation, SampleOutcome  # noqa: E402
from policies.space import DesignSpace  # noqa: E402

#: Fewest costed samples for a GP on log seconds; below it, the median is used.
MIN_SAMPLES_FOR_COST_MODEL = 4

#: Relative spread of costs below which they are treated as constant (a GP would fit noise).
CONSTANT_COST_SPREAD = 0.05

#: Cost assumed before any sample has finished (s); only ratios between candidates matter.
DEFAULT_SECONDS = 1.0


class CostModel:
    """Expected seconds of a sample at encoded points: ``expected_seconds(X (N, n_columns)) → (N,)``.

    ``kind``: ``"gp"`` (log-normal predictive, mean ``exp(μ + σ²/2)``), ``"median"`` or ``"default"``.
    """

    def __init__(self, space: DesignSpace, samples: Sequence[SampleOutcome]) -> None:
        costed = [s for s in samples if s.seconds > 0]
        made = [s for s in costed if s.status != "failed"]
        costed = made or costed
        seconds = np.array([s.seconds for s in costed])
        self.median = float(np.median(seconds)) if len(seconds) else DEFAULT_SECONDS
        self.kind = "median" if len(seconds) else "default"
        self._fitted = None
        if len(seconds) >= MIN_SAMPLES_FOR_COST_MODEL and np.std(np.log(seconds)) > CONSTANT_COST_SPREAD:
            history = [Observation(params=s.recipe, value=math.log(s.seconds)) for s in costed]
            try:
                self._fitted = ModelCache(warm_start=False, cold_check_growth=None).fit(space, history, "maximize")
                self.kind = "gp"
            except ModelFittingError:
                self._fitted = None  # the median is a fair, if blunt, answer

    def expected_seconds(self, X: np.ndarray) -> np.ndarray:
        """Expected cost (s) of a sample at each encoded point ``X (N, n_columns)`` → ``(N,)``."""
        if self._fitted is None:
            return np.full(len(X), self.median)
        mean, std = self._fitted.predict_encoded(X)
        return np.exp(mean + std**2 / 2.0)  # type: ignore[no-any-return]


__all__ = ["CostModel"]
