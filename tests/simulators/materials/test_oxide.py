"""The oxide system: 7 phase regions of 1, 2 and 3 phases, lever-rule fractions, Vegard shifts,
grain growth with temperature, per-sample scatter, and boundaries that move with the seed."""

from __future__ import annotations

import collections

import numpy as np
import pytest

from simulators.materials import OxideSystem, OxideSystemSettings, RecipeError, materials_system_from_settings

pytestmark = pytest.mark.timeout(120)
EXACT = {"composition_scatter": 0.0, "temperature_scatter_k": 0.0, "size_scatter": 0.0}


def _system(seed: int = 0, **settings: object) -> OxideSystem:
    system = materials_system_from_settings(OxideSystemSettings.model_validate({"seed": seed, **settings}))
    assert isinstance(system, OxideSystem)
    return system


def _recipe(mgo: float, zno: float, cuo: float, temperature: float = 1373.0) -> dict[str, float]:
    return {"MgO": mgo, "ZnO": zno, "CuO": cuo, "anneal_temperature_k": temperature}


@pytest.mark.parametrize("seed", range(10))
def test_a_dense_grid_holds_seven_regions_of_one_two_and_three_phases(seed: int) -> None:
    system = _system(seed)
    counts = collections.Counter(system.label(r) for r in system.dense_grid(8))
    assert sorted(counts) == system.labels()
    kinds = collections.Counter(label.count("+") + 1 for label in counts)
    assert kinds == {1: 3, 2: 3, 3: 1}
    assert all(set(label.split("+")) <= {"mgo_periclase", "zno_zincite", "cuo_tenorite"} for label in counts)


def test_fractions_sum_to_one_and_the_phases_add_up_to_the_sample() -> None:
    system = _system(2, **EXACT)
    for recipe in system.dense_grid(6):
        truth = system.truth(recipe, "s")
        assert sum(p.weight_fraction for p in truth.phases) == pytest.approx(1.0, abs=1e-9)
        for component in ("MgO", "ZnO", "CuO"):
            made = sum(p.weight_fraction * p.composition[component] for p in truth.phases)
            assert made == pytest.approx(recipe[component], abs=1e-6)  # lever rule (mass balance)
        assert truth.label == system.label(recipe)


def test_the_minority_phase_grows_continuously_from_zero_across_a_two_phase_region() -> None:
    system = _system(3, **EXACT)
    line = [_recipe(1 - t, t, 0.0) for t in np.linspace(0.0, 1.0, 201)]
    zincite = np.array([
        sum(p.weight_fraction for p in system.truth(r, "s").phases if p.phase == "zno_zincite") for r in line
    ])
    assert zincite[0] == 0.0 and zincite[-1] == 1.0
    assert np.all(np.diff(zincite) >= -1e-12)
    assert np.max(np.diff(zincite)) < 0.02  # no jump: fractions are continuous across the boundaries
    two_phase = [system.label(r) == "mgo_periclase+zno_zincite" for r in line]
    assert sum(two_phase) > 20
    inside = zincite[two_phase]
    assert inside.min() < 0.05 and inside.max() > 0.95  # minor phases next to both boundaries


def test_the_vegard_shift_grows_monotonically_along_a_solid_solution_line() -> None:
    system = _system(1, **EXACT)
    strains, compositions = [], []
    for t in np.linspace(0.0, 0.6, 61):
        truth = system.truth(_recipe(1 - t, t, 0.0), "s")
        periclase = next(p for p in truth.phases if p.phase == "mgo_periclase")
        strains.append(periclase.lattice_strain)
        compositions.append(periclase.composition["ZnO"])
    strains_a, zinc = np.array(strains), np.array(compositions)
    assert np.all(np.diff(strains_a) >= -1e-12) and strains_a[-1] > strains_a[0] + 0.002
    coefficient = system.settings.components[0].vegard["ZnO"]
    assert coefficient > 0
    np.testing.assert_allclose(strains_a, coefficient * zinc, atol=1e-12)  # Vegard: Zn²⁺ expands periclase
    assert np.ptp(zinc[-10:]) < 1e-9  # in the two-phase field the periclase is saturated: shift stops


