"""The engine: a customer's state and an event (or a clock) in, decisions out.

The precise meaning of every rule is DESIGN.md's, in short: events are applied
in (event time, event id) order; conditions on history are edge-triggered;
``no_purchase`` timers fire in event time; a linked return that refunds a
purchase in full stops it counting from the return on. Callers keep that order
(see ``tillsight.core.runner``); ``apply`` refuses an event that sorts before
what the state has already seen, because only a rebuild can place it.

``apply`` and ``fire_timers`` change the state they are given in place and
return the decisions; nothing here reads a clock or does I/O.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal

from tillsight.core.decisions import Decision, Kind
from tillsight.core.events import Event, EventType
from tillsight.core.points import EXPIRY_TIMER, PointsBook
from tillsight.core.programme import (
    Action,
    Conditions,
    Programme,
    Rule,
    TierBasis,
    Trigger,
    Window,
)
from tillsight.core.state import (
    TIMER_SUFFIX,
    CustomerState,
    PurchaseRecord,
    ReturnRecord,
    Timer,
)
from tillsight.core.timeconv import (
    DAY_US,
    from_instant_us,
    instant_us,
    local_to_instant_us,
    local_us,
)

#: Purchases are in instant order, and wall-clock readings can step back when
#: clocks go back (by an hour, at most three anywhere), so a backwards scan
#: over a day window only stops once it is this far before the window.
_WALL_CLOCK_SLACK_US = 3 * 3_600_000_000
_ZERO = Decimal(0)


class OutOfOrderError(ValueError):
    """An event sorts before what the state has already applied."""


@dataclass(slots=True)
class _Now:
    """The event being applied, with its times worked out once."""

    event: Event
    at_us: int
    local_us: int
    stage_before: str | None
    decisions: list[Decision] = field(default_factory=list)


class Engine:
    """Applies one programme to customer states."""

    def __init__(self, programme: Programme) -> None:
        self.programme = programme
        self.zone = programme.zone
        self._on_purchase = [r for r in programme.rules if r.on is Trigger.PURCHASE]
        self._on_return = [r for r in programme.rules if r.on is Trigger.RETURN]
        self._timers = [r for r in programme.rules if r.on is Trigger.NO_PURCHASE]
        self._stage_rules = [r for r in programme.rules if r.when.stage]
        self._looks_back = {
            r.id: r.when.has_history_conditions for r in programme.rules
        }
        self._looks_at_event = {
            r.id: r.when.model_copy(
                update={
                    "purchases": None,
                    "net_spend": None,
                    "largest_purchase": None,
                    "stage": (),
                }
            )
            != Conditions()
            for r in programme.rules
        }
        self._segments = {segment.id: segment for segment in programme.segments}
        self._rank = {stage.id: n for n, stage in enumerate(programme.stages)}
        self.points = PointsBook(programme)

    def new_state(self, key: str) -> CustomerState:
        return CustomerState(key=key)

    def apply(
        self, state: CustomerState, event: Event, at_us: int | None = None
    ) -> list[Decision]:
        """Apply one event; fire the timers that fall due strictly before it.

        ``at_us`` is the event's instant, if the caller has worked it out.
        """
        if at_us is None:
            at_us = instant_us(event.occurred_at)
        if state.is_late(at_us, event.event_id):
            raise OutOfOrderError(
                f"event {event.event_id!r} sorts before what customer "
                f"{state.key!r} has already applied; rebuild the customer instead"
            )
        decisions = self.fire_timers(state, before_us=at_us)
        now = _Now(event, at_us, local_us(event.occurred_at, self.zone), state.stage)
        if event.type is EventType.PURCHASE:
            self._apply_purchase(state, now)
        elif event.type is EventType.RETURN:
            self._apply_return(state, now)
        else:
            self.points.adjust(state, now)
        state.position_us, state.position_id = at_us, event.event_id
        self._describe_rewards(state, now.decisions)
        decisions.extend(now.decisions)
        return decisions

    def fire_timers(self, state: CustomerState, before_us: int) -> list[Decision]:
        """Fire every armed timer due strictly before ``before_us``, in due order.

        Firing may arm another timer (the next lot of points to expire), so
        the earliest due timer is taken again after each one.
        """
        decisions: list[Decision] = []
        while True:
            due = [t for t in state.timers.values() if t.due_us < before_us]
            if not due:
                return decisions
            timer = min(due, key=lambda t: (t.due_us, t.rule_id))
            decisions.extend(self._fire_timer(state, timer))

    def next_due_us(self, state: CustomerState) -> int | None:
        """When the customer's earliest armed timer falls due, if any."""
        return min((t.due_us for t in state.timers.values()), default=None)

    def replay(
        self,
        key: str,
        events: Iterable[Event],
        until_us: int | None = None,
        tenders: dict[str, bool] | None = None,
    ) -> tuple[CustomerState, list[Decision]]:
        """Build a customer from scratch from events sorted by (time, id).

        ``tenders`` are the answers already given to points tenders (see
        ``CustomerState.tenders``); the rebuild gives them again.
        """
        state = self.new_state(key)
        state.tenders = dict(tenders or {})
        decisions: list[Decision] = []
        for event in events:
            decisions.extend(self.apply(state, event))
        if until_us is not None:
            decisions.extend(self.fire_timers(state, before_us=until_us))
        return state, decisions

    # -- purchases and returns -------------------------------------------

    def _apply_purchase(self, state: CustomerState, now: _Now) -> None:
        event = now.event
        record = PurchaseRecord(event.event_id, now.at_us, now.local_us, event.total)
        for line in event.lines:
            if line.line_id is not None:
                left = record.lines_left = record.lines_left or {}
                left[line.line_id] = left.get(line.line_id, _ZERO) + line.total
        state.purchases.append(record)
        state.lifetime_net_spend += event.total
        self.points.redeem(state, now, record)
        self.points.earn(state, now, record)

        self._run_rules(state, now, self._on_purchase)
        self._arm_timers(state, now)
        self._update_tiers(state, now)
        self._leave_segments(state, now)

    def _apply_return(self, state: CustomerState, now: _Now) -> None:
        event = now.event
        linked = self._find_purchase(state, event.refunds_event_id)
        taken_back = self._taken_back(state, now, linked)
        state.returns.append(
            ReturnRecord(
                event.event_id,
                now.at_us,
                now.local_us,
                taken_back,
                linked.event_id if linked else None,
            )
        )
        state.lifetime_net_spend -= taken_back
        if linked is not None:
            self._refund_purchase(state, now, linked, taken_back)

        self._run_rules(state, now, self._on_return)
        self._update_tiers(state, now)
        self._leave_segments(state, now)

    def _taken_back(
        self, state: CustomerState, now: _Now, linked: PurchaseRecord | None
    ) -> Decimal:
        """Say how much of a return comes off lifetime net spend.

        A return linked to a sale takes back at most what is left of that
        sale and, when it names the sale's lines, of each of those lines. A
        linked return that finds no sale (another customer's, one from before
        the history begins, one that comes later in event time) counts as an
        unlinked return. Each of these leaves a ``return_mismatch``.
        """
        event = now.event
        sale = event.refunds_event_id
        if sale is None:
            return event.total
        detail: dict[str, object] = {"sale": sale, "refund": str(event.total)}
        if linked is None:
            subject, taken_back = "unknown_sale", event.total
        else:
            left = linked.total - linked.refunded
            wanted, lines = _claim_lines(linked, event)
            taken_back = min(wanted, left)
            detail["left_of_sale"] = str(left)
            if lines:
                subject = "lines_do_not_fit"
                detail["lines"] = lines
            elif event.total > left:
                subject = "more_than_the_sale"
            else:
                return taken_back
        detail["taken_back"] = str(taken_back)
        now.decisions.append(
            Decision(
                Kind.RETURN_MISMATCH,
                state.key,
                now.at_us,
                None,
                event.event_id,
                subject,
                detail,
            )
        )
        return taken_back

    def _find_purchase(
        self, state: CustomerState, event_id: str | None
    ) -> PurchaseRecord | None:
        if event_id is None:
            return None
        for purchase in reversed(state.purchases):
            if purchase.event_id == event_id:
                return purchase
        return None

    def _refund_purchase(
        self,
        state: CustomerState,
        now: _Now,
        purchase: PurchaseRecord,
        taken_back: Decimal,
    ) -> None:
        purchase.refunded = min(purchase.total, purchase.refunded + taken_back)
        self.points.reverse(state, now, purchase, taken_back)
        if purchase.counting and purchase.refunded >= purchase.total:
            purchase.counting = False
            self._arm_timers(state, now)

    # -- rewards ---------------------------------------------------------------

    def _describe_rewards(
        self, state: CustomerState, decisions: list[Decision]
    ) -> None:
        """Stamp each requested reward with its kind's settings and the stage.

        The stage is the customer's once the event (or timer) has been applied,
        so a win-back incentive is issued to a ``lapsed`` customer.
        """
        kinds = self.programme.rewards
        for decision in decisions:
            detail = decision.detail
            if decision.kind is not Kind.ACTION or detail is None:
                continue
            kind = kinds.get(detail["name"])
            if detail["action"] != "reward" or kind is None:
                continue
            detail["stage"] = state.stage
            detail["campaign"] = kind.campaign or detail["name"]
            detail["value"] = None if kind.value is None else str(kind.value)
            detail["offer"] = kind.offer
            detail["valid_days"] = kind.valid_days
            detail["holdout_percent"] = kind.holdout_percent
            expires_local = local_us(from_instant_us(decision.at_us), self.zone)
            expires_local += kind.valid_days * DAY_US
            detail["expires_us"] = local_to_instant_us(expires_local, self.zone)

    # -- rules --------------------------------------------------------------

    def _run_rules(self, state: CustomerState, now: _Now, rules: list[Rule]) -> None:
        fired = [rule for rule in rules if self._should_fire(state, now, rule)]
        for rule in fired:
            self._fire(state, now, rule)
        self._set_stage(state, now, fired)

    def _should_fire(self, state: CustomerState, now: _Now, rule: Rule) -> bool:
        if rule.once and rule.id in state.fired_once:
            return False
        conditions = rule.when
        if self._looks_back[rule.id]:
            holds_now = self._history_holds(state, now, conditions)
            held_before = state.held.get(rule.id, False)
            state.held[rule.id] = holds_now
            if not holds_now or held_before:
                return False
        return not self._looks_at_event[rule.id] or _event_holds(now.event, conditions)

    def _history_holds(
        self, state: CustomerState, now: _Now, conditions: Conditions
    ) -> bool:
        if conditions.stage and now.stage_before not in conditions.stage:
            return False
        if conditions.purchases is not None:
            count = self._count_purchases(state, now.local_us, conditions.purchases)
            if not conditions.purchases.holds(count):
                return False
        if conditions.net_spend is not None:
            spend = self._net_spend(state, now.local_us, conditions.net_spend)
            if not conditions.net_spend.holds(spend):
                return False
        if conditions.largest_purchase is not None:
            largest = self._largest(state, now.local_us, conditions.largest_purchase)
            if not conditions.largest_purchase.holds(largest):
                return False
        return True

    def _fire(self, state: CustomerState, now: _Now, rule: Rule) -> None:
        event_id = now.event.event_id
        if rule.once:
            state.fired_once.add(rule.id)
        now.decisions.append(
            Decision(Kind.RULE_FIRED, state.key, now.at_us, rule.id, event_id)
        )
        if rule.moment is not None:
            now.decisions.append(
                Decision(
                    Kind.MOMENT, state.key, now.at_us, rule.id, event_id, rule.moment
                )
            )
        if rule.award_points:
            self.points.award(state, now, rule.award_points, rule.id)
            purchase = state.purchases[-1] if state.purchases else None
            if purchase is not None and purchase.event_id == event_id:
                purchase.points_awarded += rule.award_points
        self._request(state, now.decisions, now.at_us, rule.id, event_id, rule.actions)
        if rule.enter_segment is not None:
            self._enter_segment(state, now, rule.enter_segment, rule.id)

    def _set_stage(self, state: CustomerState, now: _Now, fired: list[Rule]) -> None:
        setters = [rule for rule in fired if rule.set_stage or rule.clear_stage]
        if not setters:
            return
        winner = max(setters, key=lambda rule: self._rank.get(rule.set_stage or "", -1))
        self._change_stage(
            state,
            now.decisions,
            now.at_us,
            winner.id,
            now.event.event_id,
            winner.set_stage,
        )

    def _change_stage(
        self,
        state: CustomerState,
        decisions: list[Decision],
        at_us: int,
        rule_id: str,
        event_id: str,
        stage: str | None,
    ) -> None:
        if stage == state.stage:
            return
        decisions.append(
            Decision(
                Kind.STAGE_CHANGED,
                state.key,
                at_us,
                rule_id,
                event_id,
                stage or "",
                {"from": state.stage, "to": stage},
            )
        )
        state.stage = stage
        self._forget_stage_conditions(state)

    def _forget_stage_conditions(self, state: CustomerState) -> None:
        """Reset the edge of every rule whose stage condition stopped holding.

        A stage condition holds while the customer is in the stage; when a rule
        or a timer moves them out, it stopped holding, so the rule fires again
        the next time it is looked at and holds (a second lapse is won back).
        """
        for rule in self._stage_rules:
            if state.stage not in rule.when.stage:
                state.held[rule.id] = False

    def _request(
        self,
        state: CustomerState,
        decisions: list[Decision],
        at_us: int,
        rule_id: str,
        event_id: str,
        actions: Iterable[Action],
    ) -> None:
        for action in actions:
            decisions.append(
                Decision(
                    Kind.ACTION,
                    state.key,
                    at_us,
                    rule_id,
                    event_id,
                    f"{action.action}:{action.name}",
                    {**action.params, "action": action.action, "name": action.name},
                )
            )

    # -- segments and tiers -------------------------------------------------

    def _enter_segment(
        self, state: CustomerState, now: _Now, segment_id: str, rule_id: str
    ) -> None:
        if segment_id in state.segments:
            return
        state.segments[segment_id] = now.at_us
        event_id = now.event.event_id
        now.decisions.append(
            Decision(
                Kind.SEGMENT_ENTERED,
                state.key,
                now.at_us,
                rule_id,
                event_id,
                segment_id,
            )
        )
        segment = self._segments[segment_id]
        self._request(
            state, now.decisions, now.at_us, rule_id, event_id, segment.on_enter
        )

    def _leave_segments(self, state: CustomerState, now: _Now) -> None:
        for segment_id in list(state.segments):
            leave_when = self._segments[segment_id].leave_when
            if leave_when is None or not self._history_holds(state, now, leave_when):
                continue
            del state.segments[segment_id]
            now.decisions.append(
                Decision(
                    Kind.SEGMENT_LEFT,
                    state.key,
                    now.at_us,
                    None,
                    now.event.event_id,
                    segment_id,
                )
            )

    def _update_tiers(self, state: CustomerState, now: _Now) -> None:
        tiers = self.programme.tiers
        if not tiers.levels:
            return
        if tiers.basis is TierBasis.LIFETIME_NET_SPEND:
            spend = state.lifetime_net_spend
        else:
            window = Window(within_days=tiers.window_days, at_least=Decimal(0))
            spend = self._net_spend(state, now.local_us, window)
        self._requalify(state, now, spend)
        reached = [level for level in tiers.levels if spend >= level.min_spend]
        if not reached or reached[-1].id in state.tiers:
            return
        level = reached[-1]
        rule_id = f"tier:{level.id}"
        event_id = now.event.event_id
        state.tiers[level.id] = now.at_us
        state.tier = level.id
        now.decisions.append(
            Decision(Kind.RULE_FIRED, state.key, now.at_us, rule_id, event_id)
        )
        now.decisions.append(
            Decision(
                Kind.TIER_ENTERED, state.key, now.at_us, rule_id, event_id, level.id
            )
        )
        self._request(
            state, now.decisions, now.at_us, rule_id, event_id, level.on_enter
        )

    def _requalify(self, state: CustomerState, now: _Now, spend: Decimal) -> None:
        period = self.programme.tiers.requalify_after_days
        if period is None:
            return
        for level in self.programme.tiers.levels:
            entered = state.tiers.get(level.id)
            if entered is None or now.at_us - entered < period * DAY_US:
                continue
            if spend < level.min_spend:
                del state.tiers[level.id]
        held = [lv.id for lv in self.programme.tiers.levels if lv.id in state.tiers]
        state.tier = held[-1] if held else None

    # -- timers -------------------------------------------------------------

    def _arm_timers(self, state: CustomerState, now: _Now) -> None:
        """Point each inactivity timer at the last purchase that still counts.

        "No purchase for D days" is edge-triggered like any rule: it fires
        when it becomes true. A purchase makes it false until D days after
        it. A full refund can take the clock back: to a purchase under D days
        old, and the timer is due D days after that one; or to none within D
        days, and the condition becomes true at the refund itself, so the
        timer fires there, named after the refund, if it was still waiting
        (a customer won back by the refunded sale lapses again). If it had
        already fired (the customer lapsed and stayed so), nothing changes.
        A customer with no purchase that counts has nothing to lapse from.
        """
        last = state.last_counting_purchase
        for rule in self._timers:
            waiting = state.timers.pop(rule.id, None)
            if last is None:
                continue
            if waiting is not None and waiting.cause_event_id == last.event_id:
                state.timers[rule.id] = waiting
                continue
            assert rule.after_days is not None
            due_local = last.local_us + rule.after_days * DAY_US
            due_us = local_to_instant_us(due_local, self.zone)
            if due_us > now.at_us:
                if _timer_key(rule.id, last.event_id) not in state.fired_once:
                    state.timers[rule.id] = Timer(rule.id, due_us, last.event_id)
            elif waiting is not None:
                state.timers[rule.id] = Timer(rule.id, now.at_us, now.event.event_id)

    def _fire_timer(self, state: CustomerState, timer: Timer) -> list[Decision]:
        if timer.rule_id == EXPIRY_TIMER:
            state.position_us, state.position_id = timer.due_us, TIMER_SUFFIX
            return self.points.expire(state, timer.due_us)
        rule = next(r for r in self._timers if r.id == timer.rule_id)
        del state.timers[timer.rule_id]
        state.fired_once.add(_timer_key(rule.id, timer.cause_event_id))
        decisions = [
            Decision(
                Kind.RULE_FIRED, state.key, timer.due_us, rule.id, timer.cause_event_id
            )
        ]
        self._request(
            state, decisions, timer.due_us, rule.id, timer.cause_event_id, rule.actions
        )
        if rule.set_stage is not None or rule.clear_stage:
            self._change_stage(
                state,
                decisions,
                timer.due_us,
                rule.id,
                timer.cause_event_id,
                rule.set_stage,
            )
        state.position_us, state.position_id = timer.due_us, TIMER_SUFFIX
        self._describe_rewards(state, decisions)
        return decisions

    # -- history ------------------------------------------------------------

    def _count_purchases(
        self, state: CustomerState, now_local: int, window: Window
    ) -> int:
        if window.within_days is None:
            return state.purchase_count
        since = now_local - window.within_days * DAY_US
        count = 0
        for purchase in reversed(state.purchases):
            if purchase.local_us < since - _WALL_CLOCK_SLACK_US:
                break
            count += purchase.counting and purchase.local_us >= since
        return count

    def _net_spend(
        self, state: CustomerState, now_local: int, window: Window
    ) -> Decimal:
        if window.within_days is None:
            return state.lifetime_net_spend
        since = now_local - window.within_days * DAY_US
        spend = sum((p.net for p in state.purchases if p.local_us >= since), Decimal(0))
        unlinked = sum(
            (
                r.total
                for r in state.returns
                if r.local_us >= since and r.linked_event_id is None
            ),
            Decimal(0),
        )
        return spend - unlinked

    def _largest(self, state: CustomerState, now_local: int, window: Window) -> Decimal:
        since = (
            -(2**62)
            if window.within_days is None
            else (now_local - window.within_days * DAY_US)
        )
        return max(
            (p.net for p in state.purchases if p.counting and p.local_us >= since),
            default=Decimal(0),
        )


