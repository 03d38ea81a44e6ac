"""``labpilot bench xrd``: adaptive scan steering against the full slow scan and an AdaptiveXRD-style heuristic.

A family of random powder samples is drawn from the phase library (``physics/phases``): one,
two or three phases (in turn); half of the multi-phase samples take their phases from one family of
overlapping structures (TiO2, ZrO2, CaCO3 and SiO2 polymorphs, spinels, iron oxides, rock salts,
fluorites); a minor phase at 3–10 wt % in every three-phase sample and in half of the two-phase
ones; random crystallite size (30–300 nm, log-uniform), microstrain (0–8·10⁻⁴), lattice strain
(±0.2 %), texture (half the phases: a random low-index pole, March r in 0.75–1.3), sample
displacement (±0.03 mm) and counting noise. Every fourth sample (index 3, 7, …) is *out of library*:
its analysis (and so its planner) lists every library phase but the sample's major one as candidates,
so no answer can be right and the honest end is ``unreachable`` ("not identified"). Every sample is measured by every policy as a *real
campaign* (the same runner, store, driver, analysis and targets as ``labpilot run``), one Ray task
each. Target: P(most probable phase set) ≥ 0.95; budget 8 000 instrument seconds; the full scan
is one window (10–90°, 0.02°, 1 s per step), run to its end.

Per policy: ``accuracy`` (the reported phase set is the true one), ``minor_phase_detection_rate``
(minor phases in the reported set, over all minor phases), ``median_scan_seconds`` (instrument
time to the decision), ``ratio_to_full_scan``, ``precision_at_0.95`` (fraction right among the
decisions reported at P ≥ 0.95) with its Clopper–Pearson interval, and a reliability table of
reported probability vs. fraction right; the futility columns (``agent.bench.common.futility_columns``)
and, over the out-of-library samples, ``out_of_library_unreachable`` (the fraction ended
``unreachable``) and the median / longest time spent on them; and the median time of the adaptive
planner and the heuristic over the samples where either went past the survey.

``family="mismatch"`` (``labpilot bench xrd --family mismatch``): the model-mismatch family of
``agent.bench.xrd_mismatch_family`` instead (default seed 11, as ``benchmarks.xrd_mismatch``), run
through the same campaigns. Its analysis is set as a user would for such samples: the 12-phase
library as candidates, the instrument profile refined from the family's starting U, V, W (the
diffractometer's is not that calibration), 8° diffuse humps in the background (amorphous content).
A sample's ``true_set`` is its in-library phases. A run is ``correct`` when it is an honest answer:
on a clean sample the reported set is the true set; on a sample with an out-of-library impurity the
run is *flagged* — the campaign ended ``unreachable`` or its answer is "not identified", or the final
analysis gives p(missing phase) ≥ 0.5, ``unexplained-peaks`` or a strain at its bound (as
``benchmarks.xrd_mismatch`` flags). Per policy also ``in_library_set_accuracy`` (reported set = the
in-library truth, every sample), ``clean_accuracy``, ``impurity_flagged`` (fraction of impurity
samples flagged) and ``false_alarm`` (clean samples flagged).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

from agent.bench.checkpoint import RunCheckpoint
from agent.bench.common import futility_columns, run_campaign, run_family, write_results
from agent.bench.xrd_mismatch_family import LIBRARY as MISMATCH_LIBRARY
from agent.bench.xrd_mismatch_family import START as MISMATCH_START
from agent.bench.xrd_mismatch_family import draw_sample as draw_mismatch_sample
from analysis.protocol import Interpretation

POLICIES = ("adaptive", "full_scan", "heuristic")
TARGET = 0.95
BUDGET_SECONDS = 8000.0
SURVEY = (10.0, 60.0, 0.04, 0.1)
"""The AdaptiveXRD-style heuristic's survey (a fast scan over 10–60°)."""
FULL_SCAN = (10.0, 90.0, 0.02, 1.0)
OUT_OF_LIBRARY_EVERY = 4
"""Every fourth sample's major phase is missing from its analysis' candidates."""
OUT_OF_LIBRARY_SURVEYS = 3.0
"""Goal: an out-of-library sample ends ``unreachable`` within this many survey times."""
FAMILIES = (
    ("tio2_anatase", "tio2_rutile", "tio2_brookite"),
    ("zro2_monoclinic", "zro2_tetragonal", "zro2_cubic"),
    ("caco3_calcite", "caco3_aragonite"),
    ("sio2_quartz", "sio2_cristobalite"),
    ("mgal2o4_spinel", "znal2o4_gahnite", "coal2o4_spinel", "znfe2o4_franklinite", "co3o4_spinel", "fe3o4_magnetite"),
    ("fe2o3_hematite", "fe3o4_magnetite", "cr2o3_eskolaite", "al2o3_corundum"),
    ("nacl_halite", "kcl_sylvite", "mgo_periclase", "nio_bunsenite", "cao_lime", "mno_manganosite"),
    ("caf2_fluorite", "ceo2_cerianite", "zro2_cubic"),
)
"""Groups of phases whose patterns overlap (polymorphs, isostructural series)."""
MINOR = 0.10
"""A phase at or below this weight fraction is a minor phase."""
RELIABILITY_BINS = (0.0, 0.5, 0.8, 0.95, 0.99, 1.0000001)
SAMPLE_FAMILIES = ("default", "mismatch")
"""``draw_family``'s families: this module's (docstring) and the model-mismatch one."""
DEFAULT_SEEDS = {"default": 0, "mismatch": 11}
"""Each family's default seed (mismatch: ``benchmarks.xrd_mismatch``'s, so both draw the same samples)."""
MISMATCH_DIFFUSE_FWHM_DEG = 8.0
"""The mismatch family's analysis: diffuse humps of this FWHM in the background (amorphous content), degrees."""

