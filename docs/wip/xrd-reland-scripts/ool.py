"""Survey identification of one `labpilot bench xrd --quick` sample (draw_family(9, 0)[i]) with its bench analysis settings."""
import sys, time
from agent.bench.xrd import draw_family, SURVEY, INSTRUMENT
from analysis.xrd import XRDPhaseIdentification, XRDPhaseIDSettings
from instruments.types import MeasurementRequest
from simulators.xrd import XRDDriver, XRDSettings
i = int(sys.argv[1])
s = draw_family(9, 0)[i]
driver = XRDDriver("xrd", XRDSettings.model_validate(s.instrument))
keys = ("two_theta_start", "two_theta_stop", "two_theta_step", "dwell_seconds")
m = driver.measure(MeasurementRequest(attempt_id=f"s{i}", params=dict(zip(keys, SURVEY)), sample_id=f"sample-{i}"))
settings = {**{k: INSTRUMENT[k] for k in ("wavelength", "caglioti_u", "caglioti_v", "caglioti_w")},
            **({} if s.candidates is None else {"candidates": list(s.candidates)})}
t0 = time.perf_counter()
r = XRDPhaseIdentification(XRDPhaseIDSettings.model_validate(settings)).interpret([m])
print(i, s.true_set, "->", r.details.get("best_set"), "p=%.3f" % r.estimates["p(best)"].value,
      "p_missing=", r.details.get("p_missing_phase"), [f for f in r.flags if not f.startswith("fit-not")],
      "%.0f s" % (time.perf_counter() - t0), flush=True)