def _event_holds(event: Event, conditions: Conditions) -> bool:
    if conditions.total is not None and not conditions.total.holds(event.total):
        return False
    if conditions.line_tagged and not event.tags.intersection(conditions.line_tagged):
        return False
    if conditions.store and event.store not in conditions.store:
        return False
    return not (conditions.channel and event.channel not in conditions.channel)


def _timer_key(rule_id: str, cause_event_id: str) -> str:
    return f"{rule_id}@{cause_event_id}"


def _claim_lines(sale: PurchaseRecord, event: Event) -> tuple[Decimal, dict[str, str]]:
    """What a return naming the sale's lines may take back, and what does not fit.

    Each named line gives back at most what is left of it: a line the sale
    does not have, or one already refunded, gives back nothing. The return's
    lines that carry a named id say how much each is; when none does, the
    return's total is spread over the named lines in turn. The return's other
    lines are taken back as they are, within what is left of the sale. What
    is taken is subtracted from the sale's lines. A return that names no
    lines, or a sale whose lines carry no ids, is bounded in total alone.
    """
    lines_left = sale.lines_left
    if not event.refunded_line_ids or lines_left is None:
        return event.total, {}
    named = dict.fromkeys(event.refunded_line_ids)
    amounts: dict[str, Decimal] = {}
    for line in event.lines:
        if line.line_id in named:
            amounts[line.line_id] = amounts.get(line.line_id, _ZERO) + line.total
    unnamed = event.total - sum(amounts.values(), _ZERO)
    pool = event.total if not amounts else None
    taken = _ZERO if pool is not None else max(unnamed, _ZERO)
    problems: dict[str, str] = {}
    for line_id in named:
        left = lines_left.get(line_id)
        if left is None:
            problems[line_id] = "not a line of the sale"
            continue
        if left <= 0:
            problems[line_id] = "already refunded"
            continue
        wanted = amounts.get(line_id, _ZERO) if pool is None else pool
        got = min(wanted, left)
        if pool is None and got < wanted:
            problems[line_id] = f"more than the {left} left of it"
        lines_left[line_id] = left - got
        taken += got
        if pool is not None:
            pool -= got
    if pool:
        problems["(rest)"] = f"{pool} more than the named lines had left"
    return taken, problems
