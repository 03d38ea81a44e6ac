"""The same seed gives the same data: simulated noise is keyed on the campaign's seed and the attempt's
sequence number, not on the random campaign id; another seed gives other data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.agent.campaign_files import quickstart

pytestmark = [pytest.mark.timeout(240), pytest.mark.usefixtures("ray_local")]


def _measured(tmp_path: Path, name: str, seed: int) -> dict[int, tuple[dict, np.ndarray]]:
    """(params, measured yield) by attempt sequence number, of a 4-measurement Sobol campaign."""
    from agent.campaign import new_campaign_id, run_campaign
    from agent.config import parse_campaign
    from agent.store import Store

    folder = tmp_path / name
    config = parse_campaign(quickstart(folder, seed=seed, policy={"name": "sobol", "options": {}},
                                       budgets={"max_measurements": 4}))
    store = Store(config.storage)
    campaign_id = new_campaign_id(config.name)  # random, as `labpilot run` makes them
    assert run_campaign(config, store, campaign_id=campaign_id).n_measurements == 4
    return {a.seq: (a.params, store.measurement(a.id).data["yield"]) for a in store.attempts(campaign_id)}  # type: ignore[union-attr]


def test_same_seed_same_measurements_other_seed_other_measurements(tmp_path: Path) -> None:
    first, second, other = _measured(tmp_path, "a", 7), _measured(tmp_path, "b", 7), _measured(tmp_path, "c", 8)
    assert first.keys() == second.keys() == {0, 1, 2, 3}
    for seq, (params, data) in first.items():
        assert second[seq][0] == params
        np.testing.assert_array_equal(second[seq][1], data)  # bit for bit
    assert all(not np.array_equal(other[seq][1], first[seq][1]) for seq in first)


def test_the_noise_key_ignores_the_campaign_id_and_keeps_seed_sequence_and_sample() -> None:
    from instruments.noise import attempt_seed
    from instruments.types import MeasurementRequest

    def request(attempt_id: str, key: str | None) -> MeasurementRequest:
        return MeasurementRequest(attempt_id=attempt_id, params={}, noise_key=key)

    assert attempt_seed(0, request("a-00001", "7:00001:")) == attempt_seed(0, request("b-00001", "7:00001:"))
    assert attempt_seed(0, request("a-00001", "7:00001:")) != attempt_seed(0, request("a-00001", "8:00001:"))
    assert attempt_seed(0, request("a-00001", "7:00001:")) != attempt_seed(1, request("a-00001", "7:00001:"))
    assert attempt_seed(0, request("a-00001", None)) != attempt_seed(0, request("b-00001", None))  # no key: the id
