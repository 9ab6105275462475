"""Import of a previous system's rewards: mapping, rejects, idempotency."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from tillsight.core.programme import Programme
from tillsight.loyalty.importer import import_rewards, load_reward_mapping
from tillsight.loyalty.tables import rewards
from tillsight.pipeline import Replayer
from tillsight.store.db import connect

from factories import at, sale

CSV = """RewardId,Customer,Type,Code,IssuedAt,RedeemedAt,Basket,Store
1,C1,surprise,abcd-efgh-jkmn,2025-01-05 09:00:00,2025-01-09 12:00:00,42.50,Leeds
2,C1,win_back,,2025-02-01T10:00:00+00:00,,,York
3,C9,surprise,,2025-02-01T10:00:00+00:00,,,York
4,C1,mystery,,2025-02-01T10:00:00+00:00,,,York
"""
MAPPING = """columns:
  id: RewardId
  customer: Customer
  kind: Type
  code: Code
  issued_at: IssuedAt
  redeemed_at: RedeemedAt
  basket: Basket
  store: Store
"""


@pytest.fixture
def store(db_url: str, programme: Programme) -> Iterator[Engine]:
    engine = connect(db_url)
    Replayer(engine, programme).run([sale("E1", "2025-01-01T10:00:00+00:00", "9")])
    yield engine
    engine.dispose()


def test_rewards_import_keeps_codes_and_redemptions_and_rejects_bad_rows(
    store: Engine, programme: Programme, tmp_path: Path
) -> None:
    (tmp_path / "old.csv").write_text(CSV)
    (tmp_path / "map.yaml").write_text(MAPPING)
    mapping = load_reward_mapping(tmp_path / "map.yaml")

    with store.begin() as conn:
        first = import_rewards(
            conn, programme, tmp_path / "old.csv", mapping, datetime.now(UTC)
        )
    with store.begin() as conn:
        again = import_rewards(
            conn, programme, tmp_path / "old.csv", mapping, datetime.now(UTC)
        )
        rows = conn.execute(select(rewards).order_by(rewards.c.issue_key)).all()

    assert (first.imported, first.redeemed, again.imported, again.already_there) == (
        2,
        1,
        0,
        2,
    )
    assert [str(error) for error in first.rejected] == [
        "line 4: Customer: 'C9' is not known; replay history first",
        "line 5: Type: 'mystery' is not a reward kind of the programme",
    ]
    assert rows[0].code == "ABCDEFGHJKMN"
    assert rows[0].issued_at == at("2025-01-05T09:00:00+00:00")
    assert rows[0].redeemed_at == at("2025-01-09T12:00:00+00:00")
    assert rows[1].code is not None and rows[1].value == 10
