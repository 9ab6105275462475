"""Redeeming a reward code, from a till's sale or from the API.

A reward is used once, even when two tills present it at the same instant:
the redemption is ``UPDATE rewards SET redeemed_at = ... WHERE id = ... AND
redeemed_at IS NULL`` and only the request whose update changed a row wins.
On PostgreSQL the loser waits on the row lock, then sees the row already
used; on SQLite writers are serialised. Every refusal (unknown, expired, used
or someone else's code, points beyond the balance) is kept in
``redemption_attempts`` with its reason; the sale itself is still processed.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import structlog
from sqlalchemy import Connection, Engine, select, update

from tillsight.core.decisions import Decision, Kind
from tillsight.core.timeconv import from_instant_us
from tillsight.errors import ConflictError
from tillsight.loyalty import codes
from tillsight.loyalty.tables import redemption_attempts, rewards
from tillsight.store.writer import insert_ignoring_duplicates

log = structlog.get_logger("tillsight.loyalty")

VOUCHER_ALREADY_USED = "VOUCHER_ALREADY_USED"
REWARD_EXPIRED = "REWARD_EXPIRED"
REWARD_UNKNOWN = "REWARD_UNKNOWN"
REWARD_NOT_YOURS = "REWARD_NOT_YOURS"
REWARD_HELD_OUT = "REWARD_HELD_OUT"
REWARD_WITHDRAWN = "REWARD_WITHDRAWN"
REWARD_NOT_YET_ISSUED = "REWARD_NOT_YET_ISSUED"
REWARD_OVER_VALUE = "REWARD_OVER_VALUE"

_MESSAGES = {
    VOUCHER_ALREADY_USED: "this reward has already been redeemed",
    REWARD_EXPIRED: "this reward expired before the redemption time",
    REWARD_UNKNOWN: "no reward has this code",
    REWARD_NOT_YOURS: "this reward belongs to another customer",
    REWARD_WITHDRAWN: "this reward was withdrawn: a later-arriving sale showed "
    "that the rule that issued it did not hold",
    REWARD_NOT_YET_ISSUED: "the redemption time is before the reward was issued",
    REWARD_OVER_VALUE: "the sale takes more off with this code than the reward "
    "is worth",
}


@dataclass(frozen=True, slots=True)
class Attempt:
    """One presentation of a code: who, where, when and for which basket."""

    code: str
    at: datetime
    customer_key: str | None = None
    event_id: str | None = None
    store: str | None = None
    basket: Decimal | None = None
    channel: str = "api"
    attempt_key: str | None = None
    #: What the till took off the sale with the code, when it says.
    amount: Decimal | None = None


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became of an attempt: applied, or refused with a reason code."""

    is_applied: bool
    reason: str | None = None
    reward_id: int | None = None
    value: Decimal | None = None

    def raise_if_refused(self) -> None:
        """Raise the ``ConflictError`` that names the refusal, if any."""
        if self.reason is not None and not self.is_applied:
            raise ConflictError(self.reason, _MESSAGES.get(self.reason, self.reason))


def redeem(conn: Connection, attempt: Attempt, recorded_at: datetime) -> Outcome:
    """Redeem a code in the caller's transaction and record the attempt."""
    outcome = _try(conn, attempt)
    _record(conn, attempt, outcome, recorded_at)
    log.info(
        "reward_redemption",
        outcome="applied" if outcome.is_applied else "refused",
        reason=outcome.reason,
        reward_id=outcome.reward_id,
        channel=attempt.channel,
    )
    return outcome


def redeem_now(db: Engine, attempt: Attempt, recorded_at: datetime) -> Outcome:
    """Redeem in a transaction of its own; a refusal is committed, then raised."""
    with db.begin() as conn:
        outcome = redeem(conn, attempt, recorded_at)
    outcome.raise_if_refused()
    return outcome


def redeem_from_decisions(
    conn: Connection, decisions: Sequence[Decision], recorded_at: datetime
) -> list[Outcome]:
    """Redeem the codes presented on sales and record refused points tenders."""
    outcomes: list[Outcome] = []
    for decision in decisions:
        if decision.kind is not Kind.REDEMPTION or decision.detail is None:
            continue
        if decision.subject == "code":
            attempt = _till_attempt(decision)
            outcomes.append(redeem(conn, attempt, recorded_at))
        elif decision.detail.get("status") == "refused":
            _record_points_refusal(conn, decision, recorded_at)
            outcomes.append(Outcome(False, str(decision.detail["reason"])))
        else:
            outcomes.append(Outcome(True))
    return outcomes


