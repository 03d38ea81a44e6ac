"""Figures of ``labpilot bench map``: map accuracy against total time per policy, and the final map
beside the truth on a ternary plot (oxide: the anneal temperature of the test grid nearest the
middle of its range)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from agent.bench.map_campaigns import POLICIES, SYSTEMS

_COMPONENTS = {"oxide": ("MgO", "ZnO", "CuO"), "formulation": ("amphiphile", "cosurfactant", "water")}


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _median_curve(runs: list[dict[str, Any]], times: np.ndarray) -> np.ndarray:
    """Median over runs of the accuracy reached by each time (a step function; 0 before the first sample)."""
    values = []
    for run in runs:
        t = np.array([r["seconds"] for r in run["rows"]])
        a = np.array([r["accuracy"] for r in run["rows"]])
        index = np.searchsorted(t, times, side="right") - 1
        values.append(np.where(index >= 0, a[np.clip(index, 0, None)], 0.0))
    return np.median(np.array(values), axis=0) if values else np.zeros_like(times)


def plot_accuracy(results: list[dict[str, Any]], path: Path) -> Path:
    """One panel per system: every run's accuracy against total time (thin), the median per policy (thick)."""
    plt = _pyplot()
    systems = [s for s in SYSTEMS if any(r["system"] == s for r in results)]
    fig, axes = plt.subplots(1, max(len(systems), 1), figsize=(6 * max(len(systems), 1), 4.2), squeeze=False)
    for ax, system in zip(axes[0], systems):
        rows = [r for r in results if r["system"] == system]
        end = max((r["total_seconds"] for r in rows), default=1.0)
        times = np.linspace(0.0, end, 400)
        for k, policy in enumerate(p for p in POLICIES if any(r["policy"] == p for r in rows)):
            runs = [r for r in rows if r["policy"] == policy]
            for run in runs:
                ax.step([x["seconds"] / 3600 for x in run["rows"]], [x["accuracy"] for x in run["rows"]],
                        where="post", color=f"C{k}", alpha=0.25, lw=0.8)
            ax.plot(times / 3600, _median_curve(runs, times), color=f"C{k}", lw=2, label=policy)
        ax.axhline(0.9, color="grey", ls=":", lw=1)
        ax.set(xlabel="total time (synthesis + instrument), h", ylabel="map accuracy on the test grid",
               title=f"{system}: {len({r['truth'] for r in rows})} hidden truths", ylim=(0, 1.02))
        ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _ternary_xy(points: list[dict[str, float]], names: tuple[str, str, str]) -> tuple[np.ndarray, np.ndarray]:
    """Barycentric → Cartesian: corner 1 at (0, 0), corner 2 at (1, 0), corner 3 at (½, √3/2)."""
    b = np.array([p[names[1]] for p in points])
    c = np.array([p[names[2]] for p in points])
    return b + c / 2, c * math.sqrt(3) / 2


def _slice(final: dict[str, Any], system: str) -> list[int]:
    """Indices of the test points drawn: for the oxide, those at the temperature nearest mid-range."""
    grid = final["grid"]
    if system != "oxide":
        return list(range(len(grid)))
    temperatures = sorted({g["anneal_temperature_k"] for g in grid})
    middle = temperatures[len(temperatures) // 2]
    return [i for i, g in enumerate(grid) if g["anneal_temperature_k"] == middle]


def _panel(ax: Any, final: dict[str, Any], system: str, key: str, colours: dict[str, Any], title: str) -> None:
    keep = _slice(final, system)
    points = [final["grid"][i] for i in keep]
    x, y = _ternary_xy(points, _COMPONENTS[system])
    labels = [final[key][i] for i in keep]
    alpha = [final["p"][i] for i in keep] if key == "predicted" else [1.0] * len(keep)
    for label in sorted({str(v) for v in labels}):
        mask = np.array([str(v) == label for v in labels])
        rgba = np.array([(*colours.get(label, (0.5, 0.5, 0.5))[:3], max(a, 0.15)) for a, m in zip(alpha, mask) if m])
        ax.scatter(x[mask], y[mask], c=rgba, s=14, label=label, edgecolors="none")
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title, fontsize=9)
    names = _COMPONENTS[system]
    ax.set_xlabel(f"corners: {names[0]} (left), {names[1]} (right), {names[2]} (top)", fontsize=7)


def plot_final_maps(results: list[dict[str, Any]], path: Path) -> Path:
    """For each system's first truth: phase_map's final map (opacity = p of its label) beside the truth."""
    plt = _pyplot()
    picks = []
    for system in SYSTEMS:
        rows = [r for r in results if r["system"] == system]
        if rows:
            truth = min(r["truth"] for r in rows)
            run = next((r for r in rows if r["truth"] == truth and r["policy"] == "phase_map"), rows[0])
            picks.append((system, run))
    fig, axes = plt.subplots(max(len(picks), 1), 2, figsize=(11, 4.6 * max(len(picks), 1)), squeeze=False)
    for row, (system, run) in zip(axes, picks):
        final = run["final_map"]
        names = sorted({str(v) for v in final["truth"]} | {str(v) for v in final["predicted"]})
        colours = {n: plt.get_cmap("tab10")(i % 10) for i, n in enumerate(names)}
        where = "\nat the middle anneal temperature" if system == "oxide" else ""
        _panel(row[0], final, system, "predicted", colours, f"{system} truth {run['truth']}: {run['policy']} map, "
               f"{run['samples']} samples (opacity: p){where}")
        _panel(row[1], final, system, "truth", colours, f"{system} truth {run['truth']}: the hidden truth{where}")
        row[1].legend(fontsize=7, loc="upper right", bbox_to_anchor=(1.45, 1.0))
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
