"""Expected seconds of a sample: the median of past costs, or a GP on log seconds when they vary."""

from __future__ import annotations

import numpy as np
import pytest

from policies.map_cost import DEFAULT_SECONDS, CostModel
from tests.policies.map_toys import outcome, point, ternary

pytestmark = pytest.mark.timeout(60)


def test_default_then_median_then_a_model_where_costs_vary() -> None:
    space = ternary()
    X = space.encode([point(0.1, 0.4), point(0.9, 0.05)])
    assert CostModel(space, []).kind == "default"
    assert CostModel(space, []).expected_seconds(X).tolist() == [DEFAULT_SECONDS] * 2
    same = [outcome(i, point(a, 0.1), seconds=300.0) for i, a in enumerate((0.1, 0.3, 0.5, 0.7))]
    assert CostModel(space, same).kind == "median" and CostModel(space, same).expected_seconds(X).tolist() == [300.0, 300.0]
    # a-rich recipes take 10x longer (a slow anneal, say); failed samples' time counts too.
    varied = [outcome(i, point(a, b), seconds=100.0 if a < 0.5 else 1000.0) for i, (a, b) in enumerate(
        [(0.0, 0.5), (0.1, 0.2), (0.2, 0.6), (0.3, 0.1), (0.6, 0.2), (0.7, 0.1), (0.8, 0.1), (0.9, 0.0)])]
    varied.append(outcome(9, point(0.85, 0.1), {}, seconds=1200.0, status="failed"))
    model = CostModel(space, varied)
    cheap, dear = model.expected_seconds(X)
    assert model.kind == "gp" and cheap < 250 < 600 < dear, (cheap, dear)
    assert np.isfinite(model.expected_seconds(space.encode(space.sample(32, 0)))).all()


def test_a_failed_synthesis_does_not_make_its_neighbourhood_look_cheap() -> None:
    """Made samples cost the same everywhere; one failed synthesis (no characterisation: half the
    time) is a chance event, not a cheap recipe. Fitted with the rest, it made the model predict
    about half the cost around it (so a cost-aware acquisition favoured recipes next to a failure)."""
    space = ternary()
    made = [outcome(i, point(a, b), seconds=7000.0) for i, (a, b) in enumerate(
        [(0.1, 0.1), (0.1, 0.7), (0.4, 0.3), (0.7, 0.1), (0.2, 0.4), (0.5, 0.1), (0.3, 0.6), (0.8, 0.15)])]
    failed = outcome(9, point(0.33, 0.05), {}, seconds=3500.0, status="failed")
    model = CostModel(space, [*made, failed])
    near_the_failure = model.expected_seconds(space.encode([point(0.33, 0.06)]))[0]
    assert near_the_failure > 0.9 * 7000.0, (model.kind, near_the_failure)
    assert CostModel(space, [failed]).expected_seconds(space.encode([point(0.3, 0.3)]))[0] == 3500.0  # only failures: their cost
