"""Erasure leaves nothing recoverable: not in the database pages, the write-ahead log, or the
texts a receiving server sent back about the person."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from relay.minimise.redact import redact
from tests.conftest import invoke
from tests.deliveries_helpers import WEBHOOK_KEY, deliver, event_data, signed, submit
from tests.privacy.support import at, raw_bytes, rows

D0 = datetime(2026, 11, 25, 9, 30, tzinfo=UTC)
CANARY = {
    "name": "Zoé Canarinette",
    "email": "zoe.canarinette@canari-mail.fr",
    "phone": "+33 6 71 82 93 04",
    "company": "Canarinette Industries",
    "message": "Le message canari 7f3e9 ne doit pas survivre.",
}
BOUNCE = {
    "code": 552,
    "enhanced-code": "5.2.2",
    "message": "Mailbox of Zoé Canarinette <zoe.canarinette@canari-mail.fr> is full",
    "description": "mx1.canari-mail.fr [192.0.2.7] said: call +33 6 71 82 93 04",
}


@pytest.fixture(name="settings")
def fixture_settings(settings_factory: Any) -> Any:
    return settings_factory(mailgun_webhook_signing_key=WEBHOOK_KEY)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("550 5.1.1 <jeanne@example.fr> unknown", "550 5.1.1 <address> unknown"),
        ("552 5.2.2 Mailbox of Jeanne Martin is full", "552 5.2.2 Mailbox of <name> is full"),
        ("host mx.example.fr [192.0.2.7] refused", "host <host> <ip> refused"),
        ("from 2001:db8::1 blocked", "from <ip> blocked"),
        ("call +33 6 12 34 56 78", "call <number>"),
        (
            "550 5.1.10 RESOLVER.ADR.RecipientNotFound; not found",
            "550 5.1.10 RESOLVER.ADR.RecipientNotFound; not found",
        ),
        ("452 4.2.2 over\n quota", "452 4.2.2 over quota"),
    ],
)
def test_provider_texts_lose_names_and_identifiers(text, expected):
    """Addresses, names, hosts, IPs and long numbers go; codes and plain words stay."""
    assert expected == redact(text)


def test_a_redacted_text_is_bounded():
    """However long the provider's text, what relay keeps is bounded."""
    assert len(redact("word " * 1000)) == 500


def test_bounce_texts_are_redacted_on_the_way_in(client, settings, clock):
    """A bounce naming the person keeps its codes and loses name, address, host, IP and phone."""
    sid = submit(client, **CANARY)
    deliver(client)
    data = event_data(sid, "failed", clock.now, severity="permanent", status=BOUNCE)
    assert client.post("/webhooks/mailgun", json=signed(data, clock.now)).status_code == 200
    [(description,)] = rows(settings.var_dir, "SELECT description FROM delivery_events")
    assert description.startswith("552 5.2.2 Mailbox of <name> <address> is full")
    for fragment in ("Canarinette", "canari-mail", "192.0.2.7", "71 82 93"):
        assert fragment not in description


def test_erased_canary_is_in_no_database_file(client, cli, settings, clock):
    """After erasure, none of the person's ciphertexts or texts is in relay.db, -wal or -shm,
    and their delivery events keep no text; the write-ahead log is truncated."""
    with at(clock, D0):
        sid = submit(client, newsletter="on", **CANARY)
        deliver(client)
        at_bounce = clock.now + timedelta(minutes=1)
        data = event_data(sid, "failed", at_bounce, severity="temporary", status=BOUNCE)
        assert client.post("/webhooks/mailgun", json=signed(data, at_bounce)).status_code == 200
        ciphertexts = [
            bytes(value)
            for row in rows(
                settings.var_dir,
                "SELECT email_enc, name_enc, company_enc, phone_enc FROM prospects",
            )
            + rows(settings.var_dir, "SELECT body_enc, NULL, NULL, NULL FROM submissions")
            for value in row
            if value is not None
        ]
        texts = rows(settings.var_dir, "SELECT description FROM delivery_events")
        assert len(ciphertexts) == 5
        assert texts != [(None,)]
        erased = invoke(cli, "subject", "erase", CANARY["email"])
    assert "delivery_texts_erased: 1" in erased.output
    assert rows(settings.var_dir, "SELECT description FROM delivery_events") == [(None,)]
    wal = settings.var_dir / "relay.db-wal"
    assert not wal.exists() or wal.stat().st_size == 0
    blob = raw_bytes(settings.var_dir)
    assert [c for c in ciphertexts if c in blob] == []
    for text in ("Canarinette", "canari-mail", "7f3e9", "71829304", "<name>"):
        assert text.encode() not in blob


def test_a_purge_that_removes_something_truncates_the_log(client, cli, settings, clock):
    """An expired record purged by `relay purge` leaves no ciphertext in any database file."""
    with at(clock, D0):
        submit(client, **CANARY)
        [(name_enc,)] = rows(settings.var_dir, "SELECT name_enc FROM prospects")
        [(body_enc,)] = rows(settings.var_dir, "SELECT body_enc FROM submissions")
    with at(clock, D0 + timedelta(days=3 * 366)):
        purged = invoke(cli, "purge")
    assert "expired prospect records: 1" in purged.output
    wal = settings.var_dir / "relay.db-wal"
    assert not wal.exists() or wal.stat().st_size == 0
    blob = raw_bytes(settings.var_dir)
    assert bytes(name_enc) not in blob
    assert bytes(body_enc) not in blob
