"""Requests fit the instrument budget left: clipped to it, or refused when nothing of them fits."""

from __future__ import annotations

import asyncio

import pytest

from agent.budget import BUDGET_REFUSAL, fit_to_budget, request_seconds
from agent.guard import Guard
from agent.store import AttemptState
from policies.space import DesignSpace
from tests.policies.test_sas import instrument

pytestmark = pytest.mark.timeout(60)

SPACE = DesignSpace.model_validate({"parameters": [
    {"name": "configuration", "type": "categorical", "choices": ["15m", "5m", "1.5m"]},
    {"name": "exposure_seconds", "type": "continuous", "low": 10, "high": 7200},
]})


class _Accepting:
    """An instrument handle whose ``check`` accepts everything (the guard awaits ``check.remote``)."""

    class check:  # noqa: N801 — the actor-handle shape the guard calls
        @staticmethod
        async def remote(request: object) -> None:
            return None


def test_request_seconds_counts_exposure_overhead_and_a_change() -> None:
    assert request_seconds(instrument(), {"configuration": "5m", "exposure_seconds": 100}) == 100 + 20 + 180
    assert request_seconds(None, {"configuration": "5m", "exposure_seconds": 100}) is None


def test_the_guard_clips_the_last_request_to_the_time_left() -> None:
    guard = Guard(SPACE, {"sans": _Accepting()}, models={"sans": instrument()})
    params = {"configuration": "5m", "exposure_seconds": 1000.0}
    verdict = asyncio.run(guard.verdict("a-1", params, "s", ["sans"], left=500.0))
    assert verdict.path[-1] == AttemptState.DISPATCHED
    assert verdict.params == {"configuration": "5m", "exposure_seconds": 300.0}  # 500 − 20 overhead − 180 change
    # Enough time: unchanged. No budget: unchanged.
    assert asyncio.run(guard.verdict("a-2", params, "s", ["sans"], left=5000.0)).params is None
    assert asyncio.run(guard.verdict("a-3", params, "s", ["sans"], left=None)).params is None


def test_the_guard_refuses_a_request_the_time_left_cannot_hold() -> None:
    guard = Guard(SPACE, {"sans": _Accepting()}, models={"sans": instrument()})
    verdict = asyncio.run(guard.verdict("a-1", {"configuration": "5m", "exposure_seconds": 1000.0}, "s", ["sans"], left=150.0))
    assert verdict.path == (AttemptState.REFUSED,) and verdict.reason is not None
    assert verdict.reason.startswith(BUDGET_REFUSAL)
    # Clipped below the design space's shortest exposure (10 s): the budget's refusal, saying why.
    short = asyncio.run(guard.verdict("a-2", {"configuration": "5m", "exposure_seconds": 1000.0}, "s", ["sans"], left=205.0))
    assert short.path == (AttemptState.REFUSED,) and short.reason is not None and short.reason.startswith(BUDGET_REFUSAL)
    assert fit_to_budget(instrument(), {"configuration": "5m", "exposure_seconds": 10.0}, 1e6).refusal is None


def test_benchmark_futility_columns_separate_unsolvable_from_solvable_samples() -> None:
    from agent.bench.common import futility_columns

    def run(sample: int, policy: str, ok: bool, status: str, seconds: float) -> dict[str, object]:
        return {"sample": sample, "policy": policy, "success": ok, "status": status, "instrument_seconds": seconds}

    results = [run(0, "adaptive", True, "completed", 1000), run(0, "fixed", False, "budget_exhausted", 7800),
               run(1, "adaptive", False, "unreachable", 2000), run(1, "fixed", False, "budget_exhausted", 7800),
               run(2, "adaptive", False, "budget_exhausted", 20000), run(2, "fixed", False, "budget_exhausted", 7800)]
    row = futility_columns(results, "adaptive", 20000.0, "success")
    assert row["n_unsolvable_samples"] == 2 and row["unreachable_recognised"] == 0.5
    assert row["median_seconds_on_unsolvable"] == 11000 and row["budget_fraction_on_unsolvable"] == 0.55
    assert row["median_instrument_seconds_solvable"] == 1000 and row["false_unreachable_rate"] == 0.0
    assert futility_columns(results, "fixed", 20000.0, "success")["unreachable_recognised"] == 0.0
