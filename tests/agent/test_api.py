"""The Python API: a campaign run from a script, from inside a running event loop (a notebook), and
driven by ask/tell from "the lab's own code" — same store, targets and resume guarantees as the loop."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from typing import Any

import pytest

from tests.agent.campaign_files import instrument_settings, quickstart, shipped

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.timeout(300)


def small_quickstart(tmp_path: Path, n: int = 4) -> dict[str, Any]:
    """The quick-start campaign with a space-filling policy and ``n`` measurements: seconds, not minutes."""
    return quickstart(tmp_path, policy={"name": "sobol", "options": {}}, budgets={"max_measurements": n})


def _python(code: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("LABPILOT_DB", None)
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=240, check=False)


# -- import ---------------------------------------------------------------------------------------

def test_import_labpilot_gives_the_api_without_loading_ray_or_botorch(tmp_path: Path) -> None:
    out = _python("""
        import json, sys
        import labpilot, agent
        loaded = sorted(m for m in ("ray", "botorch", "torch") if m in sys.modules)
        from labpilot import Campaign, CampaignOutcome, ProgressEvent, Proposal, TellError
        from agent.api import Campaign as C
        print(json.dumps({"loaded": loaded, "same": Campaign is C is agent.Campaign, "all": labpilot.__all__}))
    """, tmp_path)
    assert out.returncode == 0, out.stderr
    answer = json.loads(out.stdout)
    assert answer["loaded"] == [] and answer["same"] is True
    assert {"Campaign", "CampaignOutcome", "ProgressEvent", "Proposal", "TellError", "Measurement"} <= set(answer["all"])


# -- run ------------------------------------------------------------------------------------------

def test_a_script_runs_a_campaign_file_and_ray_is_started_and_shut_down_for_it(tmp_path: Path) -> None:
    import yaml

    (tmp_path / "campaign.yaml").write_text(yaml.safe_dump(small_quickstart(tmp_path)))
    out = _python("""
        import json, ray
        from labpilot import Campaign
        events = []
        result = Campaign.from_file("campaign.yaml").run(on_progress=events.append)
        print(json.dumps({"status": result.status, "n": result.n_measurements, "events": len(events),
                          "last": events[-1].n_measurements, "ray_after": ray.is_initialized(),
                          "rows": len(result.attempts_table())}))
    """, tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    answer = json.loads(out.stdout.strip().splitlines()[-1])
    assert answer["status"] == "budget_exhausted" and answer["n"] == 4 and answer["rows"] == 4
    assert answer["events"] >= 2 and answer["last"] == 4
    assert answer["ray_after"] is False  # started for the run, shut down after it


@pytest.mark.usefixtures("ray_local")
def test_run_called_synchronously_inside_a_running_event_loop(tmp_path: Path) -> None:
    """What a Jupyter cell does: the kernel's loop is running when ``run()`` is called."""
    import ray

    from agent.api import Campaign
    from agent.results import ProgressEvent

    threads: set[str] = set()
    events: list[ProgressEvent] = []

    def on_progress(event: ProgressEvent) -> None:
        threads.add(threading.current_thread().name)
        events.append(event)

    async def cell() -> Any:
        return Campaign(small_quickstart(tmp_path)).run(on_progress=on_progress)

    result = asyncio.run(cell())
    assert result.status == "budget_exhausted" and result.n_measurements == 4
    assert all(isinstance(e, ProgressEvent) for e in events) and events[-1].n_measurements == 4
    assert threads == {"labpilot-campaign"}  # its own loop, in a worker thread
    assert ray.is_initialized()  # the caller's Ray: used, not shut down


@pytest.mark.usefixtures("ray_local")
def test_arun_is_awaited_on_the_callers_loop_and_resume_continues_it(tmp_path: Path) -> None:
    from agent.api import Campaign, CampaignError

    campaign = Campaign(small_quickstart(tmp_path, n=3))
    threads: set[str] = set()

    async def cell() -> Any:
        return await campaign.arun(on_progress=lambda e: threads.add(threading.current_thread().name))

    result = asyncio.run(cell())
    assert result.status == "budget_exhausted" and result.n_measurements == 3
    assert threads == {threading.current_thread().name}
    with pytest.raises(CampaignError, match="resume"):
        campaign.run()
    # A bigger budget, resumed: the three measurements are kept, two more are made.
    data = small_quickstart(tmp_path, n=5)
    from agent.store import Store

    store = Store(campaign.db)
    bigger = {**store.campaign(campaign.campaign_id).config, "budgets": data["budgets"], "storage": data["storage"]}
    _replace_stored_config(store, campaign.campaign_id, bigger)
    resumed = Campaign.load(campaign.campaign_id, db=campaign.db).resume()
    assert resumed.status == "budget_exhausted" and resumed.n_measurements == 5
    assert [a.attempt_id for a in resumed.attempts[:3]] == [a.attempt_id for a in result.attempts]
    with pytest.raises(CampaignError, match="run"):
        Campaign(small_quickstart(tmp_path)).resume()


