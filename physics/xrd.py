"""Powder-diffraction physics: wavelength lines, peak positions and the pseudo-Voigt profile.

The profile model is shared by the simulator (which draws counts from it) and the analysis (which
fits it), so it lives here, below both, and neither imports the other; the instrument's contract
(``instruments.xrd``) builds on it. Units: angles in degrees 2θ, d in Å, time in seconds, rates in
counts per second.

Peak of reflection *hkl* of a phase, for each wavelength line (λ, relative weight w)::

    position   2θ = 2 asin(λ / (2 d (1 + ε_lattice))) + zero − (180/π) · 2 s cos θ / R
               (ε_lattice: lattice strain; zero: zero shift; s: sample displacement, mm; R: radius, mm)
    area       w · |F|²·m · LP(2θ) · PO / V²     LP = (1 + cos² 2θ) / (sin² θ cos θ), V cell volume Å³
    DW         exp(−B / (2 d²))   isotropic Debye–Waller factor, B in Å² (= exp(−2B sin²θ/λ²))
    shape      pseudo-Voigt of unit area, Thompson–Cox–Hastings mix of
               H_G² = U tan² θ + V tan θ + W + ((180/π) · 4 ε_micro tan θ)²     (Caglioti + microstrain)
               H_L  = (180/π) · K λ / (L cos θ)                                   (Scherrer, K = 0.9, L size)

Asymmetry (axial divergence) is a *split* pseudo-Voigt: the low-angle half has FWHM H(1 + a), the
high-angle half H(1 − a), with a = A / tan 2θ clipped to ±0.8 (A ≥ 0: the instrument's asymmetry).
Chosen over the Finger–Cox–Jephcoat convolution because it costs one profile evaluation per peak
(the identification refines dozens of phase sets per pattern) and still reproduces what matters for
identification — the low-angle tail below 2θ ≈ 90° growing as 1/tan 2θ and changing side above
90° — while keeping unit area and the peak maximum at the Bragg position.

The rate of a phase at 2θ is ``scale`` times the sum over its peaks; 1/V² makes ``scale``
proportional to the phase's volume fraction (intensity diffracted per unit volume ∝ |F|²/V²), so
weight fractions follow from fitted scales as w_p ∝ scale_p · ρ_p. Profiles are cut at ±20 FWHM
and peaks below 10⁻⁴ of the phase's strongest are left out (both sides use the same cuts).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from physics.constants import HC_KEV_ANGSTROM
from physics.phases import Reflections

WAVELENGTH_LINES: dict[str, tuple[tuple[float, float], ...]] = {
    # (λ Å, relative intensity); Kα2/Kα1 = 0.5 (Hölzer et al. 1997 wavelengths)
    "CuKa": ((1.5405929, 1.0), (1.5444274, 0.5)),
    "CuKa1": ((1.5405929, 1.0),),
    "CoKa": ((1.7889920, 1.0), (1.7928350, 0.5)),
    "CoKa1": ((1.7889920, 1.0),),
    "MoKa": ((0.7093171, 1.0), (0.7135900, 0.5)),
    "MoKa1": ((0.7093171, 1.0),),
}
SCHERRER_K = 0.9
PROFILE_REACH_FWHM = 20.0
"""Profiles are evaluated within ± this many FWHM of a peak."""
WEAKEST_PEAK = 1e-4
"""Peaks weaker than this fraction of a phase's strongest are left out (both sides alike)."""


def wavelength_lines(spec: str | float) -> tuple[tuple[float, float], ...]:
    """Lines of a tube name (``'CuKa'`` = Kα1 + Kα2, ``'CuKa1'``, Co, Mo) or one wavelength in Å."""
    if isinstance(spec, str):
        if spec not in WAVELENGTH_LINES:
            raise ValueError(f"wavelength: unknown line {spec!r}; use one of {sorted(WAVELENGTH_LINES)} or a number in Å")
        return WAVELENGTH_LINES[spec]
    if not (math.isfinite(spec) and 0.1 <= spec <= 5.0):
        raise ValueError(f"wavelength: {spec} Å is not a plausible X-ray wavelength (0.1–5 Å)")
    return ((float(spec), 1.0),)


