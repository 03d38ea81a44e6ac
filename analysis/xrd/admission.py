"""Which refined phase sets may be an answer, and which of their phases only stand in for something else.

A refinement can make any library phase absorb intensity it does not own by pressing its parameters
against the edges of their prior box. Three such phases are not identifications (mismatch family,
``docs/wip/xrd-phantom-phase.md``):

- **empty** — its scale ended on zero: the set is its subset in disguise (no answer lists a phase at
  weight 0);
- **broad patch** — its crystallites at the smallest size the prior allows (inverse size on its upper
  bound): the data want something broader than any crystal we admit — diffuse scattering, an amorphous
  hump or background shape the Chebyshev and diffuse terms miss. Sample 29: a "4-nm halite" with
  microstrain, B and texture also at their bounds bought 60 nats on a clean fluorite + Si pattern, away
  from the true phases' peaks, and was reported at p 1.00. A set holding one is not an answer;
- **stand-in** — its lattice strain *and* an intensity parameter (B, March texture) on their bounds: both
  where its peaks lie and how strong they are had to be forced, so its pattern is not the sample's. Sample
  31: an out-of-library Y2O3 read as calcite (strain +0.5 %, B 3 Å², texture at the bound) at p 1.00. Its
  set stays in the posterior, but what the stand-in explains is counted as evidence of a phase outside
  the library (``analysis.xrd.identify``).
"""

from __future__ import annotations

import numpy as np

from analysis.xrd.fit import AT_EDGE, SetFit

INTENSITY_PARAMETERS = ("b_iso", "log_r")
"""Per-phase parameters that change a phase's relative peak intensities (thermal motion, texture)."""


def has_empty_phase(fit: SetFit) -> bool:
    """A phase whose scale ended on zero (below 10⁻³ of the set's largest scale × density ratio, or
    under half its σ)."""
    if len(fit.phases) < 2:
        return False
    top = float(np.max(fit.scales))
    return bool(np.any((fit.scales <= 1e-3 * top) | (fit.scales < 0.5 * fit.scale_sigmas)))


def broad_patches(fit: SetFit) -> list[str]:
    """Phases of ``fit`` whose inverse crystallite size sits on its upper bound (by value: a patch is
    often too loosely determined for ``SetFit.at_bound``, which lists only well-determined parameters)."""
    if fit.bounds is None or fit.bounds.inverse_size <= 0:
        return []
    top = fit.bounds.inverse_size
    return [n for n, u in zip(fit.phases, fit.refined["inverse_size"]) if u >= (1 - AT_EDGE) * top]


def stand_ins(fit: SetFit) -> list[str]:
    """Phases of ``fit`` with a lattice strain and an intensity parameter both on their bounds, among
    the well-determined parameters at a bound (``SetFit.at_bound``, ``<parameter>:<phase>``)."""
    pinned: dict[str, set[str]] = {}
    for name in fit.at_bound:
        parameter, _, phase = name.partition(":")
        if phase:
            pinned.setdefault(phase, set()).add(parameter)
    return [n for n in fit.phases if pinned.get(n, set()) & {"strain", "axial_strain"}
            and pinned.get(n, set()) & set(INTENSITY_PARAMETERS)]
