"""``labpilot bench map``: phase-map campaigns over samples — nested adaptive against CAMEO-style,
grid and random — on both materials systems, scored against their hidden truths.

What runs: for every system (``oxide``, ``formulation``), hidden truth (the materials system's seed:
each seed places every boundary elsewhere) and policy, one *real campaign over samples*
(``agent.sample_campaign``: the same runner, store — SQLite in a scratch folder —, synthesiser,
simulated instruments, within-sample planners, analyses and across-sample policies as ``labpilot
run``; documents in ``agent.bench.map_campaigns``), each campaign a Ray task (services in-process,
so a task is one process). Every campaign runs to its sample budget (no campaign-level target stops
it); the map is then scored after each sample (``agent.bench.map_score``): accuracy on the system's
dense test grid against its truth, calibration of the p ≥ 0.95 points, and whether a map-confidence
target would have held — as a function of total time (synthesis + instrument seconds).

Per system and policy: ``median_seconds_to_0.9`` (a run that never got there counts as never: the
median over truths with never = ∞, None when fewer than half got there), ``median_samples_to_0.9``,
``final_accuracy`` (median), ``calibration_095`` (pooled over every map of every run: of the test
points labelled with p ≥ 0.95, the fraction right), the paired ratios of ``phase_map``'s time to 0.9
over each baseline's (per truth; median, min, max over the truths where both got there, and how many
truths only ``phase_map`` got there), and for the map-confidence target and the map-accuracy target
(expected accuracy ≥ 0.9, ``agent.map_targets``): how often it held no earlier than accuracy 0.9 and no
later than 1.2× that time.
"""

from __future__ import annotations

import importlib
import statistics
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from agent.bench.checkpoint import RunCheckpoint
from agent.bench.map_campaigns import POLICIES, SYSTEMS, campaign
from agent.bench.map_score import run_figures

GOAL_RATIOS = {"cameo": 1 / 3, "grid": 1 / 5}
"""Required paired ratio (phase_map's time to 0.9 accuracy / the baseline's): at most this."""
TARGET_LATE = 1.2
SAMPLES = {"oxide": 40, "formulation": 30}
QUICK_SAMPLES = {"oxide": 24, "formulation": 8}


def _outcomes(system: str, truth: int, policy: str, max_samples: int) -> tuple[Any, list[Any]]:
    """Run one campaign over samples in this process; (its config, its samples' outcomes in order)."""
    from agent.config import parse_campaign
    from agent.sample_campaign import run_sample_campaign
    from agent.store import Store
    from policies.protocol import SampleOutcome

    with tempfile.TemporaryDirectory(prefix="labpilot-bench-map-") as tmp:
        config = parse_campaign(campaign(system, truth, policy, max_samples, Path(tmp)), f"bench map {system}/{truth}/{policy}")
        with Store(config.storage) as store:
            run_sample_campaign(config, store, campaign_id="bench", in_process=True)
            outcomes = [SampleOutcome.model_validate(s.outcome) for s in store.samples("bench") if s.outcome]
    return config, outcomes


def _compact_map(final: dict[str, Any]) -> dict[str, Any]:
    """The final map on the test grid as the figure needs it: recipes, truth, predicted label and its p."""
    p = final["probabilities"]
    labels = final["labels"]
    best = p.argmax(axis=1) if p.shape[1] else [None] * len(final["grid"])
    return {"grid": final["grid"], "truth": final["truth"],
            "predicted": [None if j is None else labels[int(j)] for j in best],
            "p": [round(float(row.max()), 4) if len(row) else 0.0 for row in p]}


def run_one(system: str, truth: int, policy: str, max_samples: int) -> dict[str, Any]:
    """One campaign, scored after each sample (``agent.bench.map_score``)."""
    import numpy as np

    from agent.bench.map_score import curve

    np.seterr(all="ignore")
    config, outcomes = _outcomes(system, truth, policy, max_samples)
    # The truth the map is scored against: the simulators' own materials system, by import string
    # like every simulator the agent names (agent/kinds.py), so a deployment never loads simulators.
    materials = importlib.import_module("simulators.materials").materials_system_from_settings({"kind": system, "seed": truth})
    rows, final = curve(config.design_space, outcomes, materials, system, config.seed)
    return {"system": system, "truth": truth, "policy": policy, "rows": rows, **run_figures(rows),
            "failed_samples": sum(o.status == "failed" for o in outcomes),
            "not_identified": sum(o.status == "not_identified" for o in outcomes), "final_map": _compact_map(final)}


