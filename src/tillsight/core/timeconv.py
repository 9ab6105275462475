"""Instants and wall-clock readings as integer microseconds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

DAY_US = 86_400_000_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_NAIVE_EPOCH = datetime(1970, 1, 1)
_US = timedelta(microseconds=1)


def instant_us(moment: datetime) -> int:
    """Microseconds since the epoch of an aware datetime, exactly."""
    return (moment - _EPOCH) // _US


def local_us(moment: datetime, zone: ZoneInfo) -> int:
    """The wall-clock reading of ``moment`` in ``zone``, as microseconds."""
    return (moment.astimezone(zone).replace(tzinfo=None) - _NAIVE_EPOCH) // _US


def local_to_instant_us(reading_us: int, zone: ZoneInfo) -> int:
    """The instant a wall-clock reading in ``zone`` names (first one, fold=0)."""
    naive = _NAIVE_EPOCH + timedelta(microseconds=reading_us)
    return instant_us(naive.replace(tzinfo=zone))


def from_instant_us(value: int) -> datetime:
    """An aware UTC datetime from microseconds since the epoch."""
    return _EPOCH + timedelta(microseconds=value)
