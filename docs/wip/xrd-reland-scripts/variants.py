"""Per-set evidence under four Occam variants, from one identification's fits (imported by sic2/diag2)."""
import math
from analysis.laplace import posterior_probabilities
from analysis.xrd.fit import box_laplace

def variants(rep, log_prior):
    T = rep.temperature
    out = {}
    for f in rep.fits:
        t = f.occam_terms
        no_g = box_laplace(t.x, t.information, t.lo, t.hi)
        no_g_T = box_laplace(t.x, t.information / T, t.lo, t.hi)
        first = 0.5 * f.n_parameters * math.log(T)
        base = f.log_likelihood / T + f.scale_prior + log_prior * len(f.phases)
        out[f.label] = {"a:noG,1st": base + no_g + first, "b:G,1st": base + t.log_occam(1.0) + first,
                        "c:noG,exactT": base + no_g_T, "d:G,exactT": base + t.log_occam(T)}
    probs = {k: posterior_probabilities({lab: v[k] for lab, v in out.items()}) for k in ("a:noG,1st", "b:G,1st", "c:noG,exactT", "d:G,exactT")}
    return out, probs

def show(rep, log_prior, top=4):
    out, probs = variants(rep, log_prior)
    labs = sorted(out, key=lambda l: -probs["d:G,exactT"][l])[:top]
    for l in labs:
        f = next(f for f in rep.fits if f.label == l)
        t = f.occam_terms
        print(f"  {l:45s} logL={f.log_likelihood:.1f} k={f.n_parameters} pushed={int((t.gradient != 0).sum())} atb={f.at_bound}")
        print("     " + "  ".join(f"{k}: p={probs[k][l]:.3f}" for k in probs))
