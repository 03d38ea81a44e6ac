"""Analysis flags in words: what each flag means for the answer, as a sentence a scientist can read.

Flags are short machine strings (``poor-fit``, ``unconstrained:radius``, ``fit-not-converged:core_shell``);
the answer, the terminal and the report show these sentences instead. A flag that concerns only a
*rival* candidate (a model or phase set other than the best one) does not weaken the answer: it is
kept apart as a note (:func:`about_a_rival`), so ``fit-not-converged`` of a rival is not shown as a
warning beside p = 0.999.
"""

from __future__ import annotations

#: flag (or ``prefix:`` of a flag that names a parameter, candidate or attempt) → sentence; ``{}`` is
#: replaced by what follows the prefix.
FLAG_SENTENCES: dict[str, str] = {
    "poor-fit": "Even the most probable model misses the data (χ² improbably large): the answer is not trusted.",
    "not-identified": "The analysis could not identify the sample.",
    "unexplained-peaks": "The pattern has peaks that no candidate phase accounts for (an unlisted phase?).",
    "open-world: p halved": "Because peaks are unexplained, half the probability is kept for “none of these”: "
                            "no phase set can reach more than 0.5.",
    "no-signal": "The data are consistent with a flat line: no signal above the background.",
    "no-data": "No usable data points.",
    "no-usable-data": "Too few usable points in the pattern.",
    "no-fit": "No candidate could be fitted to the data.",
    "too-few-points": "Fewer data points than fitted parameters.",
    "second-minimum": "The best model has a second, nearly as good minimum.",
    "second-minimum:": "A near-equivalent minimum disagrees on {}: its value is not certain.",
    "unconstrained:": "{} is not constrained by the data (σ larger than half its fit range).",
    "at-bound:": "{} ended at a bound of its fit range.",
    "broad-intensity:": "Broad intensity (diffuse scattering, background shape) fitted better with {} at the "
                        "smallest crystallite size allowed: a patch, not counted as a phase.",
    "stand-in:": "{} fits only with its lattice and intensities forced to their limits: what it explains is "
                 "counted as evidence of a phase outside the library.",
    "not-in-model:": "{} is not a parameter of the best model (no value).",
    "fit-not-converged:": "The fit of {} did not converge.",
    "fit-failed:": "The fit of {} failed.",
    "ill-conditioned:": "The fit of {} is ill-conditioned (strongly correlated parameters).",
    "search-widened": "The first round of fit starts missed the optimum; a wider search found it.",
    "non-finite-data": "The data hold NaN or infinite values.",
    "non-finite-sigma": "The uncertainties hold NaN or infinite values.",
    "negative-variance": "An uncertainty is negative.",
    "missing-key:": "The measurement lacks the data key {}.",
    "not-scalar:": "The data key {} is not a single number.",
    "bad-data:": "Unusable data in {}.",
    "analysis-error:": "The analysis raised an error:{}",
}

#: prefixes of flags about one candidate (model or phase set), which may be a rival of the answer.
CANDIDATE_PREFIXES = ("fit-not-converged:", "fit-failed:", "ill-conditioned:")

#: flags that change nothing about the answer's trust (how the search went, what a model lacks).
INFORMATIONAL = frozenset({"search-widened"})
INFORMATIONAL_PREFIXES = ("not-in-model:",)


def sentence(flag: str) -> str:
    """The flag in words; an unknown flag is quoted as it is (never dropped)."""
    if flag in FLAG_SENTENCES:
        return FLAG_SENTENCES[flag]
    for prefix, text in FLAG_SENTENCES.items():
        if prefix.endswith(":") and flag.startswith(prefix):
            what = flag_candidate(flag) if prefix in CANDIDATE_PREFIXES else flag[len(prefix):].strip()
            return text.format(what)
    return f"Flag “{flag}”."


def flag_candidate(flag: str) -> str | None:
    """The candidate a per-candidate flag names (an XRD flag carries ``label: message``), else None."""
    for prefix in CANDIDATE_PREFIXES:
        if flag.startswith(prefix):
            return flag[len(prefix):].split(": ", 1)[0].strip()
    return None


def about_a_rival(flag: str, best: str | None) -> bool:
    """Whether ``flag`` concerns only a candidate other than ``best`` (then it does not weaken the answer)."""
    candidate = flag_candidate(flag)
    return candidate is not None and best is not None and candidate != best


def is_informational(flag: str) -> bool:
    return flag in INFORMATIONAL or flag.startswith(INFORMATIONAL_PREFIXES)
