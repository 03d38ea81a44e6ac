"""What the report reads from the store: one load, classified attempts, reasons paired with attempts."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.report.data import (
    attempt_points,
    attempt_reason,
    load_report_data,
    reason_indices,
    state_counts,
)
from agent.store import Store, UnknownCampaign
from tests.agent.report.campaign_store import CAMPAIGN, VERSIONS, config_dict

pytestmark = pytest.mark.timeout(60)


def test_load_reads_the_campaign_once_into_plain_data(populated: tuple[Store, list[str]]) -> None:
    store, ids = populated
    d = load_report_data(store, CAMPAIGN)

    assert d.config is not None and d.config_error is None
    assert [a.id for a in d.attempts] == ids
    assert d.n_measurements == len(d.measurements) == 8
    # Measurement order is 1-based, oldest first; the refused attempt was never measured.
    assert d.measurement_order[ids[0]] == 1 and d.measurement_order[ids[8]] == 8 and ids[7] not in d.measurement_order
    assert len(d.evaluations) == 8 and d.evaluations[-1].all_met
    assert set(d.decisions) == {a.decision_id for a in d.attempts}
    assert d.objective_units() == "fraction"


def test_history_holds_only_valid_observations_of_the_objective(populated: tuple[Store, list[str]]) -> None:
    store, ids = populated
    d = load_report_data(store, CAMPAIGN)

    history = d.history()
    assert [o.attempt_id for o in history] == [ids[i] for i in (0, 1, 3, 4, 5, 6, 8)]  # #2 was NaN, #7 refused
    assert all(o.sigma == 0.02 for o in history)
    assert d.objective_estimate(ids[2]) == (None, None, "fraction")
    assert d.objective_estimate(ids[7]) == (None, None, "")


def test_attempts_are_classified_and_counted_in_lifecycle_order(populated: tuple[Store, list[str]]) -> None:
    store, ids = populated
    d = load_report_data(store, CAMPAIGN)

    kinds = {p.attempt.id: p.kind for p in attempt_points(d)}
    assert kinds[ids[2]] == "invalid" and kinds[ids[7]] == "refused"
    assert {kinds[ids[i]] for i in (0, 1, 3, 4, 5, 6, 8)} == {"trained"}
    assert state_counts(d.attempts) == [("analysed", 8), ("refused", 1)]


def test_each_attempt_gets_its_own_reason_of_its_decision(populated: tuple[Store, list[str]]) -> None:
    store, ids = populated
    d = load_report_data(store, CAMPAIGN)

    index = reason_indices(d.attempts)
    assert [index[i] for i in ids] == [0, 1, 2, 3, 4, 5, 0, 1, 0]
    bo = d.decisions[d.attempts[7].decision_id]  # type: ignore[index]
    assert attempt_reason(bo, index[ids[7]])["acquisition_value"] == -2.5
    assert attempt_reason(bo, 5) == {} and attempt_reason(None, 0) == {}


def test_a_stored_config_that_no_longer_validates_is_reported_not_raised(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path}/s.db")
    config = config_dict()
    config["objective"] = {"estimate": "yield", "direction": "sideways"}
    store.create_campaign("old-1", "old", config, 0, str(tmp_path), VERSIONS)

    d = load_report_data(store, "old-1")

    assert d.config is None and d.space is None and d.history() == []
    assert d.config_error is not None and d.config_error.startswith("ValidationError: ")
    with pytest.raises(UnknownCampaign):
        load_report_data(store, "no-such-campaign")
    store.close()
