"""A normal (non-editable) wheel carries what the shipped campaigns need: the phase library and the
campaign files. Built here from the worktree, installed by unpacking (what pip does for a pure wheel)."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml

pytestmark = [pytest.mark.timeout(240), pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    # --no-build-isolation: the build backend already installed is used (no network, no fresh venv).
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", str(ROOT), "-w", str(out)],
                   check=True, cwd=out, timeout=200)
    (found,) = out.glob("labpilot-*.whl")
    return found


def _xrd_phases() -> set[str]:
    """Every phase the shipped XRD campaign names: in its simulated sample and among its candidates."""
    data = yaml.safe_load((ROOT / "experiments" / "adaptive_xrd.yaml").read_text())
    sample = {p["phase"] for p in data["instruments"][0]["settings"]["sample"]["phases"]}
    return sample | set(data["analysis"]["settings"]["candidates"])


def test_the_wheel_holds_the_phase_library_and_the_campaign_files(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    library = {Path(n).stem for n in names if n.startswith("physics/phases/") and n.endswith(".cif")}
    in_tree = {p.stem for p in (ROOT / "physics" / "phases").glob("*.cif")}
    assert library == in_tree and len(library) > 40
    assert _xrd_phases() <= library
    shipped = {p.name for p in (ROOT / "experiments").glob("*.yaml")}
    packed = {Path(n).name for n in names if "/data/share/labpilot/experiments/" in n}
    assert "adaptive_xrd.yaml" in packed and packed == shipped


def test_the_unpacked_wheel_reads_every_phase_of_the_xrd_campaign(wheel: Path, tmp_path: Path) -> None:
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    script = (
        "import physics.phases as p, sys; lib = p.open_library(None); "
        f"names = {sorted(_xrd_phases())!r}; "
        "print(p.__file__); print(len([lib.phase(n) for n in names]))"
    )
    env = {**os.environ, "PYTHONPATH": str(site)}  # only the wheel's packages, not the source tree
    run = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    where, count = run.stdout.split()
    assert Path(where).is_relative_to(site) and int(count) == len(_xrd_phases())


def test_the_unpacked_wheel_carries_the_store_migrations(wheel: Path, tmp_path: Path) -> None:
    """The installed store finds its Alembic scripts (package data, loaded by path) and their head."""
    names = set(zipfile.ZipFile(wheel).namelist())
    in_tree = {p.relative_to(ROOT).as_posix() for p in (ROOT / "agent" / "store" / "migrations").rglob("*.py")}
    assert "agent/store/migrations/env.py" in in_tree and in_tree <= names
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    script = (
        "from alembic.script import ScriptDirectory; from agent.store import migrate; "
        "print(migrate.MIGRATIONS); print(ScriptDirectory(str(migrate.MIGRATIONS)).get_current_head() == migrate.HEAD)"
    )
    env = {**os.environ, "PYTHONPATH": str(site)}
    run = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    where, same_head = run.stdout.split()
    assert Path(where).is_relative_to(site) and same_head == "True"
