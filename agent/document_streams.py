"""What each stream of a campaign's event-model run holds, in the form bluesky's own callbacks read.

- **Data keys**: dtype, shape, source and *units on every key* (``""``: dimensionless, or a label
  that has no units), plus ``object_name``; a categorical request field lists its ``choices``, a
  numeric one its design-space bounds as control ``limits``.
- **Objects and hints**: each stream's keys are grouped into objects (``object_keys``) and each object
  hints the keys worth a column (``hints[object]["fields"]``) — what ``BestEffortCallback`` tabulates
  and plots. Only numeric scalars are hinted (neither a table nor a line plot can show an I(Q) array,
  a flag or a JSON text) and never a σ, which an instrument or analysis may leave null.
- **Start hints**: ``dimensions``, the design-space (request) fields over the primary stream — the
  independent axes ``BestEffortCallback`` puts first in its table and on its plots' x axes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from instruments.types import DataKey

REQUEST, MEASUREMENT, LABPILOT = "request", "measurement", "labpilot"
ANALYSIS, POLICY = "analysis", "policy"
PLOTTABLE_DTYPES = ("number", "integer")


@dataclass(frozen=True)
class StreamDescription:
    """One descriptor's ``data_keys``, ``object_keys`` and ``hints``."""

    data_keys: dict[str, dict[str, Any]]
    object_keys: dict[str, list[str]]
    hints: dict[str, dict[str, list[str]]]


def _key(dtype: str, units: str, source: str, obj: str, shape: list[int] | None = None, **extra: Any) -> dict[str, Any]:
    return {"dtype": dtype, "shape": list(shape or []), "source": source, "units": units, "object_name": obj, **extra}


def _describe(keys: dict[str, dict[str, Any]], hinted: Mapping[str, list[str]]) -> StreamDescription:
    """Group ``keys`` by their object; ``hinted``: object → the fields worth a column."""
    objects: dict[str, list[str]] = {}
    for name, key in keys.items():
        objects.setdefault(key["object_name"], []).append(name)
    # Every object hints, if only ``[]``: a callback takes an object without hints to mean "all its keys".
    hints = {obj: {"fields": list(hinted.get(obj, []))} for obj in objects}
    return StreamDescription(keys, objects, hints)


def request_keys(design_space: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The request's fields: one data key per design-space parameter."""
    keys: dict[str, dict[str, Any]] = {}
    for p in design_space["parameters"]:
        units, source = p.get("units") or "", "labpilot:request"
        if p["type"] == "categorical":
            keys[p["name"]] = _key("string", units, source, REQUEST, choices=[str(c) for c in p["choices"]])
        else:
            dtype = "integer" if p["type"] == "integer" else "number"
            limits = {"control": {"low": p["low"], "high": p["high"]}}
            keys[p["name"]] = _key(dtype, units, source, REQUEST, limits=limits)
    return keys


def primary_stream(design_space: Mapping[str, Any], data_keys: Mapping[str, Mapping[str, DataKey]]) -> StreamDescription:
    """Measurements: the request, the instruments' data keys and their σ, who measured what and how long."""
    keys = request_keys(design_space)
    keys |= {"instrument": _key("string", "", "labpilot", LABPILOT), "sample_id": _key("string", "", "labpilot", LABPILOT),
             "instrument_seconds": _key("number", "s", "labpilot", LABPILOT)}
    measured: list[str] = []
    for instrument_keys in data_keys.values():
        for name, key in instrument_keys.items():
            keys[name] = _key(key.dtype, key.units, "labpilot", MEASUREMENT, key.shape)
            keys[f"{name}_sigma"] = _key(key.dtype, key.units, "labpilot:sigma", MEASUREMENT, key.shape)
            if not key.shape and key.dtype in PLOTTABLE_DTYPES and name not in measured:
                measured.append(name)
    return _describe(keys, {REQUEST: list(request_keys(design_space)), MEASUREMENT: measured,
                            LABPILOT: ["instrument_seconds"]})


def interpretations_stream(estimates: Mapping[str, str]) -> StreamDescription:
    """Interpretations: every estimate (name → units) and its σ, validity and flags."""
    keys = {"attempt_id": _key("string", "", "labpilot", LABPILOT), "valid": _key("boolean", "", "labpilot", LABPILOT),
            "flags": _key("string", "", "labpilot", LABPILOT)}
    for name, units in estimates.items():
        keys[name] = _key("number", units, "labpilot:estimate", ANALYSIS)
        keys[f"{name}_sigma"] = _key("number", units, "labpilot:estimate", ANALYSIS)
    return _describe(keys, {ANALYSIS: list(estimates)})


def decisions_stream() -> StreamDescription:
    """Decisions: the policy's proposals and reasons (JSON text), fallback, time to decide."""
    keys = {"policy": _key("string", "", "labpilot", POLICY), "fallback": _key("boolean", "", "labpilot", POLICY),
            "proposals": _key("string", "JSON", "labpilot", POLICY), "reasons": _key("string", "JSON", "labpilot", POLICY),
            "decision_seconds": _key("number", "s", "labpilot", POLICY)}
    return _describe(keys, {POLICY: ["decision_seconds"]})


def run_streams(config: Mapping[str, Any], data_keys: Mapping[str, Mapping[str, DataKey]],
                estimates: Mapping[str, str]) -> dict[str, StreamDescription]:
    """The three streams of a campaign's run, by name."""
    return {"primary": primary_stream(config["design_space"], data_keys),
            "interpretations": interpretations_stream(estimates), "decisions": decisions_stream()}


def start_hints(design_space: Mapping[str, Any]) -> dict[str, Any]:
    """The start document's hints: every request field is an independent axis of the primary stream."""
    return {"dimensions": [[[p["name"]], "primary"] for p in design_space["parameters"]]}


def start_extents(design_space: Mapping[str, Any]) -> list[list[float]] | None:
    """``[[low, high], …]`` of the dimensions (fixed plot limits for ``BestEffortCallback``), or None
    when a dimension is categorical."""
    parameters = design_space["parameters"]
    if any(p["type"] == "categorical" for p in parameters):
        return None
    return [[p["low"], p["high"]] for p in parameters]
