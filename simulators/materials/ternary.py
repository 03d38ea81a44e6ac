"""The isothermal section of a ternary system with three terminal solid solutions (pure geometry).

Corners A, B, C of the composition triangle are the pure components; phase X (one per corner)
dissolves the other two up to its solubility limits. The section is cut into seven fields::

    single-phase X  : quadrilateral X, x_Y, P_X, x_Z    (x_Y on edge XY at X's solubility of Y)
    two-phase X+Y   : quadrilateral x_Y, y_X, P_Y, P_X  (ruled by straight tie lines)
    three-phase     : triangle P_A, P_B, P_C            (the three saturated solid solutions)

with ``P_X = X + γ_X (s_XY (Y − X) + s_XZ (Z − X))``: at the three-phase equilibrium each phase holds
a fraction γ_X of its binary solubilities (0.5 < γ ≤ 1 keeps the single-phase field convex). In a
two-phase field the tie lines interpolate linearly from the edge tie line (x_Y–y_X) to the side of
the three-phase triangle (P_X–P_Y); a composition's tie line gives both phases' compositions and the
lever rule their fractions. In the three-phase field the fractions are the barycentric
coordinates in the triangle P_A P_B P_C (its sides are the limiting tie lines), so fractions are
continuous everywhere and go to zero on the boundaries: near a boundary the other phase is minor.

Compositions are barycentric (n, 3) or (3,) arrays (fractions of A, B, C); the geometry is done in
the plane with A = (0, 0), B = (1, 0), C = (1/2, √3/2).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SQRT3_2 = float(np.sqrt(3.0) / 2.0)


def to_plane(x: np.ndarray) -> np.ndarray:
    """Barycentric (…, 3) → plane (…, 2)."""
    x = np.asarray(x, dtype=float)
    return np.stack([x[..., 1] + 0.5 * x[..., 2], SQRT3_2 * x[..., 2]], axis=-1)


def to_barycentric(p: np.ndarray) -> np.ndarray:
    """Plane (…, 2) → barycentric (…, 3)."""
    p = np.asarray(p, dtype=float)
    c = p[..., 1] / SQRT3_2
    b = p[..., 0] - 0.5 * c
    return np.stack([1.0 - b - c, b, c], axis=-1)


def _cross(u: np.ndarray, v: np.ndarray) -> float:
    return float(u[0] * v[1] - u[1] * v[0])


def inside_convex(point: np.ndarray, polygon: list[np.ndarray], tol: float = 1e-12) -> bool:
    """Whether ``point`` (2,) lies in the convex ``polygon`` of counter-clockwise vertices, boundary included."""
    return all(_cross(b - a, point - a) >= -tol for a, b in zip(polygon, polygon[1:] + polygon[:1]))


@dataclass(frozen=True)
class Field:
    """One field of the section: which phases (corner indices) and, per phase, its composition
    (barycentric, (3,)) and fraction at the queried point."""

    phases: tuple[int, ...]
    compositions: tuple[np.ndarray, ...]
    fractions: tuple[float, ...]


class TernarySection:
    """The seven fields for given binary solubilities and three-phase factors.

    ``solubility[X][Y]``: fraction of component Y phase X dissolves on the binary edge XY (X ≠ Y;
    the diagonal is ignored); ``gamma[X]``: the factor of ``P_X`` (module docstring).
    """

    def __init__(self, solubility: np.ndarray, gamma: np.ndarray) -> None:
        s = np.asarray(solubility, dtype=float)
        corners = np.eye(3)
        self.edge = {(x, y): corners[x] + s[x, y] * (corners[y] - corners[x]) for x in range(3) for y in range(3) if x != y}
        """``edge[X, Y]``: X's solubility limit on edge XY (barycentric)."""
        self.saturated = [
            corners[x] + gamma[x] * sum(s[x, y] * (corners[y] - corners[x]) for y in range(3) if y != x) for x in range(3)
        ]
        """``saturated[X]``: P_X, the composition of phase X in the three-phase field (barycentric)."""
        for x in range(3):
            for y in range(x + 1, 3):
                if s[x, y] + s[y, x] >= 1:
                    raise ValueError(f"solubility: phases {x} and {y} dissolve each other completely ({s[x, y]} + {s[y, x]} ≥ 1)")
        if np.linalg.det(np.stack(self.saturated)) <= 0:
            raise ValueError("solubility/gamma: the three-phase triangle is degenerate")
        # Plane geometry computed once: a section labels thousands of compositions.
        self._to_triangle = np.linalg.inv(np.stack(self.saturated).T)
        self._single = [self._single_polygon(x) for x in range(3)]
        self._ties = {
            (a, b): (to_plane(self.edge[a, b]), to_plane(self.saturated[a]) - to_plane(self.edge[a, b]),
                     to_plane(self.edge[b, a]), to_plane(self.saturated[b]) - to_plane(self.edge[b, a]))
            for a, b in ((0, 1), (1, 2), (2, 0))
        }

    # -- which field --------------------------------------------------------------------------------
    def field(self, x: np.ndarray) -> Field:
        """The field of composition ``x`` (barycentric (3,)) with its phases' compositions and fractions."""
        p = to_plane(x)
        weights = self._to_triangle @ np.asarray(x, dtype=float)
        if np.all(weights >= -1e-12):
            w = np.clip(weights, 0.0, None)
            return Field((0, 1, 2), tuple(self.saturated), tuple(float(v) for v in w / w.sum()))
        for corner in range(3):
            if inside_convex(p, self._single[corner]):
                return Field((corner,), (np.asarray(x, dtype=float),), (1.0,))
        for a, b in ((0, 1), (1, 2), (2, 0)):
            two = self._two_phase(p, a, b)
            if two is not None:
                return two
        raise ValueError(f"composition {np.round(x, 6).tolist()} lies in no field (is it on the simplex?)")

    def _single_polygon(self, x: int) -> list[np.ndarray]:
        y, z = (x + 1) % 3, (x + 2) % 3
        return [to_plane(v) for v in (np.eye(3)[x], self.edge[x, y], self.saturated[x], self.edge[x, z])]

    def _two_phase(self, p: np.ndarray, a: int, b: int) -> Field | None:
        """The tie line through ``p`` in field a+b, or None if ``p`` is not in it."""
        a0, da, b0, db = self._ties[a, b]
        e0, de, w0 = b0 - a0, db - da, p - a0
        # cross(β(t) − α(t), p − α(t)) = 0 with α = a0 + t da, β = b0 + t db: a quadratic in t.
        for t in _real_roots(-_cross(de, da), _cross(de, w0) - _cross(e0, da), _cross(e0, w0)):
            if not -1e-9 <= t <= 1 + 1e-9:
                continue
            alpha, beta = a0 + t * da, b0 + t * db
            lever = float(np.dot(p - alpha, beta - alpha) / np.dot(beta - alpha, beta - alpha))
            if -1e-9 <= lever <= 1 + 1e-9:
                lever = min(max(lever, 0.0), 1.0)
                return Field((a, b), (to_barycentric(alpha), to_barycentric(beta)), (1.0 - lever, lever))
        return None


def _real_roots(a: float, b: float, c: float) -> list[float]:
    """Real roots of a t² + b t + c, ascending (the linear equation when a ≈ 0)."""
    if abs(a) < 1e-14:
        return [] if abs(b) < 1e-300 else [-c / b]
    discriminant = b * b - 4 * a * c
    if discriminant < -1e-12 * (b * b + abs(4 * a * c)):
        return []
    root = float(np.sqrt(max(discriminant, 0.0)))  # a tangent tie line: round-off must not lose it
    return sorted(((-b - root) / (2 * a), (-b + root) / (2 * a)))
