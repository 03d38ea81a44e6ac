"""Campaigns over samples end to end, on SQLite and PostgreSQL: recipes decided, guarded, made,
each sample characterised by the within-sample planner to its own target or budget, its outcome
stored and told to the across-sample policy; refused recipes and failed syntheses recorded, and the
campaign goes on. Real parts: the XRD simulator and phase identification, the store, documents.
(The diffractometer measures a fixed sample until the materials systems land; the recipe rides on
every characterisation request all the same.)"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import event_model
import pytest
import yaml

from agent.config import parse_campaign
from agent.kinds import INSTRUMENT_KINDS, InstrumentKind, _complete_journal
from agent.sample_campaign import run_sample_campaign, step_campaign_id
from agent.sample_ledger import SampleLedger
from agent.store import Store
from instruments.synthesis import sample_id_for
from policies.protocol import PlanningGoals, SampleOutcome

pytestmark = pytest.mark.timeout(300)
SHIPPED = Path(__file__).resolve().parents[2] / "experiments" / "sdl_oxide_map.yaml"
FIXED_SAMPLE = Path(__file__).resolve().parent / "sdl_fixed_sample.yaml"  # known numbers for the mechanics


def small_campaign(tmp_path: Path, *, samples: int, measurements: int, **synthesiser: Any) -> dict[str, Any]:
    """The shipped campaign with small budgets (and synthesiser settings changed), recipes by sobol
    and no campaign-level targets: the loop's mechanics, without fitting a map per sample."""
    data = yaml.safe_load(FIXED_SAMPLE.read_text())
    data["policy"], data["targets"] = {"name": "sobol"}, []
    data["data_dir"] = str(tmp_path / "data")
    data["budgets"] = {"max_samples": samples}
    data["sample_step"]["budgets"] = {"max_measurements": measurements}
    data["synthesiser"]["settings"] |= {"failure_probability": 0.0, **synthesiser}
    return data


def _run(data: dict[str, Any], store: Store, cid: str) -> Any:
    return run_sample_campaign(parse_campaign(data), store, campaign_id=cid, in_process=True)


def test_a_nested_campaign_makes_characterises_and_records_every_sample(store_url: str, tmp_path: Path) -> None:
    data = small_campaign(tmp_path, samples=2, measurements=2)
    with Store(store_url) as store:
        result = _run(data, store, "sdl-e2e")
        assert (result.status, result.stop_reason) == ("budget_exhausted", "budget: max_samples (2) reached")
        attempts = store.attempts("sdl-e2e")
        assert [a.state for a in attempts] == ["analysed", "analysed"]
        samples = store.samples("sdl-e2e")
        assert [s.sample_id for s in samples] == [sample_id_for(a.id) for a in attempts]
        total_instrument = 0.0
        for a, s in zip(attempts, samples):
            assert s.recipe == a.params and s.step_campaign_id == step_campaign_id(a.id)
            outcome = SampleOutcome.model_validate(s.outcome)
            assert outcome.status in ("answered", "budget") and outcome.label_probabilities
            measurements = store.measurements(s.step_campaign_id)
            assert 1 <= len(measurements) <= 2 and {m.sample_id for m in measurements} == {s.sample_id}
            step_seconds = sum(m.timing.instrument_seconds for m in measurements)
            total_instrument += step_seconds
            assert outcome.seconds == pytest.approx(a.instrument_seconds + step_seconds)  # synthesis + characterisation
            assert store.campaign(s.step_campaign_id).status in ("completed", "budget_exhausted")
        assert result.instrument_seconds == pytest.approx(total_instrument)
        # The policy's view: both samples with their soft labels, nothing pending.
        ledger = SampleLedger(store, "sdl-e2e")
        ledger.load()
        context = ledger.planning_context({}, PlanningGoals())
        assert [o.sample_id for o in context.samples] == [s.sample_id for s in samples] and not context.pending_recipes
        # The campaign's own run: decisions, syntheses and sample outcomes as valid event-model documents.
        documents = [d for _, d in store.documents("sdl-e2e")]
        for d in documents:
            event_model.schema_validators[event_model.DocumentNames[d.name]].validate(d.doc)
        events = [d.stream for d in documents if d.name == "event"]
        assert events.count("decisions") == 2 and events.count("primary") == 2 and events.count("interpretations") == 2
        assert [d.name for d in documents][0] == "start" and documents[-1].name == "stop"
        assert result.answer is not None and result.answer.kind == "measurement" and len(result.answer.samples) == 2


