"""Points: earned, spent, reversed, restored, adjusted and expired, in lots.

Every change is a ``points`` decision naming its rule and event, which the
store appends to the ledger; the balance is always the sum of the ledger and
of the remaining lots, and it is never negative.

Policies (also documented in the default programme file and the README):

- Earning is on what was paid in money: the total less reward codes and points
  tendered, rounded once per purchase. Tagged lines add their own points.
- Points spent as a tender come out of the oldest lots first (FIFO). A tender
  larger than the balance is refused (``INSUFFICIENT_POINTS``); the sale still
  counts. A tender keeps the answer it was first given: when a late event
  lands before it and leaves too few points, a rebuild still takes it (down to
  zero, recording a ``points_shortfall``), and a refused one stays refused.
- A linked return reverses the purchase's earned points pro rata, or by the
  lines it names. A return never spends points. On a full refund the points the
  purchase spent are given back (``restore_redeemed_on_full_refund``), on a
  partial one they are not.
- A debit larger than the balance (points already spent) takes the balance to
  zero and records a ``points_shortfall`` decision on the timeline; nothing
  goes negative.
- A lot expires at its wall-clock expiry time in the programme's zone; the
  expiry entry takes away what is left of that lot, never more.
"""

from __future__ import annotations

import calendar
from datetime import datetime, timedelta
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_UP, Decimal
from typing import Any, Protocol

from tillsight.core.decisions import Decision, Kind
from tillsight.core.events import Event, Line
from tillsight.core.programme import Programme, Rounding
from tillsight.core.state import CustomerState, Lot, PurchaseRecord, Timer
from tillsight.core.timeconv import local_to_instant_us

EXPIRY_TIMER = "points:expiry"
INSUFFICIENT_POINTS = "INSUFFICIENT_POINTS"

_ROUNDING = {
    Rounding.DOWN: ROUND_FLOOR,
    Rounding.HALF_UP: ROUND_HALF_UP,
    Rounding.UP: ROUND_CEILING,
}
_NAIVE_EPOCH = datetime(1970, 1, 1)


class Moment(Protocol):
    """The event being applied, as the engine hands it over."""

    event: Event
    at_us: int
    local_us: int
    decisions: list[Decision]


