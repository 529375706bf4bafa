"""Sliding-window counters in memory: the arithmetic of relay.defence.windows, with time as
an argument."""

from __future__ import annotations

import limits
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from relay.defence.windows import SWEEP_EVERY, Limit, MemoryWindows, parse_limits, retry_after

PER_MINUTE = Limit(3, 60)
T0 = 600.0  # the start of a window


def test_hits_up_to_the_limit_then_a_wait():
    """Three hits pass, the fourth gets a wait within the window and is not counted."""
    windows = MemoryWindows()
    assert [windows.hit(("k",), PER_MINUTE, T0 + i) for i in range(3)] == [0, 0, 0]
    wait = windows.hit(("k",), PER_MINUTE, T0 + 3)
    assert wait == 60  # three hits in this window: it must end and fade by a third first
    assert windows.test(("k",), PER_MINUTE, T0 + 3) is False


def test_keys_are_independent():
    """Another key has its own count."""
    windows = MemoryWindows()
    for i in range(3):
        windows.hit(("a",), PER_MINUTE, T0 + i)
    assert windows.hit(("b",), PER_MINUTE, T0 + 4) == 0


def test_previous_window_fades():
    """Hits of the previous window count in proportion to how much of it still overlaps."""
    windows = MemoryWindows()
    for i in range(3):
        windows.hit(("k",), PER_MINUTE, T0 + 50 + i)
    # 30 s into the next window: 3 * 0.5 = 1.5 still counted, so one more passes, not two
    assert windows.hit(("k",), PER_MINUTE, T0 + 90) == 0
    assert windows.hit(("k",), PER_MINUTE, T0 + 91) == 9  # once 3 * (1 - f) <= 1: 40 s in, 9 s on
    # two windows later nothing is left
    assert windows.hit(("k",), PER_MINUTE, T0 + 180) == 0


def test_the_wait_it_gives_is_enough():
    """After waiting the Retry-After it gave, the next hit is allowed."""
    windows = MemoryWindows()
    for i in range(3):
        windows.hit(("k",), PER_MINUTE, T0 + 10 + i)
    wait = windows.hit(("k",), PER_MINUTE, T0 + 20)
    assert wait == 60
    assert windows.hit(("k",), PER_MINUTE, T0 + 20 + wait) == 0


@given(
    current=st.integers(0, 50),
    previous=st.integers(0, 50),
    amount=st.integers(1, 40),
    now=st.floats(0, 10_000, allow_nan=False),
)
def test_retry_after_stays_within_one_window(current, previous, amount, now):
    """Retry-After is always between 1 second and the window's length."""
    assert 1 <= retry_after(current, previous, Limit(amount, 60), now) <= 60


def test_idle_keys_are_swept():
    """Keys idle for two windows are forgotten, so memory stays bounded by active clients."""
    windows = MemoryWindows()
    for n in range(100):
        windows.hit((f"client{n}",), PER_MINUTE, T0)
    assert len(windows) == 100
    for n in range(SWEEP_EVERY):
        windows.hit(("busy",), Limit(10**9, 60), T0 + 200 + n * 0.001)
    assert len(windows) == 1


def _by_limits(text: str) -> tuple[Limit, ...] | None:
    try:
        return tuple(Limit(i.amount, i.get_expiry()) for i in limits.parse_many(text))
    except ValueError:
        return None


def _by_relay(text: str) -> tuple[Limit, ...] | None:
    try:
        return parse_limits(text)
    except ValueError:
        return None


_WORDS = [
    "second",
    "minute",
    "hour",
    "day",
    "month",
    "year",
    "MINUTES",
    "Hours",
    "yearS",
    "minutess",
    "s",
    "week",
]
_SPACE = st.sampled_from(["", " ", "  ", "\t", "\n"])
_ITEM = st.builds(
    lambda a, s1, per, s2, n, s3, unit, s4: f"{s1}{a}{s1}{per}{s2}{n}{s3}{unit}{s4}",
    st.sampled_from(["0", "1", "30", "007", "x", ""]),
    _SPACE,
    st.sampled_from(["/", "per", " per ", "PER", "//", "-"]),
    _SPACE,
    st.sampled_from(["", "0", "1", "5", "12"]),
    _SPACE,
    st.sampled_from(_WORDS) | st.sampled_from(_WORDS) | st.text("abcdehimnorstuyſK", max_size=8),
    _SPACE,
)
_SPEC = st.builds(
    lambda first, rest: first + "".join(sep + item for sep, item in rest),
    _ITEM,
    st.lists(
        st.tuples(st.sampled_from([";", ",", "|", ":;", "::;", " ", ";;"]), _ITEM), max_size=3
    ),
)


@example("30/minute;300/hour")
@example("30 per 5 minutes, 2/day")
@example("1/minute:;2/hour")
@example("")
@given(text=_SPEC)
def test_rate_limit_strings_parse_as_the_limits_library_parses_them(text):
    """relay's parser of RELAY_RATE_LIMIT_* (used when no Redis is configured, so the `limits`
    library is not imported) accepts exactly the strings that library accepts, with the same
    amounts and windows, and refuses the others with ValueError."""
    assert _by_relay(text) == _by_limits(text)


@given(text=st.text(max_size=30))
def test_any_text_parses_as_the_limits_library_parses_it(text):
    """On arbitrary text too, relay's parser and the `limits` library agree."""
    assert _by_relay(text) == _by_limits(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30/minute;300/hour", (Limit(30, 60), Limit(300, 3600))),
        ("5 per 10 seconds", (Limit(5, 10),)),
        ("2/day|1/year", (Limit(2, 86_400), Limit(1, 360 * 86_400))),
    ],
)
def test_rate_limit_strings_give_amounts_per_window(text, expected):
    """Each item of a rate limit string is an amount per a window in seconds."""
    assert parse_limits(text) == expected


@pytest.mark.parametrize("text", ["30/fortnight", "thirty/minute", "30 minute", "30/minute;"])
def test_malformed_rate_limit_strings_are_refused(text):
    """A string that is not a rate limit raises ValueError."""
    with pytest.raises(ValueError, match=r"rate limit string|unit"):
        parse_limits(text)
