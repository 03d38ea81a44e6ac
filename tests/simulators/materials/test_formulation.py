"""The formulation system: spheres → cylinders → lamellae with the packing parameter, sizes from the
packing geometry, boundaries that move with the seed."""

from __future__ import annotations

import collections

import numpy as np
import pytest

from simulators.materials import FormulationSystem, FormulationSystemSettings, RecipeError, materials_system_from_settings

pytestmark = pytest.mark.timeout(60)
EXACT = {"composition_scatter": 0.0, "size_scatter": 0.0}


def _system(seed: int = 0, **settings: object) -> FormulationSystem:
    system = materials_system_from_settings(FormulationSystemSettings.model_validate({"seed": seed, **settings}))
    assert isinstance(system, FormulationSystem)
    return system


@pytest.mark.parametrize("seed", range(10))
def test_every_seed_has_spheres_cylinders_and_lamellae_on_the_grid(seed: int) -> None:
    system = _system(seed)
    grid = system.dense_grid(12)
    counts = collections.Counter(system.label(r) for r in grid)
    assert sorted(counts) == ["cylinder", "lamellar", "sphere"]
    assert min(counts.values()) >= 0.05 * len(grid)
    assert all(abs(sum(r.values()) - 1) < 1e-9 for r in grid)


def test_the_structure_follows_the_packing_parameter_as_cosurfactant_is_added() -> None:
    system = _system(1, **EXACT)
    labels, sizes = [], []
    for c in np.linspace(0.0, 0.1, 41):
        truth = system.truth({"amphiphile": 0.05, "cosurfactant": c, "water": 0.95 - c}, "s")
        labels.append(truth.label)
        sizes.append((truth.model, truth.parameters.get("radius", truth.parameters.get("thickness")), truth.parameters.get("length")))
    order = [label for i, label in enumerate(labels) if i == 0 or label != labels[i - 1]]
    assert order == ["sphere", "cylinder", "lamellar"]  # never back: p grows with the co-surfactant
    radii = [size for model, size, _ in sizes if model == "sphere"]
    lengths = [length for model, _, length in sizes if model == "cylinder"]
    assert np.all(np.diff(radii) > 0) and np.all(np.diff(lengths) > 0)  # sizes change with composition
    assert lengths[-1] > 5 * lengths[0]


def test_the_truth_is_a_sasmodels_sample_at_the_structures_volume_fraction() -> None:
    truth = _system(2, **EXACT).truth({"amphiphile": 0.08, "cosurfactant": 0.0, "water": 0.92}, "s")
    assert truth.scale == pytest.approx(0.08)
    assert truth.model == truth.label and truth.parameters["sld_solvent"] == 6.37


def test_truth_is_determined_by_seed_recipe_and_sample_and_seeds_move_the_boundaries() -> None:
    recipe = {"amphiphile": 0.1, "cosurfactant": 0.05, "water": 0.85}
    assert _system(3).truth(recipe, "a") == _system(3).truth(recipe, "a")
    assert _system(3).truth(recipe, "a").made != _system(3).truth(recipe, "b").made
    grid = _system(0).dense_grid(12)
    maps = [[_system(seed).label(r) for r in grid] for seed in range(4)]
    assert all(np.mean([x != y for x, y in zip(maps[a], maps[b])]) > 0.02 for a in range(4) for b in range(a + 1, 4))


def test_a_recipe_outside_the_formulation_range_names_the_field() -> None:
    with pytest.raises(RecipeError, match="recipe.amphiphile"):
        _system().label({"amphiphile": 0.5, "cosurfactant": 0.0, "water": 0.5})
