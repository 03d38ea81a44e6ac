"""Engines for the store: SQLite (embedded default) and PostgreSQL (by URL), and bounded retries.

SQLite: WAL journal (readers never block the writer), a busy timeout, foreign keys on, and the
explicit-BEGIN recipe from the SQLAlchemy documentation for Python's sqlite3 module — the driver's
own transaction handling is switched off and SQLAlchemy emits ``BEGIN IMMEDIATE`` itself, so a
transaction takes the write lock up front instead of failing on a lock upgrade half-way.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import ContextManager, TypeVar

from filelock import FileLock, Timeout

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, OperationalError

T = TypeVar("T")

#: How long SQLite waits on a lock inside one statement before reporting "database is locked".
SQLITE_BUSY_TIMEOUT_MS = 2000


class StoreUnavailable(RuntimeError):
    """The store cannot be reached or written; the message names the database and the cause."""


def describe_url(url: str) -> str:
    """The URL with its password masked (``***``), for messages, stored configurations and documents.

    A URL SQLAlchemy cannot parse is masked too: whatever stands between ``//`` and an ``@`` (where
    credentials go) is replaced, so an unparsable URL is never echoed with a password in it."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):  # ValueError: e.g. a port that is not a number
        return _CREDENTIALS.sub("//***@", url)


_CREDENTIALS = re.compile(r"//[^/]*@")


def make_engine(url: str, *, existing: bool = False) -> Engine:
    """Create an engine and prove it works (connect once); raise ``StoreUnavailable`` otherwise.

    ``existing``: the caller only reads a store that must already be there (``status``, ``resume``,
    ``report``, ``export``), so a SQLite file that does not exist is an error — a mistyped path —
    and nothing is created (SQLite would otherwise create an empty database on connect)."""
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError) as exc:
        raise StoreUnavailable(f"invalid database URL {describe_url(url)!r}: {_first_line(exc)}") from None
    backend = parsed.get_backend_name()
    if existing and backend == "sqlite":
        _require_sqlite_file(parsed.database, url)
    try:
        if backend == "sqlite":
            if parsed.database and parsed.database != ":memory:":
                Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
            engine = create_engine(parsed, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})
            _sqlite_recipe(engine)
        elif backend == "postgresql":
            if parsed.drivername == "postgresql":
                parsed = parsed.set(drivername="postgresql+psycopg")
            engine = create_engine(parsed, pool_pre_ping=True, connect_args={"connect_timeout": 5})
        else:
            raise StoreUnavailable(f"unsupported database {describe_url(url)!r}: use sqlite:/// or postgresql://")
    except NoSuchModuleError as exc:
        raise StoreUnavailable(f"no driver for {describe_url(url)!r}: {exc}") from None
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except DBAPIError as exc:
        engine.dispose()
        raise StoreUnavailable(f"cannot connect to {describe_url(url)}: {_first_line(exc.orig or exc)}") from None
    return engine


#: How long an opener waits for another process that is creating or upgrading the same SQLite file.
SQLITE_OPEN_LOCK_SECONDS = 120.0


def opening_lock(url: str, *, existing: bool = False) -> ContextManager[object]:
    """Serialise opening a SQLite file store between processes (a no-op for PostgreSQL and memory).

    Why: a brand-new SQLite file stays in rollback-journal mode until its creator's first commit (WAL
    mode is only persisted then), so a second process connecting while the first creates the schema
    fails ``PRAGMA journal_mode=WAL`` with "database is locked" after the busy timeout — eight
    campaigns started at once on a new file lost five that way. SQLite offers no wait for this, so
    the openers take turns on a sidecar lock file (``<database>-lock``, beside SQLite's own ``-wal``
    and ``-shm``); once the schema exists an open holds it for milliseconds. PostgreSQL serialises
    creation with an advisory lock inside the schema transaction (``migrate.prepare``)."""
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        return nullcontext()  # make_engine reports the bad URL
    database = parsed.database
    if parsed.get_backend_name() != "sqlite" or not database or database == ":memory:" or database.startswith("file:"):
        return nullcontext()
    path = Path(database).expanduser()
    if existing and not path.is_file():
        return nullcontext()  # make_engine refuses it; a read-only command creates no lock file either
    return _file_lock(path)


@contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    lock_path = path.with_name(path.name + "-lock")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(lock_path), timeout=SQLITE_OPEN_LOCK_SECONDS)
        lock.acquire()
    except OSError:
        yield  # a read-only folder: nobody can be creating the store there either
        return
    except Timeout:
        raise StoreUnavailable(
            f"{path} is being opened by another process that has held {lock_path} for "
            f"{SQLITE_OPEN_LOCK_SECONDS:.0f} s: is a schema upgrade stuck?"
        ) from None
    try:
        yield
    finally:
        lock.release()


def _require_sqlite_file(database: str | None, url: str) -> None:
    if not database or database == ":memory:" or database.startswith("file:"):
        return  # in-memory (nothing to find) or a URI filename (SQLite's own rules)
    path = Path(database).expanduser()
    if not path.is_file():
        raise StoreUnavailable(
            f"no database at {path} ({describe_url(url)}): check the URL (sqlite:///relative/path or "
            f"sqlite:////absolute/path); only `labpilot run` creates a store"
        )


def _sqlite_recipe(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
        # Stop pysqlite from issuing BEGIN on its own (it defers it and never emits it for SELECT).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        # NORMAL in WAL mode: a commit survives a process kill (not a power cut), at a fraction of FULL's cost.
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn) -> None:  # type: ignore[no-untyped-def]
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def is_transient(exc: BaseException) -> bool:
    """Lock contention, serialisation failures and dropped connections: worth another try."""
    if isinstance(exc, OperationalError):
        return True  # sqlite "database is locked"/"busy", PostgreSQL connection loss
    if isinstance(exc, DBAPIError):
        code = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
        return exc.connection_invalidated or code in {"40001", "40P01"}
    return False


def with_retry(action: Callable[[], T], *, what: str, database: str, attempts: int = 5, first_delay: float = 0.2) -> T:
    """Run ``action`` (one whole transaction); retry transient failures with backoff, then give up.

    Bounded on purpose: a campaign must not dispatch new work while it cannot record results, so
    the caller stops (with this error as the reason) instead of waiting forever.
    """
    delay = first_delay
    for attempt in range(1, attempts + 1):
        try:
            return action()
        except DBAPIError as exc:
            if not is_transient(exc) or attempt == attempts:
                raise StoreUnavailable(
                    f"could not {what} in {database} after {attempt} attempt(s): {_first_line(exc.orig or exc)}"
                ) from exc
            time.sleep(delay)
            delay = min(delay * 2, 2.0)
    raise AssertionError("unreachable")
