"""Phase-set labels are learned as per-phase presence: a set's probability is the product of its
phases' presence and the others' absence, so one- and two-phase samples teach the three-phase field."""

from __future__ import annotations

import numpy as np
import pytest

from policies.map_coding import ABSENT_WEIGHT, ClassCoding, PresenceCoding, presence_classes
from policies.map_model import fit_phase_map, label_coding
from tests.policies.map_toys import outcome, point, ternary

pytestmark = pytest.mark.timeout(120)


def test_presence_classes_are_every_set_up_to_one_more_than_the_largest_seen() -> None:
    classes, phases = presence_classes(["a+b", "c"])
    assert phases == ["a", "b", "c"]
    assert classes[:2] == ["a+b", "c"] and sorted(classes[2:]) == ["a", "a+b+c", "a+c", "b", "b+c"]
    classes, _ = presence_classes(["a", "b", "c", "d"])
    assert sorted(classes)[:5] == ["a", "a+b", "a+c", "a+d", "b"] and len(classes) == 4 + 6


def test_soft_set_labels_become_presence_mass_and_back() -> None:
    coding = PresenceCoding(["a", "a+b", "b"], ["a", "b"])
    mass = coding.latent_mass(np.array([[0.0, 0.9, 0.05], [0.0, 0.0, 0.0]]))
    # a present in {a+b} (0.9), absent in {b} (0.05, weighted: a missed phase is the common error);
    # b present in both (0.95), absent nowhere.
    assert mass[0].tolist() == pytest.approx([0.9, 0.05 * ABSENT_WEIGHT, 0.95, 0.0])
    assert 0 < ABSENT_WEIGHT < 1
    assert mass[1].tolist() == [0.0, 0.0, 0.0, 0.0]  # not identified: no mass on any phase
    # Presence a = 0.9, b = 0.5 → a: 0.45, a+b: 0.45, b: 0.05, renormalised over the three sets.
    p = coding.classes(np.array([0.9, 0.1, 0.5, 0.5]))
    assert p.tolist() == pytest.approx([0.45 / 0.95, 0.45 / 0.95, 0.05 / 0.95])


def test_the_coding_follows_the_labels() -> None:
    sets = [outcome(0, point(0.8, 0.1), {"a": 0.95}), outcome(1, point(0.1, 0.1), {"a+c": 0.9, "x+y": 0.05})]
    coding = label_coding(sets)
    assert isinstance(coding, PresenceCoding)
    assert coding.phases == ["a", "c"]  # x and y are never held at p ≥ 0.5: not modelled
    assert sorted(coding.labels) == ["a", "a+c", "c"]
    assert isinstance(label_coding([outcome(0, point(0.8, 0.1), {"A": 0.95})]), ClassCoding)


def _set_truth(recipe: dict[str, float]) -> str:
    """Three terminal solid solutions, three two-phase fields and one three-phase field: phase x is
    present where its component's fraction is above 0.2 (a toy with straight boundaries)."""
    return "+".join(sorted(n for n in "abc" if recipe[n] > 0.2)) or "a+b+c"


def test_a_field_no_sample_has_seen_is_predicted_from_presence() -> None:
    """Samples only in the one- and two-phase fields: the class-per-set map cannot name the
    three-phase field at the centre, the presence map does (and is right about the others)."""
    space = ternary()
    recipes = [point(a, b) for a, b in [(0.9, 0.05), (0.05, 0.9), (0.05, 0.05), (0.45, 0.5), (0.5, 0.05),
                                        (0.05, 0.5), (0.6, 0.3), (0.3, 0.6), (0.1, 0.3), (0.3, 0.1), (0.6, 0.1),
                                        (0.1, 0.6)]]
    samples = [outcome(i, r, {_set_truth(r): 0.95}) for i, r in enumerate(recipes)]
    assert "a+b+c" not in {_set_truth(r) for r in recipes}
    phase_map = fit_phase_map(space, samples)
    centre = phase_map.probabilities_at([point(1 / 3, 1 / 3)])[0]
    assert phase_map.labels[int(np.argmax(centre))] == "a+b+c", dict(zip(phase_map.labels, centre.round(3), strict=True))
    tests = [point(a / 20, b / 20) for a in range(21) for b in range(21 - a)]
    predicted = [phase_map.labels[j] for j in np.argmax(phase_map.probabilities_at(tests), axis=1)]
    accuracy = np.mean([p == _set_truth(t) for p, t in zip(predicted, tests, strict=True)])
    assert accuracy > 0.8, accuracy
