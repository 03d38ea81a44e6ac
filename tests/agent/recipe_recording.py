"""A diffractometer that also writes down what each request carried (attempt, sample, recipe) —
how a test sees that every characterisation request of a sample carries its id and recipe."""

from __future__ import annotations

import json
from pathlib import Path

from instruments.types import Measurement, MeasurementRequest
from simulators.xrd import XRDDriver


class RecipeRecordingXRD(XRDDriver):
    def measure(self, request: MeasurementRequest) -> Measurement:
        if self.settings.journal_dir is not None:
            with open(Path(self.settings.journal_dir) / "requests.jsonl", "a") as log:
                log.write(json.dumps({"attempt": request.attempt_id, "sample": request.sample_id,
                                      "recipe": request.recipe}) + "\n")
        return super().measure(request)
