"""The retry policy: what to do with a submission after a send that did not succeed. Pure.

`decide(result, attempts, first_try_at, now)` returns one of:

- `Retry(at)`: transient (429, 5xx, timeout, connection error). Exponential backoff with
  "equal jitter" (half fixed, half random, so retries spread without ever retrying at once),
  capped; a wait the provider asked for (Retry-After, Mailgun's "try again after N seconds")
  overrides the computed one, as in stamina's backoff hook. Never past the maximum age.
- `Dead(error)`: still transient, but the first try is older than the maximum age (72 h by
  default): give up and alert.
- `Failed(error)`: the provider refused this message for good (400, 413).
- `Pause(until)`: a configuration fault (401/403, unknown domain): the message stays queued
  and the dispatcher stops claiming until `until`; `pause_delay` grows with each fault.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from relay.mail import transport as t


@dataclass(frozen=True)
class Policy:
    """The numbers behind the decisions (settings: RELAY_DISPATCH_*)."""

    base: timedelta = timedelta(seconds=30)
    cap: timedelta = timedelta(hours=1)
    max_age: timedelta = timedelta(hours=72)
    pause_base: timedelta = timedelta(seconds=30)
    pause_cap: timedelta = timedelta(minutes=15)


@dataclass(frozen=True)
class Retry:
    at: datetime
    error: str


@dataclass(frozen=True)
class Dead:
    error: str


@dataclass(frozen=True)
class Failed:
    error: str


@dataclass(frozen=True)
class Pause:
    until: datetime
    error: str


Decision = Retry | Dead | Failed | Pause


def backoff_delay(attempts: int, policy: Policy, rand: Callable[[], float]) -> timedelta:
    """Attempt n waits between half and all of base·2^(n-1), capped: 30 s, 1 min, 2 min, …"""
    exponent = min(max(attempts, 1) - 1, 30)
    full: timedelta = min(policy.base * (2**exponent), policy.cap)
    return full / 2 + (full / 2) * rand()


def pause_delay(faults: int, policy: Policy) -> timedelta:
    """How long dispatch pauses after `faults` configuration faults in a row (1, 2, …)."""
    exponent = min(max(faults, 1) - 1, 30)
    delay: timedelta = min(policy.pause_base * (2**exponent), policy.pause_cap)
    return delay


def decide(
    result: t.Retry | t.Failed | t.CredentialsRejected,
    attempts: int,
    first_try_at: datetime,
    now: datetime,
    *,
    policy: Policy | None = None,
    faults: int = 1,
    rand: Callable[[], float] = random.random,
) -> Decision:
    """The next step for a submission whose attempt number `attempts` ended with `result`."""
    policy = policy or Policy()
    if isinstance(result, t.Failed):
        return Failed(result.error)
    if isinstance(result, t.CredentialsRejected):
        return Pause(now + pause_delay(faults, policy), result.error)
    deadline = first_try_at + policy.max_age
    if now >= deadline:
        age = int((now - first_try_at).total_seconds() // 3600)
        return Dead(f"gave up after {attempts} attempts over {age} h; last: {result.error}")
    if result.after is not None:
        # Whatever wait was asked for (Retry-After: 99999999999999, a date in year 9999), it
        # ends at the deadline: timedelta and datetime cannot even hold some of them.
        wait = timedelta(seconds=min(max(0.0, result.after), (deadline - now).total_seconds()))
    else:
        wait = backoff_delay(attempts, policy, rand)
    # One last try at the deadline rather than none: the maximum age is when we stop.
    return Retry(min(now + wait, deadline), result.error)
