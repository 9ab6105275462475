"""The programme: stages, segments, tiers, points and the rules between them.

These models are what a programme file becomes once it has been read and
checked (see ``tillsight.programme_file``). The engine compiles them once.

Every number in a programme has bounds, so that a programme that loads also
replays: the engine works out dates, points and amounts from these numbers
and must never meet one that overflows a date or a database column.

- Day counts (``after_days``, ``within_days``, ``valid_days``, ...) are 1 to
  ``LONGEST_DAYS`` (100 years), months 1 to ``LONGEST_MONTHS`` (100 years).
  Events are dated from 1900 to a day past the clock of their import, so a
  date worked out from one stays inside the years Python can hold (to 9999).
- Points given at once (``award_points``, ``per_tagged_line``) are 1 to
  ``MOST_POINTS``; balances are signed 64-bit integers, which hold millions
  of such awards. ``per_currency_unit`` is 0 to ``MOST_POINTS_PER_UNIT``: an
  event's total is under 10^9, so one purchase earns at most ``MOST_POINTS``.
- Money and the bounds of a comparison are finite decimals (never NaN or
  infinity) of at most ``DECIMAL_PLACES`` places and at most ``MOST_MONEY``
  in size.
"""

from __future__ import annotations

import enum
from decimal import Decimal
from typing import Annotated, Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

LONGEST_DAYS = 36_525
LONGEST_MONTHS = 1_200
MOST_POINTS = 10**12
MOST_POINTS_PER_UNIT = Decimal(1_000)
MOST_MONEY = Decimal(10**12)
DECIMAL_PLACES = 6

_Number = TypeVar("_Number", int, Decimal)


def _number_problem(
    value: int | Decimal, least: int | Decimal, most: int | Decimal, unit: str
) -> str | None:
    """What is wrong with a number of a programme, or None if nothing is.

    Every number setting is checked here, so that each says what is wrong in
    the same words.
    """
    if isinstance(value, Decimal) and not value.is_finite():
        return "must be a finite decimal number, not NaN or infinity"
    if not least <= value <= most:
        return f"must be from {least:,} to {most:,}{unit}"
    # Within the bounds, rounding to the places stays exact and cannot raise.
    if isinstance(value, Decimal) and value != round(value, DECIMAL_PLACES):
        return f"must have at most {DECIMAL_PLACES} decimal places"
    return None


def _within(least: int | Decimal, most: int | Decimal, unit: str) -> AfterValidator:
    """Check that a number is finite, from ``least`` to ``most``, and not too fine."""

    def check(value: _Number) -> _Number:
        problem = _number_problem(value, least, most, unit)
        if problem is not None:
            raise ValueError(problem)
        return value

    return AfterValidator(check)


def _plain_params(params: dict[str, Any]) -> dict[str, Any]:
    """Check that action params are text, whole numbers, booleans and nests of them.

    They go into the outbox as JSON, which has no exact decimals and no
    integers past 64 bits.
    """
    pending: list[tuple[str, Any]] = list(params.items())
    while pending:
        key, value = pending.pop(0)
        if isinstance(value, dict):
            if not all(isinstance(inner, str) for inner in value):
                raise ValueError(f"{key}: the keys of a mapping must be text")
            pending += [(f"{key}.{inner}", item) for inner, item in value.items()]
        elif isinstance(value, list):
            pending += [(f"{key}.{index}", item) for index, item in enumerate(value)]
        elif isinstance(value, int) and not isinstance(value, bool):
            problem = _number_problem(value, -(2**63), 2**63 - 1, "")
            if problem is not None:
                raise ValueError(f"{key}: {problem}")
        elif value is not None and not isinstance(value, str | bool):
            raise ValueError(
                f"{key}: {value} must be text, a whole number, true or false "
                "(put a decimal or a date in quotes)"
            )
    return params


Name = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_\-]*$", max_length=64)]
Days = Annotated[int, _within(1, LONGEST_DAYS, " days (100 years)")]
Months = Annotated[int, _within(1, LONGEST_MONTHS, " months (100 years)")]
HoldoutPercent = Annotated[int, _within(0, 90, " percent")]
PointCount = Annotated[int, _within(1, MOST_POINTS, " points")]
PointRate = Annotated[
    Decimal,
    Field(allow_inf_nan=True),
    _within(0, MOST_POINTS_PER_UNIT, " points per unit of currency"),
]
Amount = Annotated[Decimal, Field(allow_inf_nan=True), _within(0, MOST_MONEY, "")]
Threshold = Annotated[
    Decimal, Field(allow_inf_nan=True), _within(-MOST_MONEY, MOST_MONEY, "")
]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Trigger(enum.StrEnum):
    """What makes the engine look at a rule."""

    PURCHASE = "purchase"
    RETURN = "return"
    NO_PURCHASE = "no_purchase"


