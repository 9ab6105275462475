"""The live service's hold on the database: short write transactions.

Every write runs through :meth:`LiveStore.write`, one transaction per call.
On PostgreSQL, rows are locked explicitly (``SELECT … FOR UPDATE``) and a
transaction that loses a deadlock or a serialisation race is run again. On
SQLite a write transaction starts with ``BEGIN IMMEDIATE``, so writers queue
for the one write lock before they read anything; threads of one process
queue on a lock of their own first, so they never spin in SQLite's busy
handler (other processes still meet ``busy_timeout``).

SQLite has one writer at a time anyway, so on SQLite the writes of one
process are handed to one writer thread, which runs whatever has queued up
in one transaction (group commit): the same work in the same order as one
transaction each, for one BEGIN and one COMMIT. No caller hears back before
the commit. If any work in a group fails, the group is rolled back and each
of its works is run again in a transaction of its own, so a failure reaches
only its own caller, exactly as without grouping.

SQLite copies the write-ahead log back into the database file (a
checkpoint, with an fsync) inside whichever commit makes the log long
enough, which stalls that commit and every request waiting on it. The live
store turns that off for its connections and checkpoints from a thread of
its own instead, every second: ``PASSIVE`` checkpoints copy what the log
holds without waiting for, or blocking, the writer (twice: the second one
copies what was written during the first, a much shorter stretch). Then
the writer thread itself, between two groups, runs a ``RESTART``
checkpoint: it copies the few pages written meanwhile, so that the next
write starts the log again from its beginning. Without that step the log
never starts over while writes keep coming, and grows without end; run by
the writer, it waits on no lock (another thread's checkpoint would make the
writer sleep in SQLite's busy handler, in steps of up to 25 ms). It gives up
after ``_RESTART_PATIENCE_MS`` when a reader is in the way (and is asked for
again a second later), and a log that did grow is cut back to
``_LOG_SIZE_LIMIT`` bytes when it starts over. The store checkpoints fully
once more when it is disposed of.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import structlog
from sqlalchemy import Connection, Engine, event, select
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from tillsight.errors import StoreError
from tillsight.store import schema
from tillsight.store.bulk import Bulk
from tillsight.store.db import connect

log = structlog.get_logger("tillsight.live")

T = TypeVar("T")

_WRITE_OPTION = "tillsight_write"
_RETRIED_STATES = {"40001", "40P01"}
_ATTEMPTS = 5
#: The most works one group transaction takes; more wait for the next group.
_GROUP_MAX = 64
#: Seconds between background checkpoints of SQLite's write-ahead log.
_CHECKPOINT_EVERY = 1.0
#: How long the restarting checkpoint waits for readers and the writer.
_RESTART_PATIENCE_MS = 100
#: What a grown write-ahead log is cut back to when it starts over.
_LOG_SIZE_LIMIT = 64 * 1024 * 1024


class LiveStore:
    """An engine plus the discipline the live service writes with."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.is_postgres = engine.dialect.name == "postgresql"
        self._writer = engine.execution_options(**{_WRITE_OPTION: True})
        self._local_lock: threading.Lock | None = None
        self._group: GroupCommit | None = None
        self._checkpoints: Checkpointer | None = None
        if engine.dialect.name == "sqlite":
            _begin_immediately(engine)
            self._local_lock = threading.Lock()
            self._group = GroupCommit(self._grouped, self._alone)
            self._checkpoints = Checkpointer(engine, _CHECKPOINT_EVERY)
            self._group.between_groups = self._checkpoints.restart_if_wanted

    @classmethod
    def open(cls, url: str | None = None, *, must_exist: bool = False) -> LiveStore:
        """Connect to (and migrate) the store at ``url``.

        With ``must_exist``, a SQLite file that is not there is a ``StoreError``.
        """
        return cls(connect(url, must_exist=must_exist))

    def write(self, work: Callable[[Connection], T]) -> T:
        """Run ``work`` in one write transaction, again if it lost a race."""
        if self._group is None or self._group.is_writer_thread():
            return self._alone(work)
        self._start_checkpoints()
        return self._group.submit(work).result()

    async def write_async(self, work: Callable[[Connection], T]) -> T:
        """:meth:`write` for a coroutine: the event loop goes on meanwhile."""
        if self._group is None:
            return await asyncio.to_thread(self.write, work)
        self._start_checkpoints()
        return await asyncio.wrap_future(self._group.submit(work))

    def _start_checkpoints(self) -> None:
        if self._checkpoints is not None:
            self._checkpoints.start()

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
        """Stop the writer thread and close every pooled connection."""
        if self._group is not None:
            self._group.stop()
        if self._checkpoints is not None:
            self._checkpoints.stop()
        self.engine.dispose()

    def _alone(self, work: Callable[[Connection], T]) -> T:
        """Run ``work`` in a transaction of its own."""
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

    def _grouped(self, works: Sequence[Callable[[Connection], Any]]) -> list[Any]:
        """Run ``works`` one after the other in one transaction."""
        with self._serialised(), self._writer.begin() as conn:
            return [work(conn) for work in works]

    def _serialised(self) -> threading.Lock | nullcontext[None]:
        return self._local_lock if self._local_lock is not None else nullcontext()


@dataclass(frozen=True, slots=True)
class _Job(Generic[T]):
    work: Callable[[Connection], T]
    future: Future[T]


