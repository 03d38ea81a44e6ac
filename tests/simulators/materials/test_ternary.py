"""The ternary section's fields tile the triangle, conserve mass (lever rule) and change continuously."""

from __future__ import annotations

import numpy as np
import pytest

from simulators.materials.ternary import TernarySection, to_barycentric, to_plane

pytestmark = pytest.mark.timeout(60)


def _section(seed: int) -> TernarySection:
    rng = np.random.default_rng(seed)
    return TernarySection(rng.uniform(0.05, 0.4, size=(3, 3)), rng.uniform(0.6, 0.9, size=3))


def _fractions(section: TernarySection, x: np.ndarray) -> np.ndarray:
    field = section.field(x)
    out = np.zeros(3)
    out[list(field.phases)] = field.fractions
    return out


def _random_compositions(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).dirichlet(np.ones(3), size=n)


def test_plane_and_barycentric_coordinates_invert_each_other() -> None:
    x = _random_compositions(50, 1)
    np.testing.assert_allclose(to_barycentric(to_plane(x)), x, atol=1e-12)


@pytest.mark.parametrize("seed", range(5))
def test_every_composition_lies_in_one_field_whose_phases_balance_its_mass(seed: int) -> None:
    section = _section(seed)
    seen = set()
    for x in _random_compositions(400, seed + 100):
        field = section.field(x)
        seen.add(field.phases)
        assert sum(field.fractions) == pytest.approx(1.0, abs=1e-9)
        assert min(field.fractions) >= 0.0
        balance = sum(f * c for f, c in zip(field.fractions, field.compositions))
        np.testing.assert_allclose(balance, x, atol=1e-9)  # the lever rule: phases add up to the sample
    assert {len(p) for p in seen} == {1, 2, 3}


@pytest.mark.parametrize("seed", range(3))
def test_phase_fractions_change_continuously_across_boundaries(seed: int) -> None:
    section = _section(seed)
    rng = np.random.default_rng(seed)
    for x in _random_compositions(300, seed + 200):
        step = rng.normal(0.0, 1e-5, size=3)
        y = np.clip(x + step - step.mean(), 0.0, None)
        y /= y.sum()
        assert np.max(np.abs(_fractions(section, x) - _fractions(section, y))) < 1e-2


def test_fractions_vanish_on_a_single_phase_fields_edge_and_follow_the_lever_rule_on_a_binary() -> None:
    section = TernarySection(np.array([[0, 0.2, 0.1], [0.1, 0, 0.1], [0.1, 0.1, 0]]), np.array([0.8, 0.8, 0.8]))
    for t in np.linspace(0.0, 1.0, 41):
        x = np.array([1 - t, t, 0.0])
        # on edge AB: A dissolves up to 0.2 of B, B up to 0.1 of A → fraction of B = (t − 0.2) / (0.9 − 0.2)
        expected = min(max((t - 0.2) / 0.7, 0.0), 1.0)
        assert _fractions(section, x)[1] == pytest.approx(expected, abs=1e-9)


def test_mutually_complete_solubility_is_refused() -> None:
    with pytest.raises(ValueError, match="solubility"):
        TernarySection(np.array([[0, 0.6, 0.1], [0.5, 0, 0.1], [0.1, 0.1, 0]]), np.array([0.8, 0.8, 0.8]))