#: Keys of an action's detail that the engine writes: a param may not take
#: them, or the outbox would read a different action (or reward) than asked.
_ACTION_KEYS = frozenset({"action", "name"})
_REWARD_KEYS = frozenset(
    {"stage", "campaign", "value", "offer", "valid_days", "holdout_percent"}
    | {"expires_us"}
)


class Action(_Model):
    """Something to do for the customer, delivered later through the outbox."""

    action: Name
    name: Name
    params: Annotated[dict[str, Any], AfterValidator(_plain_params)] = Field(
        default_factory=dict
    )

    @model_validator(mode="after")
    def _own_keys(self) -> Action:
        reserved = _ACTION_KEYS | (_REWARD_KEYS if self.action == "reward" else set())
        taken = sorted(reserved & set(self.params))
        if taken:
            raise ValueError(
                f"params: {', '.join(taken)} {'is' if len(taken) == 1 else 'are'} "
                "set by the engine, not by a param; give it another name"
                + (
                    " (a reward's settings belong under rewards:)"
                    if set(taken) & _REWARD_KEYS
                    else ""
                )
            )
        return self


class Stage(_Model):
    id: Name
    label: str = ""


class Segment(_Model):
    """A label beside the stage. Entered once (with its ``on_enter`` actions);
    left only when ``leave_when`` (history conditions) holds after an event."""

    id: Name
    label: str = ""
    on_enter: tuple[Action, ...] = ()
    leave_when: Conditions | None = None


class TierLevel(_Model):
    id: Name
    label: str = ""
    min_spend: Amount
    on_enter: tuple[Action, ...] = ()


class TierBasis(enum.StrEnum):
    LIFETIME_NET_SPEND = "lifetime_net_spend"
    ROLLING_NET_SPEND = "rolling_net_spend"


class Tiers(_Model):
    """Tiers from spend; each level is entered once per customer unless
    ``requalify_after_days`` says a tier must be earned again."""

    basis: TierBasis = TierBasis.LIFETIME_NET_SPEND
    window_days: Days | None = None
    requalify_after_days: Days | None = None
    levels: tuple[TierLevel, ...] = ()

    @model_validator(mode="after")
    def _window_matches_basis(self) -> Tiers:
        rolling = self.basis is TierBasis.ROLLING_NET_SPEND
        if rolling and self.window_days is None:
            raise ValueError("basis rolling_net_spend needs window_days")
        if not rolling and self.window_days is not None:
            raise ValueError("window_days only applies to basis rolling_net_spend")
        spends = [level.min_spend for level in self.levels]
        if spends != sorted(spends) or len(set(spends)) != len(spends):
            raise ValueError("levels must be listed from the lowest min_spend up")
        return self


class Rounding(enum.StrEnum):
    DOWN = "down"
    HALF_UP = "half_up"
    UP = "up"


class Points(_Model):
    """How purchases earn points; points are whole numbers, money is Decimal.

    ``per_currency_unit`` is earned on what was paid in money (the total less
    reward codes and points tendered), rounded once per purchase by
    ``rounding``. ``per_tagged_line`` adds points for each line carrying a tag.
    Points earned on one day form a lot that expires, first in first out,
    ``expire_after_days`` or ``expire_after_months`` later (wall clock of the
    programme's zone); without either they never expire. A return that would
    take the balance below zero takes it to zero and records the shortfall.
    """

    per_currency_unit: PointRate = Decimal(0)
    rounding: Rounding = Rounding.DOWN
    per_tagged_line: dict[str, PointCount] = Field(default_factory=dict)
    expire_after_days: Days | None = None
    expire_after_months: Months | None = None
    restore_redeemed_on_full_refund: bool = True

    @model_validator(mode="after")
    def _one_expiry(self) -> Points:
        if self.expire_after_days is not None and self.expire_after_months:
            raise ValueError("give expire_after_days or expire_after_months, not both")
        return self


class RewardKind(_Model):
    """What a reward of one kind is worth, how long it lasts, who is held out.

    ``value`` is money off; a kind without one is an offer described by
    ``offer``. ``holdout_percent`` of eligible customers (chosen by a hash of
    customer and campaign, so always the same ones) get nothing and are
    recorded as held out, so that the campaign's lift can be measured.
    """

    label: str = ""
    value: Amount | None = None
    offer: str = ""
    valid_days: Days = 30
    campaign: Name | None = None
    holdout_percent: HoldoutPercent = 0


class Count(_Model):
    """A comparison: at least and/or at most."""

    at_least: Threshold | None = None
    at_most: Threshold | None = None
    over: Threshold | None = None
    under: Threshold | None = None

    @model_validator(mode="after")
    def _has_a_bound(self) -> Count:
        bounds = (self.at_least, self.at_most, self.over, self.under)
        if all(bound is None for bound in bounds):
            raise ValueError("give at least one of at_least, at_most, over, under")
        return self

    def holds(self, value: Decimal | int) -> bool:
        """Tell whether ``value`` is within every bound given."""
        return not (
            (self.at_least is not None and value < self.at_least)
            or (self.at_most is not None and value > self.at_most)
            or (self.over is not None and value <= self.over)
            or (self.under is not None and value >= self.under)
        )


