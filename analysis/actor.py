"""One generic Ray async actor around any analysis (plain class ``AnalysisService`` underneath)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

import ray

from analysis.protocol import Analysis, Interpretation
from instruments.types import Measurement


class AnalysisService:
    def __init__(self, factory: Callable[[], Analysis], *, inline: bool = False) -> None:
        """``inline``: interpret on the caller's event loop (no worker thread): the campaign's
        in-process fast path, for analyses that return quickly."""
        self._analysis = factory()
        self._inline = inline

    async def health(self) -> dict[str, str]:
        return {"analysis": getattr(self._analysis, "name", type(self._analysis).__name__)}

    async def interpret(self, measurements: Sequence[Measurement]) -> Interpretation:
        if self._inline:
            return self._analysis.interpret(measurements)
        # Fits can take seconds; run them off the event loop so concurrent calls interleave.
        return await asyncio.to_thread(self._analysis.interpret, measurements)


AnalysisActor = ray.remote(AnalysisService)