class PointsBook:
    """Keeps one programme's points rules for every customer state."""

    def __init__(self, programme: Programme) -> None:
        self.settings = programme.points
        self.zone = programme.zone
        self._rounding = _ROUNDING[programme.points.rounding]

    # -- credits ------------------------------------------------------------

    def earn(self, state: CustomerState, now: Moment, purchase: PurchaseRecord) -> None:
        """Credit what a purchase earns on money paid and on tagged lines."""
        rate = self.settings.per_currency_unit
        spend = now.event.paid * rate
        purchase.points = max(
            int(spend.quantize(Decimal(1), rounding=self._rounding)), 0
        )
        line_points = self._tagged_line_points(now.event.lines)
        purchase.line_points = line_points or None
        earned = purchase.points + sum(line_points.values())
        if earned > 0:
            self.credit(state, now, earned, "earn", "points:earn")

    def award(self, state: CustomerState, now: Moment, points: int, rule: str) -> None:
        """Credit a rule's bonus points."""
        self.credit(state, now, points, "award", rule)

    def credit(
        self,
        state: CustomerState,
        now: Moment,
        points: int,
        reason: str,
        rule_id: str,
        extra: dict[str, Any] | None = None,
    ) -> None:
        """Add points as (part of) the lot of the event being applied."""
        expires_us = self._expiry_us(now.local_us)
        last = state.lots[-1] if state.lots else None
        same_lot = last is not None and (
            last.event_id == now.event.event_id
            or (expires_us is None and last.expires_us is None)
        )
        if last is not None and same_lot:
            last.remaining += points
        else:
            state.lots.append(Lot(now.event.event_id, now.at_us, expires_us, points))
        state.points_balance += points
        self._post(state, now, reason, rule_id, points, extra)
        self.arm(state)

    # -- debits -------------------------------------------------------------

    def debit(
        self,
        state: CustomerState,
        now: Moment,
        wanted: int,
        reason: str,
        rule_id: str,
        extra: dict[str, Any] | None = None,
    ) -> int:
        """Take up to ``wanted`` points, oldest lots first; return what was taken.

        The lot of the event named in ``extra["lot"]`` is used first (a
        reversal takes back the points of its own purchase before others).
        """
        details = dict(extra or {})
        taken = min(wanted, state.points_balance)
        _consume(state.lots, taken, details.pop("lot", None))
        state.points_balance -= taken
        if taken:
            self._post(state, now, reason, rule_id, -taken, details)
        if taken < wanted:
            shortfall = {"wanted": wanted, "taken": taken, "shortfall": wanted - taken}
            now.decisions.append(
                Decision(
                    Kind.POINTS_SHORTFALL,
                    state.key,
                    now.at_us,
                    rule_id,
                    now.event.event_id,
                    reason,
                    shortfall,
                )
            )
        self.arm(state)
        return taken

    def redeem(
        self, state: CustomerState, now: Moment, purchase: PurchaseRecord
    ) -> None:
        """Spend the points tendered on a purchase; pass reward codes on."""
        event = now.event
        for index, redemption in enumerate(event.redemptions):
            rule_id = f"redeem#{index}"
            detail: dict[str, Any] = {"amount": str(redemption.amount)}
            if redemption.code is not None:
                detail |= {
                    "code": redemption.code,
                    "store": event.store,
                    "basket": str(event.total),
                }
                _notice(state, now, rule_id, "code", detail)
                continue
            if redemption.points <= 0:
                continue
            detail["points"] = redemption.points
            tender = f"{event.event_id}#{index}"
            honoured = state.tenders.get(tender)
            if honoured is None:
                honoured = redemption.points <= state.points_balance
                state.tenders[tender] = honoured
            if not honoured:
                detail |= {"status": "refused", "reason": INSUFFICIENT_POINTS}
                detail["balance"] = state.points_balance
                _notice(state, now, rule_id, "points", detail)
                continue
            # Taken even when a late event has since left too few points: the
            # till gave the discount, so what is missing is a shortfall.
            taken = self.debit(
                state, now, redemption.points, "redeem", f"points:{rule_id}"
            )
            purchase.points_redeemed += taken
            _notice(state, now, rule_id, "points", detail | {"status": "applied"})

    def reverse(
        self,
        state: CustomerState,
        now: Moment,
        purchase: PurchaseRecord,
        taken_back: Decimal,
    ) -> None:
        """Take back what a purchase earned, for the share a return refunds.

        ``taken_back`` is the money the return takes back from the purchase.
        """
        event = now.event
        basis = purchase.points_refund_basis + taken_back
        purchase.points_refund_basis = min(purchase.total, basis)
        is_full = purchase.points_refund_basis >= purchase.total
        wanted = self._spend_share(purchase) + _take_line_points(
            purchase, event.refunded_line_ids, is_full
        )
        if is_full:
            wanted, purchase.points_awarded = wanted + purchase.points_awarded, 0
        if wanted > 0:
            extra = {"lot": purchase.event_id, "purchase": purchase.event_id}
            self.debit(state, now, wanted, "reverse", "points:reverse", extra)
        restore = self.settings.restore_redeemed_on_full_refund
        if is_full and restore and purchase.points_redeemed:
            points, purchase.points_redeemed = purchase.points_redeemed, 0
            extra = {"purchase": purchase.event_id}
            self.credit(state, now, points, "restore", "points:restore", extra)

    def adjust(self, state: CustomerState, now: Moment) -> None:
        """Apply an operator's adjustment; a debit stops at zero."""
        delta, note = now.event.points_delta, {"note": now.event.note}
        if delta > 0:
            self.credit(state, now, delta, "adjust", "points:adjust", note)
        elif delta < 0:
            self.debit(state, now, -delta, "adjust", "points:adjust", note)

    # -- expiry -------------------------------------------------------------

    def expire(self, state: CustomerState, due_us: int) -> list[Decision]:
        """Write off what is left of every lot expiring at or before ``due_us``."""
        decisions: list[Decision] = []
        for lot in [t for t in state.lots if _expired(t, due_us)]:
            state.lots.remove(lot)
            state.points_balance -= lot.remaining
            assert lot.expires_us is not None
            decisions.append(
                _entry(
                    state,
                    lot.expires_us,
                    EXPIRY_TIMER,
                    lot.event_id,
                    "expire",
                    {"delta": -lot.remaining, "lot_at_us": lot.at_us},
                )
            )
        self.arm(state)
        return decisions

    def arm(self, state: CustomerState) -> None:
        """Point the expiry timer at the lot that expires first, if any."""
        expiring = [t for t in state.lots if t.expires_us is not None and t.remaining]
        if not expiring:
            state.timers.pop(EXPIRY_TIMER, None)
            return
        first = min(expiring, key=lambda lot: (lot.expires_us or 0, lot.at_us))
        assert first.expires_us is not None
        state.timers[EXPIRY_TIMER] = Timer(
            EXPIRY_TIMER, first.expires_us, first.event_id
        )

    # -- helpers --------------------------------------------------------------

    def _tagged_line_points(self, lines: tuple[Line, ...]) -> dict[str, int]:
        rates = self.settings.per_tagged_line
        found: dict[str, int] = {}
        for index, line in enumerate(lines):
            points = sum(rates.get(tag, 0) for tag in line.tags)
            if points:
                found[line.line_id or f"#{index}"] = points
        return found

    def _spend_share(self, purchase: PurchaseRecord) -> int:
        if not purchase.points or not purchase.total:
            return 0
        share = purchase.points_refund_basis / purchase.total
        target = int(
            (purchase.points * share).quantize(Decimal(1), rounding=ROUND_HALF_UP)
        )
        delta = target - purchase.points_reversed
        purchase.points_reversed = max(target, purchase.points_reversed)
        return max(delta, 0)

    def _expiry_us(self, local_us: int) -> int | None:
        days = self.settings.expire_after_days
        months = self.settings.expire_after_months
        if days is None and months is None:
            return None
        earned = _NAIVE_EPOCH + timedelta(microseconds=local_us)
        due = earned + timedelta(days=days) if days else _add_months(earned, months)
        return local_to_instant_us(
            (due - _NAIVE_EPOCH) // timedelta(microseconds=1), self.zone
        )

    def _post(
        self,
        state: CustomerState,
        now: Moment,
        reason: str,
        rule_id: str,
        delta: int,
        extra: dict[str, Any] | None,
    ) -> None:
        detail = {"delta": delta, "balance": state.points_balance, **(extra or {})}
        now.decisions.append(
            _entry(state, now.at_us, rule_id, now.event.event_id, reason, detail)
        )


