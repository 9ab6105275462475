"""Bringing a store's schema up to date is all or nothing."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, inspect, text

from tillsight.errors import StoreError
from tillsight.store.db import connect


def test_a_first_migration_stopped_halfway_leaves_no_half_schema(
    db_url: str,
) -> None:
    # A table in the way of a later step stops the migration part way, as
    # a killed first run would: the tables made before it must not stay.
    blocker = create_engine(db_url)
    with blocker.begin() as conn:
        conn.execute(text("CREATE TABLE timers (x INTEGER)"))

    with pytest.raises(StoreError, match="timers"):
        connect(db_url).dispose()
    left = set(inspect(blocker).get_table_names())

    with blocker.begin() as conn:
        conn.execute(text("DROP TABLE timers"))
    connect(db_url).dispose()
    made = set(inspect(blocker).get_table_names())
    blocker.dispose()

    assert left == {"timers"}
    assert {"customers", "events", "timeline", "outbox", "timers"} <= made


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///:memory:"])
def test_a_store_in_memory_is_migrated_in_its_own_connection(url: str) -> None:
    store = connect(url)
    try:
        tables = set(inspect(store).get_table_names())
    finally:
        store.dispose()

    assert {"customers", "events", "timeline", "outbox"} <= tables
