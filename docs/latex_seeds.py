"""SANS-only parts of the latex recording (1200 s of 3600 s, 8 seeds) fitted with the replay_sas example's
analysis: with the default search (no argument) or with settings given as YAML (e.g. "{n_scan: 128, n_starts: 8}")."""
import sys, yaml, time
from instruments.files.replay import ReplaySettings, ReplayDriver
from instruments.types import MeasurementRequest
from agent.kinds import build_analysis
doc = yaml.safe_load(open("experiments/replay_sas.yaml"))
settings = doc["instruments"][0]["settings"]
an = doc["analysis"]["settings"]
an.pop("n_scan", None), an.pop("n_starts", None)
if len(sys.argv) > 1:
    an.update(yaml.safe_load(sys.argv[1]))
a = build_analysis("sas", an)
t=time.time()
for seed in range(8):
    d = ReplayDriver("x", ReplaySettings.model_validate({**settings, "seed": seed}))
    m = d.measure(MeasurementRequest(attempt_id=f"a{seed}", params={"configuration": "sans", "exposure_seconds": 1200.0}, sample_id="latex"))
    i = a.interpret([m])
    print(seed, round(i.estimates["radius"].value), round(i.estimates["radius"].sigma or -1, 1), round(i.estimates["radius_pd"].value, 4), i.flags, round(i.details["chi2_reduced"], 3))
print("s", time.time()-t)
