"""The recorder: one call per record, one transaction with its documents, published once."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from agent.config import parse_campaign
from agent.recorder import Recorder
from agent.store import AttemptState, CampaignStatus, ProposedAttempt, Store, TargetEvaluation
from analysis.protocol import Estimate, Interpretation
from instruments.types import DataKey, Measurement, Timing
from policies.protocol import Proposal
from tests.agent.campaign_files import quickstart

pytestmark = pytest.mark.timeout(60)


def _lines(path: Path) -> list[list]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_records_carry_their_documents_and_a_replay_publishes_nothing(tmp_path: Path) -> None:
    config = parse_campaign(quickstart(tmp_path))
    store = Store(config.storage)
    store.create_campaign("c", config.name, config.model_dump(mode="json"), config.seed, str(tmp_path), {})
    recorder = Recorder(store, "c")
    recorder.open_run(config, {"reactor-1": {"yield": DataKey(dtype="number", units="fraction")}}, {"yield": "fraction"})
    jsonl = tmp_path / "c" / "documents.jsonl"
    assert [name for name, _ in _lines(jsonl)] == ["start", "descriptor", "descriptor", "descriptor"]

    params = {"temperature": 400.0, "time": 10.0}
    recorder.decision(0, [Proposal(params=params, policy="sobol", reason={"index": 0})],
                      [ProposedAttempt("c-00000", 0, params, None, (AttemptState.VALIDATED, AttemptState.DISPATCHED), instrument="reactor-1")],
                      policy="sobol", fallback=False, error=None, seed=7, n_history=0, n_pending=0, seconds=0.01)
    assert store.attempt("c-00000").state == AttemptState.DISPATCHED

    m = Measurement(attempt_id="c-00000", instrument="reactor-1", params=params, data={"yield": np.array(0.5)},
                    timing=Timing(exposure_seconds=1800.0))
    assert recorder.measurement(m) is True
    assert recorder.measurement(m) is False  # a replay: nothing new is written or published
    interpretation = Interpretation(attempt_id="c-00000", sample_id="c-00000", analysis="scalar",
                                    estimates={"yield": Estimate(value=0.5, sigma=0.02)}, valid=True)
    evaluation = TargetEvaluation(1, 1800.0, 0.1, {"near_optimum": {"value": None, "goal": 0.9, "met": False}}, False)
    assert recorder.interpretation(interpretation, evaluation) is True
    recorder.finish(CampaignStatus.COMPLETED, "targets met", 1.0)

    names = [(name, doc.get("descriptor") is not None) for name, doc in _lines(jsonl)]
    assert names[4:] == [("event", True), ("event", True), ("event", True), ("stop", False)]
    assert [d.name for _, d in store.documents("c", unpublished=True)] == []  # everything published and marked
    assert store.campaign("c").status == CampaignStatus.COMPLETED and len(store.target_evaluations("c")) == 1


def test_an_interrupted_run_has_no_stop_document(tmp_path: Path) -> None:
    config = parse_campaign(quickstart(tmp_path))
    store = Store(config.storage)
    store.create_campaign("c", config.name, config.model_dump(mode="json"), config.seed, str(tmp_path), {})
    recorder = Recorder(store, "c")
    recorder.open_run(config, {}, {"yield": "fraction"})
    recorder.finish(CampaignStatus.INTERRUPTED, "interrupted by the user", 1.0)
    assert [d.name for _, d in store.documents("c")] == ["start", "descriptor", "descriptor", "descriptor"]
    assert store.campaign("c").status == CampaignStatus.INTERRUPTED
