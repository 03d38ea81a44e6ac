"""Planner reasons in words, for the reasons the shipped planners record (shapes taken from their code)."""

from __future__ import annotations

import pytest

from agent.report.planner import reason_in_words

pytestmark = pytest.mark.timeout(60)


def test_a_sas_plan_says_what_it_planned_for_and_what_binds() -> None:
    reason = {"fitted": True, "hypotheses": {"sphere": 0.8664}, "plan_seconds": {"1.5m": 1577.5, "15m": 300.0},
              "plan_cost_seconds": 2077.5, "binding": "model probability | sphere", "feasible": False,
              "exposure_cap_seconds": 60.0}
    words = reason_in_words(reason)
    assert words.startswith("Planned from the current fits (sphere p = 0.866).")
    assert "The goal that needs the most counting: model probability, should sphere be the answer." in words
    assert "it plans 1,578 s on 1.5m, 300 s on 15m (2,078 s with changes and overheads)." in words
    assert "No plan meets every goal" in words and "at most 60 s" in words


def test_xrd_rules_and_protocol_steps_in_words() -> None:
    discrimination = {"rule": "discrimination per second", "best": "a+b", "p_best": 0.71, "rivals": {"a": 0.29},
                      "expected_gain_nats": {"a": 1.5}, "needed_nats": {"a": 3.0}, "seconds": 120.0, "batch_repeat": 1}
    words = reason_in_words(discrimination)
    assert words.startswith("The window where the best phase set a+b (p = 0.710) and its rivals differ most")
    assert "against a: 1.5 of the 3 nats needed" in words and words.endswith("Repeated in the same batch (1).")
    assert reason_in_words({"rule": "survey"}).startswith("Survey")
    assert reason_in_words({"rule": "full scan", "step": 2}) == "Preset protocol: full scan 3."
    assert reason_in_words({"rule": "extend the range"}) == "Extend the range."
    assert reason_in_words({"step": 0, "pass": 1}) == "Preset protocol, step 1 (pass 1)."
    # A BO reason is not a planner's: the page summarises it as before.
    assert reason_in_words({"acquisition": "qLogNEI", "acquisition_value": -1.2}) == ""
