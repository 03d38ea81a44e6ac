"""The phase identification under test, with default settings (every library phase a candidate)."""

from __future__ import annotations

import pytest

from analysis.xrd import XRDPhaseIdentification, XRDPhaseIDSettings


@pytest.fixture(scope="module")
def analysis() -> XRDPhaseIdentification:
    return XRDPhaseIdentification(XRDPhaseIDSettings())
