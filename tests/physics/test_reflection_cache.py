"""Reflections computed once are kept on disk (``physics.phases.cache_dir``) and read back exactly by
the next process; a damaged or foreign cache file is recomputed, never trusted."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from physics import phases
from physics.phases import DEFAULT_LIBRARY, read_phase


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("LABPILOT_CACHE_DIR", str(tmp_path))
    phases._reflections.cache_clear()  # this process's own cache: the disk is what is tested
    yield tmp_path / "reflections"
    phases._reflections.cache_clear()


def _same(a: phases.Reflections, b: phases.Reflections) -> bool:
    return np.array_equal(a.d, b.d) and np.array_equal(a.f2m, b.f2m) and a.hkls == b.hkls


def test_reflections_are_kept_on_disk_and_read_back_exactly(cache: Path) -> None:
    phase = read_phase(sorted(DEFAULT_LIBRARY.glob("*.cif"))[0])
    computed = phase.reflections(1.0)
    files = list(cache.glob("*.json"))
    assert len(files) == 1
    phases._reflections.cache_clear()
    again = phase.reflections(1.0)
    assert _same(again, computed) and len(computed.d) > 0
    phase.reflections(0.8)  # another d_min: a file of its own
    assert len(list(cache.glob("*.json"))) == 2


def test_a_damaged_cache_file_is_recomputed(cache: Path) -> None:
    phase = read_phase(sorted(DEFAULT_LIBRARY.glob("*.cif"))[0])
    computed = phase.reflections(1.0)
    (file,) = cache.glob("*.json")
    file.write_text('{"d": [1.0], "f2m": [2.0, 3.0], "hkls": []}')
    phases._reflections.cache_clear()
    assert _same(phase.reflections(1.0), computed)
    file.write_text("not json")
    phases._reflections.cache_clear()
    assert _same(phase.reflections(1.0), computed)


def test_an_empty_cache_setting_turns_the_cache_off(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LABPILOT_CACHE_DIR", "")
    phases._reflections.cache_clear()
    read_phase(sorted(DEFAULT_LIBRARY.glob("*.cif"))[0]).reflections(1.0)
    phases._reflections.cache_clear()
    assert phases.cache_dir() is None
