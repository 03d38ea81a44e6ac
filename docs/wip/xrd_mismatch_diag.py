"""Diagnose one sample of the model-mismatch family: its truth, flags, estimates and reported hypotheses.

    PYTHONPATH=$PWD python docs/wip/xrd_mismatch_diag.py 29   # ~8 min on one idle core
"""
import json
import sys

import numpy as np

from agent.bench.xrd_mismatch_family import LIBRARY, START, draw_sample
from benchmarks.xrd_mismatch import SCAN
from analysis.xrd import XRDPhaseIdentification, XRDPhaseIDSettings
from instruments.types import MeasurementRequest
from simulators.xrd import XRDDriver, XRDSettings
idx = int(sys.argv[1])
rng = np.random.default_rng(11)
cases = [{**draw_sample(rng, i), "index": i} for i in range(32)]
case = cases[idx]
print(json.dumps(case["settings"]["sample"], default=str))
m = XRDDriver("xrd", XRDSettings.model_validate(case["settings"])).measure(MeasurementRequest(attempt_id="d", params=dict(SCAN)))
r = XRDPhaseIdentification(XRDPhaseIDSettings(candidates=list(LIBRARY), wavelength="CuKa", **START, diffuse_fwhm_deg=8.0)).interpret([m])
print("flags", r.flags)
for k, v in sorted(r.estimates.items()):
    print("est", k, v.value, v.sigma if hasattr(v, 'sigma') else '')
for k, v in r.details.items():
    if not isinstance(v, (list, dict)) or len(str(v)) < 400:
        print("det", k, v)