class GroupCommit:
    """One writer thread that commits queued works together.

    ``grouped`` runs a list of works in one transaction and returns their
    results; ``alone`` runs one work in a transaction of its own, raising
    what its caller should see.
    """

    def __init__(
        self,
        grouped: Callable[[Sequence[Callable[[Connection], Any]]], list[Any]],
        alone: Callable[[Callable[[Connection], Any]], Any],
    ) -> None:
        self._grouped = grouped
        self._alone = alone
        #: Run by the writer thread after each group, outside any transaction.
        self.between_groups: Callable[[], None] | None = None
        self._queue: queue.SimpleQueue[_Job[Any] | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._starting = threading.Lock()

    def submit(self, work: Callable[[Connection], T]) -> Future[T]:
        """Queue ``work``; the future holds its result once it is committed."""
        future: Future[T] = Future()
        # Running from now on, so it cannot be cancelled: like a thread, work
        # once handed over is done even if its caller stops waiting.
        future.set_running_or_notify_cancel()
        self._ensure_started()
        self._queue.put(_Job(work, future))
        return future

    def is_writer_thread(self) -> bool:
        return threading.current_thread() is self._thread

    def stop(self) -> None:
        """Let queued works finish, then end the writer thread."""
        with self._starting:
            thread, self._thread = self._thread, None
            if thread is None:
                return
            self._queue.put(None)
        thread.join(timeout=30)

    def _ensure_started(self) -> None:
        if self._thread is not None:
            return
        with self._starting:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="store-writer", daemon=True
                )
                self._thread.start()

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            jobs = [first]
            is_stopping = False
            while len(jobs) < _GROUP_MAX and not self._queue.empty():
                job = self._queue.get()
                if job is None:
                    is_stopping = True
                    break
                jobs.append(job)
            self._commit(jobs)
            if self.between_groups is not None:
                self.between_groups()
            if is_stopping:
                return

    def _commit(self, jobs: list[_Job[Any]]) -> None:
        if len(jobs) > 1:
            try:
                results = self._grouped([job.work for job in jobs])
            except Exception:
                log.info("group_commit_split", works=len(jobs))
            else:
                for job, result in zip(jobs, results, strict=True):
                    job.future.set_result(result)
                return
        for job in jobs:
            try:
                job.future.set_result(self._alone(job.work))
            except BaseException as exc:
                job.future.set_exception(exc)


class Checkpointer:
    """Copies SQLite's write-ahead log into the database file, in a thread."""

    def __init__(self, engine: Engine, every: float) -> None:
        self._engine = engine
        self._every = every
        self._stopping = threading.Event()
        self._restart_wanted = threading.Event()
        self._thread: threading.Thread | None = None
        self._starting = threading.Lock()

    def restart_if_wanted(self) -> None:
        """For the writer thread between groups: the restarting checkpoint,
        when the background thread has just copied the log."""
        if self._restart_wanted.is_set():
            self._restart_wanted.clear()
            self.checkpoint("RESTART", _RESTART_PATIENCE_MS)

    def start(self) -> None:
        """Begin checkpointing every ``every`` seconds (once; later calls pass)."""
        if self._thread is not None:
            return
        with self._starting:
            if self._thread is None and not self._stopping.is_set():
                self._thread = threading.Thread(
                    target=self._run, name="wal-checkpoint", daemon=True
                )
                self._thread.start()

    def stop(self) -> None:
        """End the thread, then checkpoint everything and empty the log."""
        with self._starting:
            self._stopping.set()
            thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout=30)
            self.checkpoint("TRUNCATE")

    def checkpoint(self, mode: str = "PASSIVE", patience_ms: int | None = None) -> None:
        """One checkpoint, waiting at most ``patience_ms`` for others when
        given; a failure is logged and the next one tries again."""
        try:
            with self._engine.connect() as conn:
                bulk = Bulk(conn)
                usual = bulk.execute("PRAGMA busy_timeout")[0][0]
                if patience_ms is not None:
                    bulk.execute(f"PRAGMA busy_timeout={int(patience_ms)}")
                try:
                    bulk.execute(f"PRAGMA wal_checkpoint({mode})")
                finally:
                    bulk.execute(f"PRAGMA busy_timeout={int(usual)}")
        except SQLAlchemyError as exc:
            log.warning("wal_checkpoint_failed", mode=mode, error=str(exc))

    def _run(self) -> None:
        while not self._stopping.wait(self._every):
            self.checkpoint("PASSIVE")
            self.checkpoint("PASSIVE")
            self._restart_wanted.set()


def _begin_immediately(engine: Engine) -> None:
    """Make SQLite transactions explicit; writers take the lock at BEGIN.

    The store's own checkpointer moves the log back; commits do not.
    """

    def configure(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        dbapi_connection.execute("PRAGMA wal_autocheckpoint=0")
        dbapi_connection.execute(f"PRAGMA journal_size_limit={_LOG_SIZE_LIMIT}")

    def begin(conn: Connection) -> None:
        immediate = conn.get_execution_options().get(_WRITE_OPTION, False)
        # On the driver's cursor: SQLAlchemy's own execution costs more here.
        Bulk(conn).execute("BEGIN IMMEDIATE" if immediate else "BEGIN")

    event.listen(engine, "connect", configure)
    event.listen(engine, "begin", begin)
    engine.dispose()
