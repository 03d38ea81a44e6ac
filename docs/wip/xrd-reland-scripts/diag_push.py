import sys, json
sys.path.insert(0, __import__("os").path.dirname(__file__))
from benchmarks.xrd_polymorph_honesty import load_case, CAMPAIGN, SURVEY
from analysis.xrd import XRDPhaseIdentification, XRDPhaseIDSettings
from analysis.xrd.pattern import collect
from instruments.types import MeasurementRequest
from simulators.xrd import XRDDriver, XRDSettings
from pushdiag import detail
from variants import show
case = load_case(CAMPAIGN)
over = json.loads(sys.argv[1])
for i in map(int, sys.argv[2:]):
    driver = XRDDriver("diffractometer", XRDSettings.model_validate(case["instrument"]))
    req = MeasurementRequest(attempt_id=f"xrd-adaptive-{i:05d}", params=dict(SURVEY), sample_id=case["sample"],
                             noise_key=f"{case['seed']}:{i:05d}:{case['sample']}")
    m = driver.measure(req)
    an = XRDPhaseIdentification(XRDPhaseIDSettings.model_validate({**case["analysis"], **over}))
    pattern, _ = collect([m], an.settings.dwell_parameter)
    rep = an.identify(pattern)
    print("== id", i, "T", rep.temperature)
    show(rep, an.settings.phase_log_prior(), 3)
    detail(an, pattern, rep)
