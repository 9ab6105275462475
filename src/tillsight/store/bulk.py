"""Fast bulk writes straight through the driver, for the replay's hot path.

SQLAlchemy's per-value type processing costs more than SQLite's own insert
when a replay writes millions of rows, so the hot tables are written with
plain ``executemany`` and values already in the driver's form: on SQLite the
same text that ``Money`` and ``UtcDateTime`` store, on PostgreSQL the Python
objects psycopg adapts. Everything else goes through SQLAlchemy as usual.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, Table

from tillsight.core.timeconv import from_instant_us


class Bulk:
    """Writes rows of plain tuples to one connection's database."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.is_postgres = conn.dialect.name == "postgresql"
        self._marker = "%s" if self.is_postgres else "?"

    def instant(self, value_us: int) -> Any:
        """An instant from microseconds, as this database stores it."""
        return self.moment(from_instant_us(value_us))

    def moment(self, value: datetime | None) -> Any:
        """An aware datetime, as this database stores it."""
        if value is None or self.is_postgres:
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
        verb = "INSERT"
        tail = ""
        if ignore_duplicates:
            if self.is_postgres:
                tail = " ON CONFLICT DO NOTHING"
            else:
                verb = "INSERT OR IGNORE"
        sql = f"{verb} INTO {table.name} ({names}) VALUES ({markers}){tail}"
        self.conn.exec_driver_sql(sql, list(rows))

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
        self.conn.exec_driver_sql(sql, list(rows))