INSTRUMENT = {
    "wavelength": "CuKa", "caglioti_u": 0.010, "caglioti_v": -0.003, "caglioti_w": 0.004,
    "background": [40.0, -15.0, 8.0], "flux": 10.0, "setup_seconds": 15.0, "motion_deg_per_second": 5.0,
}


@dataclass(frozen=True)
class BenchSample:
    index: int
    phases: dict[str, float]
    """True phase → weight fraction."""
    instrument: dict[str, Any]
    candidates: tuple[str, ...] | None = None
    """The analysis' candidate phases; None: the whole library. Without a true phase: out of library."""

    @property
    def out_of_library(self) -> bool:
        return self.candidates is not None and not set(self.phases) <= set(self.candidates)

    @property
    def true_set(self) -> str:
        return "+".join(sorted(self.phases))

    @property
    def minor(self) -> list[str]:
        return [n for n, w in self.phases.items() if w <= MINOR]

    def analysis_settings(self) -> dict[str, Any]:
        """The campaign's ``analysis.settings``."""
        return {
            **{k: INSTRUMENT[k] for k in ("wavelength", "caglioti_u", "caglioti_v", "caglioti_w")},
            # The simulated diffractometer's profile is this calibration: held, as a calibrated lab would
            # (refining U, V, W and the asymmetry as well makes every identification ~6x slower).
            "refine_instrument": False,
            **({} if self.candidates is None else {"candidates": list(self.candidates)})}

    def judge(self, reported: str | None, status: str, final: Interpretation | None,
              answer_status: str | None) -> dict[str, Any]:
        """The run's verdict: ``correct`` (the reported set is the true one)."""
        return {"correct": reported == self.true_set}


