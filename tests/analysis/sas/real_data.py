"""sasdata's example files as ``Measurement`` records, built here with sasdata's ``Loader``.

The file readers of ``instruments/files`` are not used on purpose: these tests check the fit on real
data, whatever reads the files. Data contract: ``q`` (1/Å), ``intensity`` (1/cm), ``sigma["intensity"]``,
and ``dq`` (pinhole 1-σ, 1/Å) or ``dq_slit_length`` / ``dq_slit_width`` (1/Å, sasdata's dxl / dxw).
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from instruments.types import Measurement, Timing


def example_file(name: str) -> str:
    """Path of one of sasdata's 1-D example files."""
    import sasdata

    return os.path.join(os.path.dirname(sasdata.__file__), "example_data", "1d_data", name)


def load_blocks(name: str) -> list[Any]:
    """sasdata ``Data1D`` blocks of an example file, checked to be in 1/Å and 1/cm."""
    from sasdata.dataloader.loader import Loader

    blocks = Loader().load(example_file(name))
    for block in blocks:
        assert block._xunit.replace(" ", "") in ("A^{-1}", "1/A"), block._xunit
        assert block._yunit.replace(" ", "") in ("cm^{-1}", "1/cm"), block._yunit
    return blocks


def measurement_of(block: Any, configuration: str, attempt: str = "a0") -> Measurement:
    """One sasdata block as a Measurement (slit keys if the block has a slit length, else pinhole ``dq``)."""
    q = np.asarray(block.x, dtype=float)
    data: dict[str, np.ndarray] = {"q": q, "intensity": np.asarray(block.y, dtype=float)}
    if getattr(block, "dxl", None) is not None:
        data["dq_slit_length"] = np.asarray(block.dxl, dtype=float)
        width = getattr(block, "dxw", None)
        data["dq_slit_width"] = np.zeros_like(q) if width is None else np.asarray(width, dtype=float)
    else:
        dx = getattr(block, "dx", None)
        data["dq"] = np.zeros_like(q) if dx is None else np.asarray(dx, dtype=float)
    return Measurement(
        attempt_id=attempt, instrument="file", sample_id="s1", params={"configuration": configuration},
        data=data, sigma={"intensity": np.asarray(block.dy, dtype=float)}, timing=Timing(exposure_seconds=0.0),
    )
