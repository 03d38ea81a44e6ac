"""A phase forced against its prior box is not an identification (``analysis.xrd.admission``).

The refined sets come from a real search on a simulated Si survey; one two-phase rival is then given the
signature the model-mismatch family showed (``docs/wip/xrd-phantom-phase.md``, samples 29 and 31) and a
likelihood 60 nats above the true set's — what the phantom bought there:
- a *broad patch* (inverse crystallite size on its bound): the set is not an answer, the true set is, and
  ``broad-intensity`` says what was set aside (before: the phantom set at p 1.00);
- a *stand-in* (strain and B on their bounds): the set keeps its place, but what the stand-in explains is
  evidence of a phase outside the library — not identified (before: p(missing) 10⁻¹⁸ at T 120)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from analysis.xrd import XRDPhaseIdentification
from analysis.xrd.admission import broad_patches, stand_ins
from analysis.xrd.fit import PhaseProfiles, SetFit
from analysis.xrd.identify import PhaseIDReport
from analysis.xrd.pattern import Pattern, collect, smoothed
from analysis.xrd.search import search
from tests.analysis.xrd.patterns import SURVEY, measure

pytestmark = pytest.mark.timeout(300)

GAIN = 60.0
"""Nats of log L the phantom buys (sample 29: 60; sample 31: 77 after tempering)."""


@pytest.fixture(scope="module")
def searched(analysis: XRDPhaseIdentification) -> tuple[Pattern, PhaseProfiles, list[SetFit]]:
    settings = analysis.settings
    pattern, _ = collect(measure([{"phase": "si", "weight_fraction": 1.0, "crystallite_size_nm": 120}], [SURVEY]),
                         settings.dwell_parameter)
    assert pattern is not None
    profiles = PhaseProfiles(analysis.phases, settings.optics(), pattern, settings.d_min())
    weight = 1.0 / np.sqrt(np.maximum(smoothed(pattern.counts), 0.5))
    return pattern, profiles, search(settings, profiles, weight, settings.shortlist, settings.refine_sets)[0]


def phantom(fits: list[SetFit], **changes: object) -> tuple[SetFit, SetFit, str]:
    """The true set (Si), and a two-phase rival holding Si changed to fit 60 nats better with a non-empty
    second phase, plus ``changes`` (its name is substituted for ``{}`` in ``at_bound``)."""
    truth = next(f for f in fits if f.phases == ("si",))
    rival = next(f for f in fits if len(f.phases) == 2 and "si" in f.phases)
    other = next(n for n in rival.phases if n != "si")
    scales = np.where(np.array(rival.phases) == "si", truth.scales[0], 0.1 * truth.scales[0])
    fields = {k: (v(other) if callable(v) else v) for k, v in changes.items()}
    forced = dataclasses.replace(rival, scales=scales, scale_sigmas=0.01 * scales,
                                 log_likelihood=truth.log_likelihood + GAIN, deviance=truth.deviance - 2 * GAIN, **fields)
    return truth, forced, other


def test_a_set_holding_a_broad_patch_is_not_an_answer(analysis: XRDPhaseIdentification, searched) -> None:
    pattern, _, fits = searched
    truth, _, _ = phantom(fits)
    rival = next(f for f in fits if len(f.phases) == 2 and "si" in f.phases)
    j = rival.phases.index(next(n for n in rival.phases if n != "si"))
    assert rival.bounds is not None
    size = rival.refined["inverse_size"].copy()
    size[j] = rival.bounds.inverse_size
    _, patched, other = phantom(fits, refined={**rival.refined, "inverse_size": size})
    assert broad_patches(patched) == [other] and broad_patches(truth) == []
    report = analysis._report(pattern, [truth, patched], 2)
    assert report.best is not None and report.best.label == "si"
    assert any(f.startswith(f"broad-intensity:{other}") for f in report.flags), report.flags


def test_a_stand_in_is_evidence_of_a_phase_outside_the_library(analysis: XRDPhaseIdentification, searched) -> None:
    pattern, profiles, fits = searched
    truth, forced, other = phantom(fits, at_bound=lambda n: [f"strain:{n}", f"b_iso:{n}"])
    assert stand_ins(forced) == [other]
    report: PhaseIDReport = analysis._report(pattern, [truth, forced], 2)
    assert report.best is forced  # it fits better; the question is what that means
    analysis._open_world(profiles, report)
    assert report.p_missing > 0.99 and not report.identified
    assert "not-identified" in report.flags and any(f.startswith(f"stand-in:{other}") for f in report.flags)
    # p(missing) is 1 to machine precision here: every set's probability is 0, yet the answer still names
    # the most probable set, not whichever set came first.
    assert report.best is forced


def test_strain_alone_on_its_bound_is_not_a_stand_in(searched) -> None:
    _, _, fits = searched
    _, forced, _ = phantom(fits, at_bound=lambda n: [f"strain:{n}"])
    assert stand_ins(forced) == []