def _try(conn: Connection, attempt: Attempt) -> Outcome:
    code = codes.normalise(attempt.code)
    row = conn.execute(select(rewards).where(rewards.c.code == code)).first()
    if row is None:
        return Outcome(False, REWARD_UNKNOWN)
    refused = _refusal(row, attempt)
    if refused is not None:
        return Outcome(False, refused, row.id)
    if row.redeemed_at is not None:
        # The same sale presented again (a retry, a rebuild) keeps its win.
        return Outcome(True, None, row.id, row.value)

    won = conn.execute(
        update(rewards)
        .where(
            rewards.c.id == row.id,
            rewards.c.redeemed_at.is_(None),
            rewards.c.withdrawn_at.is_(None),
        )
        .values(
            redeemed_at=attempt.at,
            redeemed_event_id=attempt.event_id,
            redeemed_store=attempt.store,
            redeemed_basket=attempt.basket,
        )
    ).rowcount
    if won != 1:
        return Outcome(False, VOUCHER_ALREADY_USED, row.id)
    return Outcome(True, None, row.id, row.value)


def _refusal(row: Any, attempt: Attempt) -> str | None:
    if attempt.customer_key is not None and row.customer_key != attempt.customer_key:
        return REWARD_NOT_YOURS
    if row.withdrawn_at is not None:
        return REWARD_WITHDRAWN
    if row.redeemed_at is not None:
        same_sale = attempt.event_id is not None
        if same_sale and row.redeemed_event_id == attempt.event_id:
            return None
        return VOUCHER_ALREADY_USED
    worth = row.value
    if attempt.amount is not None and worth is not None and attempt.amount > worth:
        return REWARD_OVER_VALUE
    if attempt.at >= row.expires_at:
        return REWARD_EXPIRED
    if attempt.at < row.issued_at:
        # A back-dated use would also slip past the expiry check above.
        return REWARD_NOT_YET_ISSUED
    return None


def _record(
    conn: Connection, attempt: Attempt, outcome: Outcome, recorded_at: datetime
) -> None:
    key = attempt.attempt_key or f"api:{uuid.uuid4().hex}"
    row = {
        "attempt_key": key,
        "code": codes.normalise(attempt.code)[:64],
        "points": 0,
        "reward_id": outcome.reward_id,
        "customer_key": attempt.customer_key,
        "event_id": attempt.event_id,
        "channel": attempt.channel,
        "store": attempt.store,
        "outcome": "applied" if outcome.is_applied else "refused",
        "reason": outcome.reason,
        "attempted_at": attempt.at,
        "recorded_at": recorded_at,
    }
    insert_ignoring_duplicates(conn, redemption_attempts, [row])


def _till_attempt(decision: Decision) -> Attempt:
    detail = decision.detail or {}
    return Attempt(
        code=str(detail["code"]),
        at=from_instant_us(decision.at_us),
        customer_key=decision.customer_key,
        event_id=decision.event_id,
        store=detail.get("store"),
        basket=Decimal(detail["basket"]) if detail.get("basket") else None,
        channel="till",
        attempt_key=f"till:{decision.event_id}#{decision.rule_id}",
        amount=Decimal(detail["amount"]) if detail.get("amount") else None,
    )


def _record_points_refusal(
    conn: Connection, decision: Decision, recorded_at: datetime
) -> None:
    detail = decision.detail or {}
    row = {
        "attempt_key": f"till:{decision.event_id}#{decision.rule_id}",
        "code": None,
        "points": int(detail.get("points", 0)),
        "reward_id": None,
        "customer_key": decision.customer_key,
        "event_id": decision.event_id,
        "channel": "till",
        "store": None,
        "outcome": "refused",
        "reason": detail.get("reason"),
        "attempted_at": from_instant_us(decision.at_us),
        "recorded_at": recorded_at,
    }
    insert_ignoring_duplicates(conn, redemption_attempts, [row])
