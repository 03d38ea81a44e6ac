"""The guard: design space first, then a free instrument's own check; one path for new and resumed attempts."""

from __future__ import annotations

import asyncio
from functools import partial
from pathlib import Path

import pytest

from agent.guard import Guard, design_space_refusal
from agent.runtime import LocalHandle
from agent.store import AttemptState
from instruments.actor import InstrumentService
from policies.space import DesignSpace
from simulators.synthetic import SyntheticPropertyDriver, SyntheticSettings

pytestmark = pytest.mark.timeout(60)

SPACE = DesignSpace.model_validate({"parameters": [
    {"name": "temperature", "type": "continuous", "low": 300.0, "high": 500.0},
    {"name": "time", "type": "continuous", "low": 1.0, "high": 60.0},
]})


def _guard(tmp_path: Path) -> Guard:
    # The instrument may go to 450 K only, although the design space reaches 500 K.
    settings = SyntheticSettings(inputs={"temperature": (300.0, 450.0), "time": (1.0, 60.0)}, journal_dir=str(tmp_path))
    handles = {name: LocalHandle(InstrumentService(partial(SyntheticPropertyDriver, name, settings))) for name in ("r-1", "r-2")}
    return Guard(SPACE, handles)


def test_a_point_outside_the_design_space_is_refused_without_asking_an_instrument(tmp_path: Path) -> None:
    free = ["r-1", "r-2"]
    verdict = asyncio.run(_guard(tmp_path).verdict("c-00000", {"temperature": 900.0, "time": 10.0}, None, free))
    assert verdict.path == (AttemptState.REFUSED,) and verdict.instrument is None
    assert verdict.reason == f"outside the design space: {design_space_refusal(SPACE, {'temperature': 900.0, 'time': 10.0})}"
    assert "temperature" in verdict.reason and free == ["r-1", "r-2"]


def test_the_instrument_check_refuses_what_the_hardware_must_not_do(tmp_path: Path) -> None:
    free = ["r-1", "r-2"]
    verdict = asyncio.run(_guard(tmp_path).verdict("c-00000", {"temperature": 480.0, "time": 10.0}, None, free))
    assert verdict.path == (AttemptState.VALIDATED, AttemptState.REFUSED)
    assert verdict.reason.startswith("instrument limits:") and "temperature" in verdict.reason  # type: ignore[union-attr]
    assert free == ["r-1", "r-2"]  # nothing was taken


def test_an_accepted_point_takes_the_first_free_instrument(tmp_path: Path) -> None:
    free = ["r-2", "r-1"]
    verdict = asyncio.run(_guard(tmp_path).verdict("c-00000", {"temperature": 400.0, "time": 10.0}, "s", free))
    assert verdict.path == (AttemptState.VALIDATED, AttemptState.DISPATCHED) and verdict.instrument == "r-2"
    assert free == ["r-1"]


def test_a_resumed_validated_attempt_goes_straight_to_the_instrument(tmp_path: Path) -> None:
    free = ["r-1"]
    verdict = asyncio.run(_guard(tmp_path).verdict("c-00003", {"temperature": 400.0, "time": 10.0}, None, free,
                                                   state=AttemptState.VALIDATED))
    assert verdict.path == (AttemptState.DISPATCHED,) and verdict.instrument == "r-1" and free == []


class _BrokenCheck(SyntheticPropertyDriver):
    """A driver whose check has a bug: it raises something other than InstrumentLimitError."""

    def check(self, request):  # type: ignore[no-untyped-def]
        raise KeyError("calibration table has no entry for this temperature")


def test_a_check_that_raises_refuses_the_request_with_its_reason(tmp_path: Path) -> None:
    settings = SyntheticSettings(inputs={"temperature": (300.0, 500.0), "time": (1.0, 60.0)}, journal_dir=str(tmp_path))
    guard = Guard(SPACE, {"r-1": LocalHandle(InstrumentService(partial(_BrokenCheck, "r-1", settings)))})
    free = ["r-1"]
    verdict = asyncio.run(guard.verdict("c-00000", {"temperature": 400.0, "time": 10.0}, None, free))
    assert verdict.path == (AttemptState.VALIDATED, AttemptState.REFUSED) and free == ["r-1"]
    assert verdict.reason == "instrument check failed on r-1: 'calibration table has no entry for this temperature'"
