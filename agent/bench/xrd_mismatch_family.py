"""The model-mismatch XRD sample family (``benchmarks.xrd_mismatch``, ``labpilot bench xrd --family mismatch``).

Each sample holds one or two phases of a 12-phase analysis library (``LIBRARY``) and, in samples
2, 3, 6, 7, … (index mod 4 ≥ 2), an impurity from phases the analysis does not know (``OUTSIDE``,
5–15 wt %). The simulated diffractometer's settings add what the analysis does not assume or starts
elsewhere from: Debye–Waller B per phase (0.2–1.5 Å²), axial asymmetry (A 0.02–0.1), Caglioti U, V,
W off the analysis' start (``START``) by ×0.5–2, an amorphous hump (half the samples), thin-sample
absorption and surface roughness (half).

One definition for both users: the benchmark script and the bench draw the same samples from the
same seed (``draw_sample`` called in index order on one generator). Pure numpy: no simulator is
imported here (the settings are a dict the simulated driver validates).
"""

from __future__ import annotations

from typing import Any

import numpy as np

LIBRARY = ("si", "al2o3_corundum", "tio2_rutile", "tio2_anatase", "zno_zincite", "mgo_periclase", "caf2_fluorite",
           "fe2o3_hematite", "sio2_quartz", "caco3_calcite", "nacl_halite", "ceo2_cerianite")
"""The analysis' candidates."""
OUTSIDE = ("zro2_monoclinic", "cu2o_cuprite", "sno2_cassiterite", "y2o3_bixbyite", "w", "srtio3")
"""Impurities the analysis does not know."""
START = {"caglioti_u": 0.010, "caglioti_v": -0.003, "caglioti_w": 0.004}
"""The analysis' starting instrument profile."""


def draw_sample(rng: np.random.Generator, index: int) -> dict[str, Any]:
    """Simulator settings of sample ``index`` and its truth: {'settings', 'truth', 'impurity'}."""
    majors = list(rng.choice(LIBRARY, size=1 + index % 2, replace=False))
    impurity = str(rng.choice(OUTSIDE)) if index % 4 >= 2 else None
    w_imp = float(rng.uniform(0.05, 0.15)) if impurity else 0.0
    shares = rng.dirichlet(np.ones(len(majors)) * 3) * (1 - w_imp)
    phases = [{"phase": str(n), "weight_fraction": float(w), "crystallite_size_nm": float(np.exp(rng.uniform(np.log(40), np.log(300)))),
               "b_iso": float(rng.uniform(0.2, 1.5)), "lattice_strain": float(rng.uniform(-0.001, 0.001))}
              for n, w in zip(majors, shares)]
    if impurity:
        phases.append({"phase": impurity, "weight_fraction": w_imp, "crystallite_size_nm": 150.0, "b_iso": 0.5})
    total = sum(p["weight_fraction"] for p in phases)
    for p in phases:
        p["weight_fraction"] /= total
    sample: dict[str, Any] = {"phases": phases, "displacement_mm": float(rng.uniform(-0.05, 0.05))}
    if rng.random() < 0.5:
        sample["amorphous"] = {"centre_deg": float(rng.uniform(20, 35)), "fwhm_deg": float(rng.uniform(6, 12)),
                               "rate": float(rng.uniform(10, 40))}
    if rng.random() < 0.5:
        sample |= {"mu_t": float(rng.uniform(0.2, 1.0)), "roughness_p": float(rng.uniform(0.05, 0.3))}
    settings = {"sample": sample, "wavelength": "CuKa", "asymmetry": float(rng.uniform(0.02, 0.1)),
                "seed": int(rng.integers(1 << 30)), "background": [40.0, -15.0, 8.0], "flux": 10.0,
                **{k: float(v * np.exp(rng.uniform(np.log(0.5), np.log(2)))) for k, v in START.items()}}
    return {"settings": settings, "truth": "+".join(sorted(majors)), "impurity": impurity}
