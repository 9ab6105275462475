"""The live service's hold on the database: short write transactions.

Every write runs through :meth:`LiveStore.write`, one transaction per call.
On PostgreSQL, rows are locked explicitly (``SELECT … FOR UPDATE``) and a
transaction that loses a deadlock or a serialisation race is run again. On
SQLite a write transaction starts with ``BEGIN IMMEDIATE``, so writers queue
for the one write lock before they read anything; threads of one process
queue on a lock of their own first, so they never spin in SQLite's busy
handler (other processes still meet ``busy_timeout``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from typing import Any, TypeVar

import structlog
from sqlalchemy import Connection, Engine, event, select
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from tillsight.errors import StoreError
from tillsight.store import schema
from tillsight.store.db import connect

log = structlog.get_logger("tillsight.live")

T = TypeVar("T")

_WRITE_OPTION = "tillsight_write"
_RETRIED_STATES = {"40001", "40P01"}
_ATTEMPTS = 5


class LiveStore:
    """An engine plus the discipline the live service writes with."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.is_postgres = engine.dialect.name == "postgresql"
        self._writer = engine.execution_options(**{_WRITE_OPTION: True})
        self._local_lock: threading.Lock | None = None
        if engine.dialect.name == "sqlite":
            _begin_immediately(engine)
            self._local_lock = threading.Lock()

    @classmethod
    def open(cls, url: str | None = None) -> LiveStore:
        """Connect to (and migrate) the store at ``url``."""
        return cls(connect(url))

    def write(self, work: Callable[[Connection], T]) -> T:
        """Run ``work`` in one write transaction, again if it lost a race."""
        for attempt in range(1, _ATTEMPTS + 1):
            try:
                with self._serialised(), self._writer.begin() as conn:
                    return work(conn)
            except DBAPIError as exc:
                state = getattr(exc.orig, "sqlstate", None)
                if state not in _RETRIED_STATES or attempt == _ATTEMPTS:
                    raise StoreError(f"the store refused a write: {exc.orig}") from exc
                log.info("write_retried", attempt=attempt, sqlstate=state)
            except SQLAlchemyError as exc:
                raise StoreError(f"the store refused a write: {exc}") from exc
        raise AssertionError("unreachable")

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A connection for reading; nothing it does is kept."""
        try:
            with self.engine.connect() as conn:
                yield conn
        except SQLAlchemyError as exc:
            raise StoreError(f"the store refused a read: {exc}") from exc

    def lock_customers(self, conn: Connection, keys: Sequence[str]) -> None:
        """Hold the customers' rows until commit (PostgreSQL; SQLite holds all)."""
        if not self.is_postgres or not keys:
            return
        table = schema.customers
        conn.execute(
            select(table.c.key)
            .where(table.c.key.in_(sorted(set(keys))))
            .order_by(table.c.key)
            .with_for_update()
        ).all()

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()

    def _serialised(self) -> threading.Lock | nullcontext[None]:
        return self._local_lock if self._local_lock is not None else nullcontext()


def _begin_immediately(engine: Engine) -> None:
    """Make SQLite transactions explicit; writers take the lock at BEGIN."""

    def no_implicit_begin(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None

    def begin(conn: Connection) -> None:
        immediate = conn.get_execution_options().get(_WRITE_OPTION, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    event.listen(engine, "connect", no_implicit_begin)
    event.listen(engine, "begin", begin)
    engine.dispose()
