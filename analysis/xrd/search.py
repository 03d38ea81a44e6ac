"""The search over phase sets: screen, shortlist, rank, refine (``analysis.xrd.identify``).

36 phases give ~8 000 sets of up to three, so the sets are searched, not enumerated:

1. *screen*: every candidate alone, on a grid of lattice strains, scale and background solved
   exactly; score = χ² drop over background only;
2. *add*: every candidate added to the best single phase, then to the best pair (finds minor
   phases whose peaks sit beside a major one's);
3. *shortlist*: the best of each stage; *sets*: every subset of the shortlist up to
   ``max_phases``, fitted linearly at the screened refinements and ranked;
4. *refine*: the ``refine_sets`` best sets (and the best of each size, and simpler versions of
   the leaders) refined jointly (``analysis.xrd.fit.refine_set``).

Every stage fits with the Pearson weights ``weight`` (n,) of the smoothed counts and a starting
inverse crystallite size ``u_start`` (1/nm); χ² values are weighted sums of squares.
"""

from __future__ import annotations

import functools
import itertools
import dataclasses
import math
from dataclasses import dataclass, field

import numpy as np

from analysis.xrd.fit import INSTRUMENT, PER_PHASE, Bounds, PhaseProfiles, SetFit, choose_pole, linear_fit, refine_set
from analysis.xrd.settings import XRDPhaseIDSettings

B_START = 0.5
"""Å²: the starting isotropic B of a phase whose CIF gives none (a typical room-temperature value)."""
STRAIN_GRID_STEP = 0.0008
"""Spacing of the screening's lattice-strain grid (relative)."""
PRUNED_GAIN = 1.0
"""Nats by which a superset must out-fit a set before the set is refined again from it (``refine_pruned``)."""
NESTED_MARGIN = 20.0
"""Nats below the best set's log posterior within which a subset's supersets are refined again from
its optimum (``refine_nested``): e⁻²⁰ ≈ 2·10⁻⁹."""


@dataclass(frozen=True)
class SearchContext:
    """What every stage of the search shares: settings, the profiles on the measured steps, the
    Pearson weights (n,), the strain grid (relative) and the starting inverse size u (1/nm)."""

    settings: XRDPhaseIDSettings
    profiles: PhaseProfiles
    weight: np.ndarray
    strains: np.ndarray
    u_start: float

    def rate(self, name: str, strain: float) -> np.ndarray:
        """g of ``name`` at ``strain`` with the starting size, no zero shift, (n,)."""
        return self.profiles.rate(name, strain, self.u_start, 0.0)

    def chi2(self, columns: list[np.ndarray]) -> float:
        """χ² of the linear fit of ``columns`` (rates per unit scale) and the background."""
        return linear_fit(self.profiles, columns, self.weight)[1]


@dataclass
class Screening:
    """What the screening stages found.

    ``single``: per candidate alone, (χ², best strain); ``chosen``: shortlisted phase → screened
    strain, in the order taken; ``near_best``: per stage, the phases that did nearly as well as its
    best; ``base``: the greedy path, (phase, strain) per stage."""

    single: dict[str, tuple[float, float]]
    chosen: dict[str, float] = field(default_factory=dict)
    near_best: list[list[str]] = field(default_factory=list)
    base: list[tuple[str, float]] = field(default_factory=list)

    def strain(self, name: str) -> float:
        """The screened strain of ``name``."""
        return self.chosen.get(name, self.single[name][1])


