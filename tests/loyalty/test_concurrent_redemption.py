"""B12: a single-use reward presented by several tills at the same instant.

Real threads, each with its own connection to PostgreSQL, start together at a
barrier; the conditional update lets exactly one win.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine, select

from tillsight.core.programme import Programme
from tillsight.errors import ConflictError
from tillsight.loyalty.redemption import Attempt, redeem_now
from tillsight.loyalty.rewards import issue
from tillsight.loyalty.tables import redemption_attempts, rewards
from tillsight.pipeline import Replayer
from tillsight.store import queries
from tillsight.store.db import connect

from factories import at, sale

TILLS = 8


@pytest.fixture
def pg_store(postgres_url: str) -> Iterator[Engine]:
    engine = connect(postgres_url)
    yield engine
    engine.dispose()


def _race(store: Engine, code: str) -> list[str]:
    barrier = threading.Barrier(TILLS)
    results: list[str] = []
    lock = threading.Lock()

    def till(number: int) -> None:
        attempt = Attempt(
            code=code,
            at=at("2025-07-01T12:00:00.050+01:00"),
            event_id=f"O{number}",
            store=f"T{number}",
            channel="api",
        )
        barrier.wait()
        try:
            redeem_now(store, attempt, datetime.now(UTC))
            outcome = "applied"
        except ConflictError as exc:
            outcome = exc.code
        with lock:
            results.append(outcome)

    threads = [threading.Thread(target=till, args=(n,)) for n in range(TILLS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


@pytest.mark.postgres
def test_b12_a_reward_presented_by_eight_tills_at_once_is_used_once(
    pg_store: Engine, programme: Programme
) -> None:
    Replayer(pg_store, programme).run(
        [sale("E1", "2025-06-01T10:00:00+01:00", "10.00")]
    )
    with pg_store.begin() as conn:
        key = queries.find_customer_key(conn, "C1")
        reward = issue(conn, programme, key, "surprise", at=at("2025-06-20T10:00:00Z"))
    assert reward.code is not None

    results = _race(pg_store, reward.code)

    with pg_store.connect() as conn:
        row = conn.execute(select(rewards)).one()
        outcomes = conn.execute(select(redemption_attempts.c.outcome)).scalars().all()
    assert sorted(results) == ["VOUCHER_ALREADY_USED"] * (TILLS - 1) + ["applied"]
    assert row.redeemed_at is not None
    assert sorted(outcomes) == ["applied"] + ["refused"] * (TILLS - 1)