def _median_or_never(values: list[float | None]) -> float | None:
    """The median with None as ∞ (never got there); None when the median is ∞."""
    ordered = sorted(float("inf") if v is None else v for v in values)
    if not ordered:
        return None
    m = len(ordered) // 2
    median = ordered[m] if len(ordered) % 2 else 0.5 * (ordered[m - 1] + ordered[m])
    return None if median == float("inf") else median


def _policy_row(runs: list[dict[str, Any]]) -> dict[str, Any]:
    confident = sum(r["confident"] for run in runs for r in run["rows"])
    right = sum(r["confident_right"] for run in runs for r in run["rows"])
    final_confident = sum(run["final_confident"] for run in runs)
    return {
        "n_truths": len(runs),
        "reached_0.9": sum(run["seconds_to_0.9"] is not None for run in runs),
        "median_seconds_to_0.9": _median_or_never([run["seconds_to_0.9"] for run in runs]),
        "median_samples_to_0.9": _median_or_never([run["samples_to_0.9"] for run in runs]),
        "final_accuracy": statistics.median(run["final_accuracy"] for run in runs),
        "median_total_seconds": statistics.median(run["total_seconds"] for run in runs),
        "samples": statistics.median(run["samples"] for run in runs),
        "calibration_095": (right / confident) if confident else None, "n_confident": confident,
        "final_calibration_095": (sum(run["final_confident_right"] for run in runs) / final_confident) if final_confident else None,
    }


def _paired(runs: dict[tuple[int, str], dict[str, Any]], truths: list[int], baseline: str) -> dict[str, Any]:
    """phase_map's time to 0.9 over ``baseline``'s, per truth where both got there; truths where
    only phase_map got there (ratio below phase_map's time over the baseline's whole run) counted."""
    ratios, only_adaptive, only_baseline = [], 0, 0
    for t in truths:
        a, b = runs.get((t, "phase_map")), runs.get((t, baseline))
        if a is None or b is None:
            continue
        ta, tb = a["seconds_to_0.9"], b["seconds_to_0.9"]
        if ta is not None and tb is not None:
            ratios.append(ta / tb)
        only_adaptive += ta is not None and tb is None
        only_baseline += ta is None and tb is not None
    return {"median": statistics.median(ratios) if ratios else None, "min": min(ratios, default=None),
            "max": max(ratios, default=None), "n_both": len(ratios), "only_phase_map": only_adaptive,
            "only_baseline": only_baseline}


def _target_timing(runs: list[dict[str, Any]], prefix: str = "") -> dict[str, Any]:
    """How a target's first 'met' relates to the time the map reached 0.9 accuracy: the map-confidence
    target's (``prefix`` "") or the map-accuracy target's ("accuracy_")."""
    met_at = [r.get(f"{prefix}target_met_seconds") for r in runs]
    early = sum(t is not None and (r["seconds_to_0.9"] is None or t < r["seconds_to_0.9"]) for t, r in zip(met_at, runs))
    ratios = [x for r in runs if (x := r.get(f"{prefix}target_over_accuracy_time")) is not None]
    within = sum(1.0 <= x <= TARGET_LATE for x in ratios)
    never = sum(t is None and r["seconds_to_0.9"] is not None for t, r in zip(met_at, runs))
    # Runs where neither the map reached 0.9 nor the target held say nothing about its timing.
    judged = sum(t is not None or r["seconds_to_0.9"] is not None for t, r in zip(met_at, runs))
    return {"n_runs": len(runs), "n_judged": judged, "within_20pct": within, "early": early,
            "late": sum(x > TARGET_LATE for x in ratios), "never_met_though_accurate": never,
            "median_ratio": statistics.median(ratios) if ratios else None}