def _entry(
    state: CustomerState,
    at_us: int,
    rule_id: str,
    event_id: str,
    reason: str,
    detail: dict[str, Any],
) -> Decision:
    detail.setdefault("balance", state.points_balance)
    return Decision(Kind.POINTS, state.key, at_us, rule_id, event_id, reason, detail)


def _notice(
    state: CustomerState,
    now: Moment,
    rule_id: str,
    subject: str,
    detail: dict[str, Any],
) -> None:
    now.decisions.append(
        Decision(
            Kind.REDEMPTION,
            state.key,
            now.at_us,
            rule_id,
            now.event.event_id,
            subject,
            detail,
        )
    )


def _consume(lots: list[Lot], points: int, first_event_id: str | None) -> None:
    """Take ``points`` from the lots: the named event's lot first, then FIFO."""
    order = sorted(lots, key=lambda lot: lot.event_id != first_event_id)
    for lot in order:
        if points <= 0:
            break
        taken = min(points, lot.remaining)
        lot.remaining -= taken
        points -= taken
    lots[:] = [lot for lot in lots if lot.remaining > 0]


def _take_line_points(
    purchase: PurchaseRecord, line_ids: tuple[str, ...], is_full: bool
) -> int:
    """Remove and return the tagged-line points a return takes back.

    A partial return that does not name its lines keeps them: nothing says
    which line came back.
    """
    held = purchase.line_points
    if not held:
        return 0
    keys = list(held) if is_full else line_ids
    return sum(held.pop(key, 0) for key in keys)


def _expired(lot: Lot, due_us: int) -> bool:
    return lot.expires_us is not None and lot.expires_us <= due_us


def _add_months(moment: datetime, months: int | None) -> datetime:
    """The same wall-clock time ``months`` later (the last day if shorter)."""
    index = moment.month - 1 + (months or 0)
    year, month = moment.year + index // 12, index % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)
