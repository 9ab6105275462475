"""One replay at a time per store, and one migration.

A replay keeps every customer's state in memory for its whole run and writes
it back batch by batch. A second replay into the same store at the same time
would resolve identities and read states that the first is about to change,
and split customers in two. So a replay holds the store's replay lock from
its first read to its last write, and a second one waits for it. Bringing
the schema up to date has a lock of its own (``migration_lock``), so that
two commands opening a new store at once do not both create its tables.

- PostgreSQL: a session-level advisory lock, on a connection of its own; the
  server gives it up when that connection closes, so a killed replay frees it.
- A SQLite file: an operating-system lock on ``<file>.replay-lock`` (or
  ``.migrate-lock``) beside it (the ``filelock`` package), which ends with
  the process that held it.
- SQLite in memory: one process sees it, so there is nothing to share.

The live service does not take this lock: it reads each customer's state
from the store inside its own write transaction. A replay into a store that
a live service is writing to at the same time is not guarded (README).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager

from filelock import FileLock, Timeout
from sqlalchemy import Engine, func, select

from tillsight.store.db import sqlite_file

#: Advisory lock numbers: the first eight bytes of sha256 of each name.
_REPLAY_KEY = 0x5E00_AB3B_A388_B6E8  # b"tillsight replay"
_MIGRATION_KEY = 0x37F8_9C00_80CA_E05C  # b"tillsight migration"


def replay_lock(
    engine: Engine, on_wait: Callable[[], None] | None = None
) -> AbstractContextManager[None]:
    """Hold the store's replay lock; call ``on_wait`` first if another holds it."""
    return _held(engine, "replay", _REPLAY_KEY, on_wait)


def migration_lock(engine: Engine) -> AbstractContextManager[None]:
    """Hold the lock under which the schema is brought up to date.

    Two commands that open a new store at once would otherwise both create
    its tables, and one would fail.
    """
    return _held(engine, "migrate", _MIGRATION_KEY, None)


@contextmanager
def _held(
    engine: Engine, name: str, key: int, on_wait: Callable[[], None] | None
) -> Iterator[None]:
    if engine.dialect.name == "postgresql":
        with _advisory(engine, key, on_wait):
            yield
        return
    path = sqlite_file(engine.url.render_as_string(hide_password=False))
    if not path:
        yield
        return
    lock = FileLock(f"{path}.{name}-lock")
    try:
        lock.acquire(blocking=False)
    except Timeout:
        if on_wait is not None:
            on_wait()
        lock.acquire()
    try:
        yield
    finally:
        lock.release()


@contextmanager
def _advisory(
    engine: Engine, key: int, on_wait: Callable[[], None] | None
) -> Iterator[None]:
    with engine.connect() as conn:
        taken = conn.execute(select(func.pg_try_advisory_lock(key))).scalar()
        conn.commit()
        if not taken:
            if on_wait is not None:
                on_wait()
            conn.execute(select(func.pg_advisory_lock(key)))
            conn.commit()
        try:
            yield
        finally:
            conn.execute(select(func.pg_advisory_unlock(key)))
            conn.commit()
