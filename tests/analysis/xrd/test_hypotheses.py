"""The hypotheses an interpretation reports: read back from its details, they predict the pattern."""

from __future__ import annotations

import numpy as np
import pytest

from analysis.xrd import XRDPhaseIdentification, hypotheses_of, predict_rate
from tests.analysis.xrd.patterns import SURVEY
from tests.analysis.xrd.patterns import measure as _measure

pytestmark = pytest.mark.timeout(300)


def test_hypotheses_round_trip_through_the_details_and_predict_the_pattern(analysis: XRDPhaseIdentification) -> None:
    measurements = _measure([{"phase": "tio2_rutile", "weight_fraction": 1.0}], [SURVEY])
    result = analysis.interpret(measurements)
    best = hypotheses_of(result.details)[0]
    assert best.label == "tio2_rutile" and best.probability == result.estimates["p(best)"].value
    x = measurements[0].data["two_theta"]
    predicted = predict_rate(analysis.settings, best, x) * 0.1
    observed = measurements[0].data["counts"]
    chi2 = float(np.sum((observed - predicted) ** 2 / np.maximum(predicted, 1)))
    assert chi2 / x.size < 1.5
