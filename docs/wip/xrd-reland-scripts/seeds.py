"""argv: phases(comma) seeds(comma) [json overrides]: p(best), best, marginal, top rival's gains."""
import sys, time, json
import numpy as np
from analysis.xrd import XRDPhaseIdentification, XRDPhaseIDSettings
from analysis.xrd.pattern import collect
from analysis.xrd.fit import poisson_log_likelihood
from simulators.xrd import XRDDriver, XRDSettings
from tests.analysis.xrd.patterns import SURVEY, measure
over = json.loads(sys.argv[3]) if len(sys.argv) > 3 else {}
an = XRDPhaseIdentification(XRDPhaseIDSettings.model_validate({"refine_instrument": False, **over}))
for phase in sys.argv[1].split(","):
    for seed in map(int, sys.argv[2].split(",")):
        sample = [{"phase": phase, "weight_fraction": 1.0, "crystallite_size_nm": 120}]
        ms = measure(sample, [SURVEY], seed=seed)
        t0 = time.perf_counter()
        pattern, _ = collect(ms, an.settings.dwell_parameter)
        rep = an.identify(pattern)
        dt = time.perf_counter() - t0
        drv = XRDDriver("xrd", XRDSettings.model_validate({"sample": {"phases": sample}, "seed": seed}))
        truth = poisson_log_likelihood(pattern.counts, drv.true_rate(pattern.two_theta) * pattern.dwell)
        fits = sorted(rep.fits, key=lambda f: -rep.probabilities.get(f.label, 0))
        single = next((f for f in fits if f.label == phase), None)
        marg = sum(p for l, p in rep.probabilities.items() if phase in l.split("+"))
        riv = [f for f in fits if f.label != phase][:3]
        print(f"{phase:16s} s{seed} best={fits[0].label} p={rep.probabilities[fits[0].label]:.4f} marg={marg:.4f} T={rep.temperature:.3f} "
              f"L1-Ltruth={single.log_likelihood - truth if single else float('nan'):.2f} {dt:.0f}s | "
              + " ; ".join(f"{f.label.replace(phase,'').strip('+')} p={rep.probabilities.get(f.label,0):.3f} dL={f.log_likelihood-single.log_likelihood:.2f} dOcc={f.log_occam-single.log_occam:.2f} w={f.scales[-1]/f.scales.sum():.3f}" for f in riv if single), flush=True)
