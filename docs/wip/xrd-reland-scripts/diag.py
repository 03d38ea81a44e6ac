"""Per refined set: log L, Occam, k, p, at-bound, for P25 survey draw ids. argv: json overrides, ids."""
import sys, time, json
from benchmarks.xrd_polymorph_honesty import load_case, CAMPAIGN, SURVEY
from analysis.xrd import XRDPhaseIdentification, XRDPhaseIDSettings
from analysis.xrd.pattern import collect
from instruments.types import MeasurementRequest
from simulators.xrd import XRDDriver, XRDSettings
case = load_case(CAMPAIGN)
over = json.loads(sys.argv[1])
for i in map(int, sys.argv[2:]):
    driver = XRDDriver("diffractometer", XRDSettings.model_validate(case["instrument"]))
    req = MeasurementRequest(attempt_id=f"xrd-adaptive-{i:05d}", params=dict(SURVEY), sample_id=case["sample"],
                             noise_key=f"{case['seed']}:{i:05d}:{case['sample']}")
    m = driver.measure(req)
    an = XRDPhaseIdentification(XRDPhaseIDSettings.model_validate({**case["analysis"], **over}))
    t0 = time.perf_counter()
    pattern, _ = collect([m], an.settings.dwell_parameter)
    rep = an.identify(pattern)
    dt = time.perf_counter() - t0
    print(f"== id {i} T={rep.temperature:.3f} pmiss={rep.p_missing:.3g} flags={rep.flags} {dt:.0f}s")
    for f in sorted(rep.fits, key=lambda f: -rep.probabilities.get(f.label, 0))[:5]:
        print(f"  {f.label:50s} p={rep.probabilities.get(f.label,0):.3f} logL={f.log_likelihood:.2f} occ={f.log_occam:.2f} k={f.n_parameters} atb={f.at_bound}")
        print("     ", {k: [round(float(v), 4) for v in f.refined[k]] for k in f.refined}, {k: round(v, 4) for k, v in f.common.items()})
    sys.stdout.flush()
