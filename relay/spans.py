"""Times as admins type and read them: `24h` / `7d` spans, short ages, display stamps — pure."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, tzinfo

from relay.clock import DISPLAY_ZONE

_SPAN = re.compile(r"^(\d{1,6})([mhdw])$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_since(text: str, now: datetime) -> datetime:
    """`30m`, `24h`, `7d`, `2w` (ago), or an ISO date/time (UTC unless it says otherwise).

    Raises ValueError with a message that says what is accepted.
    """
    match = _SPAN.match(text.strip())
    if match:
        try:
            return now - timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
        except OverflowError:  # 999999w reaches before year 1
            msg = f"{text!r} reaches further back than dates go; try a shorter span such as 52w"
            raise ValueError(msg) from None
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        msg = f"{text!r} is neither a span such as 24h / 7d nor an ISO date such as 2026-11-01"
        raise ValueError(msg) from None
    when = when if when.tzinfo else when.replace(tzinfo=UTC)
    try:
        return when.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00+23:59 is before year 1 in UTC
        msg = f"{text!r} is outside the dates relay can compare; try a date such as 2026-11-01"
        raise ValueError(msg) from None


def human_age(span: timedelta) -> str:
    """A short age: 45s, 12m, 3h, 5d."""
    seconds = max(0, int(span.total_seconds()))
    for size, unit in ((86400, "d"), (3600, "h"), (60, "m")):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def stamp(value: datetime | None) -> str:
    """UTC, for the CLI and machines."""
    return "" if value is None else value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def zoned(value: datetime | None, zone: tzinfo) -> str:
    """In RELAY_TIMEZONE with its abbreviation, for the CLI's tables (issue 10)."""
    return "" if value is None else value.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S %Z")


def local(value: datetime | None) -> str:
    """Europe/Paris, for people reading the admin pages."""
    return "" if value is None else value.astimezone(DISPLAY_ZONE).strftime("%Y-%m-%d %H:%M:%S")
