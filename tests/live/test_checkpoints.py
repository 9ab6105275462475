"""The live store checkpoints SQLite's write-ahead log itself, not in commits."""

from __future__ import annotations

import sqlite3
import time
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Connection

from tillsight.live.store import LiveStore
from tillsight.store import schema

NOW = datetime(2025, 6, 1, 12, tzinfo=UTC)


def add_settings(store: LiveStore, names: range) -> None:
    def work(conn: Connection) -> None:
        conn.execute(
            schema.settings.insert(),
            [{"name": f"n{n}", "value": "x" * 2000} for n in names],
        )

    store.write(work)


def database_file(url: str) -> Path:
    return Path(url.removeprefix("sqlite:///"))


def test_commits_leave_the_log_alone_and_it_is_copied_back_at_the_end(
    sqlite_url: str,
) -> None:
    store = LiveStore.open(sqlite_url)
    store._checkpoints._every = 3600  # type: ignore[union-attr]  # only the final one
    path = database_file(sqlite_url)
    before = path.stat().st_size

    add_settings(store, range(3000))  # ~6 MB: past SQLite's 1,000-page default
    grown_log = Path(f"{path}-wal").stat().st_size
    size_while_running = path.stat().st_size
    store.dispose()

    assert size_while_running == before  # no commit copied the log back
    assert grown_log > 4_000_000
    wal = Path(f"{path}-wal")
    assert not wal.exists() or wal.stat().st_size == 0
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT count(*) FROM settings").fetchone()[0] >= 3000


def test_the_background_thread_copies_the_log_while_the_store_runs(
    sqlite_url: str,
) -> None:
    store = LiveStore.open(sqlite_url)
    store._checkpoints._every = 0.05  # type: ignore[union-attr]
    path = database_file(sqlite_url)
    before = path.stat().st_size
    try:
        add_settings(store, range(500))
        deadline = time.monotonic() + 10
        while path.stat().st_size == before and time.monotonic() < deadline:
            time.sleep(0.05)
        grown = path.stat().st_size
    finally:
        store.dispose()

    assert grown > before + 500 * 2000


def test_under_steady_writes_the_log_keeps_starting_over(sqlite_url: str) -> None:
    # Only a checkpoint that leaves nothing uncopied lets the next write start
    # the log from its beginning; with writes every few milliseconds a
    # PASSIVE one alone never does, and the log grows by every byte written.
    store = LiveStore.open(sqlite_url)
    store._checkpoints._every = 0.1  # type: ignore[union-attr]
    wal = Path(f"{database_file(sqlite_url)}-wal")
    largest = written = 0
    value = "y" * 50_000

    def work(conn: Connection) -> None:
        conn.execute(schema.settings.delete().where(schema.settings.c.name == "big"))
        conn.execute(schema.settings.insert(), [{"name": "big", "value": value}])

    try:
        deadline = time.monotonic() + 4
        while time.monotonic() < deadline:
            store.write(work)
            written += len(value)
            largest = max(largest, wal.stat().st_size)
    finally:
        store.dispose()

    assert written > 40_000_000
    assert largest < written / 4
