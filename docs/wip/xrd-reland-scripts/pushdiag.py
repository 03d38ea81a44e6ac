"""For draw ids (P25 survey) or 'sic': per top set, each pushed parameter: name, value, gradient, conditional sigma, cost vs no-push."""
import sys, json, math
import numpy as np
sys.path.insert(0, __import__("os").path.dirname(__file__))
from analysis.xrd.fit import PhaseProfiles, SetProblem, box_laplace, HELD_WIDTH, PER_PHASE, kkt_gradient, log_gaussian_box
from analysis.xrd.pattern import collect
from variants import show

def names_of(prob):
    n = [f"scale:{p}" for p in prob.phases] + [f"bg{j}" for j in range(prob.k_bg)]
    n += [f"{k}:{p}" for k in PER_PHASE for p in prob.phases] + list(prob.globals_used)
    free = np.flatnonzero(prob.hi - prob.lo > HELD_WIDTH)
    return [n[i] for i in free]

def detail(an, pattern, rep, top=3):
    s = an.settings
    profiles = PhaseProfiles(an.phases, s.optics(), pattern, s.d_min())
    weight = np.ones(pattern.n)
    T = rep.temperature
    for f in sorted(rep.fits, key=lambda f: -rep.probabilities[f.label])[:top]:
        prob = SetProblem(profiles, f.phases, f.poles, f.bounds, weight)
        names = names_of(prob)
        t = f.occam_terms
        print(f" {f.label} p={rep.probabilities[f.label]:.3f} occ(T)={t.log_occam(T):.2f} noG(T)={box_laplace(t.x, t.information/T, t.lo, t.hi):.2f}")
        for i in np.flatnonzero(t.gradient != 0):
            w = t.hi[i] - t.lo[i]
            c = 1 / math.sqrt(max(t.information[i, i] / T, 1e-300))
            lg = log_gaussian_box(t.information[i, i] / T, t.gradient[i] / T, t.lo[i] - t.x[i], t.hi[i] - t.x[i])
            l0 = log_gaussian_box(t.information[i, i] / T, 0.0, t.lo[i] - t.x[i], t.hi[i] - t.x[i])
            print(f"    {names[i]:28s} x={t.x[i]:.4g} box=[{t.lo[i]:.3g},{t.hi[i]:.3g}] g/T={t.gradient[i]/T:.3g} c_cond={c:.3g} z=g*c={t.gradient[i]/T*c:.2f} cost1D={lg-l0:.2f}")