def search(settings: XRDPhaseIDSettings, profiles: PhaseProfiles, weight: np.ndarray, shortlist_size: int,
           refine_sets: int) -> tuple[list[SetFit], int]:
    """Screen, shortlist, rank sets, refine the best; (refined fits, sets ranked)."""
    bound = settings.lattice_strain_bound
    strains = np.linspace(-bound, bound, 2 * round(bound / STRAIN_GRID_STEP) + 1)
    context = SearchContext(settings, profiles, weight, strains, min(0.01, settings.max_inverse_size / 2))
    screening = screen(context, per_stage=max(2, shortlist_size // 3))
    shortlist = shortlist_of(screening, shortlist_size)
    quick = rank_sets(context, screening, shortlist)
    to_refine = sets_to_refine(quick, refine_sets, settings.max_phases, screening.near_best[0])
    bounds = prior_bounds(context, shortlist)
    poles = texture_poles(context, screening, to_refine)
    fits = [refine_candidate(context, screening, combo, poles, bounds) for combo in to_refine]
    fits = refine_nested(context, fits, poles, bounds, settings.phase_log_prior())
    return refine_pruned(profiles, fits, bounds, settings.phase_log_prior()), len(quick)


def set_log_posterior(f: SetFit, log_prior_per_phase: float) -> float:
    """Log posterior of a refined set, up to a constant: Laplace evidence and the prior per phase."""
    return f.log_likelihood + f.log_occam + log_prior_per_phase * len(f.phases)


def refine_nested(context: SearchContext, fits: list[SetFit], poles: dict[str, tuple[tuple[int, int, int], float]],
                  bounds: Bounds, log_prior_per_phase: float) -> list[SetFit]:
    """Every set of k ≥ 2 phases whose best refined (k−1)-subset is a contender (log posterior
    within ``NESTED_MARGIN`` of the best set's) refined a second time, from that subset's optimum
    plus the added phase (``nested_start``); of the two fits the one with the larger Laplace
    evidence is kept. Smaller sets first, so a triple starts from an improved pair. (Sets built on a
    subset far below the best cannot change the answer; skipping them keeps the cost to a few
    refinements.)

    A set's refinement started from screened values can stop in a worse local minimum than its own
    subset's optimum (which the set contains, at the added phase's scale 0): a minor phase then
    loses evidence it deserves and its subset wins at p ≈ 0.99 (measured on the P25 survey, draw
    37: the true triple's log L 21 below the nested start's, 8 below its own subset's). Both
    starts find modes of one posterior; the evidence of the better one is kept."""
    log_posterior = functools.partial(set_log_posterior, log_prior_per_phase=log_prior_per_phase)
    by_label = {f.label: f for f in fits}
    best = max((log_posterior(f) for f in fits if math.isfinite(log_posterior(f))), default=-math.inf)
    for fit in sorted(fits, key=lambda f: len(f.phases)):
        subsets = [by_label[label] for label in _subset_labels(fit.phases) if label in by_label]
        if len(fit.phases) < 2 or not subsets:
            continue
        base = max(subsets, key=lambda f: f.log_likelihood)
        if not log_posterior(base) >= best - NESTED_MARGIN:
            continue
        nested = nested_start(context, fit.phases, base, poles, bounds)
        if nested.log_likelihood + nested.log_occam > fit.log_likelihood + fit.log_occam:
            by_label[fit.label] = nested
    return [by_label[f.label] for f in fits]


def refine_pruned(profiles: PhaseProfiles, fits: list[SetFit], bounds: Bounds, log_prior_per_phase: float) -> list[SetFit]:
    """Every contender set refined once more from its best-fitting superset's optimum minus the extra phase
    (``pruned_start``), where that superset fits better by more than ``PRUNED_GAIN`` nats; of the two
    fits the one with the larger Laplace evidence is kept.

    The other direction of ``refine_nested``: a superset can reach a better basin of the parameters all
    sets share (zero, displacement, the instrument profile) through its extra phase, and the set
    itself, refined from its own start, may never get there. Measured on the mismatch family's sample
    17 (fluorite + Si): the true pair ended 12 nats below its optimum while the supersets with a
    phantom quartz or corundum sat 2 nats above it, and the quartz won at p 0.87."""
    log_posterior = functools.partial(set_log_posterior, log_prior_per_phase=log_prior_per_phase)
    best = max((log_posterior(f) for f in fits if math.isfinite(log_posterior(f))), default=-math.inf)
    by_label = {f.label: f for f in fits}
    for fit in fits:
        supersets = [g for g in fits if len(g.phases) == len(fit.phases) + 1 and set(fit.phases) < set(g.phases)
                     and log_posterior(g) >= best - NESTED_MARGIN]
        top = max(supersets, key=lambda g: g.log_likelihood, default=None)
        if top is None or top.log_likelihood < fit.log_likelihood + PRUNED_GAIN:
            continue
        pruned = pruned_start(profiles, fit.phases, top, bounds)
        if pruned.log_likelihood + pruned.log_occam > fit.log_likelihood + fit.log_occam:
            by_label[fit.label] = pruned
    return [by_label[f.label] for f in fits]


def pruned_start(profiles: PhaseProfiles, combo: tuple[str, ...], superset: SetFit, bounds: Bounds) -> SetFit:
    """Refine ``combo`` from ``superset``'s optimum (its phases' parameters and poles, zero, displacement and
    instrument profile), the extra phase left out."""
    index = [superset.phases.index(n) for n in combo]
    start = {k: [float(superset.refined[k][j]) for j in index] for k in PER_PHASE}
    return refine_set(profiles, combo, [superset.poles[j] for j in index], start, bounds, np.maximum(superset.mu, 0.5),
                      dict(superset.common))


def _subset_labels(phases: tuple[str, ...]) -> list[str]:
    """Labels of the sets that leave out one phase of ``phases`` (sorted names, as ``SetFit.label``)."""
    return ["+".join(c) for c in itertools.combinations(phases, len(phases) - 1)]


def nested_start(context: SearchContext, combo: tuple[str, ...], base: SetFit,
                 poles: dict[str, tuple[tuple[int, int, int], float]], bounds: Bounds) -> SetFit:
    """Refine ``combo`` from ``base`` (its refined subset, one phase fewer): the subset's phases,
    zero, displacement and instrument profile at their optimum, the added phase as a random powder
    with the starting size and B and its strain screened on the grid beside the subset's fitted profiles."""
    profiles, u_start = context.profiles, context.u_start
    (added,) = set(combo) - set(base.phases)
    common = dict(base.common)
    instrument = {k: common[k] for k in INSTRUMENT}
    r = base.refined
    columns = [profiles.rate(n, r["strain"][j], r["inverse_size"][j], base.zero, r["microstrain"][j], base.poles[j],
                             r["log_r"][j], base.displacement, r["b_iso"][j], instrument, r["axial_strain"][j],
                             r["axial_inverse_size"][j])
               for j, n in enumerate(base.phases)]
    b_added = B_START if (b := profiles.phases[added].b_iso) is None else b
    trials = [(linear_fit(profiles, [*columns, profiles.rate(added, float(e), u_start, base.zero, 0.0, None, 0.0,
                                                             base.displacement, b_added, instrument)],
                          context.weight)[1], float(e))
              for e in context.strains]
    index = {n: j for j, n in enumerate(base.phases)}
    start = {k: [r[k][index[n]] if n in index else 0.0 for n in combo] for k in PER_PHASE}
    start["strain"][combo.index(added)] = min(trials)[1]
    start["inverse_size"][combo.index(added)] = u_start
    start["b_iso"][combo.index(added)] = b_added
    return refine_set(profiles, combo, [base.poles[index[n]] if n in index else poles[n][0] for n in combo], start,
                      bounds, np.maximum(base.mu, 0.5), common)


def best_addition(context: SearchContext, base: list[tuple[str, float]], exclude: set[str]) -> dict[str, tuple[float, float]]:
    """χ² of base + candidate, best over the strain grid, per candidate not in ``exclude``: (χ², strain)."""
    columns = [context.rate(n, e) for n, e in base]
    out = {}
    for name in context.profiles.phases:
        if name in exclude:
            continue
        out[name] = _best_strain(context, columns, name)
    return out


def _best_strain(context: SearchContext, columns: list[np.ndarray], name: str) -> tuple[float, float]:
    """(χ², strain) of ``name`` beside ``columns``: the best grid point, then the vertex of the
    parabola through it and its neighbours if that fits better."""
    strains = context.strains
    chi2 = [context.chi2([*columns, context.rate(name, e)]) for e in strains]
    j = int(np.argmin(chi2))
    best = (chi2[j], float(strains[j]))
    if 0 < j < len(strains) - 1:
        # The grid is coarser than a sharp peak: refine the strain at the parabola's vertex.
        c0, c1, c2 = chi2[j - 1], chi2[j], chi2[j + 1]
        curvature = c0 - 2 * c1 + c2
        if curvature > 0:
            e = float(strains[j] + 0.5 * (c0 - c2) / curvature * (strains[1] - strains[0]))
            best = min(best, (context.chi2([*columns, context.rate(name, e)]), e))
    return best


def screen(context: SearchContext, per_stage: int) -> Screening:
    """Every candidate alone, then added greedily to the best set so far, up to ``max_phases``;
    each stage shortlists its best ``per_stage`` and near-equals."""
    single = best_addition(context, [], set())
    screening = Screening(single)
    first = _take(screening, single, context.chi2([]), per_stage)
    screening.base.append((first, single[first][1]))
    for _ in range(context.settings.max_phases - 1):
        base = screening.base
        added = best_addition(context, base, {n for n, _ in base})
        if not added:
            break
        nxt = _take(screening, added, context.chi2([context.rate(n, e) for n, e in base]), per_stage)
        base.append((nxt, added[nxt][1]))
    return screening


def _take(screening: Screening, scores: dict[str, tuple[float, float]], reference: float, per_stage: int) -> str:
    """Shortlist a stage's best few and every phase that does nearly as well as its best (χ² gain
    over ``reference`` ≥ 80 % of the best's); the stage's best phase."""
    # An isostructural rival (Au/Ag, the spinels) must not be crowded out by junk.
    order = sorted(scores, key=lambda n: scores[n][0])
    gain = reference - scores[order[0]][0]
    close = [n for n in order if reference - scores[n][0] >= 0.8 * gain][:6]
    for n in dict.fromkeys(order[:per_stage] + close):
        screening.chosen.setdefault(n, scores[n][1])
    screening.near_best.append(close)
    return order[0]


def shortlist_of(screening: Screening, shortlist_size: int) -> list[str]:
    """Stage by stage (the order they were taken in), at most twice the shortlist size; the
    greedy path always competes."""
    shortlist = list(screening.chosen)[: 2 * max(shortlist_size, 1)]
    return shortlist + [n for n, _ in screening.base if n not in shortlist]


def rank_sets(context: SearchContext, screening: Screening, shortlist: list[str]) -> list[tuple[float, tuple[str, ...]]]:
    """Every subset of the shortlist up to ``max_phases``, ranked by a quick linear fit at the
    screened refinements: (−χ²/2 + (log prior − 3) × size, sorted names), best first."""
    s = context.settings
    log_prior = s.phase_log_prior()
    quick: list[tuple[float, tuple[str, ...]]] = []
    for size in range(1, min(s.max_phases, len(shortlist)) + 1):
        for combo in itertools.combinations(shortlist, size):
            chi2 = context.chi2([context.rate(n, screening.strain(n)) for n in combo])
            quick.append((-0.5 * chi2 + (log_prior - 3.0) * size, tuple(sorted(combo))))
    quick.sort(reverse=True)
    return quick


def sets_to_refine(quick: list[tuple[float, tuple[str, ...]]], refine_sets: int, max_phases: int,
                   near_best_single: list[str]) -> list[tuple[str, ...]]:
    """The ``refine_sets`` best ranked sets, the best of each size, the near-equals of the best
    single phase alone, and every simpler version of the three leading sets."""
    to_refine = [c for _, c in quick[:refine_sets]]
    for size in range(1, max_phases + 1):  # the best of each size competes too
        best_of_size = next((c for _, c in quick if len(c) == size), None)
        if best_of_size is not None and best_of_size not in to_refine:
            to_refine.append(best_of_size)
    # Near-equals of the best single phase compete alone (Au for Ag, one spinel for another).
    to_refine += [(n,) for n in near_best_single if (n,) not in to_refine]
    # Every simpler version of the three leading sets competes as well: the quick fit (no texture,
    # fixed widths) lets extra phases soak up profile misfit, and only a refined simpler set can
    # show that they were not needed.
    for combo in list(to_refine[:3]):
        for size in range(1, len(combo)):
            to_refine += [c for c in itertools.combinations(combo, size) if c not in to_refine]
    return to_refine


def prior_bounds(context: SearchContext, shortlist: list[str]) -> Bounds:
    """The refinement's prior box; each scale's: the scale at which that phase alone would carry
    all net counts, × 3."""
    s, profiles = context.settings, context.profiles
    pattern = profiles.pattern
    background_only = linear_fit(profiles, [], np.ones(pattern.n))[0]
    net = float(np.sum(np.maximum(pattern.counts - pattern.dwell * (profiles.background @ background_only), 0.0) / pattern.dwell))
    scale_max = {n: 3.0 * max(net, 1.0) / max(float(np.sum(context.rate(n, 0.0))), 1e-12) for n in shortlist}
    return Bounds(strain=s.lattice_strain_bound, inverse_size=s.max_inverse_size, microstrain=s.max_microstrain,
                  log_r=math.log(s.max_march_r), zero=s.zero_shift_bound_deg,
                  displacement=s.displacement_bound_mm, scale_max=scale_max,
                  background=10.0 * (float(np.max(pattern.counts / pattern.dwell)) + 1.0),
                  b_iso=tuple(s.b_iso_range),  # type: ignore[arg-type]
                  b_iso_fixed={n: b for n in profiles.phases if (b := profiles.phases[n].b_iso) is not None},
                  instrument=s.instrument_ranges(), axial_strain=s.axial_strain_bound,
                  unique_axis=frozenset(n for n in shortlist if profiles.phases[n].has_unique_axis()))


def texture_poles(context: SearchContext, screening: Screening,
                  to_refine: list[tuple[str, ...]]) -> dict[str, tuple[tuple[int, int, int], float]]:
    """Texture pole (and starting log r) of each phase, chosen once beside the other phases of
    the first set to refine that holds it."""
    poles: dict[str, tuple[tuple[int, int, int], float]] = {}
    for combo in to_refine:
        for n in combo:
            if n not in poles:
                others = [context.rate(m, screening.strain(m)) for m in combo if m != n]
                poles[n] = choose_pole(context.profiles, n, screening.strain(n), context.u_start, others, context.weight)
    return poles


def refine_candidate(context: SearchContext, screening: Screening, combo: tuple[str, ...],
                     poles: dict[str, tuple[tuple[int, int, int], float]], bounds: Bounds) -> SetFit:
    """Refine one set from its strains re-screened in context and a linear fit there."""
    profiles, pattern, u_start = context.profiles, context.profiles.pattern, context.u_start
    strain = _strains_in_context(profiles, combo, [screening.strain(n) for n in combo], context.strains, u_start,
                                 context.weight)
    columns = [profiles.rate(n, e, u_start, 0.0) for n, e in zip(combo, strain)]
    quick_fit, _ = linear_fit(profiles, columns, context.weight)
    mu0 = pattern.dwell * (sum((a * g for a, g in zip(quick_fit[: len(combo)], columns)), np.zeros(pattern.n))
                           + profiles.background @ quick_fit[len(combo):])
    start = {"strain": strain, "inverse_size": [u_start] * len(combo),
             "microstrain": [0.0] * len(combo), "log_r": [poles[n][1] for n in combo],
             "axial_strain": [0.0] * len(combo), "axial_inverse_size": [0.0] * len(combo),
             "b_iso": [B_START if (b := profiles.phases[n].b_iso) is None else b for n in combo]}
    pole_list = [poles[n][0] for n in combo]
    direct = refine_set(profiles, combo, pole_list, start, bounds, np.maximum(mu0, 0.5))
    # Second start, staged as in Rietveld practice: first with B and the instrument profile held
    # (positions, widths and scales settle), then everything released from there; the higher
    # likelihood of the two is kept (same model, same box). Released at once from the screening's
    # start, a minor phase's strain can run to its bound: on the P25 survey + one window the
    # 3-phase optimum ended 13 nats below the held model it nests, and brookite was lost.
    held = dataclasses.replace(bounds, instrument={}, b_iso_fixed={n: b for n, b in zip(combo, start["b_iso"])})
    first = refine_set(profiles, combo, pole_list, start, held, np.maximum(mu0, 0.5))
    if np.isfinite(first.log_likelihood):
        released = {k: list(map(float, v)) for k, v in first.refined.items()}
        staged = refine_set(profiles, combo, pole_list, released, bounds, np.maximum(first.mu, 0.5))
        direct = staged if staged.log_likelihood > direct.log_likelihood else direct
    return reweighted(profiles, direct, bounds)


def reweighted(profiles: PhaseProfiles, fit: SetFit, bounds: Bounds) -> SetFit:
    """``fit`` refined once more from its optimum with the Pearson weights of that optimum (one step of
    iteratively reweighted least squares, whose fixed point is the Poisson maximum); the higher log L is kept.

    The weights of the refinements above come from their start (a quick linear fit with the starting size and
    no zero shift), not from the optimum; where the two differ, the weighted-least-squares optimum is not the
    Poisson one. Measured: a single corundum survey (tests/analysis/xrd, seed 3) ended 2.9 nats below the true
    model's log L (8.1 below its reweighted optimum); its supersets, refined with its fitted weights
    (``nested_start``), gained those nats, and a trace spinel beside it won at p 0.56."""
    polished = refine_set(profiles, fit.phases, fit.poles, {k: list(map(float, v)) for k, v in fit.refined.items()},
                          bounds, np.maximum(fit.mu, 0.5), fit.common)
    return polished if polished.log_likelihood > fit.log_likelihood else fit


def _strains_in_context(profiles: PhaseProfiles, combo: tuple[str, ...], strains: list[float], grid: np.ndarray,
                        u_start: float, weight: np.ndarray) -> list[float]:
    """Each phase's starting strain re-screened beside the set's other phases, one pass.

    A minor phase's strain screened alone (or beside other phases) may have lined its peaks up
    with a major phase's; a local refinement cannot leave that valley, and the set would lose
    evidence it deserves."""
    strains = list(strains)
    for i, name in enumerate(combo):
        if len(combo) == 1:
            break
        others = [profiles.rate(m, strains[j], u_start, 0.0) for j, m in enumerate(combo) if j != i]
        trials = [(linear_fit(profiles, [*others, profiles.rate(name, float(e), u_start, 0.0)], weight)[1], float(e))
                  for e in [*grid, strains[i]]]
        strains[i] = min(trials)[1]
    return strains
