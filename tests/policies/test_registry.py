"""Building policies by name, with errors that name what is wrong."""

from __future__ import annotations

import pytest

from policies.baselines import RandomPolicy, SobolPolicy
from policies.bayesian import ActiveLearning, BayesianOptimisation
from policies.models import ModelCache
from policies.protocol import Policy
from policies.registry import POLICIES, build_policy, policy_options
from tests.policies.spaces import plane_space


PLANNERS = ("sas_", "xrd_", "phase_map", "map_", "region_")
"""Measurement planners need their instrument's design space and analysis: tested in
tests/policies/test_sas.py and test_xrd.py; across-sample policies (self-driving lab) below and in
tests/policies/test_phase_map.py and its neighbours."""


def test_every_registered_policy_builds_and_follows_the_protocol() -> None:
    assert {k: v for k, v in POLICIES.items() if not k.startswith(PLANNERS)} == {
        "qlognei": BayesianOptimisation,
        "qnipv": ActiveLearning,
        "sobol": SobolPolicy,
        "random": RandomPolicy,
    }
    assert {k for k in POLICIES if k.startswith(PLANNERS)} == {
        "sas_adaptive", "sas_oracle", "sas_fixed", "sas_round_robin", "sas_random", "xrd_adaptive", "xrd_full_scan", "xrd_heuristic",
        "phase_map", "phase_map_unsupervised", "map_grid", "map_random", "region_bo", "region_mobo",
    }
    for name in (n for n in POLICIES if not n.startswith(PLANNERS)):
        policy = build_policy(name, plane_space(), direction="minimize", seed=3, options={})
        assert isinstance(policy, Policy) and policy.name == name


def test_options_and_campaign_arguments_reach_the_policy() -> None:
    cache = ModelCache()
    policy = build_policy(
        "qlognei", plane_space(), direction="minimize", seed=5, options={"n_initial": 8, "num_restarts": 2}, cache=cache
    )
    assert isinstance(policy, BayesianOptimisation)
    assert (policy.n_initial, policy.num_restarts, policy.seed, policy.direction) == (8, 2, 5, "minimize")
    assert policy.cache is cache


def test_unknown_policy_is_named_with_the_valid_ones() -> None:
    with pytest.raises(ValueError, match=r"unknown policy 'qei'.*'qlognei', 'qnipv', 'random', 'region_bo', 'region_mobo', 'sas_adaptive'"):
        build_policy("qei", plane_space(), direction="maximize", seed=0, options={})


def test_unknown_option_is_named_with_the_valid_ones() -> None:
    with pytest.raises(ValueError, match=r"'qnipv' has no option\(s\) \['n_init'\].*n_initial"):
        build_policy("qnipv", plane_space(), direction="maximize", seed=0, options={"n_init": 3})
    # Baselines take no options at all: nothing is dropped silently.
    with pytest.raises(ValueError, match=r"'sobol' has no option\(s\) \['n_initial'\]; valid options: none"):
        build_policy("sobol", plane_space(), direction="maximize", seed=0, options={"n_initial": 3})
    with pytest.raises(ValueError, match=r"\['seed'\] are set by the campaign"):
        build_policy("random", plane_space(), direction="maximize", seed=0, options={"seed": 3})


def test_invalid_option_values_are_value_errors() -> None:
    with pytest.raises(ValueError, match="mc_samples"):
        build_policy("qlognei", plane_space(), direction="maximize", seed=0, options={"mc_samples": "many"})
    assert policy_options("qlognei") == ["n_initial", "num_restarts", "raw_samples", "mc_samples"]
    assert policy_options("random") == []


def test_the_registry_names_each_class_by_its_own_name_and_imports_it_only_when_asked() -> None:
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    assert all(POLICIES[name].name == name for name in POLICIES)
    script = ("import sys; from policies.registry import build_policy, POLICIES; from tests.policies.spaces import plane_space; "
              "build_policy('sobol', plane_space(), direction='maximize', seed=1); import json; "
              "print(json.dumps([m for m in ('torch', 'botorch') if m in sys.modules]))")
    root = Path(__file__).resolve().parents[2]
    run = subprocess.run([sys.executable, "-c", script], cwd=root, env={**os.environ, "PYTHONPATH": str(root)},
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout) == []  # a Sobol policy needs no model library


def test_across_sample_policies_build_with_their_options() -> None:
    from tests.policies.map_toys import ternary

    for name, options in [
        ("phase_map", {"labels": ["A", "B"], "n_grid": 32}),
        ("phase_map_unsupervised", {"features": ["peak"], "n_clusters": 2}),
        ("map_grid", {"divisions": 3}),
        ("map_random", {}),
        ("region_bo", {"estimate": "hardness", "region": ["A"]}),
        ("region_mobo", {"estimates": ["hardness", "cost"], "directions": ["maximize", "minimize"], "region": ["A"]}),
    ]:
        policy = build_policy(name, ternary(), direction="maximize", seed=1, options=options)
        assert isinstance(policy, Policy) and policy.name == name
    with pytest.raises(ValueError, match=r"option features: Field required"):
        build_policy("phase_map_unsupervised", ternary(), direction="maximize", seed=0, options={})
    with pytest.raises(ValueError, match=r"'map_grid' has no option\(s\) \['step'\]"):
        build_policy("map_grid", ternary(), direction="maximize", seed=0, options={"step": 0.1})
