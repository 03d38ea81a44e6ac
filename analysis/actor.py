"""One generic Ray async actor around any analysis (plain class ``AnalysisService`` underneath)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

import ray

from analysis.protocol import Analysis, Interpretation
from instruments.types import Measurement


class AnalysisService:
    def __init__(self, factory: Callable[[], Analysis]) -> None:
        self._analysis = factory()

    async def health(self) -> dict[str, str]:
        return {"analysis": getattr(self._analysis, "name", type(self._analysis).__name__)}

    async def interpret(self, measurements: Sequence[Measurement]) -> Interpretation:
        # Fits can take seconds; run them off the event loop so concurrent calls interleave.
        return await asyncio.to_thread(self._analysis.interpret, measurements)


AnalysisActor = ray.remote(AnalysisService)
