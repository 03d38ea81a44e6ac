"""The phase identification under test, with default settings (every library phase a candidate) and the
instrument profile held at its calibration."""

from __future__ import annotations

import pytest

from analysis.xrd import XRDPhaseIdentification, XRDPhaseIDSettings


@pytest.fixture(scope="module")
def analysis() -> XRDPhaseIdentification:
    # The simulated diffractometer's U, V, W are the analysis' defaults (its LaB6 calibration): held, as a lab
    # with a calibrated instrument would (refining them is covered by the real-pattern tests; ~6x faster).
    return XRDPhaseIdentification(XRDPhaseIDSettings(refine_instrument=False))
