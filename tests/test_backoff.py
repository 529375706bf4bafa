"""The retry policy as a table of values: no clock, no I/O."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from relay.deliver import backoff
from relay.mail.transport import CredentialsRejected, Failed, Retry

T0 = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
POLICY = backoff.Policy()


@pytest.mark.parametrize(
    ("attempts", "rand", "seconds"),
    [(1, 0.0, 15), (1, 1.0, 30), (2, 1.0, 60), (3, 0.5, 90), (8, 1.0, 3600), (40, 1.0, 3600)],
)
def test_exponential_backoff_with_equal_jitter(attempts, rand, seconds):
    """Attempt n waits between half and all of 30 s·2^(n-1), capped at one hour."""
    decision = backoff.decide(Retry(None, 503, "down"), attempts, T0, T0, rand=lambda: rand)
    assert decision == backoff.Retry(T0 + timedelta(seconds=seconds), "down")


def test_a_wait_the_provider_asked_for_overrides_the_backoff():
    """A Retry-After from Mailgun sets the next attempt exactly, whatever the computed backoff."""
    decision = backoff.decide(Retry(120, 429, "rate"), 5, T0, T0, rand=lambda: 1.0)
    assert decision == backoff.Retry(T0 + timedelta(seconds=120), "rate")


def test_retries_never_go_past_the_maximum_age():
    """A wait beyond the deadline becomes one last try at the deadline, then dead."""
    now = T0 + timedelta(hours=71, minutes=59)
    decision = backoff.decide(Retry(3600, 429, "rate"), 30, T0, now)
    assert decision == backoff.Retry(T0 + timedelta(hours=72), "rate")
    dead = backoff.decide(Retry(None, 500, "err"), 31, T0, T0 + timedelta(hours=72))
    assert dead == backoff.Dead("gave up after 31 attempts over 72 h; last: err")


def test_refusals_fail_and_credentials_pause():
    """A refused message fails with Mailgun's reason; rejected credentials pause dispatch, longer
    after repeated faults."""
    assert backoff.decide(Failed(400, "bad"), 1, T0, T0) == backoff.Failed("bad")
    pause = backoff.decide(CredentialsRejected(401, "key"), 1, T0, T0, faults=3)
    assert pause == backoff.Pause(T0 + timedelta(minutes=2), "key")


def test_pause_delay_doubles_up_to_its_cap():
    """The dispatch pause doubles from 30 s with each fault, up to 15 minutes."""
    delays = [backoff.pause_delay(n, POLICY).total_seconds() for n in range(1, 8)]
    assert delays == [30, 60, 120, 240, 480, 900, 900]


@given(
    attempts=st.integers(min_value=1, max_value=10_000),
    rand=st.floats(min_value=0, max_value=1),
    age=st.integers(min_value=0, max_value=80 * 3600),
    after=st.one_of(st.none(), st.floats(min_value=0, max_value=10**7)),
)
def test_a_retry_is_always_in_the_future_and_before_the_deadline(attempts, rand, age, after):
    """Property: a Retry is at or after now and never past first try + max age."""
    now = T0 + timedelta(seconds=age)
    decision = backoff.decide(Retry(after, 503, "x"), attempts, T0, now, rand=lambda: rand)
    if isinstance(decision, backoff.Retry):
        assert now <= decision.at <= T0 + POLICY.max_age
    else:
        assert isinstance(decision, backoff.Dead)
        assert now >= T0 + POLICY.max_age