def test_every_characterisation_request_carries_the_sample_id_and_recipe(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(INSTRUMENT_KINDS, "xrd_recording", InstrumentKind(
        "simulators.xrd:XRDSettings", "tests.agent.recipe_recording:RecipeRecordingXRD", _complete_journal))
    data = small_campaign(tmp_path, samples=2, measurements=1)
    data["sample_step"]["instruments"][0]["kind"] = "xrd_recording"
    with Store(f"sqlite:///{tmp_path / 's.db'}") as store:
        _run(data, store, "sdl-rec")
        data_dir = Path(store.campaign("sdl-rec").data_dir)
        for s in store.samples("sdl-rec"):
            log = data_dir / str(s.step_campaign_id) / "instruments" / "diffractometer" / "requests.jsonl"
            requests = [json.loads(line) for line in log.read_text().splitlines()]
            assert requests == [{"attempt": m.attempt_id, "sample": s.sample_id, "recipe": s.recipe}
                                for m in store.measurements(str(s.step_campaign_id))]


def test_refused_recipes_and_failed_syntheses_are_recorded_and_the_campaign_goes_on(tmp_path: Path) -> None:
    # The furnace cannot go above 700 °C (the design space asks up to 1000) and fails half its syntheses.
    data = small_campaign(tmp_path, samples=4, measurements=1, process_limits={"anneal_c": [400.0, 700.0]},
                          failure_probability=0.5, seed=1)
    with Store(f"sqlite:///{tmp_path / 's.db'}") as store:
        result = _run(data, store, "sdl-bad")
        assert result.status == "budget_exhausted", result.stop_reason
        attempts = store.attempts("sdl-bad")
        refused = [a for a in attempts if a.state == "refused"]
        failed = [a for a in attempts if a.state == "failed"]
        made = [a for a in attempts if a.state == "analysed"]
        assert refused and failed and made, [a.state for a in attempts]
        assert len(failed) + len(made) == 4  # refused recipes are no samples
        for a in refused:
            assert a.params["anneal_c"] > 700 and "instrument limits: furnace: anneal_c=" in (a.reason or "")
            assert a.instrument is None and store.measurement(a.id) is None  # nothing was made
        samples = {s.synthesis_attempt_id: s for s in store.samples("sdl-bad")}
        for a in failed:
            assert "synthesis failed" in (a.reason or "")
            outcome = SampleOutcome.model_validate(samples[a.id].outcome)
            assert outcome.status == "failed" and not outcome.label_probabilities and samples[a.id].step_campaign_id is None
        ledger = SampleLedger(store, "sdl-bad")
        ledger.load()
        context = ledger.planning_context({}, PlanningGoals())  # the policy is told of the failures
        assert sorted(o.status for o in context.samples).count("failed") == len(failed)
        assert len(context.samples) == 4


def test_one_synthesiser_feeds_two_diffractometers_with_the_samples_in_flight_counted(
        ray_local: None, tmp_path: Path) -> None:
    # Ray actors (not in process): each sample step on its own diffractometer, two at once, while the
    # furnace makes the next sample; the diffractometers count in real time so the steps overlap.
    data = small_campaign(tmp_path, samples=2, measurements=1, realtime_factor=0.0002)  # ~5000 s → 1 s
    data["sample_step"]["parallel"] = 2
    data["sample_step"]["instruments"][0]["settings"]["realtime_factor"] = 0.01  # a window: ~1.4 s
    with Store(f"sqlite:///{tmp_path / 's.db'}") as store:
        config = parse_campaign(data)
        result = run_sample_campaign(config, store, campaign_id="sdl-par")
        assert result.status == "budget_exhausted" and result.counts == {"analysed": 2}
        samples = store.samples("sdl-par")
        steps = [store.campaign(s.step_campaign_id) for s in samples]  # type: ignore[arg-type]
        # The second sample's step began before the first one's ended: characterised at once.
        assert steps[1].created_at < steps[0].finished_at  # type: ignore[operator]
        # The policy decided the second recipe with the first sample in characterisation, counted as pending.
        second = store.decisions("sdl-par")[1]
        assert (second.n_history, second.n_pending) == (0, 1)
        assert all(SampleOutcome.model_validate(s.outcome).label_probabilities for s in samples)


def test_recipes_off_the_simplex_are_refused_before_synthesis_and_endless_refusals_stop_the_campaign(
        tmp_path: Path) -> None:
    # Without its composition group the design space lets the policy propose fractions that do not
    # sum to 1: the furnace's check refuses every one, nothing is made, and the campaign stops.
    data = small_campaign(tmp_path, samples=3, measurements=1)
    del data["design_space"]["compositions"]
    with Store(f"sqlite:///{tmp_path / 's.db'}") as store:
        result = _run(data, store, "sdl-off")
        assert (result.status, result.stop_reason) == ("failed", "10 recipes in a row were refused; see the decision log")
        attempts = store.attempts("sdl-off")
        assert len(attempts) == 10 and all(a.state == "refused" for a in attempts)
        assert all("instrument limits: furnace: the fractions of ['ti', 'zr', 'al'] sum to" in (a.reason or "")
                   for a in attempts)
        assert [d.fallback for d in store.decisions("sdl-off")] == [False] * 3 + [True] * 7  # space-filling fallback first
        assert store.samples("sdl-off") == [] and not list((tmp_path / "data").rglob("*.json"))  # nothing made


def test_failed_syntheses_count_against_the_synthesis_time_budget(tmp_path: Path) -> None:
    data = small_campaign(tmp_path, samples=5, measurements=1, failure_probability=1.0)
    data["budgets"] = {"max_samples": 5, "max_synthesis_seconds": 9000}  # a synthesis is expected to take 3600 + 3 × 700 s
    with Store(f"sqlite:///{tmp_path / 's.db'}") as store:
        result = _run(data, store, "sdl-time")
        assert result.status == "budget_exhausted"
        assert result.stop_reason == "budget: max_synthesis_seconds (9000 s) reached (11400 s)"
        assert [a.state for a in store.attempts("sdl-time")] == ["failed", "failed"]


def test_a_map_confidence_target_is_evaluated_after_each_sample_recomputed_on_resume_and_stops_the_campaign(
        tmp_path: Path) -> None:
    from agent.map_targets import MapConfidenceTarget, evaluate_map_targets

    # Every sample's outcome is the same phase set (the fixed diffractometer sample), so the map grows
    # confident as samples spread over the space: 2 samples are not enough for 10 % of the grid at
    # p ≥ 0.9, 3 are. The first run ends on its budget after 2 samples; the resume, with a larger
    # budget, starts from the targets as the store says they stood and completes on the target.
    # held_for 1: the latest map alone (the rule across refits: tests/agent/test_map_targets.py).
    target = {"name": "map", "kind": "map_confidence", "probability": 0.9, "fraction": 0.1, "min_samples": 2,
              "grid_points": 256, "held_for": 1}
    data = small_campaign(tmp_path, samples=2, measurements=1)
    data["targets"] = [target]
    with Store(f"sqlite:///{tmp_path / 's.db'}") as store:
        first = _run(data, store, "sdl-map")
        assert first.status == "budget_exhausted" and not first.targets["map"].met
        stood = store.target_evaluations("sdl-map")[-1].results["map"]
        data["budgets"] = {"max_samples": 4}
        progress: list[Any] = []
        result = run_sample_campaign(parse_campaign(data), store, campaign_id="sdl-map", in_process=True, resume=True,
                                     on_progress=progress.append)
        assert progress[0].targets["map"].as_dict() == stood  # recomputed from the store on resume: the same
        assert (result.status, result.stop_reason) == ("completed", "targets met: map")
        evaluations = store.target_evaluations("sdl-map")
        assert [e.n_measurements for e in evaluations] == [1, 2, 3]  # one per sample, with its outcome
        assert [e.all_met for e in evaluations] == [False, False, True]
        assert evaluations[0].results["map"]["value"] is None  # fewer than min_samples labelled samples
        # Every recorded value is what the store's samples give, recomputed now.
        outcomes = [SampleOutcome.model_validate(s.outcome) for s in store.samples("sdl-map")]
        config = MapConfidenceTarget.model_validate(target)
        space = parse_campaign(data).design_space
        for k, e in enumerate(evaluations, start=1):
            assert evaluate_map_targets([config], space, outcomes[:k], seed=data["seed"])["map"].as_dict() == e.results["map"]
        assert result.targets["map"].met and result.answer is not None
        # The answer states the map first — the target as it stood, with what the map says — then the samples by label.
        label = outcomes[0].label_probabilities and max(outcomes[0].label_probabilities, key=outcomes[0].label_probabilities.__getitem__)
        value = evaluations[-1].results["map"]["value"]
        assert result.answer.summary.startswith(f"phase map: map = {value:.3g} (goal 0.1, met); most probable: {label} ")
        assert f"3 samples characterised: 3 {label} (00000, 00001, 00002)" in result.answer.summary


def test_the_shipped_campaign_characterises_samples_of_the_hidden_materials_system(tmp_path: Path) -> None:
    """experiments/sdl_oxide_map.yaml as shipped (budgets cut to 2 samples × 2 windows): every sample step
    measures (its requests carry the recipe the simulator derives the sample from) and ends with a soft label."""
    data = yaml.safe_load(SHIPPED.read_text())
    data["data_dir"] = str(tmp_path / "data")
    data["budgets"] = {"max_samples": 2}
    data["sample_step"]["budgets"] = {"max_measurements": 2}
    data["synthesiser"]["settings"]["failure_probability"] = 0.0
    with Store(f"sqlite:///{tmp_path / 's.db'}") as store:
        result = _run(data, store, "sdl-shipped")
        assert result.status == "budget_exhausted", result.stop_reason
        for s in store.samples("sdl-shipped"):
            assert store.measurements(s.step_campaign_id), f"{s.sample_id}: nothing measured"  # type: ignore[arg-type]
            outcome = SampleOutcome.model_validate(s.outcome)
            assert outcome.status in ("answered", "budget") and outcome.label_probabilities
            assert set("+".join(outcome.label_probabilities).split("+")) <= set(data["sample_step"]["analysis"]["settings"]["candidates"])


def test_a_batch_synthesiser_is_filled_from_one_decision_and_each_batch_takes_one_synthesis_time(tmp_path: Path) -> None:
    # A furnace that makes two samples at once: the policy is asked for two recipes in one decision
    # (the first counted as pending when it picks the second), both are made in one synthesis time
    # (the longer recipe's), and the third sample — all the budget leaves — is a batch of one.
    data = small_campaign(tmp_path, samples=3, measurements=1, batch_capacity=2)
    with Store(f"sqlite:///{tmp_path / 's.db'}") as store:
        result = _run(data, store, "sdl-batch")
        assert result.status == "budget_exhausted" and result.counts == {"analysed": 3}
        decisions, attempts = store.decisions("sdl-batch"), store.attempts("sdl-batch")
        assert [len(d.reasons) for d in decisions] == [2, 1]  # a full batch, then what the budget leaves
        assert [a.decision_id for a in attempts] == [decisions[0].id, decisions[0].id, decisions[1].id]
        assert len({tuple(sorted(a.params.items())) for a in attempts}) == 3  # three different recipes

        def alone(recipe: dict[str, Any]) -> float:  # the furnace's time for one recipe: 3600 s + 3 s/°C
            return 3600.0 + 3.0 * float(recipe["anneal_c"])

        batch_seconds = max(alone(a.params) for a in attempts[:2])
        assert [a.instrument_seconds for a in attempts] == pytest.approx([batch_seconds / 2] * 2 + [alone(attempts[2].params)])
        for a in attempts[:2]:  # each member's record says how long its batch took
            assert float(store.measurement(a.id).data["synthesis_seconds"]) == pytest.approx(batch_seconds)  # type: ignore[union-attr]
        ledger = SampleLedger(store, "sdl-batch")
        ledger.load()
        assert ledger.synthesis_seconds == pytest.approx(batch_seconds + alone(attempts[2].params))
        samples = store.samples("sdl-batch")
        assert all(store.measurements(s.step_campaign_id) for s in samples)  # type: ignore[arg-type]
        assert all(SampleOutcome.model_validate(s.outcome).label_probabilities for s in samples)
        # The map report names the batch; a policy without a map of its own gets the shared map model's.
        from agent.report import write_report

        html = write_report(store, "sdl-batch", tmp_path / "r.html").read_text()
        assert html.count("in a batch of 2") == 2 and "the sobol policy learns no map of its own" in html
