"""Flags in words, and which flags concern a rival rather than the answer."""

from __future__ import annotations

import pytest

from agent.flag_sentences import about_a_rival, flag_candidate, is_informational, sentence

pytestmark = pytest.mark.timeout(30)


@pytest.mark.parametrize(("flag", "words"), [
    ("poor-fit", "Even the most probable model misses the data"),
    ("unconstrained:radius", "radius is not constrained by the data"),
    ("second-minimum:radius_pd", "A near-equivalent minimum disagrees on radius_pd"),
    ("fit-not-converged:tio2_brookite+tio2_rutile: no convergence in 30 iterations",
     "The fit of tio2_brookite+tio2_rutile did not converge."),
    ("open-world: p halved", "half the probability is kept for “none of these”"),
    ("something-new", "Flag “something-new”."),  # never dropped
])
def test_flags_are_sentences(flag: str, words: str) -> None:
    assert words in sentence(flag)


def test_a_flag_about_another_candidate_is_about_a_rival() -> None:
    assert flag_candidate("fit-failed:core_shell_sphere") == "core_shell_sphere"
    assert about_a_rival("fit-not-converged:core_shell_sphere", "sphere")
    assert not about_a_rival("fit-not-converged:sphere", "sphere")
    assert not about_a_rival("poor-fit", "sphere") and not about_a_rival("fit-failed:x", None)
    assert is_informational("search-widened") and is_informational("not-in-model:length")
    assert not is_informational("poor-fit")
