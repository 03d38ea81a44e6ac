"""P25 survey draws (benchmarks.xrd_polymorph_honesty's run, campaign settings) + per-variant p. argv: first n procs overrides-json out"""
import sys, json, time, multiprocessing
sys.path.insert(0, __import__("os").path.dirname(__file__))

def one(job):
    case, i, over = job
    from benchmarks.xrd_polymorph_honesty import SURVEY
    from analysis.xrd import XRDPhaseIdentification, XRDPhaseIDSettings
    from analysis.xrd.pattern import collect
    from instruments.types import MeasurementRequest
    from simulators.xrd import XRDDriver, XRDSettings
    from variants import variants
    driver = XRDDriver("diffractometer", XRDSettings.model_validate(case["instrument"]))
    req = MeasurementRequest(attempt_id=f"xrd-adaptive-{i:05d}", params=dict(SURVEY), sample_id=case["sample"],
                             noise_key=f"{case['seed']}:{i:05d}:{case['sample']}")
    m = driver.measure(req)
    an = XRDPhaseIdentification(XRDPhaseIDSettings.model_validate({**case["analysis"], **over}))
    t0 = time.perf_counter()
    res = an.interpret([m])
    dt = time.perf_counter() - t0
    pattern, _ = collect([m], an.settings.dwell_parameter)
    row = {"id": i, "best": res.details.get("best_set"), "p": res.estimates["p(best)"].value, "seconds": dt,
           "flags": [f for f in res.flags if not f.startswith("fit-not")]}
    return row

def one_v(job):
    # identify() directly to get the fits for the variants (same computation as interpret's)
    case, i, over = job
    from benchmarks.xrd_polymorph_honesty import SURVEY
    from analysis.xrd import XRDPhaseIdentification, XRDPhaseIDSettings
    from analysis.xrd.pattern import collect
    from instruments.types import MeasurementRequest
    from simulators.xrd import XRDDriver, XRDSettings
    from variants import variants
    driver = XRDDriver("diffractometer", XRDSettings.model_validate(case["instrument"]))
    req = MeasurementRequest(attempt_id=f"xrd-adaptive-{i:05d}", params=dict(SURVEY), sample_id=case["sample"],
                             noise_key=f"{case['seed']}:{i:05d}:{case['sample']}")
    m = driver.measure(req)
    an = XRDPhaseIdentification(XRDPhaseIDSettings.model_validate({**case["analysis"], **over}))
    t0 = time.perf_counter()
    pattern, _ = collect([m], an.settings.dwell_parameter)
    rep = an.identify(pattern)
    dt = time.perf_counter() - t0
    best = rep.best
    _, probs = variants(rep, an.settings.phase_log_prior())
    row = {"id": i, "best": best.label, "p": rep.probabilities[best.label], "seconds": dt, "T": rep.temperature,
           "p_missing": rep.p_missing, "flags": [f for f in rep.flags if not f.startswith("fit-not")],
           "variants": {k: max(v.items(), key=lambda kv: kv[1]) for k, v in probs.items()}}
    print(json.dumps(row), flush=True)
    return row

if __name__ == "__main__":
    from benchmarks.xrd_polymorph_honesty import load_case, CAMPAIGN
    ids = [int(v) for v in sys.argv[1].split(",")]
    procs = int(sys.argv[2])
    over = json.loads(sys.argv[3]) if len(sys.argv) > 3 else {}
    case = load_case(CAMPAIGN)
    with multiprocessing.get_context("spawn").Pool(procs) as pool:
        rows = list(pool.imap_unordered(one_v, [(case, i, over) for i in ids]))
