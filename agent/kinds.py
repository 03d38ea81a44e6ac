"""Instrument and analysis kinds: names in campaign files → the classes that implement them.

The agent is the only layer allowed to know about simulators, so they are registered here. This
module is deliberately light (no torch/BoTorch): Ray unpickles its factories inside every
instrument and analysis actor, and importing a GP stack there would cost seconds per actor.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from analysis.protocol import Analysis
from analysis.sas import SASFitAnalysis, SASFitSettings
from analysis.scalar import ScalarAnalysis, ScalarSettings
from analysis.xrd import XRDPhaseIdentification, XRDPhaseIDSettings
from instruments.ophyd_adapter import OphydDriver, OphydSettings  # light: bluesky/ophyd load when a driver is built
from instruments.protocol import Driver
from instruments.remote import RemoteDriver, RemoteSettings  # light: pyzmq only
from policies.space import CategoricalParameter, DesignSpace
from simulators.sas import SASDriver, SASSettings
from simulators.synthetic import SyntheticPropertyDriver, SyntheticSettings
from simulators.xrd import XRDDriver, XRDSettings


@dataclass(frozen=True)
class InstrumentKind:
    settings_model: type[BaseModel]
    build: Callable[[str, BaseModel], Driver]
    complete: Callable[[dict[str, Any], DesignSpace, Path], dict[str, Any]]
    """Fill settings the campaign implies (limits from the design space, data folder)."""


def _complete_synthetic(settings: dict[str, Any], space: DesignSpace, data_dir: Path) -> dict[str, Any]:
    out = dict(settings)
    if not out.get("inputs"):
        out["inputs"] = {
            p.name: (float(p.low), float(p.high)) for p in space.parameters if not isinstance(p, CategoricalParameter)
        }
    out.setdefault("journal_dir", str(data_dir))
    return out


def _complete_journal(settings: dict[str, Any], space: DesignSpace, data_dir: Path) -> dict[str, Any]:
    return {**settings, "journal_dir": settings.get("journal_dir") or str(data_dir)}


def _complete_unchanged(settings: dict[str, Any], space: DesignSpace, data_dir: Path) -> dict[str, Any]:
    # An ophyd instrument's axes and limits are the hardware's: nothing is implied by the campaign.
    return dict(settings)


def _complete_remote(settings: dict[str, Any], space: DesignSpace, data_dir: Path) -> dict[str, Any]:
    # A served instrument's limits and data files live on its own PC: the campaign implies nothing.
    return settings


INSTRUMENT_KINDS: dict[str, InstrumentKind] = {
    "synthetic": InstrumentKind(SyntheticSettings, SyntheticPropertyDriver, _complete_synthetic),  # type: ignore[arg-type]
    "sas": InstrumentKind(SASSettings, SASDriver, _complete_journal),  # type: ignore[arg-type]
    "xrd": InstrumentKind(XRDSettings, XRDDriver, _complete_journal),  # type: ignore[arg-type]
    "ophyd": InstrumentKind(OphydSettings, OphydDriver, _complete_unchanged),  # type: ignore[arg-type]
    "remote": InstrumentKind(RemoteSettings, RemoteDriver, _complete_remote),  # type: ignore[arg-type]
}


@dataclass(frozen=True)
class AnalysisKind:
    settings_model: type[BaseModel]
    build: Callable[[BaseModel], Analysis]
    estimates: Callable[[BaseModel], list[str]]


ANALYSIS_KINDS: dict[str, AnalysisKind] = {
    "scalar": AnalysisKind(
        ScalarSettings,
        ScalarAnalysis,  # type: ignore[arg-type]
        lambda s: [s.estimate or s.key],  # type: ignore[attr-defined]
    ),
    "sas": AnalysisKind(SASFitSettings, SASFitAnalysis, lambda s: s.estimate_names()),  # type: ignore[arg-type,attr-defined]
    "xrd": AnalysisKind(XRDPhaseIDSettings, XRDPhaseIdentification, lambda s: s.estimate_names()),  # type: ignore[arg-type,attr-defined]
}


def build_driver(kind: str, name: str, settings: dict[str, Any]) -> Driver:
    """Construct a driver; runs inside the instrument actor's process."""
    spec = INSTRUMENT_KINDS[kind]
    return spec.build(name, spec.settings_model.model_validate(settings))


def driver_factory(kind: str, name: str, settings: dict[str, Any]) -> Callable[[], Driver]:
    """A picklable zero-argument factory for ``InstrumentActor``."""
    return partial(build_driver, kind, name, settings)


def build_analysis(kind: str, settings: dict[str, Any]) -> Analysis:
    spec = ANALYSIS_KINDS[kind]
    return spec.build(spec.settings_model.model_validate(settings))


def analysis_factory(kind: str, settings: dict[str, Any]) -> Callable[[], Analysis]:
    return partial(build_analysis, kind, settings)
