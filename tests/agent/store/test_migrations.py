"""Schema migrations on SQLite and PostgreSQL: a database of the previous release (revision r1, built
here by the frozen r1 migration, with and without its Alembic stamp) is upgraded on open and keeps its
campaign; read-only opens refuse it; a newer revision is refused; the migrations equal ``schema.py``."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from datetime import datetime, timezone

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, MetaData, inspect, text
from typer.testing import CliRunner

from agent.cli import app
from agent.store import Store
from agent.store.engine import make_engine
from agent.store.migrate import HEAD, MIGRATIONS, REVISIONS, StoreOutdated, StoreTooNew, revision_at
from agent.store.schema import Base

pytestmark = pytest.mark.timeout(120)
CID = "old-campaign"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def empty_url(request: pytest.FixtureRequest, tmp_path) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """A URL of an empty database of this test's own (the session's PostgreSQL database is shared)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/old.db"
        return
    import psycopg

    session_url = request.getfixturevalue("pg_url")  # skips (or fails, in CI) without a server
    admin_url = session_url.replace("postgresql+psycopg://", "postgresql://")
    name = f"labpilot_mig_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin_url, autocommit=True, connect_timeout=3) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    yield f"{session_url.rpartition('/')[0]}/{name}"
    with psycopg.connect(admin_url, autocommit=True, connect_timeout=3) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _migrate(engine: Engine, revision: str) -> None:
    with engine.begin() as conn:
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        config.attributes["connection"] = conn
        command.upgrade(config, revision)


def _old_release(url: str, *, stamped: bool) -> None:
    """The previous release's database (r1) with a campaign half-way: one attempt dispatched, one
    analysed. ``stamped=False``: as that release wrote it, before Alembic (no alembic_version)."""
    engine = make_engine(url)
    _migrate(engine, "r1")
    now = datetime.now(timezone.utc)
    with engine.begin() as conn:
        if not stamped:
            conn.execute(text("DROP TABLE alembic_version"))
        tables = MetaData()
        tables.reflect(conn)  # the r1 tables as they are in the database, not schema.py's
        conn.execute(tables.tables["campaigns"].insert().values(
            id=CID, name="before", status="running", config={"name": "before"}, seed=7, data_dir="/tmp/d",
            package_versions={"labpilot": "old"}, wall_seconds=0.0, runs=1, schema_version=1, created_at=now, updated_at=now))
        decision = conn.execute(tables.tables["decisions"].insert().values(
            campaign_id=CID, seq=0, policy="sobol", fallback=False, seed=7, n_history=0, n_pending=0, reasons=[{}, {}],
            package_versions={}, decision_seconds=0.01, created_at=now).returning(tables.tables["decisions"].c.id)).scalar()
        for seq, state in enumerate(["analysed", "dispatched"]):
            conn.execute(tables.tables["attempts"].insert().values(
                id=f"{CID}-{seq:05d}", campaign_id=CID, seq=seq, decision_id=decision, state=state, instrument="saxs",
                params={"x": 0.5 * seq}, reruns=0, created_at=now, updated_at=now))
    engine.dispose()


@pytest.mark.parametrize("stamped", [True, False], ids=["stamped-r1", "before-alembic"])
def test_a_previous_release_database_is_upgraded_on_open_and_keeps_its_campaign(empty_url: str, stamped: bool, capsys) -> None:  # type: ignore[no-untyped-def]
    _old_release(empty_url, stamped=stamped)
    assert revision_at(empty_url).current == "r1" and revision_at(empty_url).stamped is stamped
    with Store(empty_url) as store:
        assert f"store upgraded from r1 to {HEAD}" in capsys.readouterr().err
        campaign = store.campaign(CID)
        assert (campaign.name, campaign.status, campaign.seed, campaign.config) == ("before", "running", 7, {"name": "before"})
        assert [a.id for a in store.attempts(CID, states=["dispatched"])] == [f"{CID}-00001"]
        assert store.next_seq(CID) == (2, 1)  # the next attempt and decision follow the stored ones
        assert store.approvals(CID) == [] and store.awaiting_approval(CID) == []  # r2's table, usable
        assert store.samples(CID) == []  # r3's table, usable
    assert (revision_at(empty_url).current, revision_at(empty_url).stamped) == (HEAD, True)
    with Store(empty_url):
        assert "upgraded" not in capsys.readouterr().err  # once only


def test_a_read_only_open_refuses_an_old_database_and_changes_nothing(empty_url: str) -> None:
    _old_release(empty_url, stamped=False)
    with pytest.raises(StoreOutdated, match=rf"revision r1, this labpilot needs {HEAD}: run `labpilot db upgrade"):
        Store(empty_url, existing=True, upgrade=False)
    assert revision_at(empty_url).current == "r1" and not revision_at(empty_url).stamped
    status = CliRunner().invoke(app, ["status", "--db", empty_url])
    assert status.exit_code == 2 and "labpilot db upgrade" in status.output


