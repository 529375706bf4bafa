"""`--since` and `?since=`: spans such as 24h and ISO dates, as admins type them (issue 15)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import click
import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from relay.cli.deliveries import parse_since as cli_since
from relay.spans import parse_since
from tests.conftest import invoke
from tests.helpers import post_json

NOW = datetime(2026, 11, 25, 9, 30, tzinfo=UTC)
UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_pads = st.sampled_from(["", " ", "\t", "  "])


def offset_of(minutes: int) -> timezone:
    return timezone(timedelta(minutes=minutes))


#: Offsets a date may carry: whole hours, odd minutes, the extremes of ±23:59.
offsets = st.integers(min_value=-(24 * 60 - 1), max_value=24 * 60 - 1).map(offset_of)
moments = st.datetimes(
    min_value=datetime(1, 1, 1),  # noqa: DTZ001 - hypothesis takes naive bounds
    max_value=datetime(9999, 12, 31, 23, 59, 59),  # noqa: DTZ001 - same
    timezones=st.one_of(st.none(), st.just(UTC), offsets),
)


def iso(moment: datetime, sep: str, timespec: str) -> str:
    return moment.isoformat(sep=sep, timespec=timespec)


def outcome(text: str, now: datetime = NOW) -> datetime | ValueError:
    """The moment `text` names at `now`, or the ValueError that refused it."""
    try:
        return parse_since(text, now)
    except ValueError as exc:
        return exc


@given(
    number=st.integers(min_value=0, max_value=999_999),
    unit=st.sampled_from(sorted(UNITS)),
    pad=st.tuples(_pads, _pads),
)
def test_a_span_is_that_long_before_now_or_a_clear_error(number, unit, pad):
    """Property: `<n><m|h|d|w>` (spaces around allowed) is exactly n units before now, or a
    ValueError saying it reaches further back than dates go when that is before year 1."""
    text = f"{pad[0]}{number}{unit}{pad[1]}"
    try:
        expected: datetime | None = NOW - timedelta(**{UNITS[unit]: number})
    except OverflowError:
        expected = None
    if expected is None:
        event("before year 1")
        with pytest.raises(ValueError, match="reaches further back than dates go"):
            parse_since(text, NOW)
    else:
        assert parse_since(text, NOW) == expected


@given(
    moment=moments,
    sep=st.sampled_from(["T", " "]),
    timespec=st.sampled_from(["auto", "seconds", "microseconds", "minutes"]),
)
@example(datetime(1, 1, 1, tzinfo=offset_of(23 * 60 + 59)), "T", "auto")
@example(datetime(9999, 12, 31, 23, 59, tzinfo=offset_of(-23 * 60 - 59)), "T", "auto")
def test_an_iso_date_is_that_moment_in_utc_or_a_clear_error(moment, sep, timespec):
    """Property: any ISO date-time (with any UTC offset, or none: UTC) is read as that very
    moment, in UTC; one whose UTC time is outside the years 1-9999 is a ValueError that says
    so, never an OverflowError."""
    text = iso(moment, sep, timespec)
    written = datetime.fromisoformat(text)  # what the text says, to the precision written
    aware = written if written.tzinfo else written.replace(tzinfo=UTC)
    try:
        expected: datetime | None = aware.astimezone(UTC)
    except OverflowError:
        expected = None
    if expected is None:
        event("outside the dates")
        with pytest.raises(ValueError, match="outside the dates relay can compare"):
            parse_since(text, NOW)
    else:
        got = parse_since(text, NOW)
        assert got == expected
        assert got.tzinfo is UTC


@given(st.one_of(st.text(max_size=40), st.from_regex(r"[0-9]{1,9}[mhdwys]?", fullmatch=True)))
def test_any_text_is_a_utc_moment_or_an_error_that_quotes_it(text):
    """Property: any text is an aware UTC moment or a ValueError quoting the text and saying
    what is accepted; the CLI turns the same error into a usage error naming --since."""
    got = outcome(text)
    if isinstance(got, ValueError):
        event("refused")
        assert repr(text) in str(got)
        with pytest.raises(click.BadParameter) as usage:
            cli_since(text, NOW)
        assert usage.value.param_hint == "--since"
    else:
        event("read")
        assert got.utcoffset() == timedelta(0)
        assert cli_since(text, NOW) == got


def test_deliveries_since_any_moment_lists_exactly_the_later_submissions(client, cli, clock):
    """Property through the real CLI: `relay deliveries --since <ISO moment or span> --json`
    lists exactly the submissions received at or after that moment (a span counting back from
    the clock the app and the CLI share), and any other text is a usage error (exit 2) naming
    --since; never a crash."""
    ids = {post_json(client).json()["id"] for _ in range(3)}
    received = clock.now  # every submission was received then; the CLI's now too
    seen: list[str] = []

    @settings(max_examples=40, database=None, suppress_health_check=[HealthCheck.too_slow])
    @given(
        since=st.one_of(
            moments.map(lambda moment: iso(moment, "T", "auto")),
            st.text(max_size=20),
            st.sampled_from(["24h", "7d", "999999w", "0001-01-01T00:00:00+23:59"]),
        )
    )
    def run(since: str) -> None:
        seen.append(since)
        moment = outcome(since, received) if since else None  # an empty --since filters nothing
        if isinstance(moment, ValueError):
            event("usage error")
            refused = invoke(cli, "deliveries", "--since", since, "--json", expect=2)
            assert "--since" in refused.output
            return
        listed = {
            row["id"]
            for row in json.loads(invoke(cli, "deliveries", "--since", since, "--json").output)
        }
        if moment is None:
            assert listed == ids
        else:
            event("span" if since.strip()[-1:] in UNITS else "moment")
            assert listed == (ids if moment <= received else set())

    run()
    assert len(seen) >= 40
