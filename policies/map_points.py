"""Where the map's uncertainty is integrated, and which recipes are valued: points that include the
faces of composition simplices.

A composition simplex's *faces* — its edges (one component absent) and vertices (pure components)
— are part of the design space, and the fields of a phase diagram that are thinnest live there:
the two-phase strips along a binary edge, the terminal solid solutions at the corners. A uniform
(Sobol or random) draw on the simplex almost never lands on a face, so an acquisition that
integrates the map's entropy over such draws gives those fields no weight, and one that values only
such candidates can never propose a binary recipe (``PhaseMapOptions.integration = "faces"``,
``face_candidates``). Measured on the oxide system (``benchmarks/map_oxide.py``, where 45 % of the
dense test grid lies on the simplex's edges): with the presence learner on the raw fractions, faces
took truth 0's edge accuracy from 0.72 (random recipes) to 0.85 but its interior from 0.83 to 0.53;
once the learner saw the fractions' square roots (random recipes alone then get the edges 0.92–0.95
right), faces lost (16 candidates, 8 truths, 24 samples: 0.830 ± 0.039 against 0.853 ± 0.037 with
Sobol points only), so the policy's default is Sobol integration and no face candidates.

* :func:`integration_points`: the design lattice (:func:`policies.map_baselines.design_grid`, faces
  and vertices included) at the finest step that uses at most half of the points, the rest the
  space's Sobol sequence (the interior, at a finer spacing).
* :func:`with_face_candidates`: a share of the candidates moved onto a random face of each of their
  composition groups (components set to zero, the others rescaled to the group's total).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from instruments.types import ParamValue
from policies.baselines import space_filling_points
from policies.map_baselines import design_grid
from policies.space import DesignSpace

#: Relative weight of each further absent component when a candidate is moved onto a face: for a
#: ternary, 80 % of the moved candidates land on an edge, 20 % on a vertex (pure components are
#: single-phase by construction of a phase diagram's corners; an edge holds the binary's fields).
FACE_DECAY = 0.25

#: Finest lattice tried for the integration points (steps per axis).
MAX_LATTICE_DIVISIONS = 40


def lattice(space: DesignSpace, n_max: int) -> list[dict[str, ParamValue]]:
    """The finest design lattice of at most ``n_max`` points (empty if even one step is too many)."""
    best: list[dict[str, ParamValue]] = []
    for divisions in range(1, MAX_LATTICE_DIVISIONS + 1):
        points = design_grid(space, divisions)
        if len(points) > n_max:
            break
        best = points
    return best


def integration_points(space: DesignSpace, n: int, seed: int) -> list[dict[str, ParamValue]]:
    """``n`` points (fewer if the lattice and Sobol points coincide, never more): the finest lattice
    of at most ``n // 2`` points, then Sobol points for ``seed`` up to ``n``."""
    points = lattice(space, n // 2)
    return points + space_filling_points(space, 0, n - len(points), seed, "sobol")


def with_face_candidates(
    space: DesignSpace, candidates: Sequence[dict[str, ParamValue]], fraction: float, seed: int,
) -> list[dict[str, ParamValue]]:
    """``candidates`` with the last ``fraction`` of them moved onto a face of each composition
    group: m of its k components set to zero (m in 1 … k−1, with weights
    :data:`FACE_DECAY` ** (m − 1): mostly the largest faces; which ones uniformly), the others
    rescaled to the group's total. A moved point that breaks a bound or constraint stays where it was."""
    out = [dict(c) for c in candidates]
    if not space.compositions or fraction <= 0:
        return out
    rng = np.random.default_rng(seed)
    for i in range(len(out) - int(round(fraction * len(out))), len(out)):
        moved = dict(out[i])
        for group in space.compositions:
            names = list(group.parameters)
            sizes = np.arange(1, len(names))
            weights = FACE_DECAY ** (sizes - 1.0)
            absent = rng.choice(len(names), size=rng.choice(sizes, p=weights / weights.sum()), replace=False)
            kept = [n for j, n in enumerate(names) if j not in set(absent.tolist())]
            total = sum(float(moved[n]) for n in kept)
            for j, n in enumerate(names):
                moved[n] = 0.0 if n not in kept else (float(moved[n]) * group.total / total if total > 0 else group.total / len(kept))
        if not space.violations(moved):
            out[i] = moved
    return out


__all__ = ["integration_points", "lattice", "with_face_candidates"]
