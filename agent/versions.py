"""Versions of the packages that shape a decision, recorded with every campaign and decision."""

from __future__ import annotations

import platform
from functools import cache
from importlib.metadata import PackageNotFoundError, version

PACKAGES = ("labpilot", "torch", "botorch", "gpytorch", "numpy", "scipy", "ray", "sqlalchemy", "pydantic")


@cache
def package_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    return out
