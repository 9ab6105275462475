"""What the engine decides. Each decision names its rule and its event."""

from __future__ import annotations

import enum
import hashlib
from dataclasses import dataclass
from typing import Any


class Kind(enum.StrEnum):
    RULE_FIRED = "rule_fired"
    STAGE_CHANGED = "stage_changed"
    SEGMENT_ENTERED = "segment_entered"
    SEGMENT_LEFT = "segment_left"
    TIER_ENTERED = "tier_entered"
    MOMENT = "moment"
    ACTION = "action"
    POINTS = "points"
    REDEMPTION = "redemption"
    POINTS_SHORTFALL = "points_shortfall"
    RETURN_MISMATCH = "return_mismatch"


@dataclass(frozen=True, slots=True)
class Decision:
    """One thing the engine decided for a customer.

    ``event_id`` is the event that caused it; for a timer, the purchase that
    armed it. ``subject`` is the stage, segment, tier, moment or action name.
    """

    kind: Kind
    customer_key: str
    at_us: int
    rule_id: str | None
    event_id: str | None
    subject: str = ""
    detail: dict[str, Any] | None = None

    @property
    def identity(self) -> tuple[str, str, str, str, str, int]:
        """What makes two decisions the same decision (for de-duplication)."""
        return (
            self.customer_key,
            self.kind.value,
            self.rule_id or "",
            self.event_id or "",
            self.subject,
            self.at_us,
        )

    @property
    def idempotency_key(self) -> str:
        """A stable key that delivery channels pass on to providers."""
        raw = "|".join(str(part) for part in self.identity)
        return hashlib.sha256(raw.encode()).hexdigest()[:40]