def resolve_lines(wavelength: str | float, energy_kev: float | None) -> tuple[tuple[float, float], ...]:
    """The lines of a settings block: one line at ``energy_kev`` (a synchrotron) if given, else
    ``wavelength`` (a tube name or Å, see ``wavelength_lines``)."""
    if energy_kev is not None:
        return ((HC_KEV_ANGSTROM / energy_kev, 1.0),)
    return wavelength_lines(wavelength)


def source_name(wavelength: str | float, energy_kev: float | None) -> str:
    """How a settings block names its radiation, for file headers: ``'20 keV'``, ``'CuKa'`` or ``'1.54 angstrom'``."""
    if energy_kev is not None:
        return f"{energy_kev:g} keV"
    return wavelength if isinstance(wavelength, str) else f"{float(wavelength):g} angstrom"


def scan_points(start: float, stop: float, step: float) -> np.ndarray:
    """2θ of the steps of a window, start to stop inclusive (to within half a step), degrees."""
    n = int(math.floor((stop - start) / step + 0.5)) + 1
    return start + step * np.arange(max(n, 1))


def _tch(h_g: np.ndarray, h_l: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    # Thompson, Cox & Hastings (1987): total FWHM and Lorentzian fraction of a pseudo-Voigt that
    # approximates the Voigt of Gaussian FWHM h_g and Lorentzian FWHM h_l.
    h = (h_g**5 + 2.69269 * h_g**4 * h_l + 2.42843 * h_g**3 * h_l**2 + 4.47163 * h_g**2 * h_l**3
         + 0.07842 * h_g * h_l**4 + h_l**5) ** 0.2
    q = np.divide(h_l, h, out=np.zeros_like(h), where=h > 0)
    return h, np.clip(1.36603 * q - 0.47719 * q**2 + 0.11116 * q**3, 0.0, 1.0)


def peak_shapes(
    two_theta: np.ndarray, wavelength: float, caglioti: tuple[float, float, float], size_nm: float | np.ndarray | None,
    microstrain: float
) -> tuple[np.ndarray, np.ndarray]:
    """(FWHM degrees, Lorentzian fraction η) of peaks at ``two_theta`` (degrees); ``size_nm`` one
    crystallite size or one per peak (anisotropic), nm."""
    theta = np.radians(two_theta / 2)
    tan = np.tan(theta)
    u, v, w = caglioti
    h_g2 = np.maximum(u * tan**2 + v * tan + w, 1e-8) + (math.degrees(1) * 4 * microstrain * tan) ** 2
    h_l = (
        np.zeros_like(theta)
        if size_nm is None
        else math.degrees(1) * SCHERRER_K * wavelength / (10.0 * size_nm * np.cos(theta))
    )
    return _tch(np.sqrt(h_g2), h_l)


def march_dollase(normals: np.ndarray, index: np.ndarray, n_reflections: int, pole: np.ndarray, r: float) -> np.ndarray:
    """March–Dollase texture factor per reflection: the mean over its planes of
    (r² cos² α + sin² α / r)^(−3/2), α between a plane's normal and the ``pole`` (unit vectors).

    r < 1: platelets lying flat on the holder (the pole's reflections enhanced); r > 1: needles;
    r = 1: a random powder (every factor exactly 1). ``normals``, ``index``: see
    ``Phase.plane_normals``.
    """
    if r == 1.0:
        return np.ones(n_reflections)
    cos2 = np.clip(normals @ pole, -1.0, 1.0) ** 2
    values = (r * r * cos2 + (1.0 - cos2) / r) ** -1.5
    total = np.bincount(index, weights=values, minlength=n_reflections)
    count = np.bincount(index, minlength=n_reflections)
    return np.divide(total, count, out=np.ones(n_reflections), where=count > 0)


def lorentz_polarisation(two_theta: np.ndarray) -> np.ndarray:
    theta = np.radians(two_theta / 2)
    return (1 + np.cos(2 * theta) ** 2) / (np.sin(theta) ** 2 * np.cos(theta))


def debye_waller(d: np.ndarray, b_iso: float) -> np.ndarray:
    """Isotropic Debye–Waller intensity factor exp(−B/(2d²)) of reflections of spacing ``d`` (Å); B in Å²."""
    return np.exp(-b_iso / (2.0 * np.asarray(d, dtype=float) ** 2))


def axial_asymmetry(two_theta: np.ndarray, asymmetry: float) -> np.ndarray:
    """Split fraction a = A / tan 2θ of peaks at ``two_theta`` (degrees), clipped to ±0.8 (see module docstring)."""
    if asymmetry == 0.0:
        return np.zeros_like(np.asarray(two_theta, dtype=float))
    return np.clip(asymmetry / np.tan(np.radians(two_theta)), -0.8, 0.8)


def split_pseudo_voigt(delta: np.ndarray, fwhm: np.ndarray, eta: np.ndarray, split: np.ndarray) -> np.ndarray:
    """Unit-area split pseudo-Voigt at ``delta`` = 2θ − centre (degrees): FWHM ``fwhm``·(1 + split) below
    the centre, ``fwhm``·(1 − split) above; each half scaled so the two join at the maximum."""
    side = np.where(delta < 0, 1.0 + split, 1.0 - split)
    width = fwhm * side
    # A unit-area pseudo-Voigt of FWHM f peaks at ∝ 1/f: the factor 2·f_side/(f_low + f_high) joins
    # the halves and gives (f_low/2 + f_high/2)·2/(f_low + f_high) = 1 for the area.
    return side * pseudo_voigt(delta, width, eta)


def pseudo_voigt(delta: np.ndarray, fwhm: np.ndarray, eta: np.ndarray) -> np.ndarray:
    """Unit-area pseudo-Voigt (per degree) at ``delta`` = 2θ − centre, degrees."""
    x2 = (delta / fwhm) ** 2
    gauss = (2.0 / fwhm) * math.sqrt(math.log(2) / math.pi) * np.exp(-4 * math.log(2) * x2)
    lorentz = (2.0 / (math.pi * fwhm)) / (1 + 4 * x2)
    return eta * lorentz + (1 - eta) * gauss


def peak_positions(
    d: np.ndarray, wavelength: float, lattice_strain: float, zero_shift_deg: float, displacement_mm: float, radius_mm: float
) -> np.ndarray:
    """Observed 2θ (degrees) of reflections of spacing ``d`` (Å); NaN where λ/2d' > 1."""
    s = wavelength / (2 * d * (1 + lattice_strain))
    theta = np.arcsin(np.where(s < 1, s, np.nan))
    return np.degrees(2 * theta) + zero_shift_deg - np.degrees(2 * displacement_mm * np.cos(theta) / radius_mm)


def phase_rate(
    two_theta: np.ndarray,
    reflections: Reflections,
    volume: float,
    lines: Sequence[tuple[float, float]],
    caglioti: tuple[float, float, float],
    *,
    size_nm: float | np.ndarray | None = None,
    microstrain: float = 0.0,
    lattice_strain: float = 0.0,
    zero_shift_deg: float = 0.0,
    displacement_mm: float = 0.0,
    radius_mm: float = 240.0,
    orientation: np.ndarray | None = None,
    b_iso: float = 0.0,
    asymmetry: float = 0.0,
) -> np.ndarray:
    """Diffracted rate of one phase at ``two_theta`` (degrees, any order) per unit scale.

    ``orientation``: a per-reflection intensity factor (preferred orientation), 1 when None;
    ``b_iso``: the phase's isotropic Debye–Waller B, Å²; ``asymmetry``: the instrument's A (see
    the module docstring). The
    result has units of electrons² Å⁻⁶ per degree; times a phase scale it is counts per second.
    """
    # Overlapping windows repeat 2θ values: evaluate each distinct one once.
    xs, inverse = np.unique(np.asarray(two_theta, dtype=float), return_inverse=True)
    total = np.zeros_like(xs)
    lo_x, hi_x = (float(xs[0]), float(xs[-1])) if xs.size else (0.0, 0.0)
    factor = reflections.f2m / volume**2 * (1.0 if orientation is None else orientation)
    if b_iso != 0.0:
        factor = factor * debye_waller(reflections.d, b_iso)
    for wavelength, weight in lines:
        centre = peak_positions(reflections.d, wavelength, lattice_strain, zero_shift_deg, displacement_mm, radius_mm)
        ok = np.isfinite(centre) & (centre > 0) & (centre < 180)
        sizes = size_nm[ok] if isinstance(size_nm, np.ndarray) else size_nm
        fwhm, eta = peak_shapes(centre[ok], wavelength, caglioti, sizes, microstrain)
        c, amp = centre[ok], weight * factor[ok] * lorentz_polarisation(centre[ok])
        split = axial_asymmetry(c, asymmetry)
        reach = PROFILE_REACH_FWHM * fwhm * (1.0 + np.abs(split))
        near = (c + reach >= lo_x) & (c - reach <= hi_x) & (amp >= WEAKEST_PEAK * float(amp.max(initial=0.0)))
        c, amp, fwhm, eta, reach, split = c[near], amp[near], fwhm[near], eta[near], reach[near], split[near]
        lo = np.searchsorted(xs, c - reach, side="left")
        hi = np.searchsorted(xs, c + reach, side="right")
        counts = hi - lo
        n = int(counts.sum())
        if n == 0:
            continue
        # Every (peak, point within its reach) pair, flattened: one vectorised evaluation.
        peak = np.repeat(np.arange(c.size), counts)
        offsets = np.arange(n) - np.repeat(np.cumsum(counts) - counts, counts)
        idx = lo[peak] + offsets
        if asymmetry == 0.0:
            values = amp[peak] * pseudo_voigt(xs[idx] - c[peak], fwhm[peak], eta[peak])
        else:
            values = amp[peak] * split_pseudo_voigt(xs[idx] - c[peak], fwhm[peak], eta[peak], split[peak])
        total += np.bincount(idx, weights=values, minlength=xs.size)
    return total[inverse.reshape(-1)]


def chebyshev_background(two_theta: np.ndarray, coefficients: Sequence[float], low: float, high: float) -> np.ndarray:
    """Σ c_k T_k(u), u = 2θ mapped from [low, high] onto [−1, 1]."""
    u = (2 * np.asarray(two_theta, dtype=float) - (low + high)) / (high - low)
    return np.polynomial.chebyshev.chebval(u, np.asarray(coefficients, dtype=float))


def diffuse_basis(two_theta: np.ndarray, low: float, high: float, fwhm: float) -> np.ndarray:
    """(n_points, k) Gaussian humps of unit height and FWHM ``fwhm`` (degrees), centres 0.75 FWHM
    apart from ``low`` to ``high``: diffuse scattering (amorphous content, stacking faults) that a
    low-order background cannot follow and that a broad crystalline phase must not be invented for."""
    centres = np.arange(low, high + 1e-9, 0.75 * fwhm)
    x = np.asarray(two_theta, dtype=float)[:, None]
    return np.exp(-4 * math.log(2) * ((x - centres[None, :]) / fwhm) ** 2)


def chebyshev_basis(two_theta: np.ndarray, n_terms: int, low: float, high: float) -> np.ndarray:
    """The (n_points, n_terms) matrix of T_0..T_{n−1} at ``two_theta``."""
    u = (2 * np.asarray(two_theta, dtype=float) - (low + high)) / (high - low)
    return np.polynomial.chebyshev.chebvander(u, n_terms - 1)
