"""The planning protocol: objective policies plan through ``propose``; goals default to none."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pytest

from instruments.types import ParamValue
from policies.protocol import ObjectivePolicy, Observation, PlanningContext, PlanningGoals, Policy, Proposal

pytestmark = pytest.mark.timeout(30)


class _Recording(ObjectivePolicy):
    """Remembers what ``propose`` was given and proposes the pending points back."""

    name = "recording"

    def __init__(self) -> None:
        self.calls: list[tuple[Sequence[Observation], Sequence[Mapping[str, ParamValue]], int]] = []

    def propose(
        self, history: Sequence[Observation], pending: Sequence[Mapping[str, ParamValue]], n: int
    ) -> list[Proposal]:
        self.calls.append((history, pending, n))
        return [Proposal(params=dict(p), policy=self.name) for p in pending][:n]


def test_objective_policy_plan_passes_history_and_pending_through() -> None:
    history = [Observation(params={"x": 0.1}, value=1.0, sigma=0.1, attempt_id="a0")]
    pending = [{"x": 0.5}, {"x": 0.7}]
    policy = _Recording()
    context = PlanningContext(
        history=history, pending=pending, goals=PlanningGoals(best_probability=0.9), instrument_models={"i": None}
    )
    proposals = policy.plan(context, 2)
    assert policy.calls == [(history, pending, 2)]
    assert policy.calls[0][0] is history and policy.calls[0][1] is pending  # passed through, not copied
    assert [p.params for p in proposals] == pending
    assert isinstance(policy, Policy)


def test_objective_policy_needs_propose() -> None:
    class _Incomplete(ObjectivePolicy):
        name = "incomplete"

    with pytest.raises(TypeError, match="propose"):
        _Incomplete()  # type: ignore[abstract]


def test_planning_goals_default_to_none() -> None:
    goals = PlanningGoals()
    assert goals.relative_precision == {} and goals.best_probability is None and goals.is_empty()
    assert not PlanningGoals(best_probability=0.95).is_empty()
    assert not PlanningGoals(relative_precision={"radius": 0.02}).is_empty()
    assert PlanningContext().goals.is_empty()


def test_the_context_goals_win_when_it_has_any() -> None:
    built_with = PlanningGoals(relative_precision={"radius": 0.02})
    own = PlanningGoals(best_probability=0.99)
    assert PlanningContext().goals_or(built_with) is built_with
    assert PlanningContext(goals=own).goals_or(built_with) is own


def test_a_categorical_with_one_choice_is_a_design_space_of_one_configuration() -> None:
    from policies.space import DesignSpace

    space = DesignSpace.model_validate({"parameters": [
        {"name": "configuration", "type": "categorical", "choices": ["5m"]},
        {"name": "exposure_seconds", "type": "continuous", "low": 30.0, "high": 600.0},
    ]})
    points = space.sample(8, seed=1)
    assert {p["configuration"] for p in points} == {"5m"} and len(points) == 8
    assert space.decode(space.encode(points)) == points