class Window(Count):
    """A comparison over the customer's history, optionally within N days."""

    within_days: Days | None = None


class Conditions(_Model):
    """Everything under ``when``; all given conditions must hold.

    ``total``, ``line_tagged``, ``store`` and ``channel`` look at the event
    itself; the others look at the customer's history and are edge-triggered.
    """

    total: Count | None = None
    line_tagged: tuple[str, ...] = ()
    store: tuple[str, ...] = ()
    channel: tuple[str, ...] = ()
    purchases: Window | None = None
    net_spend: Window | None = None
    largest_purchase: Window | None = None
    stage: tuple[str | None, ...] = ()

    @property
    def has_history_conditions(self) -> bool:
        return bool(
            self.purchases or self.net_spend or self.largest_purchase or self.stage
        )


class Rule(_Model):
    id: Name
    label: str = ""
    on: Trigger
    when: Conditions = Field(default_factory=Conditions)
    after_days: Days | None = None
    once: bool = False
    set_stage: str | None = None
    clear_stage: bool = False
    enter_segment: str | None = None
    moment: Name | None = None
    award_points: PointCount | None = None
    actions: tuple[Action, ...] = ()

    @model_validator(mode="after")
    def _timer_fields(self) -> Rule:
        is_timer = self.on is Trigger.NO_PURCHASE
        if is_timer and self.after_days is None:
            raise ValueError("a no_purchase rule needs after_days")
        if not is_timer and self.after_days is not None:
            raise ValueError("after_days only applies to on: no_purchase")
        if is_timer and self.when != Conditions():
            raise ValueError("a no_purchase rule takes no conditions under when")
        if self.set_stage is not None and self.clear_stage:
            raise ValueError("set_stage and clear_stage cannot both be given")
        return self


class Programme(_Model):
    """A whole programme. Stages are listed in order of precedence: when rules
    on one event set different stages, the one listed last wins."""

    name: str
    currency: Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]
    timezone: str
    stages: tuple[Stage, ...]
    segments: tuple[Segment, ...] = ()
    tiers: Tiers = Field(default_factory=Tiers)
    points: Points = Field(default_factory=Points)
    rewards: dict[Name, RewardKind] = Field(default_factory=dict)
    rules: tuple[Rule, ...]

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @model_validator(mode="after")
    def _references_exist(self) -> Programme:
        stage_ids = _unique("stage", [stage.id for stage in self.stages])
        segment_ids = _unique("segment", [seg.id for seg in self.segments])
        _unique("rule", [rule.id for rule in self.rules])
        _unique("tier", [level.id for level in self.tiers.levels])
        for index, rule in enumerate(self.rules):
            _check_rule_refs(index, rule, stage_ids, segment_ids)
        _check_reward_kinds(self)
        return self

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def stage_rank(self, stage: str | None) -> int:
        """Precedence of a stage: its position in ``stages`` (-1 for none)."""
        for index, candidate in enumerate(self.stages):
            if candidate.id == stage:
                return index
        return -1


def _unique(kind: str, ids: list[str]) -> set[str]:
    seen: set[str] = set()
    for item in ids:
        if item in seen:
            raise ValueError(f"{kind} id {item!r} is defined twice")
        seen.add(item)
    return seen


def _check_rule_refs(
    index: int, rule: Rule, stage_ids: set[str], segment_ids: set[str]
) -> None:
    """Check that a rule names stages and segments that exist.

    Messages start with ``@path:`` so that the file reader can point at the line.
    """
    where = f"@rules.{index}"
    if rule.set_stage is not None and rule.set_stage not in stage_ids:
        raise ValueError(
            f"{where}.set_stage: rule {rule.id!r} sets stage {rule.set_stage!r}, "
            f"which is not one of the stages {sorted(stage_ids)}"
        )
    if rule.enter_segment is not None and rule.enter_segment not in segment_ids:
        raise ValueError(
            f"{where}.enter_segment: rule {rule.id!r} names segment "
            f"{rule.enter_segment!r}, which is not one of {sorted(segment_ids)}"
        )
    for stage in rule.when.stage:
        if stage is not None and stage not in stage_ids:
            raise ValueError(
                f"{where}.when.stage: rule {rule.id!r} names unknown stage {stage!r}"
            )


def _check_reward_kinds(programme: Programme) -> None:
    """Check that every ``reward`` action names a kind under ``rewards``."""
    actions = [a for rule in programme.rules for a in rule.actions]
    actions += [a for segment in programme.segments for a in segment.on_enter]
    actions += [a for level in programme.tiers.levels for a in level.on_enter]
    for action in actions:
        if action.action == "reward" and action.name not in programme.rewards:
            raise ValueError(
                f"@rewards: reward {action.name!r} is asked for but not described "
                f"under rewards (known: {sorted(programme.rewards)})"
            )


Segment.model_rebuild()
Programme.model_rebuild()
