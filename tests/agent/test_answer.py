"""The answer: read from the store after real campaigns (SANS, XRD, BO), equal to what the stored
interpretations and target evaluations say; honest when there is none; shown first everywhere."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import event_model
import pytest
from rich.console import Console
from typer.testing import CliRunner

from agent.answer import NOT_IDENTIFIED_FLAGS, answer_of, campaign_answer, sample_answer, value_pm
from agent.campaign import CampaignRunner
from agent.cli import app
from agent.config import parse_campaign
from agent.progress import print_result
from agent.store import Store
from agent.targets import UNTRUSTED_FLAGS
from analysis.protocol import Estimate, Interpretation
from tests.agent.campaign_files import quickstart, run_in_process, shipped

pytestmark = pytest.mark.timeout(240)


def _stop_document(store, campaign_id: str) -> dict:  # type: ignore[no-untyped-def]
    stops = [d.doc for _, d in store.documents(campaign_id) if d.name == "stop"]
    assert len(stops) == 1
    return stops[0]


def test_the_adaptive_sans_answer_is_the_final_interpretation_everywhere(tmp_path: Path) -> None:
    config, store, result = run_in_process("adaptive_sans.yaml", tmp_path, "sans-answer")
    assert result.status == "completed", result.stop_reason
    last = store.interpretations("sans-answer")[-1]
    answer = campaign_answer(store, "sans-answer")
    assert answer.kind == "measurement" and answer.status == "answered" and answer.targets_met
    (sample,) = answer.samples
    assert sample.sample_id == "ps-sphere-1" and sample.attempt_id == last.attempt_id
    assert sample.kind == "model" and sample.best == last.details["best_model"] == "sphere"
    assert sample.probability == last.estimates["p(best)"].value
    assert sample.alternatives == {"core_shell_sphere": last.estimates["p(core_shell_sphere)"].value}
    radius = next(e for e in sample.estimates if e.name == "radius")
    assert (radius.value, radius.sigma) == (last.estimates["radius"].value, last.estimates["radius"].sigma)
    assert last.estimates["radius"].units == "Ang" and radius.units == "Å"  # sasmodels' spelling, as a reader writes it
    assert f"radius = {value_pm(radius.value, radius.sigma)} Å" in answer.summary and answer.summary.startswith("sphere (p = ")
    # The same answer in --json, in the stop document (a valid run_stop), and in `status ID`.
    assert result.as_json()["answer"] == answer.model_dump(mode="json")
    stop = _stop_document(store, "sans-answer")
    event_model.schema_validators[event_model.DocumentNames.stop].validate(stop)
    assert stop["answer"] == answer.model_dump(mode="json")
    cli = CliRunner().invoke(app, ["status", "sans-answer", "--db", config.storage, "--json"])
    assert cli.exit_code == 0, cli.output
    assert json.loads(cli.output)["answer"] == answer.model_dump(mode="json")
    text = CliRunner().invoke(app, ["status", "sans-answer", "--db", config.storage])
    assert text.output.index("answer: sphere") < text.output.index("completed")
    # At the end of `run`: the answer first, then status and budget.
    console = Console(record=True, width=200)
    print_result(console, result)
    printed = console.export_text()
    assert printed.startswith("answer: sphere (p = ") and printed.index("answer:") < printed.index("completed:")


def test_an_xrd_answer_carries_the_best_phase_set_and_weight_fractions_with_sigma(tmp_path: Path) -> None:
    _, store, result = run_in_process("adaptive_xrd.yaml", tmp_path, "xrd-answer")
    assert result.status == "completed", result.stop_reason
    last = store.interpretations("xrd-answer")[-1]
    answer = campaign_answer(store, "xrd-answer")
    (sample,) = answer.samples
    assert sample.kind == "phase set" and sample.best == last.details["best_set"]
    assert sample.probability == last.estimates["p(best)"].value
    phases = str(last.details["best_set"]).split("+")
    assert [e.name for e in sample.estimates] and {e.name[2:] for e in sample.estimates} == set(phases)
    for e in sample.estimates:
        stored = last.estimates[e.name]
        assert (e.value, e.sigma, e.units) == (stored.value, stored.sigma, "weight fraction") and e.sigma > 0  # type: ignore[operator]
    assert sum(e.value for e in sample.estimates) == pytest.approx(1.0)
    assert "weight fractions: " in answer.summary
    # Flags about rival phase sets are notes in words, never warnings beside the answer.
    rival_flags = [f for f in last.flags if f.startswith("fit-not-converged:") and f.split(":")[1] != last.details["best_set"]]
    assert len([n for n in sample.notes if n.startswith("about a rival")]) == len(rival_flags)
    assert not any("fit-not-converged" in w for w in sample.warnings)


def test_a_bo_campaign_answers_with_its_incumbent_and_the_model_confidence(tmp_path: Path) -> None:
    data = quickstart(tmp_path, budgets={"max_measurements": 9})
    data["instruments"][0]["count"] = 1
    data["targets"][0]["min_observations"] = 6
    config = parse_campaign(data)
    store = Store(config.storage)
    result = asyncio.run(CampaignRunner(config, store, "bo-answer", in_process=True).run())
    answer = campaign_answer(store, "bo-answer")
    assert answer.kind == "objective" and answer.status == "answered" and answer.incumbent is not None
    incumbent = answer.incumbent
    evaluation = store.target_evaluations("bo-answer")[-1].results["near_optimum"]
    assert incumbent.basis == "model" and incumbent.confidence == evaluation["value"]
    assert f"(attempt {incumbent.attempt_id})" in evaluation["detail"]
    stored = next(i for i in store.interpretations("bo-answer") if i.attempt_id == incumbent.attempt_id).estimates["yield"]
    assert (incumbent.estimate.value, incumbent.estimate.sigma, incumbent.estimate.units) == (stored.value, stored.sigma, "fraction")
    assert incumbent.params == store.attempt(incumbent.attempt_id).params and incumbent.epsilon == 0.05
    assert answer.summary.startswith(f"incumbent {incumbent.attempt_id}") and "of the optimum" in answer.summary
    assert result.as_json()["answer"]["incumbent"]["attempt_id"] == incumbent.attempt_id


def test_without_a_confidence_target_the_incumbent_is_the_best_observed_value_and_says_so(tmp_path: Path) -> None:
    config = {"sample": None, "objective": {"estimate": "y", "direction": "minimize"}, "targets": []}
    interps = [_scalar("c-0", 3.0), _scalar("c-1", 1.0), _scalar("c-2", None)]
    answer = answer_of("c", config, interps, {"c-0": {"x": 0.1}, "c-1": {"x": 0.7}, "c-2": {"x": 0.9}}, None)
    assert answer.incumbent is not None and answer.incumbent.attempt_id == "c-1"
    assert answer.incumbent.basis == "best observed" and answer.incumbent.confidence is None
    assert "best observed minimum" in answer.summary and "x=0.7" in answer.summary


def test_a_campaign_without_a_valid_interpretation_has_no_answer_yet(tmp_path: Path) -> None:
    """A sample 10⁴ times too dilute: flat data, the analysis says no-signal (invalid), and so does the answer."""
    data = shipped("adaptive_sans.yaml", tmp_path)
    data["instruments"][0]["settings"]["sample"]["scale"] = 2e-8
    data["budgets"] = {"max_measurements": 1}
    config = parse_campaign(data)
    store = Store(config.storage)
    result = asyncio.run(CampaignRunner(config, store, "flat", in_process=True).run())
    (interp,) = store.interpretations("flat")
    assert not interp.valid and "no-signal" in interp.flags
    answer = campaign_answer(store, "flat")
    assert answer.status == "no answer yet" and answer.samples[0].best is None and not answer.samples[0].estimates
    assert answer.summary.startswith("no answer yet") and "no signal above the background" in answer.summary
    assert _stop_document(store, "flat")["answer"]["status"] == "no answer yet"
    assert result.answer == answer


def test_a_poor_fit_is_not_identified_and_says_why() -> None:
    interp = Interpretation(
        attempt_id="a-1", sample_id="s", analysis="sas", valid=True, flags=["poor-fit", "fit-not-converged:rival"],
        estimates={"p(best)": Estimate(value=0.99), "p(sphere)": Estimate(value=0.99), "p(rival)": Estimate(value=0.01),
                   "radius": Estimate(value=50.0, sigma=1.0, units="Ang")},
        details={"best_model": "sphere"},
    )
    answer = sample_answer([interp])
    assert answer.status == "not identified" and answer.best == "sphere"
    assert answer.summary.startswith("not identified (Even the most probable model misses the data")
    assert "best so far: sphere (p = 0.990); radius = 50.0 ± 1.0 Å" in answer.summary
    assert answer.notes == ["about a rival, not the answer: the fit of rival did not converge."]
    nothing = answer_of("c", {"sample": "s"}, [], {}, None)
    assert nothing.status == "no answer yet" and nothing.summary.startswith("no answer yet")


def test_every_flag_that_blocks_a_target_also_blocks_an_identification() -> None:
    assert UNTRUSTED_FLAGS <= NOT_IDENTIFIED_FLAGS


@pytest.mark.parametrize(("value", "sigma", "text"), [
    (119.6687, 0.2384, "119.67 ± 0.24"), (0.0002011, 1.11e-6, "(2.011 ± 0.011)e-04"), (0.5, None, "0.5"),
    (1234.5, 12.0, "1234 ± 12"), (0.766, 0.0173, "0.766 ± 0.017"),
])
def test_values_are_given_to_the_precision_of_their_sigma(value: float, sigma: float | None, text: str) -> None:
    assert value_pm(value, sigma) == text


def _scalar(attempt_id: str, value: float | None) -> Interpretation:
    return Interpretation(attempt_id=attempt_id, sample_id=attempt_id, analysis="scalar", valid=value is not None,
                          estimates={"y": Estimate(value=value, sigma=0.1 if value is not None else None, units="V")})


def test_an_incumbent_without_model_confidence_says_why() -> None:
    """The incumbent target's newest reason (e.g. no structure seen yet) is the answer's, not "no target"."""
    from agent.answer import _why_no_model_confidence
    from agent.store.store import TargetEvaluation

    config = {"targets": [{"name": "near", "kind": "incumbent_near_optimum", "epsilon": 0.05, "probability": 0.9}]}
    detail = "no structure seen yet: the 10 observations are consistent with a constant objective (χ² p = 0.79)"
    evaluation = TargetEvaluation(10, 100.0, 1.0, {"near": {"value": None, "goal": 0.9, "met": False, "detail": detail}}, False)
    assert _why_no_model_confidence(config, evaluation) == f"the model's confidence: not yet — {detail}"
    assert _why_no_model_confidence({"targets": []}, evaluation) == "no target states the model's confidence in it"


def test_a_campaign_over_samples_answers_with_its_map_then_its_samples_by_label_weak_ones_marked() -> None:
    from agent.answer import SampleAnswer, over_samples_summary
    from agent.store.store import TargetEvaluation

    def sample(i: int, status: str, best: str | None, p: float | None) -> SampleAnswer:
        return SampleAnswer(sample_id=f"c-{i:05d}-sample", n_analyses=1, status=status, kind="model", best=best,  # type: ignore[arg-type]
                            probability=p, summary="")

    samples = [sample(0, "answered", "sphere", 0.9995), sample(1, "answered", "cylinder", 0.70),
               sample(2, "not identified", "sphere", 0.99), sample(3, "answered", "sphere", 0.97)]
    before = TargetEvaluation(4, 0.0, 0.0, {"map": {"value": None, "goal": 0.9, "met": False, "detail": "needs 5 labelled samples (has 4)"}}, False)
    assert over_samples_summary("c", samples, before) == (
        "phase map: map = — (goal 0.9, not met). 4 samples characterised: "
        "2 sphere (00000, 00003), 1 cylinder (00001 at p = 0.700), 1 not identified (00002)")
    after = TargetEvaluation(4, 0.0, 0.0, {"map": {"value": 0.9123, "goal": 0.9, "met": True,
                                                   "detail": "expected accuracy: …; most probable: sphere 60 %, cylinder 40 %"}}, True)
    assert over_samples_summary("c", samples, after).startswith(
        "phase map: map = 0.912 (goal 0.9, met); most probable: sphere 60 %, cylinder 40 %. 4 samples")
    assert over_samples_summary("c", samples, None).startswith("phase map: not evaluated yet. 4 samples")
