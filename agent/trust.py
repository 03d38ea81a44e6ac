"""A stored configuration is data, never a way to run code.

``resume``, ``report`` and ``status`` rebuild a campaign from the configuration the store holds. Some
instrument kinds name code in their settings (the ``ophyd`` kind's ``module:attribute`` devices and
``module:callable`` factories); validating such settings imports those modules, and building the
driver calls the factories. So before a stored configuration is validated, every such reference is
checked against an allow-list that never comes from the store:

- what the installed kinds allow themselves (``BUILTIN_ALLOWED``: ophyd's simulated devices);
- the campaign *file*, when the user names it (``labpilot resume ID --file campaign.yaml``): what a
  person wrote and ran is trusted, as it was at ``run``;
- ``LABPILOT_ALLOWED_IMPORTS``: comma-separated patterns (``mylab.devices:*``) set by whoever
  installs labpilot on the campaign machine.

A reference outside all three is refused, naming the field and the reference; nothing is imported.
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import yaml

#: Kind name → what in its settings names code, as (field path, "module:attribute") pairs.
CODE_REFERENCES: dict[str, str] = {"ophyd": "instruments.ophyd_adapter:code_references"}
#: References the installed kinds allow themselves (patterns, fnmatch style).
BUILTIN_ALLOWED: tuple[str, ...] = ("ophyd.sim:*",)
ENVIRONMENT = "LABPILOT_ALLOWED_IMPORTS"


class UntrustedConfiguration(ValueError):
    """A stored configuration names code that nothing trusted allows."""


def references(config: Any) -> list[tuple[str, str]]:
    """Every code reference of a campaign configuration (plain data), with its field path."""
    from agent.kinds import resolve  # the reference readers are plain functions; importing them runs nothing stored

    out: list[tuple[str, str]] = []
    instruments = config.get("instruments", []) if isinstance(config, dict) else []
    for i, instrument in enumerate(instruments if isinstance(instruments, list) else []):
        reader = CODE_REFERENCES.get(instrument.get("kind")) if isinstance(instrument, dict) else None
        if reader is not None:
            read: Callable[[Any], list[tuple[str, str]]] = resolve(reader)
            out += [(f"instruments[{i}].settings.{path}", ref) for path, ref in read(instrument.get("settings"))]
    return out


def allowed_patterns(campaign_file: Path | None = None) -> list[str]:
    """The allow-list: the installed kinds', ``LABPILOT_ALLOWED_IMPORTS``'s and the campaign file's references."""
    patterns = list(BUILTIN_ALLOWED)
    patterns += [p.strip() for p in os.environ.get(ENVIRONMENT, "").split(",") if p.strip()]
    if campaign_file is not None:
        patterns += [ref for _, ref in references(yaml.safe_load(Path(campaign_file).read_text()))]
    return patterns


def check_references(config: Any, allowed: Sequence[str], source: str) -> None:
    """Raise ``UntrustedConfiguration`` naming every reference of ``config`` that ``allowed`` does not cover."""
    refused = [(path, ref) for path, ref in references(config) if not _matches(ref, allowed)]
    if refused:
        listed = "; ".join(f"{path} = {ref!r}" for path, ref in refused)
        raise UntrustedConfiguration(
            f"{source} names code that nothing trusted allows: {listed}. A stored configuration cannot "
            f"run code on its own: pass the campaign file (--file) or set {ENVIRONMENT} on this machine"
        )


def _matches(reference: str, patterns: Iterable[str]) -> bool:
    return any(fnmatch.fnmatchcase(reference, pattern) for pattern in patterns)
