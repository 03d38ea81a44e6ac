"""Instrument and analysis kinds: names in campaign files → the classes that implement them.

Classes are named by import string (``"simulators.sas:SASDriver"``) and imported where they are used:
a driver inside its instrument actor, a settings model when a campaign is validated. So importing
the agent loads no simulator, no device library and no sasmodels, and a deployment with real
instruments never loads a simulator at all. This module is deliberately light (no torch/BoTorch):
Ray unpickles its factories inside every instrument and analysis actor.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from analysis.protocol import Analysis
from instruments.protocol import Driver
from policies.space import CategoricalParameter, DesignSpace


def resolve(import_string: str) -> Any:
    """The object a ``"package.module:Name"`` string names (imported now, if it was not yet)."""
    module, _, name = import_string.partition(":")
    return getattr(importlib.import_module(module), name)


@dataclass(frozen=True)
class InstrumentKind:
    settings: str
    """import string of the settings model (pydantic)"""
    driver: str
    """import string of the driver class, built as ``Driver(name, settings)``"""
    complete: Callable[[dict[str, Any], DesignSpace, Path], dict[str, Any]]
    """Fill settings the campaign implies (limits from the design space, data folder)."""

    def settings_model(self) -> type[BaseModel]:
        return resolve(self.settings)  # type: ignore[no-any-return]


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
    # An ophyd instrument's axes and limits are the hardware's; a served instrument's limits and
    # data files live on its own PC: the campaign implies nothing.
    return dict(settings)


def _complete_replay(settings: dict[str, Any], space: DesignSpace, data_dir: Path) -> dict[str, Any]:
    # Recorded files named relative to where the campaign starts: an actor process may run elsewhere.
    from instruments.files.replay import absolute_files

    return {**absolute_files(settings), "journal_dir": settings.get("journal_dir") or str(data_dir)}


INSTRUMENT_KINDS: dict[str, InstrumentKind] = {
    "synthetic": InstrumentKind("simulators.synthetic:SyntheticSettings", "simulators.synthetic:SyntheticPropertyDriver",
                                _complete_synthetic),
    "sas": InstrumentKind("simulators.sas:SASSettings", "simulators.sas:SASDriver", _complete_journal),
    "xrd": InstrumentKind("simulators.xrd:XRDSettings", "simulators.xrd:XRDDriver", _complete_journal),
    "ophyd": InstrumentKind("instruments.ophyd_adapter:OphydSettings", "instruments.ophyd_adapter:OphydDriver",
                            _complete_unchanged),
    "remote": InstrumentKind("instruments.remote:RemoteSettings", "instruments.remote:RemoteDriver", _complete_unchanged),
    "replay": InstrumentKind("instruments.files.replay:ReplaySettings", "instruments.files.replay:ReplayDriver",
                             _complete_replay),
    # A synthesiser: makes a sample from a recipe (a campaign over samples, ``agent/sample_campaign.py``).
    "synthesis": InstrumentKind("simulators.synthesis:SynthesisSettings", "simulators.synthesis:SynthesisDriver",
                                _complete_journal),
}


@dataclass(frozen=True)
class AnalysisKind:
    settings: str
    """import string of the settings model (pydantic)"""
    analysis: str
    """import string of the analysis class, built as ``Analysis(settings)``"""
    estimates: Callable[[BaseModel], list[str]]
    """the estimate names the analysis produces with these settings"""

    def settings_model(self) -> type[BaseModel]:
        return resolve(self.settings)  # type: ignore[no-any-return]

    @staticmethod
    def estimate_units(settings: BaseModel) -> dict[str, str]:
        """Estimate name → units (every settings model of an analysis kind says, beside its names)."""
        return settings.estimate_units()  # type: ignore[attr-defined,no-any-return]


ANALYSIS_KINDS: dict[str, AnalysisKind] = {
    "scalar": AnalysisKind("analysis.scalar:ScalarSettings", "analysis.scalar:ScalarAnalysis",
                           lambda s: [s.estimate or s.key]),  # type: ignore[attr-defined]
    "sas": AnalysisKind("analysis.sas:SASFitSettings", "analysis.sas:SASFitAnalysis",
                        lambda s: s.estimate_names()),  # type: ignore[attr-defined]
    "xrd": AnalysisKind("analysis.xrd:XRDPhaseIDSettings", "analysis.xrd:XRDPhaseIdentification",
                        lambda s: s.estimate_names()),  # type: ignore[attr-defined]
}


def build_driver(kind: str, name: str, settings: dict[str, Any]) -> Driver:
    """Construct a driver; runs inside the instrument actor's process."""
    spec = INSTRUMENT_KINDS[kind]
    return resolve(spec.driver)(name, spec.settings_model().model_validate(settings))  # type: ignore[no-any-return]


def driver_factory(kind: str, name: str, settings: dict[str, Any]) -> Callable[[], Driver]:
    """A picklable zero-argument factory for ``InstrumentActor``."""
    return partial(build_driver, kind, name, settings)


def build_analysis(kind: str, settings: dict[str, Any]) -> Analysis:
    """Construct an analysis; runs inside the analysis actor's process."""
    spec = ANALYSIS_KINDS[kind]
    return resolve(spec.analysis)(spec.settings_model().model_validate(settings))  # type: ignore[no-any-return]


def analysis_factory(kind: str, settings: dict[str, Any]) -> Callable[[], Analysis]:
    return partial(build_analysis, kind, settings)