def test_crystallites_grow_with_annealing_temperature() -> None:
    system = _system(0, **EXACT)
    sizes = [system.truth(_recipe(0.34, 0.33, 0.33, t), "s").phases[0].crystallite_size_nm for t in range(773, 1374, 100)]
    assert np.all(np.diff(sizes) > 0) and sizes[-1] > 3 * sizes[0]


def test_a_single_phase_field_widens_with_temperature() -> None:
    system = _system(5)
    single = [sum(system.label(r) == "mgo_periclase" for r in system.dense_grid(20) if r["anneal_temperature_k"] == t)
              for t in (773.0, 1373.0)]
    assert single[1] > single[0]


def test_truth_is_determined_by_seed_recipe_and_sample() -> None:
    recipe = _recipe(0.5, 0.3, 0.2, 1000.0)
    assert _system(4).truth(recipe, "s-1") == _system(4).truth(recipe, "s-1")
    one, other = _system(4).truth(recipe, "s-1"), _system(4).truth(recipe, "s-2")
    assert one.made != other.made  # synthesis scatter per sample
    assert abs(one.made["MgO"] - 0.5) < 0.03 and abs(one.made["anneal_temperature_k"] - 1000.0) < 30


def test_different_seeds_place_the_boundaries_differently() -> None:
    grid = _system(0).dense_grid(6)
    maps = [[_system(seed).label(r) for r in grid] for seed in range(4)]
    for a in range(4):
        for b in range(a + 1, 4):
            assert np.mean([x != y for x, y in zip(maps[a], maps[b])]) > 0.03


def test_a_composition_may_leave_out_one_fraction() -> None:
    system = _system(0)
    assert system.label({"MgO": 0.5, "ZnO": 0.3, "anneal_temperature_k": 900.0}) == system.label(_recipe(0.5, 0.3, 0.2, 900.0))


@pytest.mark.parametrize(("recipe", "field"), [
    ({"MgO": 0.5, "ZnO": 0.3, "CuO": 0.3, "anneal_temperature_k": 900.0}, "sum to 1"),
    ({"MgO": 0.5, "anneal_temperature_k": 900.0}, "lacks the fractions"),
    ({"MgO": 0.5, "ZnO": 0.3, "CuO": 0.2}, "anneal_temperature_k"),
    ({"MgO": 0.5, "ZnO": 0.3, "CuO": 0.2, "anneal_temperature_k": 2000.0}, "outside"),
    ({"MgO": 1.2, "ZnO": -0.2, "CuO": 0.0, "anneal_temperature_k": 900.0}, "recipe.MgO"),
])
def test_a_recipe_the_system_cannot_make_is_an_error_naming_the_recipe(recipe: dict[str, float], field: str) -> None:
    with pytest.raises(RecipeError, match="recipe") as error:
        _system(0).truth(recipe, "s")
    assert field in str(error.value)


def test_settings_name_their_mistakes() -> None:
    with pytest.raises(ValueError, match="vegard"):
        OxideSystemSettings.model_validate({"components": [
            {"name": "MgO", "phase": "mgo_periclase", "solubility": [0.1, 0.2], "vegard": {"NiO": 0.01}},
            {"name": "ZnO", "phase": "zno_zincite", "solubility": [0.1, 0.2]},
            {"name": "CuO", "phase": "cuo_tenorite", "solubility": [0.1, 0.2]},
        ]})
    with pytest.raises(ValueError, match="gamma"):
        OxideSystemSettings.model_validate({"gamma": [0.3, 0.9]})


def test_a_system_is_built_from_a_campaign_files_mapping_and_a_bad_one_names_the_field() -> None:
    from pydantic import ValidationError

    system = materials_system_from_settings({"kind": "oxide", "seed": 3})
    assert isinstance(system, OxideSystem) and system.seed == 3
    with pytest.raises(ValidationError, match="kind"):
        materials_system_from_settings({"kind": "alloy"})
    with pytest.raises(ValidationError, match="temperature_scatter_k"):
        materials_system_from_settings({"kind": "oxide", "temperature_scatter_k": -1})
