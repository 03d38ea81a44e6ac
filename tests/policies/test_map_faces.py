"""The acquisition's "faces" option (``integration="faces"``, ``face_candidates``) sees the faces of
the composition simplex: its integration points include the simplex's edges and vertices, a share
of its candidates lies on them, and an edge no sample has explored is where it proposes the next
recipe. With Sobol integration points and uniform random candidates (the default: measured better
on the oxide truth, see policies/map_points.py), neither is ever on a face."""

from __future__ import annotations

import numpy as np
import pytest

from policies.map_points import integration_points, lattice, with_face_candidates
from policies.phase_map import PhaseMapOptions, PhaseMapPolicy
from policies.protocol import PlanningContext
from tests.policies.map_toys import outcome, point, ternary

pytestmark = pytest.mark.timeout(180)


def _on_a_face(X: np.ndarray) -> np.ndarray:
    return X.min(axis=1) == 0.0  # type: ignore[no-any-return]


def test_integration_points_hold_the_lattice_with_its_edges_and_vertices_then_sobol() -> None:
    space = ternary()
    points = integration_points(space, 64, seed=3)
    X = space.encode(points)
    assert len(points) == 64 and not space.violations(points[-1])
    corners = {(1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0)}
    assert corners <= {tuple(row) for row in X}
    n_lattice = len(lattice(space, 32))
    assert 21 <= n_lattice <= 32 and _on_a_face(X[:n_lattice]).sum() >= n_lattice // 2
    assert not _on_a_face(X[n_lattice:]).any()  # the rest: the interior, Sobol


def test_a_share_of_the_candidates_is_moved_onto_faces_feasibly() -> None:
    space = ternary()
    candidates = space.sample(40, 7, "random")
    moved = with_face_candidates(space, candidates, 0.25, seed=1)
    X = space.encode(moved)
    assert moved[:30] == candidates[:30] and _on_a_face(X[30:]).all()
    assert np.allclose(X.sum(axis=1), 1.0) and all(not space.violations(m) for m in moved)
    assert with_face_candidates(space, candidates, 0.0, seed=1) == candidates


def test_an_unexplored_binary_edge_is_where_the_next_recipe_goes() -> None:
    """A three-phase interior and the b–c and a–c edges (two-phase) are sampled; the a–b edge (a
    thin A+B strip in a truth) is not: whether C is present there is the map's open question. The
    next recipe must go to that edge (c < 0.03); with Sobol integration points and no face
    candidates it went to the C corner (c ≈ 0.7–0.8 on these seeds: measured)."""
    space = ternary()
    labelled = [
        (point(0.0, 0.5), "B+C"), (point(0.0, 0.2), "B+C"), (point(0.0, 0.8), "B+C"),
        (point(0.5, 0.0), "A+C"), (point(0.2, 0.0), "A+C"), (point(0.8, 0.0), "A+C"),
        (point(0.33, 0.33), "A+B+C"), (point(0.2, 0.6), "A+B+C"), (point(0.6, 0.2), "A+B+C"),
        (point(0.2, 0.2), "A+B+C"), (point(0.45, 0.45), "A+B+C"),
    ]
    samples = [outcome(i, r, {label: 0.95}) for i, (r, label) in enumerate(labelled)]
    options = PhaseMapOptions(n_candidates=64, n_grid=64, integration="faces", face_candidates=0.25)
    old_options = PhaseMapOptions(n_candidates=64, n_grid=64)
    for seed in (0, 1):
        new = PhaseMapPolicy(space, seed=seed, options=options).plan(PlanningContext(samples=samples), 1)[0]
        assert new.params["c"] < 0.03, new
        old = PhaseMapPolicy(space, seed=seed, options=old_options).plan(PlanningContext(samples=samples), 1)[0]
        assert old.params["c"] > 0.5, old  # the contrast the test is about (same random draws)