@pytest.mark.usefixtures("ray_local")
def test_interrupting_the_kernel_stops_the_campaign_and_resume_finishes_it(tmp_path: Path) -> None:
    """A kernel interrupt (SIGINT → KeyboardInterrupt in the waiting thread) cancels the campaign in
    its worker thread: recorded ``interrupted``, its actors stopped, and resumable."""
    import _thread

    from agent.api import Campaign

    # Half a second per measurement (virtual time slept): the interrupt arrives mid-campaign.
    campaign = Campaign(instrument_settings(small_quickstart(tmp_path, n=12), realtime_factor=0.0003))
    interrupted: list[int] = []

    def interrupt_once(event: Any) -> None:
        if event.n_measurements >= 2 and not interrupted:
            interrupted.append(event.n_measurements)
            _thread.interrupt_main()

    async def cell() -> Any:
        # As in an IPython kernel: SIGINT raises KeyboardInterrupt in the cell's code (asyncio.run's
        # own handler would only cancel this coroutine, which is blocked in run()).
        runner_handler = signal.signal(signal.SIGINT, signal.default_int_handler)
        try:
            return campaign.run(on_progress=interrupt_once)
        finally:
            signal.signal(signal.SIGINT, runner_handler)

    with pytest.raises(KeyboardInterrupt):
        asyncio.run(cell())
    stopped = campaign.result()
    assert stopped.status == "interrupted" and 2 <= stopped.n_measurements < 12, stopped.stop_reason
    resumed = Campaign.load(campaign.campaign_id, db=campaign.db).resume()
    assert resumed.status == "budget_exhausted" and resumed.n_measurements == 12


def _replace_stored_config(store: Any, campaign_id: str, config: dict[str, Any]) -> None:
    """Raise a budget the way an operator would edit the stored campaign (there is no command for it)."""
    from agent.store.schema import CampaignRow

    store._write("raise the budget", lambda s: setattr(s.get(CampaignRow, campaign_id), "config", config))


def test_results_are_a_flat_table_and_a_dataframe(tmp_path: Path) -> None:
    from agent.api import Campaign

    campaign = Campaign(small_quickstart(tmp_path, n=3))
    for p in campaign.ask(3):
        campaign.tell(p.attempt_id, data={"yield": [p.params["time"] / 60]}, sigma={"yield": [0.01]}, seconds=60.0)
    result = campaign.result()
    rows = result.attempts_table()
    assert len(rows) == 3 and all(r["state"] == "analysed" for r in rows)
    for row, attempt in zip(rows, result.attempts):
        assert row["param.time"] == attempt.params["time"]
        assert row["estimate.yield"] == pytest.approx(attempt.params["time"] / 60) and row["sigma.yield"] == 0.01
        assert all(not isinstance(v, (dict, list)) for v in row.values())  # flat
    pandas = pytest.importorskip("pandas", reason="pandas is optional; to_pandas() needs it")
    frame = result.to_pandas()
    assert isinstance(frame, pandas.DataFrame) and list(frame.index) == [r["attempt_id"] for r in rows]
    assert frame["estimate.yield"].tolist() == [r["estimate.yield"] for r in rows]


def test_a_notebook_runs_a_campaign_cell(tmp_path: Path, shared_ray_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    nbformat = pytest.importorskip("nbformat", reason="nbformat/nbclient/ipykernel not installed; the running-loop tests stand in")
    nbclient = pytest.importorskip("nbclient", reason="nbclient not installed; the running-loop tests stand in")
    pytest.importorskip("ipykernel", reason="ipykernel not installed; the running-loop tests stand in")
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        f"from labpilot import Campaign\nresult = Campaign({small_quickstart(tmp_path)!r}).run()\n"
        "assert result.n_measurements == 4, result")])
    for name, value in shared_ray_env.items():  # the kernel inherits them: it joins the session's Ray
        monkeypatch.setenv(name, value)
    nbclient.NotebookClient(notebook, timeout=240, resources={"metadata": {"path": str(tmp_path)}}).execute()


