"""A toy ternary phase diagram for the phase-map tests (written here: policies never see simulators)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from policies.protocol import SampleOutcome
from policies.space import DesignSpace


def ternary() -> DesignSpace:
    """Mole fractions a + b + c = 1, no process variable (a 2-D simplex)."""
    return DesignSpace.model_validate(
        {
            "parameters": [{"name": n, "type": "continuous", "low": 0.0, "high": 1.0, "units": "mol frac"} for n in "abc"],
            "compositions": [{"name": "abc", "parameters": ["a", "b", "c"], "total": 1.0}],
        }
    )


def truth(recipe: Mapping[str, float]) -> str:
    """Three regions: A rich in a (a > 0.5); otherwise B where b > c, else C."""
    if recipe["a"] > 0.5:
        return "A"
    return "B" if recipe["b"] > recipe["c"] else "C"


def point(a: float, b: float) -> dict[str, float]:
    return {"a": a, "b": b, "c": 1.0 - a - b}


def outcome(i: int, recipe: Mapping[str, float], labels: Mapping[str, float] | None = None, seconds: float = 100.0, **kw: object) -> SampleOutcome:
    """Sample ``i`` at ``recipe`` labelled by the truth with p = 0.95 unless ``labels`` are given."""
    return SampleOutcome(
        sample_id=f"s{i}", recipe=dict(recipe),
        label_probabilities=dict(labels) if labels is not None else {truth(recipe): 0.95}, seconds=seconds, **kw,
    )


def labelled_samples(recipes: Sequence[Mapping[str, float]]) -> list[SampleOutcome]:
    return [outcome(i, r) for i, r in enumerate(recipes)]
