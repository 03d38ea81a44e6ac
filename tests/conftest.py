"""Shared fixtures: store URLs for SQLite and PostgreSQL, and a bounded local Ray.

PostgreSQL: ``LABPILOT_TEST_PG_URL`` (default: the lab machine's local server) names a server; each
test session gets its own freshly created database, dropped at the end. Without a server the
PostgreSQL tests skip with the reason, unless ``LABPILOT_REQUIRE_PG=1`` (as in CI), where that fails.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

# The suite keeps computed XRD reflections (physics.phases' cache between processes) in a folder of its
# own, not in the user's ~/.cache: shared by the suite's processes (CLI subprocesses inherit it), removed
# by the OS's temp cleaning, never a stale cache from another checkout.
os.environ.setdefault("LABPILOT_CACHE_DIR", str(Path(tempfile.gettempdir()) / f"labpilot-test-cache-{os.getuid()}"))

PG_SERVER = os.environ.get("LABPILOT_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")


def _pg_admin(url: str):  # type: ignore[no-untyped-def]
    import psycopg

    return psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True, connect_timeout=3)


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """URL of a fresh PostgreSQL database for this test session."""
    try:
        admin = _pg_admin(PG_SERVER)
    except Exception as exc:  # noqa: BLE001
        message = f"PostgreSQL not reachable at {PG_SERVER}: {exc}"
        if os.environ.get("LABPILOT_REQUIRE_PG") == "1":
            pytest.fail(message + " (LABPILOT_REQUIRE_PG=1)")
        pytest.skip(message)
    name = f"labpilot_test_{uuid.uuid4().hex[:10]}"
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    base, _, _ = PG_SERVER.rpartition("/")
    yield f"{base}/{name}"
    with _pg_admin(PG_SERVER) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path) -> str:  # type: ignore[no-untyped-def]
    """A store URL: a new SQLite file, or the session's PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/labpilot.db"
    return request.getfixturevalue("pg_url")


@pytest.fixture(scope="session")
def ray_local() -> Iterator[None]:
    """A local Ray with 2 CPUs for the whole session, shut down at the end."""
    from agent.runtime import ray_runtime

    with ray_runtime(num_cpus=2):
        yield


@pytest.fixture(scope="session")
def shared_ray_env(ray_local: None) -> dict[str, str]:
    """Environment for a child process (``labpilot run``, a Jupyter kernel) to join the session's Ray
    through ``RAY_ADDRESS`` instead of starting its own (~half of a short ``labpilot run``'s wall time on
    this 2-core machine). Only for tests where Ray's life cycle is not what is tested: kill/resume,
    orphan and shutdown tests keep their own Ray. The session's Ray is loopback-only
    (``agent/runtime.py``), so the child is told so too, or it would look for a node on the routable IP."""
    import ray

    port = ray.get_runtime_context().gcs_address.rsplit(":", 1)[1]
    return {"RAY_ADDRESS": f"127.0.0.1:{port}", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}


@pytest.fixture(scope="session")
def fityk_samples() -> Path:
    """fityk's sample data (Debian package ``fityk``: real measured patterns such as SiC_Zn.dat).

    ``LABPILOT_FITYK_SAMPLES`` names the folder (``.ci/run`` extracts the package there); default
    ``/usr/share/fityk/samples``, where ``apt-get install fityk`` puts them. Skips, saying so, when absent."""
    folder = Path(os.environ.get("LABPILOT_FITYK_SAMPLES", "/usr/share/fityk/samples"))
    if not (folder / "SiC_Zn.dat").is_file():
        pytest.skip(f"fityk's samples are not at {folder} (apt-get install fityk, or set LABPILOT_FITYK_SAMPLES)")
    return folder
