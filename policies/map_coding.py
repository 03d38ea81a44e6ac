"""How a phase map's classes are coded as latent functions: one latent per class, or per-phase presence.

A map's classes are its labels (``L`` of them); its latent GPs are ``M`` functions, grouped into
softmax groups. Two codings:

* :class:`ClassCoding` — one latent per class, one softmax over all of them (Milios et al. 2018
  as written): right for labels that are *alternatives* (SAS models, NMF clusters).
* :class:`PresenceCoding` — for labels that are *phase sets* ("a+b", sorted names joined by
  :data:`SET_SEPARATOR`): per phase, a two-latent softmax "present" / "absent", and a set's
  probability is the product of its phases' presence and the others' absence, renormalised over
  the map's classes (the non-empty sets). Why: a phase-set label is the product of presence
  indicators, and each indicator's region is simple (a phase is present on one side of a boundary
  that runs across the whole simplex), while a set's region is the intersection of three of them —
  seven small fields where a class-per-set map must learn each from its own few samples. A
  two-phase sample teaches the presence of both its phases, i.e. about every field containing
  them, and the three-phase field is where all three are present, so it does not spread over the
  one- and two-phase fields along the edges (measured: ``benchmarks/map_oxide.py``).

Soft labels stay soft: a phase's "present" mass is the sum of the probabilities of the sets that
contain it, its "absent" mass the sum over the labelled sets without it, weighted by
:data:`ABSENT_WEIGHT` (a missed minor phase is the common error of a diffraction answer); mass on no label adds to
neither (a not-identified sample is uninformative about every phase). Latents of different phases
are independent a posteriori, so E[product of presences] is the product of their expectations.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

#: Weight of a phase's "absent" mass relative to its "present" mass (:meth:`PresenceCoding.latent_mass`).
#: A diffraction answer errs one way: a phase it reports is there, but a minor phase below its
#: detection limit (a few wt %, i.e. every sample near a boundary where that phase's lever-rule
#: fraction goes to zero) is not reported, so "absent" is the less reliable half of a phase-set label.
#: Measured on the oxide truth (``benchmarks/map_oxide.py``, random samples, 8 truths): 1.0 → 0.5
#: took the map from 0.843 ± 0.036 to 0.862 ± 0.029 at 24 samples (0.801 → 0.831 at 12), every
#: point at p ≥ 0.95 right; 0.25: 0.858 ± 0.035.
ABSENT_WEIGHT = 0.5

#: How the XRD analysis joins a phase set's (sorted) phase names (``analysis/xrd/hypotheses.py``).
SET_SEPARATOR = "+"

#: Probability floor of a presence inside logs (a presence of exactly 0 or 1 is never reached by
#: a Gaussian latent; the floor only guards the product's logarithm).
_FLOOR = 1e-300


def grouped_softmax(f: np.ndarray, group: int) -> np.ndarray:
    """Softmax of ``f (..., M)`` within consecutive groups of ``group`` latents → ``(..., M)``."""
    g = f.reshape(f.shape[:-1] + (f.shape[-1] // group, group))
    g = np.exp(g - g.max(axis=-1, keepdims=True))
    return (g / g.sum(axis=-1, keepdims=True)).reshape(f.shape)  # type: ignore[no-any-return]


@dataclass(frozen=True)
class ClassCoding:
    """One latent per class; one softmax group over all classes."""

    labels: list[str]

    @property
    def n_latents(self) -> int:
        return len(self.labels)

    @property
    def group(self) -> int:
        return len(self.labels)

    def latent_mass(self, probabilities: np.ndarray) -> np.ndarray:
        """Class probabilities ``(n, L)`` → the probability mass of each latent ``(n, M)``."""
        return probabilities

    def classes(self, q: np.ndarray) -> np.ndarray:
        """Expected in-group softmax ``(..., M)`` → class probabilities ``(..., L)``."""
        return q


@dataclass(frozen=True)
class PresenceCoding:
    """Per phase a "present"/"absent" latent pair; classes are phase sets (module docstring).

    ``labels``: the classes (phase sets); ``phases``: the modelled phases, in latent-pair order.
    """

    labels: list[str]
    phases: list[str]
    incidence: np.ndarray = field(init=False, repr=False)
    """``(L, K)``: 1 where class l contains phase k."""

    def __post_init__(self) -> None:
        index = {p: k for k, p in enumerate(self.phases)}
        incidence = np.zeros((len(self.labels), len(self.phases)))
        for row, label in enumerate(self.labels):
            for phase in label.split(SET_SEPARATOR):
                incidence[row, index[phase]] = 1.0
        object.__setattr__(self, "incidence", incidence)

    @property
    def n_latents(self) -> int:
        return 2 * len(self.phases)

    @property
    def group(self) -> int:
        return 2

    def latent_mass(self, probabilities: np.ndarray) -> np.ndarray:
        """Set probabilities ``(n, L)`` → per phase [present mass, absent mass] ``(n, 2K)``."""
        present = probabilities @ self.incidence  # (n, K)
        absent = ABSENT_WEIGHT * (probabilities @ (1.0 - self.incidence))
        return np.stack([present, absent], axis=-1).reshape(len(probabilities), -1)  # type: ignore[no-any-return]

    def classes(self, q: np.ndarray) -> np.ndarray:
        """Expected pair softmax ``(..., 2K)`` → set probabilities ``(..., L)``, renormalised."""
        present = np.clip(q[..., 0::2], _FLOOR, 1.0)
        absent = np.clip(1.0 - q[..., 0::2], _FLOOR, 1.0)
        log_p = np.log(present) @ self.incidence.T + np.log(absent) @ (1.0 - self.incidence).T
        log_p -= log_p.max(axis=-1, keepdims=True)
        p = np.exp(log_p)
        return p / p.sum(axis=-1, keepdims=True)  # type: ignore[no-any-return]


LabelCoding = ClassCoding | PresenceCoding


def is_phase_set_labels(labels: Sequence[str]) -> bool:
    """Whether ``labels`` read as phase sets: some label joins two or more phases."""
    return any(SET_SEPARATOR in label for label in labels)


def presence_classes(labels: Sequence[str], largest: int = 0) -> tuple[list[str], list[str]]:
    """The map's classes and phases for phase-set ``labels`` (known first, then seen): every
    non-empty set of the labels' phases up to one phase more than the largest set among them (and at
    least ``largest``) — so a field no sample has hit yet (say the three-phase one, where the
    phases of the two-phase fields around it meet) is a class the map can predict. Returns (classes, phases):
    ``labels`` in their order, then the other sets by size and name; phases sorted."""
    phases = sorted({p for label in labels for p in label.split(SET_SEPARATOR)})
    largest = min(max(largest, 1 + max(len(label.split(SET_SEPARATOR)) for label in labels)), len(phases))
    given = {frozenset(label.split(SET_SEPARATOR)) for label in labels}
    sets = [c for k in range(1, largest + 1) for c in itertools.combinations(phases, k) if frozenset(c) not in given]
    return list(labels) + [SET_SEPARATOR.join(c) for c in sets], phases


__all__ = [
    "ClassCoding",
    "LabelCoding",
    "PresenceCoding",
    "SET_SEPARATOR",
    "grouped_softmax",
    "is_phase_set_labels",
    "presence_classes",
]
