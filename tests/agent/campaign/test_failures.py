"""Failures that must stop a campaign, with their reason: an instrument failing every request
(served over ZMQ, so its error also crosses Ray), a dead analysis; and failed analyses re-run on resume."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update

from agent.campaign import FAILURES_BEFORE_STOP, CampaignRunner, resume_campaign, run_campaign
from agent.fleet import ANALYSIS_RESTARTS
from agent.config import parse_campaign
from agent.store import Store
from agent.store.schema import InterpretationRow
from tests.agent.campaign.test_remote import _campaign, _served_config
from tests.agent.campaign_files import quickstart
from tests.instruments.test_remote import serve  # noqa: F401 — the fixture of served drivers

pytestmark = [pytest.mark.timeout(240), pytest.mark.usefixtures("ray_local")]


def test_an_instrument_that_always_fails_stops_the_campaign_naming_its_error(serve: Any, tmp_path: Path) -> None:
    served = serve(_served_config(tmp_path / "instrument-pc", failure_probability=1.0))
    data = _campaign(tmp_path, served.address, 50)
    config = parse_campaign(data)
    store = Store(config.storage)
    result = run_campaign(config, store)
    assert result.status == "failed"
    assert result.stop_reason.startswith(f"instrument reactor failed {FAILURES_BEFORE_STOP} measurements in a row")
    # The served driver's own words, through the ZMQ client and Ray (not "Failed to deserialize exception").
    assert "simulated instrument fault during attempt" in result.stop_reason
    failed = store.attempts(result.campaign_id, states=["failed"])
    assert len(failed) == FAILURES_BEFORE_STOP and all("simulated instrument fault" in (a.reason or "") for a in failed)


def test_resume_re_analyses_measurements_whose_analysis_failed(tmp_path: Path) -> None:
    data = quickstart(tmp_path, policy={"name": "sobol", "options": {}}, budgets={"max_measurements": 4})
    config = parse_campaign(data)
    store = Store(config.storage)
    first = run_campaign(config, store)
    assert first.n_measurements == 4
    # As an analysis that crashed would have left it: the measurement kept, its interpretation flagged.
    victim = store.interpretations(first.campaign_id)[1].attempt_id
    with store.engine.begin() as conn:
        conn.execute(update(InterpretationRow).where(InterpretationRow.attempt_id == victim).values(
            flags=["analysis-error: worker crashed"], valid=False, estimates={"yield": {"value": None, "sigma": None, "units": ""}}))
    resumed = resume_campaign(store, first.campaign_id)
    assert resumed.n_measurements == 4  # nothing measured again
    again = {i.attempt_id: i for i in store.interpretations(first.campaign_id)}[victim]
    assert again.valid and again.flags == [] and again.estimates["yield"].value == pytest.approx(
        store.measurement(victim).scalar("yield"))  # type: ignore[union-attr]
    notes = [note for before, after, note in store.transitions(victim) if before == after == "analysed"]
    assert notes and notes[0].startswith("re-analysed")


async def _kill_analysis_actor(runner: CampaignRunner, store: Store, times: int, *, for_good: bool) -> None:
    """Once the first interpretation is stored, kill the campaign's analysis actor ``times`` times in
    a row, each time after Ray has restarted it — as a crashing analysis process would; ``for_good``:
    the last kill allows no restart (an analysis that has used up its restarts)."""
    import asyncio

    import ray

    while runner.fleet is None or not store.interpretations(runner.campaign_id):
        await asyncio.sleep(0.02)
    for k in range(times):
        ray.kill(runner.fleet.analysis, no_restart=for_good and k == times - 1)
        if k < times - 1:
            await runner.fleet.analysis.health.remote()  # returns once the restarted actor answers


def _run_killing_the_analysis(tmp_path: Path, times: int, *, for_good: bool) -> tuple[Store, Any]:
    import asyncio

    data = quickstart(tmp_path, policy={"name": "sobol", "options": {}}, budgets={"max_measurements": 8})
    config = parse_campaign(data)
    store = Store(config.storage)
    runner = CampaignRunner(config, store, "killed-analysis")

    async def both() -> Any:
        killer = asyncio.create_task(_kill_analysis_actor(runner, store, times, for_good=for_good))
        result = await runner.run()
        killer.cancel()
        return result

    return store, asyncio.run(both())


def test_a_killed_analysis_actor_is_restarted_and_nothing_is_analysed_blind(tmp_path: Path) -> None:
    store, result = _run_killing_the_analysis(tmp_path, ANALYSIS_RESTARTS, for_good=False)
    assert result.status == "budget_exhausted" and result.n_measurements == 8, result.stop_reason
    interpretations = store.interpretations(result.campaign_id)
    assert len(interpretations) == 8 and all(i.valid and not i.flags for i in interpretations)


def test_an_analysis_that_dies_for_good_stops_the_campaign_and_resume_analyses_the_rest(tmp_path: Path) -> None:
    store, result = _run_killing_the_analysis(tmp_path, 1, for_good=True)
    assert result.status == "failed" and "the analysis died" in result.stop_reason, result.stop_reason
    # Nothing was analysed blind (no analysis-error interpretations); what was measured is kept and
    # resume analyses it, then finishes the budget.
    assert not any("analysis-error" in f for i in store.interpretations(result.campaign_id) for f in i.flags)
    resumed = resume_campaign(store, result.campaign_id)
    assert resumed.status == "budget_exhausted" and resumed.n_measurements == 8, resumed.stop_reason
    analysed = {i.attempt_id: i for i in store.interpretations(result.campaign_id)}
    assert set(analysed) == {m.attempt_id for m in store.measurements(result.campaign_id)}
    assert all(i.valid for i in analysed.values())
