"""Schema revisions of the store (Alembic): checked on every open, upgraded on request.

The migrations ship inside this package (``agent/store/migrations``: ``env.py`` and ``versions/``)
and run programmatically on the store's own connection — no alembic.ini. Opening a store costs one
look at ``alembic_version`` when the database is current; a new, empty database is created from
``schema.py`` in one go and stamped with the head revision (replaying every migration would make
each of the hundreds of stores the tests open slower for nothing).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Column, Connection, Engine, MetaData, PrimaryKeyConstraint, String, Table, delete, insert, inspect, select, text

from agent.store.engine import StoreUnavailable
from agent.store.schema import Base

MIGRATIONS = Path(__file__).with_name("migrations")

#: Every revision this code knows, oldest first; the last is the head. ``tests/agent/store/test_migrations.py``
#: checks it against the scripts in ``migrations/versions``.
REVISIONS = ("r1", "r2", "r3")
HEAD = REVISIONS[-1]

#: Databases written before the store carried a revision, recognised by their newest table.
_UNVERSIONED = (("samples", "r3"), ("approvals", "r2"), ("campaigns", "r1"))

#: One schema change at a time on PostgreSQL (two processes opening a new database at once).
_PG_LOCK = 0x6C616270  # "labp"


#: Alembic's own version table, defined as Alembic defines it, so that opening a current store or creating
#: a new one does not import Alembic (a tenth of a second on every CLI call); upgrades do.
_VERSION_TABLE = Table(
    "alembic_version",
    MetaData(),
    Column("version_num", String(32), nullable=False),
    PrimaryKeyConstraint("version_num", name="alembic_version_pkc"),
)


class StoreOutdated(StoreUnavailable):
    """The database is at an older revision and this open may not upgrade it (a read-only command)."""


class StoreTooNew(StoreUnavailable):
    """The database was written by a newer labpilot: this code does not know its revision."""


@dataclass(frozen=True)
class Revision:
    """Where a database stands: its revision (None: empty, no store yet) and whether it carries one."""

    current: str | None
    stamped: bool  # False: written before Alembic (revision recognised by its tables), or empty

    @property
    def state(self) -> str:
        """``empty`` | ``current`` | ``outdated`` | ``newer``."""
        if self.current is None:
            return "empty"
        if self.current == HEAD:
            return "current"
        return "outdated" if self.current in REVISIONS else "newer"


def revision_of(conn: Connection) -> Revision:
    """The database's revision: from ``alembic_version``, else recognised by its tables."""
    tables = set(inspect(conn).get_table_names())
    if _VERSION_TABLE.name in tables:
        current = conn.execute(select(_VERSION_TABLE.c.version_num)).scalar()
        if current is not None:
            return Revision(current, stamped=True)
    return Revision(next((rev for table, rev in _UNVERSIONED if table in tables), None), stamped=False)


def open_schema(engine: Engine, *, database: str, upgrade: bool) -> str | None:
    """``prepare`` in a schema transaction of its own; returns the revision upgraded from, if any."""
    with schema_transaction(engine) as conn:
        return prepare(conn, database=database, upgrade=upgrade)


@contextmanager
def schema_transaction(engine: Engine) -> Iterator[Connection]:
    """A transaction for schema changes. SQLite: with foreign keys off — Alembic's batch mode copies a
    table, drops the original and renames the copy, and dropping a table others refer to fails with
    them on; the pragma is a no-op inside a transaction, so it is set before, and the references are
    checked (``PRAGMA foreign_key_check``) before the commit."""
    with engine.connect() as conn:
        sqlite = conn.dialect.name == "sqlite"
        if sqlite:
            conn.connection.driver_connection.execute("PRAGMA foreign_keys=OFF")  # type: ignore[union-attr]
        try:
            with conn.begin():
                yield conn
                if sqlite:
                    _check_references(conn)
        finally:
            if sqlite:
                conn.connection.driver_connection.execute("PRAGMA foreign_keys=ON")  # type: ignore[union-attr]


def _check_references(conn: Connection) -> None:
    broken = conn.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
    if broken:
        raise StoreUnavailable(f"a schema change left {len(broken)} broken reference(s), e.g. {tuple(broken[0])}: rolled back")


def prepare(conn: Connection, *, database: str, upgrade: bool) -> str | None:
    """Bring the store behind ``conn`` (in an open transaction) to the head revision.

    Empty: create it. Current: nothing. Older: upgrade when ``upgrade``, else ``StoreOutdated``.
    Newer: ``StoreTooNew``. Returns the revision upgraded from, or None when nothing was upgraded."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK})
    rev = revision_of(conn)
    if rev.state == "current" and rev.stamped:
        return None
    if rev.state == "empty":
        Base.metadata.create_all(conn)
        _stamp(conn, HEAD)
        return None
    if rev.state == "newer":
        raise StoreTooNew(
            f"the store {database} is at schema revision {rev.current}, newer than this labpilot knows "
            f"(its newest is {HEAD}): use the labpilot release that wrote it, or a newer one"
        )
    if not upgrade and rev.state == "outdated":
        raise StoreOutdated(
            f"the store {database} is at schema revision {rev.current}, this labpilot needs {HEAD}: "
            f"run `labpilot db upgrade --db {database}` (or `labpilot run`/`resume`, which upgrade it)"
        )
    return _upgrade(conn, rev)


def _upgrade(conn: Connection, rev: Revision) -> str | None:
    from alembic import command

    if not rev.stamped:
        _stamp(conn, rev.current)  # type: ignore[arg-type]  # not empty: recognised by its tables
    if rev.current == HEAD:
        return None  # only the stamp was missing
    command.upgrade(_config(conn), HEAD)
    return rev.current


def _stamp(conn: Connection, revision: str) -> None:
    """Record ``revision`` as Alembic would (``alembic stamp``), without importing Alembic."""
    _VERSION_TABLE.create(conn, checkfirst=True)
    conn.execute(delete(_VERSION_TABLE))
    conn.execute(insert(_VERSION_TABLE).values(version_num=revision))


def _config(conn: Connection):  # type: ignore[no-untyped-def]
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS).replace("%", "%%"))
    config.attributes["connection"] = conn  # env.py migrates on it, inside the caller's transaction
    return config


def revision_at(url: str) -> Revision:
    """The revision of the existing store at ``url``, read without changing anything."""
    from agent.store.engine import make_engine

    engine = make_engine(url, existing=True)
    try:
        with engine.connect() as conn:
            return revision_of(conn)
    finally:
        engine.dispose()


def autogenerate(url: str, message: str, revision: str) -> None:
    """Write the next migration script (``migrations/versions``) from the difference between the store at
    ``url`` (at the head revision) and ``schema.py`` — for developers; add ``revision`` to ``REVISIONS``."""
    from alembic import command

    from agent.store.engine import make_engine

    engine = make_engine(url, existing=True)
    try:
        with schema_transaction(engine) as conn:
            command.revision(_config(conn), message=message, autogenerate=True, rev_id=revision)
    finally:
        engine.dispose()
