"""Materials systems: the hidden truth of campaigns over synthesised samples (self-driving lab).

``materials_system_from_settings`` builds one from its settings (``kind``: ``oxide`` or
``formulation``); the XRD and SAS simulators take one as their ``materials_system`` setting and
measure, for a request carrying a ``recipe``, the sample the system says that recipe makes. See
``base`` (protocol, truth records), ``oxide`` and ``formulation`` (the two systems), ``ternary``
(the phase-field geometry of the oxide system).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import Field, TypeAdapter

from simulators.materials.base import (
    MaterialsSystem,
    NanostructureTruth,
    PhaseMixtureTruth,
    PhaseTruth,
    RecipeError,
    SampleTruth,
    Variable,
)
from simulators.materials.formulation import FormulationSystem, FormulationSystemSettings
from simulators.materials.oxide import OxideSystem, OxideSystemSettings

MaterialsSystemSettings = Annotated[OxideSystemSettings | FormulationSystemSettings, Field(discriminator="kind")]
"""Settings of any materials system, told apart by ``kind``."""


def materials_system_from_settings(
    settings: OxideSystemSettings | FormulationSystemSettings | Mapping[str, Any],
) -> MaterialsSystem:
    """The system the settings describe: a settings model, or a mapping as a campaign file holds it
    (``{kind: oxide, seed: 3, ...}``; ValidationError naming the field if it is not valid)."""
    if isinstance(settings, Mapping):
        settings = TypeAdapter(MaterialsSystemSettings).validate_python(dict(settings))
    if isinstance(settings, OxideSystemSettings):
        return OxideSystem(settings)
    if isinstance(settings, FormulationSystemSettings):
        return FormulationSystem(settings)
    raise TypeError(f"materials_system: unknown settings {type(settings).__name__}")


__all__ = [
    "FormulationSystem", "FormulationSystemSettings", "MaterialsSystem", "MaterialsSystemSettings",
    "NanostructureTruth", "OxideSystem", "OxideSystemSettings", "PhaseMixtureTruth", "PhaseTruth", "RecipeError",
    "SampleTruth", "Variable", "materials_system_from_settings",
]
