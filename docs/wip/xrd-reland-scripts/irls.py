"""argv: phase seed: re-refine the top fits with variance = their own mu (IRLS), log L per pass."""
import sys
import numpy as np
from analysis.xrd import XRDPhaseIdentification, XRDPhaseIDSettings
from analysis.xrd.pattern import collect
from analysis.xrd.fit import PhaseProfiles, refine_set, poisson_log_likelihood
from simulators.xrd import XRDDriver, XRDSettings
from tests.analysis.xrd.patterns import SURVEY, measure
phase, seed = sys.argv[1], int(sys.argv[2])
sample = [{"phase": phase, "weight_fraction": 1.0, "crystallite_size_nm": 120}]
ms = measure(sample, [SURVEY], seed=seed)
an = XRDPhaseIdentification(XRDPhaseIDSettings(refine_instrument=False))
s = an.settings
pattern, _ = collect(ms, s.dwell_parameter)
rep = an.identify(pattern)
drv = XRDDriver("xrd", XRDSettings.model_validate({"sample": {"phases": sample}, "seed": seed}))
print("truth logL", round(poisson_log_likelihood(pattern.counts, drv.true_rate(pattern.two_theta) * pattern.dwell), 2))
profiles = PhaseProfiles(an.phases, s.optics(), pattern, s.d_min())
for f in sorted(rep.fits, key=lambda f: -rep.probabilities.get(f.label, 0))[:4]:
    line = [f"{f.label:36s} p={rep.probabilities[f.label]:.3f} L={f.log_likelihood:.2f} occ={f.log_occam:.2f}"]
    g = f
    for it in range(3):
        g = refine_set(profiles, g.phases, g.poles, {k: list(map(float, v)) for k, v in g.refined.items()}, g.bounds,
                       np.maximum(g.mu, 0.5), g.common)
        line.append(f"-> L={g.log_likelihood:.2f} occ={g.log_occam:.2f} conv={g.converged}")
    print(" ".join(line), flush=True)