@dataclass(frozen=True)
class MismatchSample(BenchSample):
    """A sample of the model-mismatch family; ``phases`` are its in-library phases."""

    impurity: str | None = None
    """Its out-of-library impurity (in the simulated sample, not in ``phases``), if any."""

    @property
    def out_of_library(self) -> bool:
        return self.impurity is not None

    def analysis_settings(self) -> dict[str, Any]:
        # What a user would set for such samples: the diffractometer's profile is not the calibrated
        # start, so it is refined; the amorphous content needs the diffuse humps.
        return {"wavelength": "CuKa", **MISMATCH_START, "refine_instrument": True,
                "diffuse_fwhm_deg": MISMATCH_DIFFUSE_FWHM_DEG, "candidates": list(MISMATCH_LIBRARY)}

    def judge(self, reported: str | None, status: str, final: Interpretation | None,
              answer_status: str | None) -> dict[str, Any]:
        """``correct``: an honest answer (module docstring) — the true set on a clean sample, flagged
        with an impurity; ``in_library_set_right`` and ``flagged`` beside it."""
        flags = [] if final is None else list(final.flags)
        p_missing = None if final is None else final.details.get("p_missing_phase")
        flagged = (status == "unreachable" or answer_status not in (None, "answered")
                   or float(p_missing or 0.0) >= 0.5 or "unexplained-peaks" in flags
                   or any(f.startswith("strain-at-bound") for f in flags))
        right = reported == self.true_set
        return {"correct": flagged if self.impurity else right, "in_library_set_right": right, "flagged": flagged,
                "impurity": self.impurity, "p_missing": p_missing}


