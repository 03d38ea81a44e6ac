"""What every ``labpilot bench`` shares: one real campaign per Ray task, and the time-per-sample figure."""

from __future__ import annotations

import asyncio
import json
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from agent.bench.checkpoint import RunCheckpoint
from analysis.protocol import Interpretation


def run_campaign(document: Callable[[Path], dict[str, Any]], label: str) -> tuple[Any, Interpretation | None]:
    """Run the campaign ``document(scratch folder)`` in this process (services in-process, SQLite
    store in a scratch folder); (its result, its newest valid interpretation)."""
    from agent.campaign import CampaignRunner
    from agent.config import parse_campaign
    from agent.store import Store

    with tempfile.TemporaryDirectory(prefix="labpilot-bench-") as tmp:
        config = parse_campaign(document(Path(tmp)), label)
        store = Store(config.storage)
        try:
            runner = CampaignRunner(config, store, config.name, in_process=True)
            result = asyncio.run(runner.run())
            final = next((i for i in reversed(store.interpretations(config.name)) if i.valid), None)
        finally:
            store.close()
    return result, final


def run_tasks(
    function: Callable[..., dict[str, Any]], arguments: Sequence[tuple[Any, ...]],
    on_done: Callable[[int, int], None] | None = None, checkpoint: RunCheckpoint | None = None,
) -> list[dict[str, Any]]:
    """``function(*args)`` for every args as a Ray task (one CPU each); Ray must be initialised.
    Results in completion order (runs ``checkpoint`` already holds first, not run again; each new
    one recorded there as it finishes); ``on_done(done, total)`` after each."""
    import ray

    task = ray.remote(num_cpus=1, max_retries=0)(function)
    results, pending = [], {}
    for args in arguments:
        stored = checkpoint.finished(args) if checkpoint is not None else None
        if stored is not None:
            results.append(stored)
        else:
            pending[task.remote(*args)] = args
    total = len(arguments)
    if results and on_done is not None:
        on_done(len(results), total)  # the stored runs show at once: a resume with nothing left still ends at 100 %
    while pending:
        done, _ = ray.wait(list(pending), num_returns=1)
        result = ray.get(done[0])
        if checkpoint is not None:
            checkpoint.record(pending[done[0]], result)
        del pending[done[0]]
        results.append(result)
        if on_done is not None:
            on_done(len(results), total)
    return results


def run_family(
    samples: Sequence[Any], policies: Sequence[str], run_one: Callable[..., dict[str, Any]], budget_seconds: float,
    on_done: Callable[[int, int], None] | None = None, checkpoint: RunCheckpoint | None = None,
) -> list[dict[str, Any]]:
    """``run_one(sample, policy, budget_seconds)`` for every sample and policy as Ray tasks (see
    ``run_tasks`` for ``checkpoint``); the runs sorted by sample, then policy in the given order."""
    results = run_tasks(run_one, [(s, p, budget_seconds) for s in samples for p in policies], on_done, checkpoint)
    results.sort(key=lambda r: (r["sample"], list(policies).index(r["policy"])))
    return results


def write_results(name: str, summary: dict[str, Any], results: list[dict[str, Any]], folder: Path,
                  policies: Sequence[str], **figure: Any) -> dict[str, Path]:
    """``<name>_benchmark.json`` (the summary and every run) and ``<name>_benchmark.png``
    (``plot_times`` with ``figure``'s title, ylabel and ok) in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    json_path = folder / f"{name}_benchmark.json"
    json_path.write_text(json.dumps({**summary, "runs": results}, indent=1))
    return {"json": json_path, "figure": plot_times(results, policies, folder / f"{name}_benchmark.png", **figure)}


def plot_times(results: list[dict[str, Any]], policies: Sequence[str], path: Path, *, title: str, ylabel: str,
               ok: str = "success") -> Path:
    """Instrument time of each campaign, per sample, per policy (open marker: ``ok`` is false)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.5))
    names = [p for p in policies if any(r["policy"] == p for r in results)]
    for k, name in enumerate(names):
        rows = [r for r in results if r["policy"] == name]
        x = [r["sample"] + (k - len(names) / 2) * 0.12 for r in rows]
        y = [r["instrument_seconds"] for r in rows]
        colour = f"C{k}"
        ax.scatter([a for a, r in zip(x, rows) if r[ok]], [b for b, r in zip(y, rows) if r[ok]], color=colour, label=name, s=18)
        ax.scatter([a for a, r in zip(x, rows) if not r[ok]], [b for b, r in zip(y, rows) if not r[ok]],
                   facecolors="none", edgecolors=colour, s=18)
    ax.set_yscale("log")
    ax.set_xlabel("sample")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=8, ncol=len(names))
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def futility_columns(results: list[dict[str, Any]], policy: str, budget_seconds: float, success: str) -> dict[str, Any]:
    """What ``policy`` did with the samples no policy solved (``success``: the runs' key saying a run
    succeeded): the fraction it ended ``unreachable``, the median time it spent on them (s, and as a
    fraction of the budget); and over the *solvable* samples (some policy solved them) its median
    time and how often it declared one unreachable (a false alarm)."""
    import statistics

    solved = {r["sample"] for r in results if r[success]}
    rows = [r for r in results if r["policy"] == policy]
    hopeless = [r for r in rows if r["sample"] not in solved]
    solvable = [r for r in rows if r["sample"] in solved]
    spent = [r["instrument_seconds"] for r in hopeless]
    return {
        "n_unsolvable_samples": len(hopeless),
        "unreachable_recognised": (sum(r["status"] == "unreachable" for r in hopeless) / len(hopeless)) if hopeless else None,
        "median_seconds_on_unsolvable": statistics.median(spent) if spent else None,
        "budget_fraction_on_unsolvable": (statistics.median(spent) / budget_seconds) if spent else None,
        "median_instrument_seconds_solvable": statistics.median(r["instrument_seconds"] for r in solvable) if solvable else None,
        "false_unreachable_rate": (sum(r["status"] == "unreachable" for r in solvable) / len(solvable)) if solvable else None,
    }
