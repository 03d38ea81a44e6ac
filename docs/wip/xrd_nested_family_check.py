"""Paired: bench-family (agent/bench/xrd.py draw_family, all 48 library phases candidates) survey patterns,
identified with main's algorithm (refine_nested off) and with it on, in the same process."""
import sys, time, json, multiprocessing
def one(i):
    from agent.bench.xrd import draw_family, INSTRUMENT, SURVEY
    from analysis.xrd import XRDPhaseIdentification, XRDPhaseIDSettings
    from analysis.xrd import search as S
    from instruments.types import MeasurementRequest
    from simulators.xrd import XRDDriver, XRDSettings
    sample = draw_family(i + 1, 0)[i]
    driver = XRDDriver("xrd", XRDSettings.model_validate(sample.instrument))
    keys = ("two_theta_start", "two_theta_stop", "two_theta_step", "dwell_seconds")
    m = driver.measure(MeasurementRequest(attempt_id="a0", params=dict(zip(keys, SURVEY)), sample_id=f"sample-{i}"))
    orig = S.refine_nested
    out = {"id": i, "truth": sample.true_set}
    for mode in ("off", "on"):
        S.refine_nested = orig if mode == "on" else (lambda c, fits, *rest: fits)
        a = XRDPhaseIdentification(XRDPhaseIDSettings.model_validate({k: INSTRUMENT[k] for k in ("wavelength", "caglioti_u", "caglioti_v", "caglioti_w")}))
        t = time.perf_counter(); r = a.interpret([m]); dt = time.perf_counter() - t
        out[mode] = {"best": r.details.get("best_set"), "p": r.estimates["p(best)"].value, "s": round(dt, 1)}
    print(json.dumps(out), flush=True)
    return out
if __name__ == "__main__":
    ids = range(int(sys.argv[1]), int(sys.argv[2]))
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        rows = list(pool.imap_unordered(one, ids))
