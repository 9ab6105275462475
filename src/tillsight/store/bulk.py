"""Fast statements straight through the driver, for the hot paths.

SQLAlchemy's per-statement and per-value work costs more than SQLite's own
insert when a replay writes millions of rows or the live service handles one
event in a dozen small statements, so the hot tables are written (and a few
hot rows read) on the DB-API cursor of the connection's own transaction,
with values already in the driver's form: on SQLite the same text that
``Money`` and ``UtcDateTime`` store, on PostgreSQL the Python objects psycopg
adapts. A driver error is raised as SQLAlchemy's ``DBAPIError``, as if the
statement had gone through SQLAlchemy, so callers handle one kind of error.
Everything else goes through SQLAlchemy as usual.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, Table
from sqlalchemy.exc import DBAPIError

from tillsight.core.timeconv import from_instant_us


class Bulk:
    """Writes rows of plain tuples to one connection's database."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.is_postgres = conn.dialect.name == "postgresql"
        self._marker = "%s" if self.is_postgres else "?"
        driver = conn.connection.driver_connection
        assert driver is not None, "the connection is closed"
        self._driver = driver
        self._error: type[Exception] = conn.dialect.loaded_dbapi.Error

    def sql(self, statement: str) -> str:
        """``statement`` written with ``?`` markers, in this driver's style."""
        return statement.replace("?", "%s") if self.is_postgres else statement

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run one statement (markers in this driver's style); its rows, if any."""
        cursor = self._driver.cursor()
        try:
            cursor.execute(sql, params)
            rows: list[tuple[Any, ...]] = (
                cursor.fetchall() if cursor.description else []
            )
        except self._error as exc:
            raise DBAPIError.instance(
                sql, params, exc, self._error, hide_parameters=True
            ) from exc
        finally:
            cursor.close()
        return rows

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        """Run one statement for each of ``rows``."""
        cursor = self._driver.cursor()
        try:
            cursor.executemany(sql, rows)
        except self._error as exc:
            raise DBAPIError.instance(
                sql, rows, exc, self._error, hide_parameters=True
            ) from exc
        finally:
            cursor.close()

    def instant(self, value_us: int) -> Any:
        """An instant from microseconds, as this database stores it."""
        return self.moment(from_instant_us(value_us))

    def moment(self, value: datetime | None) -> Any:
        """An aware datetime, as this database stores it."""
        if value is None:
            return value
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r} cannot be stored as an instant")
        if self.is_postgres:
            return value
        return value.astimezone(UTC).isoformat(timespec="microseconds")

    def money(self, value: Decimal) -> Any:
        return value if self.is_postgres else str(value)

    def flag(self, value: bool) -> Any:
        return value if self.is_postgres else int(value)

    def insert(
        self,
        table: Table,
        columns: Sequence[str],
        rows: Sequence[tuple[Any, ...]],
        *,
        ignore_duplicates: bool = False,
    ) -> None:
        """Insert rows; with ``ignore_duplicates`` a row that breaks a unique
        key is skipped atomically (never check-then-insert)."""
        if not rows:
            return
        names = ", ".join(columns)
        markers = ", ".join([self._marker] * len(columns))
        # Not SQLite's INSERT OR IGNORE: that also drops rows that break a
        # NOT NULL or CHECK constraint, where PostgreSQL would refuse them.
        tail = " ON CONFLICT DO NOTHING" if ignore_duplicates else ""
        sql = f"INSERT INTO {table.name} ({names}) VALUES ({markers}){tail}"
        self.executemany(sql, rows)

    def upsert(
        self,
        table: Table,
        columns: Sequence[str],
        rows: Sequence[tuple[Any, ...]],
        *,
        key: str,
        keep: Sequence[str] = (),
    ) -> None:
        """Insert rows or update the row with the same ``key`` (except ``keep``)."""
        if not rows:
            return
        names = ", ".join(columns)
        markers = ", ".join([self._marker] * len(columns))
        changes = ", ".join(
            f"{name} = excluded.{name}"
            for name in columns
            if name != key and name not in keep
        )
        sql = (
            f"INSERT INTO {table.name} ({names}) VALUES ({markers}) "
            f"ON CONFLICT ({key}) DO UPDATE SET {changes}"
        )
        self.executemany(sql, rows)
