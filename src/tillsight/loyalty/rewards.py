"""Issuing rewards: by a rule (through the outbox), an operator or the API.

Every reward gets an unguessable code, a value or an offer, a campaign, an
expiry, the customer's stage when it was issued and the store. Issuing is
idempotent: the same ``issue_key`` twice gives one reward.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, select, update

from tillsight.core.decisions import Decision
from tillsight.core.programme import Programme
from tillsight.core.timeconv import from_instant_us
from tillsight.errors import ConflictError, NotFoundError
from tillsight.loyalty import codes
from tillsight.loyalty.tables import rewards
from tillsight.store import schema
from tillsight.store.bulk import Bulk

_CODE_TRIES = 5


@dataclass(frozen=True, slots=True)
class Reward:
    """A reward as the API and the CLI show it."""

    id: int
    code: str | None
    customer_key: str
    kind: str
    value: Decimal | None
    offer: str
    campaign: str
    stage_at_issue: str | None
    store: str | None
    source: str
    held_out: bool
    issued_at: datetime
    expires_at: datetime
    redeemed_at: datetime | None
    redeemed_event_id: str | None
    withdrawn_at: datetime | None = None

    @property
    def display_code(self) -> str | None:
        return codes.display(self.code) if self.code else None

    def status(self, now: datetime) -> str:
        """Where the reward stands at ``now``: held out, redeemed, withdrawn
        (a late event took back the decision that issued it), expired or open."""
        if self.held_out:
            return "held out"
        if self.redeemed_at is not None:
            return "redeemed"
        if self.withdrawn_at is not None:
            return "withdrawn"
        return "expired" if self.expires_at <= now else "open"

    def to_json(self) -> dict[str, Any]:
        """Plain JSON: money as a string, times in ISO 8601."""
        return {
            "id": self.id,
            "code": self.display_code,
            "customer_key": self.customer_key,
            "kind": self.kind,
            "value": None if self.value is None else money_text(self.value),
            "offer": self.offer,
            "campaign": self.campaign,
            "stage_at_issue": self.stage_at_issue,
            "store": self.store,
            "source": self.source,
            "held_out": self.held_out,
            "issued_at": self.issued_at.isoformat(),
            "expires_at": self.expires_at.isoformat(),
            "redeemed_at": self.redeemed_at.isoformat() if self.redeemed_at else None,
            "redeemed_event_id": self.redeemed_event_id,
            "withdrawn_at": self.withdrawn_at.isoformat()
            if self.withdrawn_at
            else None,
        }


def money_text(value: Decimal) -> str:
    """An amount as text that reads the same whichever database stored it.

    PostgreSQL hands back ``10.000000`` (its column's scale) where SQLite
    hands back ``10.00``; both answer ``10.00``, and finer amounts keep their
    digits.
    """
    exact = value.normalize()
    exponent = exact.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -2:
        return str(exact)
    return str(value.quantize(Decimal("0.01")))


def issue(
    conn: Connection,
    programme: Programme,
    customer_key: str,
    kind: str,
    *,
    at: datetime,
    source: str = "operator",
    campaign: str | None = None,
    store: str | None = None,
    issue_key: str | None = None,
) -> Reward:
    """Issue one reward of a kind the programme describes, now and by hand."""
    settings = programme.rewards.get(kind)
    if settings is None:
        raise NotFoundError(
            f"reward kind {kind!r} is not in the programme "
            f"(known: {sorted(programme.rewards)})"
        )
    _require_customer(conn, customer_key)
    key = issue_key or f"{source}:{uuid.uuid4().hex}"
    row = {
        "issue_key": key,
        "customer_key": customer_key,
        "kind": kind,
        "value": settings.value,
        "offer": settings.offer,
        "campaign": campaign or settings.campaign or kind,
        "stage_at_issue": _current_stage(conn, customer_key),
        "store": store,
        "source": source,
        "held_out": False,
        "issued_at": at,
        "expires_at": _add_days(at, settings.valid_days, programme),
    }
    insert_rewards(conn, [row], at)
    return get_by_issue_key(conn, key)


def issue_from_decisions(
    conn: Connection, decisions: Sequence[Decision], recorded_at: datetime
) -> None:
    """Turn the ``reward:*`` actions that rules asked for into reward rows.

    The engine stamped each action with its kind's settings and the stage.
    A customer in the campaign's control group gets a held-out row, no code.
    """
    wanted = [d for d in decisions if _is_reward_action(d)]
    if not wanted:
        return
    stores = _event_stores(conn, {d.event_id for d in wanted if d.event_id})
    rows = [_rule_row(d, stores.get(d.event_id or "")) for d in wanted]
    insert_rewards(conn, rows, recorded_at)


def insert_rewards(
    conn: Connection, rows: list[dict[str, Any]], recorded_at: datetime
) -> None:
    """Insert reward rows, skipping issue keys already there; codes are added.

    Codes are drawn from about 2**57. The rows go in one statement that skips
    any row breaking a unique key: an issue key already stored (issued before,
    or by another process meanwhile) is meant to be skipped; a drawn code that
    another reward already has is so rare that those rows simply go again,
    one by one, with codes checked free first.
    """
    bulk = Bulk(conn)
    seen: set[str] = set()
    fresh: list[dict[str, Any]] = []
    for row in rows:
        if row["issue_key"] in seen:
            continue
        seen.add(row["issue_key"])
        code = row.get("code") or (None if row["held_out"] else codes.new_code())
        fresh.append({**row, "code": code, "recorded_at": recorded_at})
    if not fresh:
        return
    bulk.insert(
        rewards,
        _COLUMNS,
        [_driver_row(bulk, row) for row in fresh],
        ignore_duplicates=True,
    )
    stored = known_issue_keys(conn, [row["issue_key"] for row in fresh])
    for row in fresh:
        if row["issue_key"] not in stored:
            _insert_with_fresh_code(conn, {**row, "code": None})


_COLUMNS = tuple(column.name for column in rewards.columns if column.name != "id")
_DEFAULTS: dict[str, Any] = {"offer": "", "held_out": False}
_MONEY = frozenset({"value", "redeemed_basket"})
_MOMENTS = frozenset(
    {"issued_at", "expires_at", "redeemed_at", "withdrawn_at", "recorded_at"}
)


def _driver_row(bulk: Bulk, row: dict[str, Any]) -> tuple[Any, ...]:
    """A reward row in :data:`_COLUMNS` order, in the driver's form."""
    values: list[Any] = []
    for name in _COLUMNS:
        value = row.get(name, _DEFAULTS.get(name))
        if value is None:
            pass
        elif name in _MONEY:
            value = bulk.money(Decimal(value))
        elif name in _MOMENTS:
            value = bulk.moment(value)
        elif name == "held_out":
            value = bulk.flag(bool(value))
        values.append(value)
    return tuple(values)


def withdraw_rewards(
    conn: Connection, issue_keys: Sequence[str], recorded_at: datetime
) -> None:
    """Withdraw the unredeemed rewards issued by actions that no longer hold.

    A late event can show that a rule did not fire after all; the action it
    asked for is superseded and never sent, so its reward is withdrawn too.
    A reward already redeemed stays as it is: what went out is not taken back.
    """
    for start in range(0, len(issue_keys), 500):
        chunk = list(issue_keys[start : start + 500])
        conn.execute(
            update(rewards)
            .where(
                rewards.c.issue_key.in_(chunk),
                rewards.c.redeemed_at.is_(None),
                rewards.c.withdrawn_at.is_(None),
            )
            .values(withdrawn_at=recorded_at)
        )


def restore_rewards(conn: Connection, issue_keys: Sequence[str]) -> None:
    """Take back the withdrawal of rewards whose actions hold again."""
    for start in range(0, len(issue_keys), 500):
        chunk = list(issue_keys[start : start + 500])
        conn.execute(
            update(rewards)
            .where(rewards.c.issue_key.in_(chunk), rewards.c.redeemed_at.is_(None))
            .values(withdrawn_at=None)
        )


def get_by_code(conn: Connection, code: str) -> Reward:
    """The reward with this code (typed in any case, with or without dashes)."""
    row = conn.execute(
        select(rewards).where(rewards.c.code == codes.normalise(code))
    ).first()
    if row is None:
        raise NotFoundError("no reward with that code")
    return reward_from_row(row)


def get_by_issue_key(conn: Connection, issue_key: str) -> Reward:
    row = conn.execute(select(rewards).where(rewards.c.issue_key == issue_key)).one()
    return reward_from_row(row)


def customer_rewards(conn: Connection, customer_key: str) -> list[Reward]:
    """Every reward of one customer, newest first."""
    rows = conn.execute(
        select(rewards)
        .where(rewards.c.customer_key == customer_key)
        .order_by(rewards.c.issued_at.desc(), rewards.c.id.desc())
    )
    return [reward_from_row(row) for row in rows]


def reward_from_row(row: Any) -> Reward:
    """A reward from its ``rewards`` row."""
    return Reward(
        id=row.id,
        code=row.code,
        customer_key=row.customer_key,
        kind=row.kind,
        value=row.value,
        offer=row.offer,
        campaign=row.campaign,
        stage_at_issue=row.stage_at_issue,
        store=row.store,
        source=row.source,
        held_out=bool(row.held_out),
        issued_at=row.issued_at,
        expires_at=row.expires_at,
        redeemed_at=row.redeemed_at,
        redeemed_event_id=row.redeemed_event_id,
        withdrawn_at=row.withdrawn_at,
    )


def has_issue_key(conn: Connection, issue_key: str) -> bool:
    """Tell whether a reward with this issue key is already stored."""
    found = conn.execute(select(rewards.c.id).where(rewards.c.issue_key == issue_key))
    return found.first() is not None


def _insert_with_fresh_code(conn: Connection, row: dict[str, Any]) -> None:
    """Insert a row with a code no other reward has (a draw rarely repeats)."""
    if not row["held_out"] and not row.get("code"):
        row = {**row, "code": _free_code(conn)}
    conn.execute(rewards.insert().values(row))


def _free_code(conn: Connection) -> str:
    for _ in range(_CODE_TRIES):
        code = codes.new_code()
        taken = conn.execute(select(rewards.c.id).where(rewards.c.code == code))
        if taken.first() is None:
            return code
    raise ConflictError("CODE_SPACE_EXHAUSTED", f"no free code after {_CODE_TRIES}")


def _rule_row(decision: Decision, store: str | None) -> dict[str, Any]:
    detail = decision.detail or {}
    campaign = str(detail["campaign"])
    return {
        "issue_key": decision.idempotency_key,
        "customer_key": decision.customer_key,
        "kind": detail["name"],
        "value": None if detail["value"] is None else Decimal(detail["value"]),
        "offer": detail.get("offer", ""),
        "campaign": campaign,
        "stage_at_issue": detail.get("stage"),
        "store": store,
        "source": "rule",
        "rule_id": decision.rule_id,
        "event_id": decision.event_id,
        "held_out": codes.is_held_out(
            decision.customer_key, campaign, int(detail["holdout_percent"])
        ),
        "issued_at": from_instant_us(decision.at_us),
        "expires_at": from_instant_us(int(detail["expires_us"])),
    }


def _is_reward_action(decision: Decision) -> bool:
    detail = decision.detail
    return (
        decision.kind.value == "action"
        and detail is not None
        and detail.get("action") == "reward"
        and "expires_us" in detail
    )


def _event_stores(conn: Connection, event_ids: set[str]) -> dict[str, str | None]:
    return dict(
        _in_chunks(conn, "SELECT event_id, store FROM events", sorted(event_ids))
    )


def known_issue_keys(conn: Connection, keys: list[str]) -> set[str]:
    """Which of these issue keys already have a reward."""
    found = _in_chunks(conn, "SELECT issue_key, NULL FROM rewards", keys, "issue_key")
    return {key for key, _ in found}


def _in_chunks(
    conn: Connection, select_sql: str, values: list[str], column: str = "event_id"
) -> list[tuple[Any, ...]]:
    """Rows of ``select_sql WHERE column IN values`` (the driver's cursor)."""
    bulk = Bulk(conn)
    rows: list[tuple[Any, ...]] = []
    for start in range(0, len(values), 500):
        chunk = values[start : start + 500]
        markers = ", ".join("?" * len(chunk))
        sql = bulk.sql(f"{select_sql} WHERE {column} IN ({markers})")
        rows += bulk.execute(sql, chunk)
    return rows


def _require_customer(conn: Connection, key: str) -> None:
    customers = schema.customers
    if conn.execute(select(customers.c.key).where(customers.c.key == key)).first():
        return
    raise NotFoundError(f"no customer with key {key!r}")


def _current_stage(conn: Connection, key: str) -> str | None:
    customers = schema.customers
    stage: str | None = conn.execute(
        select(customers.c.stage).where(customers.c.key == key)
    ).scalar_one_or_none()
    return stage


def _add_days(at: datetime, days: int, programme: Programme) -> datetime:
    """The same wall-clock time ``days`` later in the programme's zone."""
    local = at.astimezone(programme.zone).replace(tzinfo=None) + timedelta(days=days)
    return local.replace(tzinfo=programme.zone)