# -- ask / tell -----------------------------------------------------------------------------------

def test_ask_tell_drives_a_sas_instrument_by_hand_until_the_targets_are_met(tmp_path: Path) -> None:
    """The lab's own code: a SAS instrument (the simulator, built here) measured by the test itself."""
    from agent.api import Campaign
    from instruments.types import MeasurementRequest
    from simulators.sas import SASDriver, SASSettings

    data = shipped("adaptive_sans.yaml", tmp_path)
    lab_instrument = SASDriver("sans", SASSettings.model_validate(data["instruments"][0]["settings"]))
    campaign = Campaign(data)
    told = 0
    while not campaign.done:
        proposals = campaign.ask(1)
        assert len(proposals) == 1 and proposals[0].reason  # every proposal says why
        p = proposals[0]
        measurement = lab_instrument.measure(MeasurementRequest(attempt_id=p.attempt_id, params=p.params, sample_id=p.sample_id))
        interpretation = campaign.tell(p.attempt_id, measurement)
        assert interpretation.attempt_id == p.attempt_id
        told += 1
        assert told <= 20, campaign.status
    status, result = campaign.status, campaign.result()
    assert status.status == "completed" and status.done and status.open_proposals == []
    assert result.all_met and result.n_measurements == told
    radius = result.interpretations[-1].estimates["radius"]
    assert abs(radius.value - 120.0) <= 3 * radius.sigma, radius  # type: ignore[operator]
    assert campaign.ask(1) == []  # ended: nothing more to measure, nothing written
    assert [a.state for a in result.attempts] == ["analysed"] * told


def test_ask_tell_survives_the_process_that_asked(store_url: str, tmp_path: Path) -> None:
    """Proposals asked by a process that is gone are given back first; nothing new is decided for them."""
    from agent.api import Campaign
    from agent.store import Store

    data = small_quickstart(tmp_path, n=6)
    first = Campaign(data, db=store_url)
    asked = first.ask(2)
    campaign_id = first.campaign_id
    del first  # the process that asked is gone (its lease is not held between calls)

    store = Store(store_url)
    assert {a.state for a in store.attempts(campaign_id)} == {"dispatched"}
    decisions = len(store.decisions(campaign_id))
    later = Campaign.load(campaign_id, db=store_url)
    assert [p.attempt_id for p in later.ask(2)] == [p.attempt_id for p in asked]
    assert [p.params for p in later.ask(1)] == [asked[0].params]
    assert len(store.decisions(campaign_id)) == decisions  # no new decision while proposals are open
    more = later.ask(3)  # two open + one new
    assert [p.attempt_id for p in more[:2]] == [p.attempt_id for p in asked] and more[2].attempt_id not in {p.attempt_id for p in asked}
    for p in more:
        later.tell(p.attempt_id, data={"yield": [0.3]}, sigma={"yield": [0.02]}, seconds=10.0)
    assert later.status.open_proposals == [] and later.status.n_measurements == 3
    # The measurement budget counts what is open: 3 measured, so at most 3 more proposals, then the end.
    rest = later.ask(5)
    assert len(rest) == 3
    for p in rest:
        later.tell(p.attempt_id, data={"yield": [0.4]}, seconds=10.0)
    assert later.done and later.status.status == "budget_exhausted" and later.ask(1) == []


