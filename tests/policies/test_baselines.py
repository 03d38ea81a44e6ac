"""Space-filling baselines: feasible, and the k-th point does not depend on the batching."""

from __future__ import annotations

import pytest

from policies.baselines import RandomPolicy, SobolPolicy, fallback_proposals, space_filling_points
from policies.protocol import Observation
from tests.policies.spaces import mixed_space, ternary_space


@pytest.mark.parametrize("policy_class", [SobolPolicy, RandomPolicy])
@pytest.mark.parametrize("make_space", [ternary_space, mixed_space])
def test_points_are_feasible_and_batch_invariant(policy_class, make_space) -> None:
    space = make_space()
    policy = policy_class(space, seed=11)
    all_at_once = policy.propose([], [], 7)

    # Same campaign asked one, then two (with the first in flight), then four after results arrived.
    first = policy.propose([], [], 1)
    second = policy.propose([], [first[0].params], 2)
    history = [Observation(params=p.params, value=0.0) for p in first + second]
    third = policy.propose(history, [], 4)
    stepwise = first + second + third

    assert [p.params for p in stepwise] == [p.params for p in all_at_once]
    assert [p.reason["index"] for p in stepwise] == list(range(7))
    assert all(p.reason["phase"] == "space-filling" and p.policy == policy_class.name for p in stepwise)
    assert all(space.violations(p.params) == [] for p in stepwise)


def test_sobol_and_random_differ_and_seeds_matter() -> None:
    space = ternary_space()
    sobol = [p.params for p in SobolPolicy(space, seed=1).propose([], [], 4)]
    random = [p.params for p in RandomPolicy(space, seed=1).propose([], [], 4)]
    other_seed = [p.params for p in SobolPolicy(space, seed=2).propose([], [], 4)]
    assert sobol != random and sobol != other_seed


def test_fallback_proposals_are_feasible_and_say_why() -> None:
    space = ternary_space()
    proposals = fallback_proposals(space, 3, seed=4, index=10, error="NotPSDError: matrix not p.d.")
    assert [p.params for p in proposals] == space_filling_points(space, 10, 3, 4)
    for i, proposal in enumerate(proposals):
        assert proposal.policy == "fallback-sobol"
        assert proposal.reason["fallback"] is True and proposal.reason["error"].startswith("NotPSDError")
        assert proposal.reason["index"] == 10 + i
        assert space.violations(proposal.params) == []


def test_zero_and_negative_batch_sizes() -> None:
    assert SobolPolicy(ternary_space()).propose([], [], 0) == []
    with pytest.raises(ValueError, match="n must be"):
        RandomPolicy(ternary_space()).propose([], [], -1)


@pytest.mark.parametrize("policy_class", [SobolPolicy, RandomPolicy])
def test_the_kept_sequence_gives_the_points_a_fresh_generation_gives(policy_class) -> None:
    """The policy keeps the points generated so far (a decision is then not O(steps)); one step at a
    time, across the doublings of what it keeps, it proposes exactly the fresh sequence's points."""
    space = mixed_space()
    policy = policy_class(space, seed=5)
    fresh = space_filling_points(space, 0, 40, 5, policy_class.method)
    history: list[Observation] = []
    for k in range(40):
        (proposal,) = policy.propose(history, [], 1)
        assert proposal.params == fresh[k]
        assert proposal.reason["index"] == k
        history.append(Observation(params=proposal.params, value=0.0))
    assert policy.propose(history[:7], [], 2)[1].params == fresh[8]  # any start, also behind the kept end