def summarise(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Per system: the policies' rows, paired ratios, target timing; and the goals' verdicts."""
    systems: dict[str, Any] = {}
    for system in SYSTEMS:
        rows = [r for r in results if r["system"] == system]
        if not rows:
            continue
        truths = sorted({r["truth"] for r in rows})
        by = {(r["truth"], r["policy"]): r for r in rows}
        policies = {p: _policy_row([r for r in rows if r["policy"] == p]) for p in POLICIES if any(r["policy"] == p for r in rows)}
        systems[system] = {"truths": truths, "policies": policies,
                           "paired_ratio_to": {b: _paired(by, truths, b) for b in GOAL_RATIOS if b in policies},
                           "map_target": _target_timing(rows), "accuracy_target": _target_timing(rows, "accuracy_")}
    return {"benchmark": "map", "systems": systems, "goals": _goals(systems)}


def _goals(systems: dict[str, Any]) -> dict[str, Any]:
    goals: dict[str, Any] = {}
    for name, s in systems.items():
        for baseline, required in GOAL_RATIOS.items():
            paired = s["paired_ratio_to"].get(baseline)
            if paired is not None and "phase_map" in s["policies"]:
                met = paired["median"] is not None and paired["median"] <= required and paired["only_baseline"] == 0
                goals[f"{name}: phase_map vs {baseline}"] = {"paired_median": paired["median"], "required": required, "met": bool(met)}
        for policy, row in s["policies"].items():
            c = row["calibration_095"]
            goals[f"{name}: calibration {policy}"] = {"value": c, "required": 0.95, "met": c is not None and c >= 0.95}
        for key, label in (("map_target", "map target timing"), ("accuracy_target", "map accuracy target timing")):
            t = s[key]
            goals[f"{name}: {label}"] = {"within_20pct": t["within_20pct"], "early": t["early"], "n_judged": t["n_judged"],
                                         "met": t["n_judged"] > 0 and t["early"] == 0 and t["within_20pct"] == t["n_judged"]}
    return goals


def run_benchmark(n_truths: int, seed: int = 0, on_done: Callable[[int, int], None] | None = None, *,
                  quick: bool = False, policies: tuple[str, ...] = POLICIES,
                  systems: tuple[str, ...] = SYSTEMS, samples: dict[str, int] | None = None,
                  checkpoint: RunCheckpoint | None = None) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Every (system, truth, policy) campaign as a Ray task (Ray must be initialised); truths are the
    seeds ``seed … seed + n_truths − 1``. Returns (summary, runs)."""
    from agent.bench.common import run_tasks

    if n_truths < 1:
        raise ValueError(f"n_truths: at least 1, not {n_truths}")
    budget = samples or (QUICK_SAMPLES if quick else SAMPLES)
    arguments = [(s, t, p, budget[s]) for s in systems for t in range(seed, seed + n_truths) for p in policies]
    results = run_tasks(run_one, arguments, on_done, checkpoint)
    results.sort(key=lambda r: (SYSTEMS.index(r["system"]), r["truth"], POLICIES.index(r["policy"])))
    return summarise(results), results


def n_runs(n_truths: int, policies: tuple[str, ...] = POLICIES, systems: tuple[str, ...] = SYSTEMS) -> int:
    return n_truths * len(policies) * len(systems)


def write(summary: dict[str, Any], results: list[dict[str, Any]], folder: Path) -> dict[str, Path]:
    """``map_benchmark.json`` (summary and every run without its final map), the accuracy-vs-time
    figure and the final-map figure in ``folder``."""
    import json

    from agent.bench.map_figures import plot_accuracy, plot_final_maps

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "map_benchmark.json"
    runs = [{k: v for k, v in r.items() if k != "final_map"} for r in results]
    path.write_text(json.dumps({**summary, "runs": runs}, indent=1))
    return {"json": path, "figure": plot_accuracy(results, folder / "map_benchmark_accuracy.png"),
            "maps": plot_final_maps(results, folder / "map_benchmark_maps.png")}
