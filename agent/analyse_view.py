"""How ``labpilot analyse`` shows its answer: a rich summary (answer first) and an HTML page with the
fit and its normalised residuals. Reads an ``AnalyseResult``; draws with matplotlib's Agg canvas."""

from __future__ import annotations

import base64
import html
import io
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from rich.console import Console
from rich.table import Table

from agent.analyse import AnalyseResult, answer_json


def _pm(value: float | None, sigma: float | None, units: str) -> str:
    if value is None:
        return "—"
    text = f"{value:.6g}" if sigma is None else f"{value:.6g} ± {sigma:.2g}"
    return f"{text} {units}".strip()


def print_answer(console: Console, result: AnalyseResult) -> None:
    """The answer first (estimates ± σ, probabilities, flags), then what was read."""
    answer = answer_json(result)
    verdict = "[green]valid[/]" if answer["valid"] else "[red]not valid[/] (kept, but not an answer to rely on)"
    console.print(f"[bold]{result.kind} analysis[/] of {len(result.files)} file(s), "
                  f"{len(result.measurements)} measurement(s): {verdict}")
    unlikely = {name[2:] for name, p in answer["probabilities"].items() if name.startswith("p:") and (p or 0.0) < 1e-3}
    table = Table("estimate", "value ± σ", show_edge=False)
    for name, e in answer["estimates"].items():
        if name.split(":", 1)[-1] not in unlikely:
            table.add_row(name, _pm(e["value"], e["sigma"], e["units"]))
    console.print(table)
    probs = Table("hypothesis", "probability", show_edge=False)
    for name, p in sorted(answer["probabilities"].items(), key=lambda kv: -(kv[1] or 0.0)):
        if name[2:] not in unlikely or not name.startswith("p:"):
            probs.add_row(name, "—" if p is None else f"{p:.3f}")
    console.print(probs)
    if unlikely:
        console.print(f"({len(unlikely)} phases with p < 0.001 not shown; --json lists all)")
    console.print("flags: " + (", ".join(answer["flags"]) if answer["flags"] else "none"), highlight=False, soft_wrap=True)
    relative = sorted({str(m["params"].get("intensity_units")) for m in answer["measurements"]
                       if str(m["params"].get("intensity_units", "1/cm")) not in ("1/cm", "scaled")})
    if relative:
        console.print(f"note: intensity {', '.join(relative)}: estimates in intensity units (scale, I0, background) are "
                      "in the file's units, not 1/cm", highlight=False, soft_wrap=True)
    for m in answer["measurements"]:
        console.print(f"  read {m['file']} → {m['attempt_id']}: {m['points']} points", highlight=False, soft_wrap=True)


def _curves(result: AnalyseResult, m: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None, str]:
    """(x, y, σ, model or None, y label) of one measurement, in the units the analysis fits."""
    if result.kind == "sas":
        x, y, s = m.data["q"], m.data["intensity"], m.sigma.get("intensity")
        return x, y, s, _sas_model(result, m), "I(Q), 1/cm"
    key = "counts" if "counts" in m.data else "intensity"
    dwell = float(m.params.get("dwell_seconds", 1.0)) if key == "counts" else 1.0
    y = m.data[key] / dwell
    s = m.sigma.get(key)
    return m.data["two_theta"], y, None if s is None else s / dwell, _xrd_model(result, m), f"{key} per second"


def _sas_model(result: AnalyseResult, m: Any) -> np.ndarray | None:
    from analysis.sas import predict_with_jacobian

    details = result.interpretation.details
    best = details.get("best_model")
    if not isinstance(best, str) or "dq" not in m.data:
        return None  # slit-smeared blocks are drawn without a curve: the predictor here is pinhole-only
    candidate = result.settings.candidate(best)  # type: ignore[attr-defined]
    values = {p: details.get(f"fit:{best}:{p}") for p in candidate.parameters}
    if not all(isinstance(v, float) for v in values.values()):
        return None
    try:
        curve, _, _ = predict_with_jacobian(result.settings, best, values, m.data["q"], m.data["dq"])
    except Exception:  # noqa: BLE001 — a figure must not fail the answer
        return None
    return np.asarray(curve, dtype=float)


def _xrd_model(result: AnalyseResult, m: Any) -> np.ndarray | None:
    from analysis.xrd import hypotheses_of, predict_rate

    hypotheses = hypotheses_of(result.interpretation.details)
    if not hypotheses:
        return None
    try:
        return np.asarray(predict_rate(result.settings, hypotheses[0], m.data["two_theta"]), dtype=float)
    except Exception:  # noqa: BLE001 — a figure must not fail the answer
        return None


def fit_figure(result: AnalyseResult) -> Figure:
    """Data with the best model above, (data − model)/σ below, one colour per measurement."""
    fig = Figure(figsize=(9, 6.5))
    top, bottom = fig.add_subplot(3, 1, (1, 2)), fig.add_subplot(3, 1, 3)
    label = ""
    for k, m in enumerate(result.measurements):
        x, y, s, model, label = _curves(result, m)
        colour = f"C{k % 10}"
        top.errorbar(x, y, yerr=s, fmt=".", ms=2, lw=0.5, color=colour, alpha=0.6, label=m.attempt_id)
        if model is not None:
            top.plot(x, model, color="k", lw=0.8)
            if s is not None:
                with np.errstate(divide="ignore", invalid="ignore"):
                    bottom.plot(x, (y - model) / s, ".", ms=2, color=colour)
    if result.kind == "sas":
        top.set_xscale("log")
        top.set_yscale("log")
        bottom.set_xscale("log")
    top.set_ylabel(label)
    top.legend(fontsize=7)
    bottom.axhline(0, color="0.5", lw=0.8)
    bottom.set_ylabel("(data − fit)/σ")
    bottom.set_xlabel("Q, 1/Å" if result.kind == "sas" else "2θ, degrees")
    fig.tight_layout()
    return fig


def _figure_html(fig: Figure) -> str:
    FigureCanvasAgg(fig)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight", metadata={"Software": None})
    encoded = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f'<figure><img alt="data, fit and residuals" src="data:image/png;base64,{encoded}"></figure>'


def write_report(result: AnalyseResult, path: Path) -> Path:
    """An HTML page: the answer (as ``print_answer`` gives it), the fit and residuals; written atomically."""
    answer = answer_json(result)
    e = html.escape
    rows = "".join(f"<tr><td>{e(k)}</td><td>{e(_pm(v['value'], v['sigma'], v['units']))}</td></tr>"
                   for k, v in answer["estimates"].items())
    probs = "".join(f"<tr><td>{e(k)}</td><td>{'—' if p is None else f'{p:.3f}'}</td></tr>"
                    for k, p in answer["probabilities"].items())
    files = "".join(f"<li>{e(str(m['file']))} ({m['points']} points)</li>" for m in answer["measurements"])
    page = (f"<!doctype html><html><head><meta charset='utf-8'><title>labpilot analyse: {e(result.kind)}</title></head>"
            f"<body><h1>{e(result.kind)} analysis — {'valid' if answer['valid'] else 'not valid'}</h1>"
            f"<table>{rows}</table><h2>probabilities</h2><table>{probs}</table>"
            f"<p>flags: {e(', '.join(answer['flags']) or 'none')}</p>{_figure_html(fit_figure(result))}"
            f"<h2>files</h2><ul>{files}</ul></body></html>")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".html")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(page)
    os.replace(tmp, path)
    return path
