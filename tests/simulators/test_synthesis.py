"""The simulated synthesiser: a sample id from the attempt, synthesis time on the virtual clock,
failures drawn per attempt from the seed, journalled syntheses recovered, limits checked first."""

from __future__ import annotations

from pathlib import Path

import pytest

from instruments.protocol import InstrumentLimitError
from instruments.synthesis import sample_id_for
from instruments.types import MeasurementRequest
from simulators.synthesis import SynthesisDriver, SynthesisSettings

pytestmark = pytest.mark.timeout(60)
RECIPE = {"ti": 0.2, "zr": 0.3, "al": 0.5, "anneal_c": 700.0}


def _driver(**settings: object) -> SynthesisDriver:
    base = {"components": ["ti", "zr", "al"], "process_limits": {"anneal_c": [400, 1000]}, "base_seconds": 3600,
            "time_driver": "anneal_c", "seconds_per_unit": 2.0}
    return SynthesisDriver("furnace", SynthesisSettings.model_validate({**base, **settings}))


def _request(attempt: str, **params: float) -> MeasurementRequest:
    return MeasurementRequest(attempt_id=attempt, params={**RECIPE, **params})


def test_a_synthesis_makes_a_sample_named_by_its_attempt_and_charges_its_time() -> None:
    driver = _driver()
    made = driver.measure(_request("c-00001"))
    assert made.sample_id == sample_id_for("c-00001")
    assert made.timing.instrument_seconds == pytest.approx(3600 + 2.0 * 700)
    assert float(made.data["synthesis_seconds"]) == pytest.approx(5000)
    driver.measure(_request("c-00002", anneal_c=400.0))
    assert driver.clock.elapsed_seconds == pytest.approx(5000 + 4400)
    assert driver.planning_model().expected_seconds == pytest.approx(3600 + 2.0 * 700)  # at the middle of the limits


def test_failures_are_drawn_per_attempt_at_the_configured_rate() -> None:
    driver, again = _driver(failure_probability=0.3, seed=4), _driver(failure_probability=0.3, seed=4)
    outcomes = []
    for i in range(300):
        try:
            driver.measure(_request(f"c-{i:05d}"))
            outcomes.append(True)
        except RuntimeError as exc:
            assert "synthesis c-" in str(exc) and "failed" in str(exc)
            outcomes.append(False)
    assert 0.22 < outcomes.count(False) / len(outcomes) < 0.38
    first_failed = outcomes.index(False)
    with pytest.raises(RuntimeError):  # the same attempt fails again: a property of the attempt, not the moment
        again.measure(_request(f"c-{first_failed:05d}"))


def test_a_recipe_outside_the_limits_is_refused_before_anything_is_made() -> None:
    driver = _driver()
    with pytest.raises(InstrumentLimitError, match="anneal_c=1100.0 is outside"):
        driver.measure(_request("c-1", anneal_c=1100.0))
    assert driver.clock.elapsed_seconds == 0


def test_a_journalled_synthesis_is_recovered(tmp_path: Path) -> None:
    driver = _driver(journal_dir=str(tmp_path))
    made = driver.measure(_request("c-7"))
    recovered = _driver(journal_dir=str(tmp_path)).recover("c-7")
    assert recovered is not None and recovered.recovered and recovered.sample_id == made.sample_id
    assert _driver(journal_dir=str(tmp_path)).recover("c-8") is None


def test_settings_name_a_time_driver_that_exists() -> None:
    with pytest.raises(ValueError, match="time_driver: 'pressure' is not a process variable"):
        _driver(time_driver="pressure")


def test_a_batch_takes_one_synthesis_time_shared_by_its_members() -> None:
    driver = _driver(batch_capacity=3)
    recipes = {"c-1": {**RECIPE, "anneal_c": 500.0}, "c-2": {**RECIPE, "anneal_c": 900.0}, "c-3": dict(RECIPE)}
    made = [driver.measure(MeasurementRequest(attempt_id=a, params=r, batch=recipes)) for a, r in recipes.items()]
    batch_seconds = 3600 + 2.0 * 900  # its longest member
    assert driver.clock.elapsed_seconds == pytest.approx(batch_seconds)  # once, not once per member
    assert [m.timing.instrument_seconds for m in made] == pytest.approx([batch_seconds / 3] * 3)
    assert all(float(m.data["synthesis_seconds"]) == pytest.approx(batch_seconds) for m in made)
    assert [m.sample_id for m in made] == [sample_id_for(a) for a in recipes]


def test_a_batch_beyond_the_capacity_or_without_its_own_recipe_is_refused_before_anything_is_made() -> None:
    driver = _driver(batch_capacity=2)
    batch = {f"c-{i}": dict(RECIPE) for i in range(3)}
    with pytest.raises(InstrumentLimitError, match=r"a batch of 3 samples exceeds the batch capacity \(2\)"):
        driver.measure(MeasurementRequest(attempt_id="c-0", params=dict(RECIPE), batch=batch))
    with pytest.raises(InstrumentLimitError, match="does not hold c-9's own recipe"):
        driver.measure(MeasurementRequest(attempt_id="c-9", params=dict(RECIPE), batch={"c-0": dict(RECIPE)}))
    with pytest.raises(InstrumentLimitError, match="anneal_c=1100.0 is outside"):  # every member is checked
        driver.measure(MeasurementRequest(attempt_id="c-0", params=dict(RECIPE),
                                          batch={"c-0": dict(RECIPE), "c-1": {**RECIPE, "anneal_c": 1100.0}}))
    assert driver.clock.elapsed_seconds == 0
