"""Retention periods as date math: calendar years and months with the end-of-month clamp."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from dateutil.relativedelta import relativedelta
from hypothesis import given
from hypothesis import strategies as st

from relay.minimise import retention


def d(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


@pytest.mark.parametrize(
    ("last", "status", "expected"),
    [
        (d(2026, 11, 25, 9, 30), "prospect", d(2029, 11, 25, 9, 30)),
        (d(2028, 2, 29, 12), "prospect", d(2031, 2, 28, 12)),
        (d(2027, 2, 28), "prospect", d(2030, 2, 28)),
        (d(2026, 11, 25), "client", d(2031, 11, 25)),
        (d(2028, 2, 29), "client", d(2033, 2, 28)),
        (d(2031, 12, 31, 23, 59, 59), "prospect", d(2034, 12, 31, 23, 59, 59)),
    ],
)
def test_prospect_expiry(last, status, expected):
    """A prospect expires 3 calendar years after its last interaction, a client 5; 29 Feb → 28."""
    assert expected == retention.prospect_expiry(last, status)


@pytest.mark.parametrize(
    ("received", "due"),
    [
        (d(2027, 1, 31), d(2027, 2, 28)),
        (d(2028, 1, 31), d(2028, 2, 29)),
        (d(2027, 3, 31), d(2027, 4, 30)),
        (d(2027, 12, 31), d(2028, 1, 31)),
        (d(2027, 1, 15, 10), d(2027, 2, 15, 10)),
        (d(2028, 2, 29), d(2028, 3, 29)),
    ],
)
def test_request_due_is_one_calendar_month_with_clamp(received, due):
    """A request is due one calendar month after receipt, clamped to the month's last day."""
    assert due == retention.request_due(received)


def test_other_bounds():
    """Delivery log 2 years (leap day clamps), opposition 3 years, bodies N days, audit months."""
    now = d(2030, 2, 28, 8)
    assert d(2028, 2, 28, 8) == retention.delivery_log_cutoff(now)
    assert d(2031, 2, 28) == retention.opposition_keep_until(d(2028, 2, 29))
    assert d(2030, 1, 29, 8) == retention.body_cutoff(now, 30)
    assert d(2029, 2, 28, 8) == retention.audit_cutoff(now, 12)
    assert d(2025, 2, 28, 8) == retention.request_log_cutoff(now, 5)
    assert d(2027, 2, 28, 8) == retention.orphan_consent_cutoff(now)


def test_purge_report_totals():
    """A report's total is the sum of its counts, and it lists every rule."""
    report = retention.PurgeReport(prospects=2, bodies_wiped=3)
    assert report.total == 5
    assert set(report.as_dict()) >= {"prospects", "delivery_log_rows", "opposition_entries"}


@given(
    moment=st.datetimes(
        min_value=datetime(1970, 1, 1),  # noqa: DTZ001 - hypothesis takes naive bounds
        max_value=datetime(9000, 12, 31),  # noqa: DTZ001
        timezones=st.just(UTC),
    ),
    years=st.integers(min_value=0, max_value=50),
)
def test_add_years_is_relativedelta_calendar_years(moment, years):
    """add_years gives exactly dateutil's calendar years (29 February onto 28 February)."""
    assert retention.add_years(moment, years) == moment + relativedelta(years=years)


def test_add_years_from_29_february():
    """29 February 2024 + 3 years is 28 February 2027; + 4 years is 29 February 2028."""
    leap = datetime(2024, 2, 29, 13, 5, tzinfo=UTC)
    assert retention.add_years(leap, 3) == datetime(2027, 2, 28, 13, 5, tzinfo=UTC)
    assert retention.add_years(leap, 4) == datetime(2028, 2, 29, 13, 5, tzinfo=UTC)
