"""The phase map learned from soft labels: confident near consistent data, uncertain far from it,
and never confident on a 0.5/0.5 or not-identified sample."""

from __future__ import annotations

import numpy as np
import pytest

from policies.map_model import UNSEEN_LABEL, DirichletTransform, fit_phase_map, label_matrix, map_labels
from tests.policies.map_toys import labelled_samples, outcome, point, ternary, truth

pytestmark = pytest.mark.timeout(120)


def test_dirichlet_targets_order_and_noise() -> None:
    y, var = DirichletTransform().targets(np.array([[0.95, 0.0], [0.5, 0.5], [0.0, 0.0]]))
    assert y[0, 0] > y[1, 0] > y[0, 1]  # confident > half > absent
    assert var[0, 0] < var[1, 0] < var[0, 1]  # absent labels are the noisiest targets
    assert y[2, 0] == y[2, 1] and var[2, 0] == var[2, 1]  # no mass: the same for every label


def test_labels_keep_known_order_and_add_an_unseen_class_when_alone() -> None:
    samples = [outcome(0, point(0.2, 0.4), {"B": 0.9}), outcome(1, point(0.8, 0.1), {"A": 0.6})]
    assert map_labels(samples, ["C"]) == ["C", "A", "B"]
    assert map_labels(samples[:1]) == ["B", UNSEEN_LABEL]
    assert label_matrix(samples, ["A", "B"]).tolist() == [[0.0, 0.9], [0.6, 0.0]]


def test_confident_near_labelled_points_uncertain_far_from_them() -> None:
    space = ternary()
    # Labelled samples only in the a-poor half; the a-rich corner is far from every sample.
    recipes = [point(a, b) for a in (0.0, 0.1, 0.2, 0.3) for b in (0.05, 0.3, 0.55) if a + b <= 1]
    phase_map = fit_phase_map(space, labelled_samples(recipes))
    near = phase_map.probabilities_at([point(0.1, 0.05), point(0.1, 0.55)])
    for row, recipe in zip(near, [point(0.1, 0.05), point(0.1, 0.55)], strict=True):
        assert phase_map.labels[int(np.argmax(row))] == truth(recipe)
        assert row.max() > 0.8
    far = phase_map.probabilities_at([point(1.0, 0.0)])[0]
    assert far.max() < 0.8, far


def test_a_half_half_sample_does_not_make_the_map_confident() -> None:
    space = ternary()
    recipe = point(0.2, 0.4)
    phase_map = fit_phase_map(space, [outcome(0, recipe, {"B": 0.5, "C": 0.5})])
    p = phase_map.probabilities_at([recipe])[0]
    assert p.max() < 0.65, p
    hard = fit_phase_map(space, [outcome(0, recipe, {"B": 0.95}), outcome(1, point(0.2, 0.1), {"C": 0.95})])
    assert hard.probabilities_at([recipe])[0][hard.labels.index("B")] > 0.8  # soft labels do matter


def test_a_not_identified_sample_is_maximal_uncertainty_not_a_label() -> None:
    space = ternary()
    confident = [outcome(0, point(0.1, 0.7)), outcome(1, point(0.1, 0.1))]  # B and C
    unknown = outcome(2, point(0.8, 0.1), {}, status="not_identified")
    phase_map = fit_phase_map(space, [*confident, unknown])
    p = phase_map.probabilities_at([point(0.8, 0.1)])[0]
    assert p.max() < 0.7, dict(zip(phase_map.labels, p, strict=True))
    alone = fit_phase_map(space, [unknown])
    assert alone.labels == [UNSEEN_LABEL] or alone.probabilities_at([point(0.8, 0.1)]).max() < 0.7


def test_failed_samples_teach_nothing_and_no_labelled_sample_is_an_error() -> None:
    with pytest.raises(ValueError, match="no labelled sample"):
        fit_phase_map(ternary(), [outcome(0, point(0.3, 0.3), {"A": 1.0}, status="failed")])
