"""Bench-family survey identification (agent.bench.xrd draw_family, bench analysis settings). argv: first last [json overrides]"""
import sys, time, json
from agent.bench.xrd import draw_family, INSTRUMENT, SURVEY
from analysis.xrd import XRDPhaseIdentification, XRDPhaseIDSettings
from instruments.types import MeasurementRequest
from simulators.xrd import XRDDriver, XRDSettings
first, last = int(sys.argv[1]), int(sys.argv[2])
over = json.loads(sys.argv[3]) if len(sys.argv) > 3 else {}
samples = draw_family(last, 0)
keys = ("two_theta_start", "two_theta_stop", "two_theta_step", "dwell_seconds")
for sample in samples[first:last]:
    i = sample.index
    driver = XRDDriver("xrd", XRDSettings.model_validate(sample.instrument))
    m = driver.measure(MeasurementRequest(attempt_id="a0", params=dict(zip(keys, SURVEY)), sample_id=f"sample-{i}"))
    settings = {**{k: INSTRUMENT[k] for k in ("wavelength", "caglioti_u", "caglioti_v", "caglioti_w")},
                **({} if sample.candidates is None else {"candidates": list(sample.candidates)}), **over}
    a = XRDPhaseIdentification(XRDPhaseIDSettings.model_validate(settings))
    t = time.perf_counter(); r = a.interpret([m]); dt = time.perf_counter() - t
    truth = None if sample.out_of_library else "+".join(sorted(sample.phases))
    print(json.dumps({"id": i, "truth": truth, "phases": sample.phases, "best": r.details.get("best_set"),
                      "p": round(r.estimates["p(best)"].value, 4), "flags": [f for f in r.flags if not f.startswith("fit-not")],
                      "s": round(dt, 1)}), flush=True)
