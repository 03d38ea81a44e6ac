"""Several processes opening one new SQLite store at once: all open it, one creates the schema.

The failure this guards against (seen as 5 of 8 concurrent campaigns failing to start under load):
a new SQLite file stays in rollback-journal mode until its creator's first commit, so a second
process connecting while the creator is still making the schema got "database is locked" once the
busy timeout ran out. Here the creator is made slower than that timeout on purpose (its schema
transaction sleeps), which is what a loaded machine does by accident.
"""

from __future__ import annotations

import multiprocessing
import time

import pytest

from agent.store import engine as store_engine

SLOW_CREATE_SECONDS = store_engine.SQLITE_BUSY_TIMEOUT_MS / 1000 + 1.5


def _open_with_slow_create(url: str, start_at: float, results) -> None:  # type: ignore[no-untyped-def]
    """One opener (in its own process): its schema creation, if it is the creator, outlasts the busy timeout."""
    from agent.store import migrate
    from agent.store.store import Store

    create_all = migrate.Base.metadata.create_all

    def slow_create_all(conn, **kwargs):  # type: ignore[no-untyped-def]
        create_all(conn, **kwargs)
        time.sleep(SLOW_CREATE_SECONDS)

    migrate.Base.metadata.create_all = slow_create_all  # type: ignore[method-assign]
    time.sleep(max(0.0, start_at - time.time()))
    try:
        store = Store(url)
        runs = store.campaigns()
        store.close()
        results.put(("ok", len(runs)))
    except Exception as exc:  # the test reports what each opener saw
        results.put(("error", f"{type(exc).__name__}: {exc}"))


@pytest.mark.timeout(120)
def test_openers_of_a_new_sqlite_store_wait_for_its_creator(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'new.db'}"
    spawn = multiprocessing.get_context("spawn")  # no fork of a process that may hold Ray's threads
    results = spawn.Queue()
    start_at = time.time() + 6.0  # after every child has imported labpilot
    openers = [spawn.Process(target=_open_with_slow_create, args=(url, start_at, results)) for _ in range(4)]
    for process in openers:
        process.start()
    outcomes = [results.get(timeout=100) for _ in openers]
    for process in openers:
        process.join(timeout=10)
    assert outcomes == [("ok", 0)] * len(openers), outcomes
    assert (tmp_path / "new.db-lock").exists()  # the openers took turns on the sidecar lock


def test_a_read_only_open_of_a_missing_store_creates_no_lock_file(tmp_path) -> None:
    from agent.store.store import Store

    with pytest.raises(store_engine.StoreUnavailable, match="no database at"):
        Store(f"sqlite:///{tmp_path / 'absent' / 'x.db'}", existing=True)
    assert not (tmp_path / "absent").exists()
