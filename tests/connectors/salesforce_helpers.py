"""Helpers shared by the Salesforce connector tests."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, insert

from tillsight.store.schema import customers, people

FIXTURES = Path(__file__).parents[1] / "fixtures" / "salesforce"


def fixture_json(relative: str) -> Any:
    """Read one of the copied Salesforce fixture bodies."""
    return json.loads((FIXTURES / relative).read_text(encoding="utf-8"))


class Sleeps(list[float]):
    """Records every wait instead of sleeping."""

    def __call__(self, delay_s: float) -> None:
        self.append(delay_s)


NOW = datetime(2025, 9, 1, 8, 0, tzinfo=UTC)


def add_customer(engine: Engine, key: str, **values: Any) -> None:
    """Store a customer and their personal data, with sensible defaults."""
    person = {
        name: values.pop(name)
        for name in ("email", "first_name", "last_name", "consent_email", "consent_sms")
        if name in values
    }
    row = {
        "key": key,
        "stage": "new",
        "tier": None,
        "segments": json.dumps(values.pop("segments", [])),
        "purchase_count": 1,
        "lifetime_net_spend": Decimal("10.00"),
        "points_balance": 0,
        "state": "{}",
        "created_at": NOW,
        "updated_at": NOW,
        **values,
    }
    with engine.begin() as conn:
        conn.execute(insert(customers).values(**row))
        conn.execute(
            insert(people).values(
                customer_key=key,
                last_name=person.pop("last_name", f"Name {key}"),
                email=person.pop("email", f"{key.lower()}@example.test"),
                updated_at=NOW,
                **person,
            )
        )
