"""Sliding-window counters in process memory: constant memory per key, microseconds per hit.

Pure: the caller passes ``now`` (seconds); nothing here reads a clock or does I/O. This is the
same approximation as the `limits` library's sliding-window-counter strategy (which relay uses
through Redis when several instances share counters): each key keeps the count of the current
fixed window and of the previous one, and the previous count is weighted by how much of it the
sliding window still covers. The `limits` memory storage costs about 25 µs per hit through its
async locks and expiry timers; a flood is answered at the speed of this dict instead.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

#: Drop idle keys every this many hits (a key idle for two windows counts nothing any more).
SWEEP_EVERY = 4096
#: Seconds in each unit of a rate limit string (a month is 30 days and a year 12 such months,
#: as the `limits` library counts them).
UNITS = {
    "second": 1,
    "minute": 60,
    "hour": 3600,
    "day": 86_400,
    "month": 30 * 86_400,
    "year": 360 * 86_400,
}
#: One item: "30/minute", "30 per minute", "30/5 minutes", "30 per 5 minutes".
_ITEM = r"\s*([0-9]+)\s*(?:/|per)\s*([0-9]+)?\s*([a-z]+)\s*"
_ONE_ITEM = re.compile(_ITEM, re.IGNORECASE)
#: Items separated by one of , ; | (the `limits` grammar also allows a ':' before the separator)
_ITEMS = re.compile(rf"^{_ITEM}(?::?[,;|]{_ITEM})*$", re.IGNORECASE)


@dataclass(frozen=True)
class Limit:
    """At most `amount` hits per `seconds` (one item of "30/minute;300/hour")."""

    amount: int
    seconds: int


def parse_limits(text: str) -> tuple[Limit, ...]:
    """ "30/minute;300/hour" → its limits; ValueError if it is not one.

    The notation of the `limits` library (what RELAY_RATE_LIMIT_* always accepted), parsed here
    so that relay without Redis never imports that library: tests/defence/test_windows.py
    checks this parser against the library's on generated strings.
    """
    if not _ITEMS.match(text):
        msg = f"couldn't parse rate limit string {text!r}"
        raise ValueError(msg)
    out = []
    for part in re.split(r"[,;|]", text):
        match = _ONE_ITEM.match(part)
        if match is None:
            continue
        amount, multiples, unit = match.groups()
        seconds = UNITS.get(unit.lower().removesuffix("s"), 0)  # "minutes" is "minute"
        if not seconds:
            msg = f"no unit matched for {unit!r}"
            raise ValueError(msg)
        out.append(Limit(int(amount), seconds * (int(multiples or 0) or 1)))
    return tuple(out)


class _Counter:
    __slots__ = ("current", "previous", "seconds", "window")

    def __init__(self, window: int, seconds: int) -> None:
        self.window = window
        self.seconds = seconds
        self.current = 0
        self.previous = 0


def _weighted(counter: _Counter, limit: Limit, now: float) -> float:
    elapsed = now / limit.seconds - counter.window  # fraction of the current window gone by
    return counter.previous * (1.0 - elapsed) + counter.current


def retry_after(counter_current: int, counter_previous: int, limit: Limit, now: float) -> int:
    """Whole seconds until one more hit would be allowed (at least 1, at most the window)."""
    fraction = now / limit.seconds % 1.0
    room = limit.amount - 1 - counter_current
    if counter_previous and room >= 0:
        # allowed once previous * (1 - f) <= room, later in this same window
        wait = (1.0 - room / counter_previous - fraction) * limit.seconds
    elif counter_current:
        # the current window must become the previous one and fade enough
        fade = max(0.0, 1.0 - (limit.amount - 1) / counter_current)
        wait = (1.0 - fraction + fade) * limit.seconds
    else:
        wait = 1.0
    return max(1, min(limit.seconds, math.ceil(wait)))


class MemoryWindows:
    """Counters for any number of keys; `hit` counts and answers, `test` only answers."""

    def __init__(self) -> None:
        self._counters: dict[tuple[object, ...], _Counter] = {}
        self._hits = 0

    def _counter(self, key: tuple[object, ...], limit: Limit, now: float) -> _Counter:
        window = int(now // limit.seconds)
        counter = self._counters.get(key)
        if counter is None:
            counter = self._counters[key] = _Counter(window, limit.seconds)
        elif counter.window != window:
            counter.previous = counter.current if counter.window == window - 1 else 0
            counter.current = 0
            counter.window = window
        return counter

    def hit(self, key: tuple[object, ...], limit: Limit, now: float) -> int:
        """Count one hit under `limit`: 0 if allowed, else the seconds to wait (not counted)."""
        self._hits += 1
        if self._hits % SWEEP_EVERY == 0:
            self.sweep(now)
        counter = self._counter((*key, limit), limit, now)
        if _weighted(counter, limit, now) + 1 > limit.amount:
            return retry_after(counter.current, counter.previous, limit, now)
        counter.current += 1
        return 0

    def test(self, key: tuple[object, ...], limit: Limit, now: float) -> bool:
        """Whether one more hit would be allowed, without counting it."""
        counter = self._counter((*key, limit), limit, now)
        return _weighted(counter, limit, now) + 1 <= limit.amount

    def sweep(self, now: float) -> None:
        """Forget keys whose counts have faded to nothing."""
        stale = [
            key
            for key, counter in self._counters.items()
            if counter.window < int(now // counter.seconds) - 1
        ]
        for key in stale:
            del self._counters[key]

    def __len__(self) -> int:
        return len(self._counters)
