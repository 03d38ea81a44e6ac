"""What the best set's residuals say: a phase is missing, or the profile is too simple.

The steps are split by the fitted set's own peaks: *inside* within 2.5 FWHM of a peak of its
phases (``_own_peaks``), *outside* elsewhere. Two questions, two tests:

- **missing phase** — intensity clustered where no phase of the set has a peak. Pearson residuals
  outside are high-passed (a running median over ``BROAD_FWHM`` peak widths is subtracted: a broad
  hump is background or amorphous, not a crystalline phase), summed over sliding windows one peak
  width long, and scaled by a robust spread of those sums (1.4826 × MAD, so over-dispersion and the
  correlation of neighbouring steps do not fake significance). A run of window sums above the
  Bonferroni threshold z* = Φ⁻¹(1 − α/M) (M independent windows, α = ``ALPHA``) is a cluster; when
  the clusters together hold at least ``min_fraction`` of the set's diffracted counts they are
  *unexplained* (a phase that matters), else *traces* (reported, not a flag).
- **profile too simple** — misfit spread over the set's own peaks: the mean squared Pearson
  residual inside against outside, an F test (one-sided, p < ``ALPHA``).

``missing_log_odds`` turns the clusters into the log odds of "a phase outside the library": the
χ² the clusters carry (in units of their robust spread) against the cost of placing that many free peaks
(log M each) and of a phase the library lacks (``log_prior_per_phase``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage, signal, stats

ALPHA = 1e-3
"""Family-wise false-alarm rate of each test."""
BROAD_FWHM = 12
"""Residual structure wider than this many peak widths counts as background."""
OWN_PEAK_SIGMAS = 1.0
"""A fitted peak owns its neighbourhood (residuals there test the profile) when it stands this many
background σ above the background."""


@dataclass
class ResidualVerdict:
    """Clusters (centre 2θ, deg; net counts; z) and the profile F test of one fitted set."""

    unexplained: list[tuple[float, float, float]] = field(default_factory=list)
    traces: list[tuple[float, float, float]] = field(default_factory=list)
    z_threshold: float = math.inf
    n_windows: int = 0
    profile_ratio: float = 1.0
    profile_p_value: float = 1.0

    @property
    def profile_misfit(self) -> bool:
        return self.profile_p_value < ALPHA and self.profile_ratio > 1.0


def residual_verdict(two_theta: np.ndarray, counts: np.ndarray, mu: np.ndarray, background: np.ndarray,
                     width_deg: float, min_fraction: float) -> ResidualVerdict:
    """The two tests (module docstring) on one fit: arrays (n,) of 2θ (deg, increasing within the
    pattern), counts, expected counts and the expected background counts; ``width_deg`` a typical
    peak FWHM (deg); ``min_fraction`` of the set's diffracted counts a cluster needs to matter."""
    order = np.argsort(two_theta, kind="stable")
    x, n, m, bg = two_theta[order], counts[order], np.maximum(mu[order], 1e-9), background[order]
    r = (n - m) / np.sqrt(m)
    inside, beside = _own_peaks(x, m - bg, bg)
    verdict = ResidualVerdict()
    _profile_test(verdict, r, inside)
    step = float(np.median(np.diff(x))) if x.size > 1 else width_deg
    w = max(int(round(width_deg / max(step, 1e-6))), 1)
    outside = ~inside
    if int(outside.sum()) < 10 * w:
        return verdict
    high = r - ndimage.median_filter(np.where(outside, r, 0.0), size=BROAD_FWHM * w, mode="nearest")
    sums = np.convolve(np.where(outside, high, 0.0), np.ones(w), mode="same")
    covered = np.convolve(outside.astype(float), np.ones(w), mode="same") >= 0.75 * w
    covered[:BROAD_FWHM * w // 2] = covered[-(BROAD_FWHM * w // 2):] = False  # the median filter's edges are biased
    spread = 1.4826 * float(np.median(np.abs(sums[covered] - np.median(sums[covered])))) if covered.any() else 0.0
    if not spread > 0:
        return verdict
    z = np.where(covered, sums / spread, 0.0)
    verdict.n_windows = max(int(covered.sum()) // w, 1)
    verdict.z_threshold = float(stats.norm.isf(ALPHA / verdict.n_windows))
    diffracted = float(np.sum(np.maximum(m - bg, 0.0)))
    found = _clusters(n - m, z, outside, verdict.z_threshold, w)
    _classify(verdict, [(round(float(x[i]), 3), net, zmax) for i, net, zmax in found], [bool(beside[i]) for i, _, _ in found],
              min_fraction * diffracted)
    return verdict


def _classify(verdict: ResidualVerdict, clusters: list[tuple[float, float, float]], beside: list[bool],
              material: float) -> None:
    """Clusters → unexplained or traces. A phase outside the set spreads its intensity over all its
    peaks (a 5 wt % impurity: a dozen peaks of 0.3–2 % each), so clusters count *together* against
    ``material`` (counts) — except, when the profile test says the profile is too simple, those
    ``beside`` the set's own peaks: a too-narrow or too-symmetric profile leaves exactly such pairs
    of shoulders, so each of those must hold ``material`` alone."""
    pooled = [c for c, near in zip(clusters, beside) if not (near and verdict.profile_misfit)]
    alone = [c for c, near in zip(clusters, beside) if near and verdict.profile_misfit]
    if sum(net for _, net, _ in pooled) >= material:
        verdict.unexplained += pooled
    else:
        verdict.traces += pooled
    for c in alone:
        (verdict.unexplained if c[1] >= material else verdict.traces).append(c)
    verdict.unexplained.sort()
    verdict.traces.sort()


def _clusters(excess: np.ndarray, z: np.ndarray, outside: np.ndarray, z_threshold: float,
              w: int) -> list[tuple[int, float, float]]:
    """Runs of window sums above ``z_threshold``: (step of the largest z; net excess counts outside the
    set's peaks within one window of the run; largest z), those with a positive net."""
    labels, n_runs = ndimage.label(z > z_threshold)
    found = []
    for k in range(1, n_runs + 1):
        run = np.flatnonzero(labels == k)
        span = slice(max(run[0] - w, 0), min(run[-1] + w + 1, z.size))
        net = float(np.sum(excess[span][outside[span]]))
        if net > 0:
            found.append((int(run[np.argmax(z[run])]), net, float(z[run].max())))
    return found


def _own_peaks(x: np.ndarray, phases: np.ndarray, bg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Steps within 2.5 FWHM of a peak of the fitted phases (a local maximum of their counts that
    stands ``OWN_PEAK_SIGMAS`` background σ above it; FWHM measured on the model), and those within
    5 FWHM (where a too-simple profile leaves its shoulders): two (n,) bool.

    Peak windows, not a threshold on the model: the Lorentzian tails of strong peaks reach far, and
    would otherwise make the whole pattern "inside". A peak below one background σ cannot show a
    profile misfit, and its window would hide a missing phase's peak beside it (fluorite's
    1-count (200) at 32.76° hid SrTiO3's (110) at 32.40°, 5 % of the diffracted counts)."""
    floor = OWN_PEAK_SIGMAS * float(np.sqrt(max(float(np.median(bg)), 1.0)))
    peaks, props = signal.find_peaks(phases, height=floor, width=1, rel_height=0.5)
    inside, beside = np.zeros(x.size, dtype=bool), np.zeros(x.size, dtype=bool)
    step = float(np.median(np.diff(x))) if x.size > 1 else 1.0
    for k, width in zip(peaks, props["widths"]):
        inside |= np.abs(x - x[k]) <= 2.5 * width * step
        beside |= np.abs(x - x[k]) <= 5.0 * width * step
    return inside, beside


def _profile_test(verdict: ResidualVerdict, r: np.ndarray, inside: np.ndarray) -> None:
    """F test of the mean squared residual inside the set's peaks against outside them."""
    n_in, n_out = int(inside.sum()), int((~inside).sum())
    if n_in < 5 or n_out < 5:
        return
    mean_out = max(float(np.mean(r[~inside] ** 2)), 1e-12)
    verdict.profile_ratio = float(np.mean(r[inside] ** 2)) / mean_out
    verdict.profile_p_value = float(stats.f.sf(verdict.profile_ratio, n_in, n_out))


def missing_log_odds(verdict: ResidualVerdict, temperature: float, log_prior_per_phase: float) -> float:
    """log odds of "a phase outside the library" from the unexplained clusters (−inf: none).

    Each cluster's χ² gain is about z² (its window sum is z spreads); a free peak there costs
    log M (where to put it among M windows) + 1 (its width and height, roughly); the unlisted
    phase costs ``log_prior_per_phase`` like any other phase."""
    if not verdict.unexplained:
        return -math.inf
    # z is already scaled by the robust spread of the window sums, which carries any over-dispersion;
    # dividing by the misfit temperature too would let the missing phase's own misfit hide it.
    del temperature
    gain = sum(z * z for _, _, z in verdict.unexplained) / 2.0
    cost = len(verdict.unexplained) * (math.log(max(verdict.n_windows, 2)) + 1.0)
    return gain - cost + log_prior_per_phase