def test_bad_tells_are_refused_and_write_nothing(tmp_path: Path) -> None:
    from agent.api import Campaign
    from agent.asktell import TellError
    from instruments.types import Measurement, Timing

    campaign = Campaign(small_quickstart(tmp_path))
    p, q = campaign.ask(2)
    store = campaign.store

    def snapshot() -> tuple[Any, ...]:
        return ([(a.id, a.state) for a in store.attempts(campaign.campaign_id)],
                len(store.measurements(campaign.campaign_id)), len(store.documents(campaign.campaign_id)))

    before = snapshot()
    ok = {"yield": [0.5]}
    bad = [
        (lambda: campaign.tell("quickstart-nope-00000", data=ok, seconds=1.0), "no attempt"),
        (lambda: campaign.tell(p.attempt_id, data={"purity": [0.5]}, seconds=1.0), r"measurement\.data"),
        (lambda: campaign.tell(p.attempt_id, data=ok, sigma={"purity": [0.1]}, seconds=1.0), r"measurement\.sigma"),
        (lambda: campaign.tell(p.attempt_id, data=ok), "seconds"),
        (lambda: campaign.tell(p.attempt_id), "not both or neither"),
        (lambda: campaign.tell(p.attempt_id, Measurement(
            attempt_id=p.attempt_id, instrument=p.instrument, params={**p.params, "time": 1.0}, data=ok,
            timing=Timing(exposure_seconds=1.0))), r"measurement\.params"),
        (lambda: campaign.tell(p.attempt_id, Measurement(
            attempt_id=q.attempt_id, instrument=q.instrument, params=q.params, data=ok,
            timing=Timing(exposure_seconds=1.0))), r"measurement\.attempt_id"),
    ]
    for call, message in bad:
        with pytest.raises(TellError, match=message):
            call()
        assert snapshot() == before
    campaign.tell(p.attempt_id, data=ok, seconds=1.0)
    told = snapshot()
    with pytest.raises(TellError, match="is analysed, not an open proposal"):
        campaign.tell(p.attempt_id, data=ok, seconds=1.0)
    assert snapshot() == told
    campaign.fail(q.attempt_id, "the reactor's heater tripped")
    assert store.attempt(q.attempt_id).state == "failed" and "heater" in (store.attempt(q.attempt_id).reason or "")
    with pytest.raises(ValueError, match="at least one"):
        campaign.ask(0)


def test_ask_is_refused_while_another_process_owns_the_campaign(tmp_path: Path) -> None:
    from agent.api import Campaign
    from agent.store import CampaignOwned

    campaign = Campaign(small_quickstart(tmp_path))
    campaign.ask(1)
    campaign.store.acquire_lease(campaign.campaign_id, "another-host:4242:abcd")  # a loop running it elsewhere
    decisions = len(campaign.store.decisions(campaign.campaign_id))
    with pytest.raises(CampaignOwned, match="another-host"):
        Campaign.load(campaign.campaign_id, db=campaign.db).ask(2)
    assert len(campaign.store.decisions(campaign.campaign_id)) == decisions


def test_a_tell_cut_short_after_its_measurement_is_analysed_by_the_next_process(tmp_path: Path) -> None:
    """The measurement was committed, the process died before its analysis: the next call analyses it."""
    from agent.api import Campaign
    from agent.asktell import measurement_for

    first = Campaign(small_quickstart(tmp_path))
    p = first.ask(1)[0]
    store = first.store
    # What tell commits first (the measurement, ``measured``), and nothing after it.
    store.record_measurement(first.campaign_id, measurement_for(store.attempt(p.attempt_id), {"yield": [0.7]}, seconds=5.0))
    assert store.attempt(p.attempt_id).state == "measured" and store.interpretations(first.campaign_id) == []
    later = Campaign.load(first.campaign_id, db=first.db)
    assert p.attempt_id not in [q.attempt_id for q in later.ask(1)]  # not an open proposal any more
    assert store.attempt(p.attempt_id).state == "analysed"
    assert store.interpretations(first.campaign_id)[0].estimates["yield"].value == 0.7


def test_bad_campaigns_are_refused_naming_the_field_or_the_id(tmp_path: Path) -> None:
    from agent.api import Campaign
    from agent.config import CampaignFileError
    from agent.store import UnknownCampaign

    data = small_quickstart(tmp_path)
    data["budgets"] = {"max_measurements": 0}
    with pytest.raises(CampaignFileError, match="budgets.max_measurements"):
        Campaign(data)
    with pytest.raises(UnknownCampaign, match="no campaign 'nope-1'"):
        Campaign.load("nope-1", db=f"sqlite:///{tmp_path}/labpilot.db")


def test_ask_and_tell_work_inside_a_running_event_loop(tmp_path: Path) -> None:
    from agent.api import Campaign

    campaign = Campaign(small_quickstart(tmp_path, n=2))

    async def cell() -> Any:
        for p in campaign.ask(2):
            campaign.tell(p.attempt_id, data={"yield": [0.25]}, seconds=1.0)
        return campaign.status

    status = asyncio.run(cell())
    assert status.done and status.status == "budget_exhausted" and status.n_measurements == 2