def draw_mismatch_family(n: int, seed: int = DEFAULT_SEEDS["mismatch"]) -> list[MismatchSample]:
    """``n`` samples of the model-mismatch family, the same as ``benchmarks.xrd_mismatch`` draws from ``seed``;
    the instrument is the simulated diffractometer's settings plus this bench's set-up and motion times."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        case = draw_mismatch_sample(rng, i)
        settings = case["settings"]
        phases = {p["phase"]: p["weight_fraction"] for p in settings["sample"]["phases"] if p["phase"] != case["impurity"]}
        instrument = {**settings, **{k: INSTRUMENT[k] for k in ("setup_seconds", "motion_deg_per_second")}}
        out.append(MismatchSample(i, phases, instrument, tuple(MISMATCH_LIBRARY), case["impurity"]))
    return out


def draw_family(n: int, seed: int = 0, family: str = "default") -> list[BenchSample]:
    """``n`` random samples as in the module docstring (``family``: one of ``SAMPLE_FAMILIES``)."""
    if family == "mismatch":
        return list(draw_mismatch_family(n, seed))
    if family != "default":
        raise ValueError(f"unknown XRD sample family {family!r}; known: {', '.join(SAMPLE_FAMILIES)}")
    from physics.phases import PhaseLibrary

    library = PhaseLibrary()
    names = library.names()
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        k = 1 + i % 3
        if k > 1 and rng.random() < 0.5:
            family = [p for p in FAMILIES[int(rng.integers(len(FAMILIES)))] if p in library]
            chosen = list(rng.choice(family, size=min(k, len(family)), replace=False))
            while len(chosen) < k:
                extra = str(rng.choice(names))
                if extra not in chosen:
                    chosen.append(extra)
        else:
            chosen = list(rng.choice(names, size=k, replace=False))
        if k == 1:
            fractions = [1.0]
        elif k == 2:
            second = rng.uniform(0.03, MINOR) if rng.random() < 0.5 else rng.uniform(0.2, 0.5)
            fractions = [1 - second, second]
        else:
            second, third = rng.uniform(0.15, 0.4), rng.uniform(0.03, MINOR)
            fractions = [1 - second - third, second, third]
        phases = []
        for name, w in zip(chosen, fractions):
            entry: dict[str, Any] = {
                "phase": str(name), "weight_fraction": round(float(w), 4),
                "crystallite_size_nm": float(math.exp(rng.uniform(math.log(30), math.log(300)))),
                "microstrain": float(rng.uniform(0, 8e-4)), "lattice_strain": float(rng.uniform(-0.002, 0.002)),
            }
            if rng.random() < 0.5:
                poles = library.phase(str(name)).distinct_poles()
                entry["preferred_orientation"] = {"hkl": list(poles[int(rng.integers(len(poles)))]),
                                                  "march_r": float(rng.uniform(0.75, 1.3))}
            phases.append(entry)
        total = sum(p["weight_fraction"] for p in phases)
        phases[0]["weight_fraction"] = round(phases[0]["weight_fraction"] + 1 - total, 6)
        instrument = {**INSTRUMENT, "seed": 2000 + i,
                      "sample": {"phases": phases, "displacement_mm": float(rng.uniform(-0.03, 0.03))}}
        candidates = None
        if i % OUT_OF_LIBRARY_EVERY == OUT_OF_LIBRARY_EVERY - 1:  # the major phase is no candidate
            candidates = tuple(n for n in names if n != phases[0]["phase"])
        out.append(BenchSample(i, {p["phase"]: p["weight_fraction"] for p in phases}, instrument, candidates))
    return out


def _policy(name: str) -> dict[str, Any]:
    return {
        "adaptive": {"name": "xrd_adaptive", "options": {}},
        "heuristic": {"name": "xrd_heuristic", "options": {"survey": list(SURVEY)}},
        "full_scan": {"name": "xrd_full_scan", "options": {"scan": list(FULL_SCAN)}},
    }[name]


def campaign(sample: BenchSample, policy: str, folder: Path, budget_seconds: float = BUDGET_SECONDS) -> dict[str, Any]:
    """The campaign document of one (sample, policy) run."""
    return {
        "name": f"bench-xrd-{sample.index}-{policy}",
        "seed": sample.index,
        "storage": f"sqlite:///{folder / 'bench.db'}",
        "data_dir": str(folder / "data"),
        "sample": f"sample-{sample.index}",
        "design_space": {"parameters": [
            {"name": "two_theta_start", "type": "continuous", "low": 5.0, "high": 140.0, "units": "deg"},
            {"name": "two_theta_stop", "type": "continuous", "low": 5.0, "high": 140.0, "units": "deg"},
            {"name": "two_theta_step", "type": "continuous", "low": 0.005, "high": 0.2, "units": "deg"},
            {"name": "dwell_seconds", "type": "continuous", "low": 0.02, "high": 20.0, "units": "s"},
        ]},
        "instruments": [{"name": "xrd", "kind": "xrd", "settings": sample.instrument}],
        "analysis": {"kind": "xrd", "settings": sample.analysis_settings()},
        "objective": {"estimate": "p(best)", "direction": "maximize"},
        "policy": _policy(policy),
        "targets": [{"name": "phases_known", "kind": "estimate_threshold", "estimate": "p(best)", "at_least": TARGET}],
        "budgets": {"max_instrument_seconds": budget_seconds, "max_measurements": 1 if policy == "full_scan" else 40},
        "stop_on_targets": policy != "full_scan",
    }


def run_one(sample: BenchSample, policy: str, budget_seconds: float = BUDGET_SECONDS) -> dict[str, Any]:
    """Run one campaign in this process and judge its decision against the truth."""
    result, final = run_campaign(lambda folder: campaign(sample, policy, folder, budget_seconds),
                                 f"bench sample {sample.index} / {policy}")
    reported = None if final is None else final.details.get("best_set")
    p_best = None if final is None else final.estimates["p(best)"].value
    found = set(str(reported).split("+")) if reported else set()
    verdict = sample.judge(reported, result.status, final, None if result.answer is None else result.answer.status)
    targets_met = all(r.met for r in result.targets.values())
    return {
        "sample": sample.index, "policy": policy, "true_set": sample.true_set, "reported_set": reported,
        "p_best": p_best, **verdict, "status": result.status, "targets_met": targets_met,
        # Solved: a right answer at the target probability (what "unsolvable by any policy" negates).
        "solved": verdict["correct"] and targets_met,
        "instrument_seconds": result.instrument_seconds, "n_measurements": result.n_measurements,
        "out_of_library": sample.out_of_library,
        "minor_phases": sample.minor, "minor_found": [m for m in sample.minor if m in found],
        "flags": [] if final is None else [f for f in final.flags if not f.startswith("fit-not-converged")],
    }


def _clopper_pearson(k: int, n: int, level: float = 0.95) -> tuple[float, float]:
    if n == 0:
        return (0.0, 1.0)
    alpha = 1 - level
    lo = 0.0 if k == 0 else float(stats.beta.ppf(alpha / 2, k, n - k + 1))
    hi = 1.0 if k == n else float(stats.beta.ppf(1 - alpha / 2, k + 1, n - k))
    return lo, hi


def survey_seconds() -> float:
    """Instrument time of the survey (points × dwell + the window's set-up), s."""
    start, stop, step, dwell = SURVEY
    return (round((stop - start) / step) + 1) * dwell + float(INSTRUMENT["setup_seconds"])


def _out_of_library_columns(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """What a policy did with the out-of-library samples: the fraction it ended ``unreachable``, the
    median and longest time spent on them (s)."""
    out = [r for r in rows if r.get("out_of_library")]
    spent = [r["instrument_seconds"] for r in out]
    return {
        "n_out_of_library": len(out),
        "out_of_library_unreachable": (sum(r["status"] == "unreachable" for r in out) / len(out)) if out else None,
        "median_seconds_out_of_library": statistics.median(spent) if spent else None,
        "max_seconds_out_of_library": max(spent) if spent else None,
    }


def _mismatch_columns(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The model-mismatch family's figures (module docstring); none for a family without impurities."""
    if not rows or "flagged" not in rows[0]:
        return {}
    clean = [r for r in rows if r["impurity"] is None]
    dirty = [r for r in rows if r["impurity"] is not None]

    def share(subset: list[dict[str, Any]], key: str) -> float | None:
        return sum(bool(r[key]) for r in subset) / len(subset) if subset else None

    return {"in_library_set_accuracy": share(rows, "in_library_set_right"), "clean_accuracy": share(clean, "in_library_set_right"),
            "n_clean": len(clean), "impurity_flagged": share(dirty, "flagged"), "n_impurity": len(dirty),
            "false_alarm": share(clean, "flagged")}


def _past_survey_goal(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Median time of the adaptive planner and the heuristic over the samples where either went past
    the survey (the shared survey settles the rest for both)."""
    survey = survey_seconds()
    by_run = {(r["sample"], r["policy"]): r for r in results}
    samples = [s for s in sorted({r["sample"] for r in results})
               if (s, "adaptive") in by_run and (s, "heuristic") in by_run
               and max(by_run[(s, "adaptive")]["instrument_seconds"], by_run[(s, "heuristic")]["instrument_seconds"]) > survey + 1.0]
    if not samples:
        return {"n_samples": 0, "met": None}
    adaptive = statistics.median(by_run[(s, "adaptive")]["instrument_seconds"] for s in samples)
    heuristic = statistics.median(by_run[(s, "heuristic")]["instrument_seconds"] for s in samples)
    return {"n_samples": len(samples), "adaptive_s": adaptive, "heuristic_s": heuristic, "met": adaptive < heuristic}


def _reliability(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Reported probability vs the fraction right, per bin of ``RELIABILITY_BINS``."""
    reliability = []
    for lo, hi in zip(RELIABILITY_BINS[:-1], RELIABILITY_BINS[1:]):
        in_bin = [r for r in rows if r["p_best"] is not None and lo <= r["p_best"] < hi]
        if in_bin:
            reliability.append({"reported": [lo, min(hi, 1.0)], "n": len(in_bin),
                                "mean_reported": statistics.fmean(r["p_best"] for r in in_bin),
                                "fraction_right": sum(r["correct"] for r in in_bin) / len(in_bin)})
    return reliability


def summarise(results: list[dict[str, Any]], n_samples: int, budget_seconds: float = BUDGET_SECONDS,
              family: str = "default") -> dict[str, Any]:
    """The per-policy figures of the module docstring, the reliability table and the goals' verdicts."""
    policies: dict[str, dict[str, Any]] = {}
    for name in POLICIES:
        rows = [r for r in results if r["policy"] == name]
        if not rows:
            continue
        minors = sum(len(r["minor_phases"]) for r in rows)
        confident = [r for r in rows if r["p_best"] is not None and r["p_best"] >= TARGET]
        k = sum(r["correct"] for r in confident)
        policies[name] = {
            "n_runs": len(rows),
            "accuracy": sum(r["correct"] for r in rows) / len(rows),
            "minor_phase_detection_rate": (sum(len(r["minor_found"]) for r in rows) / minors) if minors else None,
            "n_minor_phases": minors,
            "median_scan_seconds": statistics.median(r["instrument_seconds"] for r in rows),
            "precision_at_0.95": (k / len(confident)) if confident else None,
            "precision_at_0.95_interval": list(_clopper_pearson(k, len(confident))),
            "n_decisions_at_0.95": len(confident),
            "targets_reached": sum(r["targets_met"] for r in rows) / len(rows),
            "reliability": _reliability(rows),
            **futility_columns(results, name, budget_seconds, "solved"),
            **_out_of_library_columns(rows),
            **_mismatch_columns(rows),
        }
    goals: dict[str, Any] = {}
    full, adaptive, heuristic = (policies.get(p) for p in ("full_scan", "adaptive", "heuristic"))
    if full:
        for row in policies.values():
            row["ratio_to_full_scan"] = full["median_scan_seconds"] / row["median_scan_seconds"]
    if adaptive and full:
        goals["accuracy_vs_full_scan"] = {"adaptive": adaptive["accuracy"], "full_scan": full["accuracy"],
                                          "met": adaptive["accuracy"] >= full["accuracy"] - 1e-12}
        goals["time_vs_full_scan"] = {"ratio": adaptive["ratio_to_full_scan"], "required": 3.0,
                                      "met": adaptive["ratio_to_full_scan"] >= 3.0}
    if adaptive and heuristic:
        goals["time_vs_heuristic"] = {"adaptive_s": adaptive["median_scan_seconds"], "heuristic_s": heuristic["median_scan_seconds"],
                                      "met": adaptive["median_scan_seconds"] < heuristic["median_scan_seconds"]}
        goals["time_vs_heuristic_past_survey"] = _past_survey_goal(results)
    # The mismatch family's impurity samples have an honest end short of "unreachable" (flagged): no such goal there.
    if adaptive and adaptive["n_out_of_library"] and family == "default":
        limit = OUT_OF_LIBRARY_SURVEYS * survey_seconds()
        goals["out_of_library_unreachable"] = {
            "unreachable": adaptive["out_of_library_unreachable"], "max_seconds": adaptive["max_seconds_out_of_library"],
            "limit_seconds": limit,
            "met": adaptive["out_of_library_unreachable"] == 1.0 and adaptive["max_seconds_out_of_library"] <= limit,
        }
    if adaptive:
        lo, hi = adaptive["precision_at_0.95_interval"]
        goals["calibration_at_0.95"] = {"precision": adaptive["precision_at_0.95"], "interval_95": [lo, hi],
                                        "required": TARGET, "met": adaptive["precision_at_0.95"] is not None and hi >= TARGET}
    return {"benchmark": "xrd", "family": family, "n_samples": n_samples, "budget_instrument_seconds": budget_seconds,
            "target_probability": TARGET, "policies": policies, "goals": goals}


def run_benchmark(
    n_samples: int, seed: int = 0, policies: tuple[str, ...] = POLICIES,
    on_done: Callable[[int, int], None] | None = None, budget_seconds: float = BUDGET_SECONDS,
    checkpoint: RunCheckpoint | None = None, family: str = "default",
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Every (sample, policy) campaign of ``family``'s first ``n_samples`` as a Ray task; Ray must be
    initialised. Returns (summary, runs)."""
    results = run_family(draw_family(n_samples, seed, family), policies, run_one, budget_seconds, on_done, checkpoint)
    return summarise(results, n_samples, budget_seconds, family), results


def write(summary: dict[str, Any], results: list[dict[str, Any]], folder: Path) -> dict[str, Path]:
    return write_results("xrd", summary, results, folder, POLICIES, ok="correct",
                         title="XRD benchmark: time to decision (open: wrong phase set)", ylabel="instrument time to decision, s")
