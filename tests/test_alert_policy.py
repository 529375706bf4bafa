"""The alert policy: grouped, rate-limited, resolved — a function of observations and time."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest

from relay.ops.alert_policy import (
    DISPATCH_PAUSED,
    FAILURES,
    QUEUE_STALE,
    AlertPolicy,
    Failure,
)

T0 = datetime(2026, 11, 26, 8, 0, tzinfo=UTC)
REPEAT = timedelta(minutes=30)


def failures(n: int, state: str = "dead", start: int = 0) -> list[Failure]:
    return [
        Failure(f"id-{i}", "contact", state, "Mailgun said no") for i in range(start, start + n)
    ]


def test_first_failure_is_sent_at_once_and_the_next_ones_grouped():
    """The first failure goes out at once; those that follow wait for the repeat interval and
    go out together in one message."""
    policy = AlertPolicy(repeat=REPEAT)
    policy.failed(failures(1))
    first = policy.due(T0)
    policy.failed(failures(3, start=1))
    held = policy.due(T0 + timedelta(minutes=10))
    grouped = policy.due(T0 + REPEAT)
    assert [a.summary for a in first] == ["1 submission not delivered"]
    assert held == []
    assert [a.summary for a in grouped] == ["3 submissions not delivered"]
    assert [f.submission_id for f in grouped[0].failures] == ["id-1", "id-2", "id-3"]
    assert policy.due(T0 + 2 * REPEAT) == []


def test_an_outage_of_thousands_sends_a_few_messages():
    """5,000 submissions dying over two hours make at most five messages, each listing at most
    `max_listed` ids and counting the rest."""
    policy = AlertPolicy(repeat=REPEAT, max_listed=20)
    sent = []
    for minute in range(120):
        policy.failed(failures(42, start=minute * 42))
        sent += policy.due(T0 + timedelta(minutes=minute))
    assert len(sent) <= 5
    assert all(len(a.failures) <= 20 for a in sent)
    assert sent[1].more == 30 * 42 - 20
    assert sent[1].summary == f"{30 * 42} submissions not delivered"


def test_a_condition_fires_once_and_resolves_once():
    """A condition fires when it starts, stays quiet while it lasts, resolves when it clears."""
    policy = AlertPolicy(repeat=REPEAT)
    policy.observe(DISPATCH_PAUSED, "Mailgun refused the API key (401)", T0)
    fired = policy.due(T0)
    for minute in range(1, 90):
        policy.observe(DISPATCH_PAUSED, "Mailgun refused the API key (401)", T0)
        assert policy.due(T0 + timedelta(minutes=minute)) == []
    policy.observe(DISPATCH_PAUSED, None, T0 + timedelta(minutes=90))
    resolved = policy.due(T0 + timedelta(minutes=90))
    assert [(a.status, a.condition, a.reason) for a in fired] == [
        ("firing", DISPATCH_PAUSED, "Mailgun refused the API key (401)")
    ]
    assert fired[0].subject == "[relay] ALERT: dispatch paused: Mailgun refuses the configuration"
    assert [(a.status, a.condition) for a in resolved] == [("resolved", DISPATCH_PAUSED)]
    assert "cleared after about 90 min" in resolved[0].summary
    assert resolved[0].subject.startswith("[relay] RESOLVED: ")


def test_a_flapping_condition_fires_again_only_after_the_interval():
    """Fired, resolved, back five minutes later: no second firing until the interval has
    passed; if it clears before that, nothing is said about it."""
    policy = AlertPolicy(repeat=REPEAT)
    policy.observe(QUEUE_STALE, "old", T0)
    assert len(policy.due(T0)) == 1
    policy.observe(QUEUE_STALE, None, T0 + timedelta(minutes=1))
    assert [a.status for a in policy.due(T0 + timedelta(minutes=1))] == ["resolved"]
    policy.observe(QUEUE_STALE, "old again", T0 + timedelta(minutes=5))
    assert policy.due(T0 + timedelta(minutes=5)) == []
    policy.observe(QUEUE_STALE, None, T0 + timedelta(minutes=6))
    assert policy.due(T0 + timedelta(minutes=6)) == []
    policy.observe(QUEUE_STALE, "old a third time", T0 + timedelta(minutes=31))
    assert [a.reason for a in policy.due(T0 + timedelta(minutes=31))] == ["old a third time"]


def test_conditions_and_failures_are_limited_separately():
    """A paused dispatch and the failures it causes each get their own message."""
    policy = AlertPolicy(repeat=REPEAT)
    policy.observe(DISPATCH_PAUSED, "401", T0)
    policy.failed(failures(2, state="failed"))
    assert sorted(a.condition for a in policy.due(T0)) == [DISPATCH_PAUSED, FAILURES]


def test_an_unknown_condition_is_refused():
    """Only the documented conditions exist; a typo is an error, not a silent alert."""
    policy = AlertPolicy(repeat=REPEAT)
    with pytest.raises(ValueError, match="unknown alert condition 'paused'"):
        policy.observe("paused", "x", T0)


def test_the_policy_module_is_pure():
    """relay.ops.alert_policy imports no I/O library (style: pure core)."""
    code = (
        "import sys\nimport relay.ops.alert_policy\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('httpx', 'sqlalchemy', 'starlette') or m.startswith(('relay.store', 'relay.web'))))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"