def test_a_database_of_a_newer_revision_is_refused_naming_both(empty_url: str) -> None:
    Store(empty_url).close()
    engine = make_engine(empty_url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = 'r9'"))
    engine.dispose()
    with pytest.raises(StoreTooNew, match=rf"revision r9, newer than this labpilot knows \(its newest is {HEAD}\)"):
        Store(empty_url)
    run = CliRunner().invoke(app, ["db", "upgrade", "--db", empty_url])
    assert run.exit_code == 2 and "r9" in run.output
    assert revision_at(empty_url).current == "r9"


def test_db_version_and_db_upgrade_commands(empty_url: str) -> None:
    _old_release(empty_url, stamped=True)
    runner = CliRunner()
    before = runner.invoke(app, ["db", "version", "--db", empty_url, "--json"])
    assert before.exit_code == 0, before.output
    assert json.loads(before.stdout) | {"database": None} == {
        "database": None, "revision": "r1", "head": HEAD, "state": "outdated", "stamped": True}
    upgrade = runner.invoke(app, ["db", "upgrade", "--db", empty_url])
    assert upgrade.exit_code == 0 and f"store upgraded from r1 to {HEAD}" in upgrade.output
    after = runner.invoke(app, ["db", "version", "--db", empty_url])
    assert after.exit_code == 0 and f"revision {HEAD}, this labpilot {HEAD}: current" in after.output
    again = runner.invoke(app, ["db", "upgrade", "--db", empty_url])
    assert again.exit_code == 0 and "upgraded" not in again.output


def test_a_new_store_is_created_at_the_head_revision(empty_url: str) -> None:
    Store(empty_url).close()
    assert (revision_at(empty_url).current, revision_at(empty_url).stamped) == (HEAD, True)


def test_the_migrations_build_exactly_the_schema_of_schema_py(empty_url: str) -> None:
    """A schema edit without its migration fails here (Alembic's autogenerate finds the difference)."""
    engine = make_engine(empty_url)
    _migrate(engine, "head")
    with engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
        assert set(inspect(conn).get_table_names()) == set(Base.metadata.tables) | {"alembic_version"}
    engine.dispose()


def test_the_known_revisions_are_the_scripts_in_order() -> None:
    scripts = ScriptDirectory(str(MIGRATIONS))
    walked = [s.revision for s in scripts.walk_revisions()]  # head first
    assert tuple(reversed(walked)) == REVISIONS and scripts.get_current_head() == HEAD


def test_an_unversioned_database_that_already_has_the_head_tables_is_only_stamped(empty_url: str, capsys) -> None:  # type: ignore[no-untyped-def]
    """Written by this session's code before migrations existed (approvals already there): no upgrade runs."""
    engine = make_engine(empty_url)
    with engine.begin() as conn:
        Base.metadata.create_all(conn)
    engine.dispose()
    assert (revision_at(empty_url).current, revision_at(empty_url).stamped) == (HEAD, False)
    Store(empty_url).close()
    assert "upgraded" not in capsys.readouterr().err
    assert (revision_at(empty_url).current, revision_at(empty_url).stamped) == (HEAD, True)


def test_opening_a_current_store_does_not_import_alembic(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Read-only commands stay quick: Alembic (a tenth of a second to import) loads only to upgrade."""
    import subprocess
    import sys
    from pathlib import Path

    url = f"sqlite:///{tmp_path}/current.db"
    script = ("import sys; from agent.store import Store; Store(sys.argv[1]).close(); Store(sys.argv[1]).close(); "
              "print('alembic' in sys.modules)")
    root = Path(__file__).resolve().parents[3]
    run = subprocess.run([sys.executable, "-c", script, url], cwd=root, env={**os.environ, "PYTHONPATH": str(root)},
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["False"] and revision_at(url).current == HEAD


def test_a_batch_migration_can_rebuild_a_table_others_refer_to_and_references_stay_enforced(empty_url: str) -> None:
    """SQLite rebuilds a table to alter it (Alembic's batch mode): with foreign keys on, dropping
    ``campaigns`` under its attempts fails, so schema transactions turn them off and check them after."""
    import sqlalchemy as sa
    from alembic.operations import Operations
    from sqlalchemy.exc import IntegrityError

    from agent.store.migrate import schema_transaction

    _old_release(empty_url, stamped=True)
    Store(empty_url).close()
    engine = make_engine(empty_url)
    with schema_transaction(engine) as conn:
        ops = Operations(MigrationContext.configure(conn, opts={"render_as_batch": True}))
        with ops.batch_alter_table("campaigns") as batch:
            batch.alter_column("name", existing_type=sa.String(200), type_=sa.String(300))
    engine.dispose()
    with Store(empty_url) as store:
        assert store.campaign(CID).name == "before" and len(store.attempts(CID)) == 2
        with pytest.raises(IntegrityError):  # references are enforced again on the store's connections
            with store.engine.begin() as conn:
                conn.execute(text("INSERT INTO leases (campaign_id, owner, acquired_at, heartbeat_at) "
                                  "VALUES ('no-such-campaign', 'x', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"))


def test_processes_opening_a_new_database_at_once_create_it_once(empty_url: str) -> None:
    """The first open creates the schema; the others wait for it (SQLite's write lock, a PostgreSQL
    advisory lock) instead of racing to create the same tables."""
    from concurrent.futures import ThreadPoolExecutor

    def open_and_close(_: int) -> str:
        with Store(empty_url) as store:
            return store.database

    with ThreadPoolExecutor(4) as pool:
        assert len(list(pool.map(open_and_close, range(4)))) == 4
    assert (revision_at(empty_url).current, revision_at(empty_url).stamped) == (HEAD, True)
