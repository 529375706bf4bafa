"""The words of `relay send-test`: each verdict and fix, from values only."""

from __future__ import annotations

import pytest

from relay.deliver.send_check import (
    FIX_BASE_URL,
    FIX_M365,
    FIX_TRANSIENT,
    fix_for,
    outcome,
    refused,
)


@pytest.mark.parametrize(
    ("error", "fix"),
    [
        ("Mailgun answered 200 without a message id (is RELAY_MAILGUN_BASE_URL …)", FIX_BASE_URL),
        ("Mailgun refused the message (400: to parameter is not a valid address)", None),
    ],
)
def test_fix_for_each_refusal(error, fix):
    """The "Magnificent API" 200 points at the base URL; a plain 400 has no canned fix."""
    assert fix_for(error) == fix


def test_a_transient_failure_says_to_try_again():
    """A 5xx or timeout is not a set-up mistake: the fix is to run it again."""
    verdict = refused("retry", "Mailgun server error (503: busy)")
    assert (verdict.ok, verdict.fix) == (False, FIX_TRANSIENT)
    assert verdict.lines() == [
        "not sent: Mailgun server error (503: busy)",
        f"fix: {FIX_TRANSIENT}",
    ]


def test_delivered_elsewhere_than_microsoft_365():
    """A 250 from another mail server is delivered, not claimed to be Microsoft 365."""
    verdict = outcome("id", "delivered", description="250 OK from mx.example.net", last_error=None)
    assert (verdict.ok, verdict.what) == (
        True,
        "delivered to the recipients' mail server (250 OK from mx.example.net)",
    )


def test_a_failure_without_a_reason_still_gets_advice():
    """A failed row with no text at all still points at the usual Microsoft 365 causes."""
    verdict = outcome("id", "failed", description=None, last_error=None)
    assert (verdict.ok, verdict.what, verdict.fix) == (
        False,
        "not delivered: no reason given",
        FIX_M365,
    )
