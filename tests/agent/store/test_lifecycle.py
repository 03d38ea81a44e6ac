"""The attempt lifecycle: the edges of the documented diagram and nothing else."""

from __future__ import annotations

import itertools

import pytest

from agent.store.lifecycle import (
    OPEN_STATES,
    TRANSITIONS,
    AttemptState,
    CampaignStatus,
    InvalidTransition,
    check_path,
    check_transition,
)

pytestmark = pytest.mark.timeout(30)

# The diagram of ARCHITECTURE.md, written out independently of the module's table.
DOCUMENTED = {
    ("proposed", "validated"), ("proposed", "refused"),
    ("validated", "dispatched"), ("validated", "refused"),
    ("dispatched", "measured"), ("dispatched", "failed"), ("dispatched", "unknown"),
    ("unknown", "measured"), ("unknown", "dispatched"), ("unknown", "failed"),
    ("measured", "analysed"),
    # the approval gate (issue 13): validated → awaiting_approval → validated (approved) | refused (rejected)
    ("validated", "awaiting_approval"), ("awaiting_approval", "validated"), ("awaiting_approval", "refused"),
}
STATES = ["proposed", "validated", "dispatched", "measured", "analysed", "refused", "failed", "unknown", "awaiting_approval"]


def test_the_table_has_exactly_the_documented_edges() -> None:
    assert sorted(s.value for s in AttemptState) == sorted(STATES)
    table = {(before.value, after.value) for before, afters in TRANSITIONS.items() for after in afters}
    assert table == DOCUMENTED


@pytest.mark.parametrize(("before", "after"), list(itertools.product(STATES, STATES)))
def test_check_transition_allows_documented_edges_only(before: str, after: str) -> None:
    if (before, after) in DOCUMENTED:
        check_transition("a-1", before, after)
    else:
        with pytest.raises(InvalidTransition, match=f"attempt a-1: {before} → {after} is not allowed"):
            check_transition("a-1", before, after)


def test_a_rerun_is_the_one_self_loop() -> None:
    check_transition("a-1", "dispatched", "dispatched", rerun=True)
    with pytest.raises(InvalidTransition):
        check_transition("a-1", "dispatched", "dispatched")


def test_check_path_names_the_first_bad_step() -> None:
    assert check_path("a-1", "proposed", ["validated", "dispatched"]) == ["proposed", "validated", "dispatched"]
    with pytest.raises(InvalidTransition, match="validated → analysed"):
        check_path("a-1", "proposed", ["validated", "analysed", "refused"])


def test_states_and_statuses_are_their_stored_strings() -> None:
    # Records written as plain strings (before the enums) compare, hash and print as before.
    assert AttemptState("refused") == "refused" and {AttemptState.REFUSED: 1}["refused"] == 1
    assert f"{CampaignStatus.BUDGET_EXHAUSTED}" == "budget_exhausted"
    assert OPEN_STATES == {"proposed", "validated", "awaiting_approval", "dispatched", "unknown", "measured"}
    with pytest.raises(ValueError):
        AttemptState("stopped")
