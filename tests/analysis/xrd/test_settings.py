"""Settings of the phase identification: bad values name the field."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from analysis.xrd import XRDPhaseIDSettings

pytestmark = pytest.mark.timeout(300)


def test_bad_settings_name_the_field() -> None:
    with pytest.raises(ValidationError, match="candidates: unknown phase.*unobtainium"):
        XRDPhaseIDSettings(candidates=["si", "unobtainium"])
    with pytest.raises(ValidationError, match="library: phase library .*nowhere: no such folder"):
        XRDPhaseIDSettings(library="/nowhere")
    with pytest.raises(ValidationError, match="extra_forbidden|Extra inputs"):
        XRDPhaseIDSettings(max_phase=2)  # type: ignore[call-arg]
