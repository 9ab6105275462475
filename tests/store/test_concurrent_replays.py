"""Two replays into one store at once end as if run one after the other.

Each replay runs the real command in a process of its own. The test holds
the store's replay lock while it starts them, so both must be seen waiting
(without the lock they would run side by side and split customers in two),
then lets them go and compares the store with two imports run in turn.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, func, select

from tillsight.store import schema
from tillsight.store.db import connect
from tillsight.store.lock import migration_lock, replay_lock

ENTRY = [sys.executable, "-c", "from tillsight.cli import main; main()"]


def _purchase(number: int, customer: int, day: int) -> str:
    return json.dumps(
        {
            "event_id": f"pos:{number}",
            "type": "purchase",
            "occurred_at": f"2025-01-{day:02d}T10:{number % 60:02d}:00+00:00",
            "currency": "GBP",
            "lines": [{"sku": "A", "quantity": "1", "unit_price": "12.50"}],
            "customer": {"customer_id": f"C{customer}"},
        }
    )


def _files(folder: Path) -> list[Path]:
    """Two imports holding purchases of the same 40 customers."""
    paths = []
    for part in range(2):
        lines = [
            _purchase(part * 1000 + customer, customer, 1 + part * 10 + customer % 9)
            for customer in range(40)
        ]
        path = folder / f"part{part}.jsonl"
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        paths.append(path)
    return paths


def _replay(path: Path, url: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*ENTRY, "replay", str(path), "--db", url],
        cwd=path.parent,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _outcome(store: Engine) -> dict[str, Any]:
    customers = schema.customers
    identities = schema.identities
    with store.connect() as conn:
        profiles = sorted(
            conn.execute(
                select(
                    identities.c.value,
                    customers.c.purchase_count,
                    customers.c.stage,
                ).join(customers, customers.c.key == identities.c.customer_key)
            ).all()
        )
        live = conn.execute(
            select(func.count()).where(customers.c.merged_into.is_(None))
        ).scalar_one()
        welcomes = conn.execute(
            select(func.count()).where(
                schema.outbox.c.name == "welcome", schema.outbox.c.status == "pending"
            )
        ).scalar_one()
    return {
        "profiles": [tuple(p) for p in profiles],
        "live": live,
        "welcomes": welcomes,
    }


def test_a_second_replay_waits_for_the_first(db_url: str, tmp_path: Path) -> None:
    first, second = _files(tmp_path)
    store = connect(db_url)
    try:
        with replay_lock(store):
            running = [_replay(first, db_url), _replay(second, db_url)]
            time.sleep(3)  # long enough for both to start and find the lock held
            assert all(child.poll() is None for child in running)
        outputs = [child.communicate(timeout=120) for child in running]
        found = _outcome(store)
    finally:
        store.dispose()

    said = ["".join(output) for output in outputs]
    assert all(child.returncode == 0 for child in running), said
    assert all("waiting for it to finish" in text for text in said)
    assert found["live"] == 40
    assert found["welcomes"] == 40
    assert [count for _id, count, _stage in found["profiles"]] == [2] * 40


def test_two_replays_into_a_new_store_create_its_tables_once(
    db_url: str, tmp_path: Path
) -> None:
    # The store is empty: both commands find its schema missing, and the
    # second must wait for the first to create it rather than fail.
    first, second = _files(tmp_path)
    store = create_engine(db_url)
    try:
        with migration_lock(store):
            running = [_replay(first, db_url), _replay(second, db_url)]
            time.sleep(3)
            assert all(child.poll() is None for child in running)
        outputs = [child.communicate(timeout=120) for child in running]
        found = _outcome(store)
    finally:
        store.dispose()

    assert all(child.returncode == 0 for child in running), outputs
    assert found["live"] == 40
