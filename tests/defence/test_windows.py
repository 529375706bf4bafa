"""Sliding-window counters in memory: the arithmetic of relay.defence.windows, with time as
an argument."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from relay.defence.windows import SWEEP_EVERY, Limit, MemoryWindows, retry_after

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
