"""The wait Mailgun asks for (Retry-After, X-RateLimit-Reset, "try again after N seconds"),
and what the retry policy does with any wait (issue 15)."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
from hypothesis import example, given
from hypothesis import strategies as st

from relay.deliver import backoff
from relay.mail.mailgun import retry_after
from relay.mail.transport import Retry

NOW = datetime(2026, 11, 25, 9, 30, tzinfo=UTC)
T0 = NOW - timedelta(hours=1)
POLICY = backoff.Policy()

#: What a header value can hold once httpx decodes it (UTF-8, else Latin-1): any digits too.
_header_text = st.one_of(
    st.text(alphabet=st.characters(max_codepoint=255, exclude_categories=["Cc"]), max_size=40),
    st.from_regex(r"[0-9]{1,40}", fullmatch=True),
    st.sampled_from(["²", "١٢٠", "٣", "９", "1e3", "-5", " 120 ", "nan", "inf", "0x10", "1_000"]),
    st.datetimes(min_value=datetime(1, 1, 2), timezones=st.just(UTC)).map(  # noqa: DTZ001 - hypothesis takes naive bounds
        format_datetime
    ),
    st.sampled_from(["Wed, 25 Nov 2026 09:31:00 GMT", "Fri, 31 Dec 9999 23:59:59 GMT"]),
)


def response(status: int, retry: str | None, reset: str | None, message: str) -> httpx.Response:
    headers = [
        (k.encode("ascii"), v.encode("utf-8"))
        for k, v in (("Retry-After", retry), ("X-RateLimit-Reset", reset))
        if v is not None
    ]
    return httpx.Response(status, headers=headers, json={"message": message})


@given(
    status=st.sampled_from([429, 500, 502, 503, 504]),
    retry=st.one_of(st.none(), _header_text),
    reset=st.one_of(st.none(), _header_text),
    message=st.one_of(
        st.text(max_size=60),
        st.from_regex(r"try again after [0-9٠-٩]{1,30} seconds", fullmatch=True),
    ),
)
@example(status=503, retry="²", reset=None, message="")  # was a ValueError from float("²")
def test_any_answer_gives_no_wait_or_a_wait_of_zero_or_more_seconds(status, retry, reset, message):
    """Property: whatever Mailgun's headers and message hold, the wait read from them is None
    or a number of seconds at least 0 (never an exception, never NaN); a Retry-After of ASCII
    digits is that many seconds."""
    wait = retry_after(response(status, retry, reset, message), NOW)
    assert wait is None or wait >= 0
    if retry is not None and retry.strip().isascii() and retry.strip().isdigit():
        assert wait == float(retry.strip())


@given(
    attempts=st.integers(min_value=1, max_value=10_000),
    after=st.one_of(st.none(), st.floats(), st.integers(min_value=-(10**30), max_value=10**30)),
    age=st.integers(min_value=0, max_value=100 * 3600),
)
# These were OverflowErrors in decide: the dispatcher logged "delivery of one submission
# crashed" and tried the row again at each lease expiry, recording no attempt, until dead.
@example(attempts=1, after=math.inf, age=0)
@example(attempts=1, after=86_400_000_000_000.0, age=0)  # more days than timedelta holds
@example(attempts=1, after=251_606_446_201.0, age=259_199)  # now + wait is past year 9999
def test_any_wait_a_provider_asks_for_ends_by_the_deadline(attempts, after, age):
    """Property: whatever wait comes with a transient failure (none, negative, NaN, infinite,
    longer than dates go), the decision is a retry between now and first try + max age, or
    dead once that age is reached; never an exception."""
    now = T0 + timedelta(seconds=age)
    decision = backoff.decide(Retry(after, 503, "x"), attempts, T0, now, rand=lambda: 0.5)
    if now >= T0 + POLICY.max_age:
        assert isinstance(decision, backoff.Dead)
    else:
        assert isinstance(decision, backoff.Retry)
        assert now <= decision.at <= T0 + POLICY.max_age
