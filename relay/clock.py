"""The one source of "now": aware UTC datetimes, injectable so tests move time by hand."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

Clock = Callable[[], datetime]

#: Where sales read the emails: times shown to people are in this zone.
DISPLAY_ZONE = ZoneInfo("Europe/Paris")


def utcnow() -> datetime:
    """The system clock, as an aware UTC datetime (never naive: DTZ rules enforce it)."""
    return datetime.now(UTC)


def as_utc(value: datetime) -> datetime:
    """Databases such as SQLite hand back naive datetimes; relay stores UTC, so tag them."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)
