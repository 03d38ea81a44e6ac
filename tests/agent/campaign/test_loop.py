"""The closed loop end to end, in process, on real Ray actors and a real store."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from agent.campaign import CampaignRunner, new_campaign_id, run_campaign
from agent.ledger import CampaignLedger
from agent.config import parse_campaign
from agent.store import Store
from instruments.types import ParamValue
from policies.protocol import ObjectivePolicy, Observation, Proposal
from simulators.synthetic import SyntheticPropertyDriver, SyntheticSettings
from tests.agent.campaign_files import instrument_settings, quickstart

pytestmark = [pytest.mark.timeout(240), pytest.mark.usefixtures("ray_local")]


def _run(data: dict, store_url: str | None = None):  # type: ignore[no-untyped-def]
    config = parse_campaign(data)
    store = Store(store_url or config.storage)
    # A fixed campaign id fixes the attempt ids, and so the simulator's noise and faults: no flakes.
    return config, store, run_campaign(config, store, campaign_id=f"{config.name}-fixed")


def test_quickstart_reaches_its_target_and_finds_the_optimum(tmp_path: Path) -> None:
    config, store, result = _run(quickstart(tmp_path))
    assert result.status == "completed", result.stop_reason
    assert result.stop_reason.startswith("targets met")
    assert result.targets["near_optimum"].met
    # The answer is right: the best measured point is near the simulator's true optimum.
    best = max(store.interpretations(result.campaign_id), key=lambda i: i.estimates["yield"].value or -1)
    params = store.attempt(best.attempt_id).params
    driver = SyntheticPropertyDriver("truth", SyntheticSettings(inputs={"temperature": (300, 500), "time": (1, 60)}))
    optimum_params, optimum = driver.true_optimum()
    assert driver.true_value(params) >= optimum - 0.1
    # Two instruments were used, and the instrument clock ran far ahead of the wall clock.
    instruments = {a.instrument for a in store.attempts(result.campaign_id) if a.instrument}
    assert instruments == {"reactor-1", "reactor-2"}
    assert result.instrument_seconds > 100 * result.wall_seconds
    # Every decision is logged with its reason.
    decisions = store.decisions(result.campaign_id)
    assert any("acquisition_value" in r for d in decisions for r in d.reasons)
    assert all(e.n_measurements > 0 for e in store.target_evaluations(result.campaign_id))


def test_nan_data_is_stored_flagged_and_not_trained_on(tmp_path: Path) -> None:
    data = instrument_settings(quickstart(tmp_path), nan_probability=0.3)
    data["budgets"] = {"max_measurements": 16}
    config, store, result = _run(data)
    assert result.status in ("completed", "budget_exhausted")
    interps = store.interpretations(result.campaign_id)
    flagged = [i for i in interps if not i.valid]
    assert flagged, "with a 30 % NaN rate some measurement must have been NaN"
    for i in flagged:
        assert "non-finite-data" in i.flags
        assert np.isnan(store.measurement(i.attempt_id).scalar("yield"))  # type: ignore[union-attr]
    ledger = CampaignLedger(store, result.campaign_id, objective=config.objective.estimate, sample=config.sample)
    ledger.load()  # what the loop rebuilds from the store, and trains on
    trained = {o.attempt_id for o in ledger.history}
    assert trained.isdisjoint({i.attempt_id for i in flagged})
    assert len(trained) == len(interps) - len(flagged)


def test_out_of_limits_proposals_are_refused_and_recorded(tmp_path: Path) -> None:
    data = quickstart(tmp_path)
    # The instrument may only go to 450 K although the design space reaches 500 K.
    instrument_settings(data, inputs={"temperature": [300.0, 450.0], "time": [1.0, 60.0]})
    data["policy"] = {"name": "sobol", "options": {}}
    data["budgets"] = {"max_measurements": 12}
    _, store, result = _run(data)
    refused = store.attempts(result.campaign_id, states=["refused"])
    assert refused, "Sobol points above 450 K must have been refused"
    for a in refused:
        assert a.reason.startswith("instrument limits:") and "temperature" in a.reason  # type: ignore[union-attr]
        assert float(a.params["temperature"]) > 450
    assert all(float(a.params["temperature"]) <= 450 for a in store.attempts(result.campaign_id, states=["analysed"]))
    assert result.n_measurements == 12


class _Exploding(ObjectivePolicy):
    """A policy that fails, to exercise the fallback path."""

    name = "exploding"

    def propose(self, history: Sequence[Observation], pending: Sequence[dict[str, ParamValue]], n: int) -> list[Proposal]:
        raise RuntimeError("model diverged")


class _OutOfSpace(ObjectivePolicy):
    """A policy that proposes a point outside the design space."""

    name = "out-of-space"

    def propose(self, history: Sequence[Observation], pending: Sequence[dict[str, ParamValue]], n: int) -> list[Proposal]:
        return [Proposal(params={"temperature": 900.0, "time": 10.0}, policy=self.name) for _ in range(n)]


@pytest.mark.parametrize("policy", [_Exploding(), _OutOfSpace()], ids=["exception", "out-of-space"])
def test_policy_failures_fall_back_and_are_recorded(tmp_path: Path, policy) -> None:  # type: ignore[no-untyped-def]
    import asyncio

    data = quickstart(tmp_path)
    data["budgets"] = {"max_measurements": 6}
    config = parse_campaign(data)
    store = Store(config.storage)
    runner = CampaignRunner(config, store, new_campaign_id(config.name))
    runner.policy = policy
    result = asyncio.run(runner.run())
    assert result.n_measurements == 6
    decisions = store.decisions(result.campaign_id)
    fallbacks = [d for d in decisions if d.fallback]
    assert fallbacks and all(d.policy == "fallback-sobol" for d in fallbacks)
    if isinstance(policy, _Exploding):
        assert all("model diverged" in (d.error or "") for d in decisions)
    else:
        refused = store.attempts(result.campaign_id, states=["refused"])
        assert refused and all("outside the design space" in (a.reason or "") and "900" in (a.reason or "") for a in refused)


def test_instrument_faults_fail_the_attempt_not_the_campaign(tmp_path: Path) -> None:
    data = instrument_settings(quickstart(tmp_path), failure_probability=0.3)
    # One reactor, so which attempts fail (drawn from each attempt id) fixes the order they fail in:
    # at most 4 in a row, below the 5 that stop a campaign (two reactors would share them by timing).
    data["instruments"][0]["count"] = 1
    data["policy"] = {"name": "sobol", "options": {}}
    data["budgets"] = {"max_measurements": 10}
    _, store, result = _run(data)
    failed = store.attempts(result.campaign_id, states=["failed"])
    assert failed and all("simulated instrument fault" in (a.reason or "") for a in failed)
    assert result.n_measurements == 10


def test_mapping_campaign_stops_on_posterior_std(tmp_path: Path) -> None:
    data = quickstart(tmp_path)
    data["design_space"]["parameters"] = [{"name": "temperature", "type": "continuous", "low": 300, "high": 500, "units": "K"}]
    data["policy"] = {"name": "qnipv", "options": {"n_initial": 4}}
    data["targets"] = [{"name": "map", "kind": "max_posterior_std", "goal": 0.05}]
    data["budgets"] = {"max_measurements": 40}
    _, store, result = _run(data)
    assert result.status == "completed", result.stop_reason
    assert result.targets["map"].value <= 0.05  # type: ignore[operator]
    assert result.n_measurements < 40


def test_composition_campaign_honours_sum_to_one(tmp_path: Path) -> None:
    data = quickstart(tmp_path)
    data["design_space"] = {
        "parameters": [{"name": n, "type": "continuous", "low": 0.0, "high": 1.0, "units": "mol frac"} for n in "abc"]
        + [{"name": "temperature", "type": "continuous", "low": 300, "high": 500, "units": "K"}],
        "compositions": [{"name": "abc", "parameters": ["a", "b", "c"]}],
        "constraints": [{"coefficients": {"a": 1.0, "temperature": 0.001}, "upper_bound": 1.2}],
    }
    data["budgets"] = {"max_measurements": 12}
    data["policy"]["options"] = {"n_initial": 4}
    # Run the whole budget, so every proposal is checked: the target cannot be evaluated before 1000
    # observations. (A probability goal of 0.999999 alone was reached — p rounds to 1.000 when ten low
    # yields make the GP flat — and the campaign stopped at 10 of 12, depending on arrival order.)
    data["targets"][0]["probability"] = 0.999999
    data["targets"][0]["min_observations"] = 1000
    config, store, result = _run(data)
    attempts = store.attempts(result.campaign_id)
    assert result.n_measurements == 12
    assert not [a for a in attempts if a.state == "refused"], [a.reason for a in attempts if a.state == "refused"]
    for a in attempts:
        assert sum(float(a.params[n]) for n in "abc") == pytest.approx(1.0, abs=1e-6)
        assert float(a.params["a"]) + 0.001 * float(a.params["temperature"]) <= 1.2 + 1e-6
    assert any(not d.fallback and d.policy == "qlognei" and d.n_history >= 4 for d in store.decisions(result.campaign_id))


def test_budget_stop_is_reported(tmp_path: Path) -> None:
    data = quickstart(tmp_path)
    data["targets"][0]["probability"] = 0.999999
    data["targets"][0]["min_observations"] = 1000  # the budget, not the target, must end it
    data["budgets"] = {"max_instrument_seconds": 10000}
    _, _, result = _run(data)
    assert result.status == "budget_exhausted"
    assert "max_instrument_seconds" in result.stop_reason
    assert not result.targets["near_optimum"].met
