"""One person, one address, whatever its spelling: every path normalises it the same way."""

from __future__ import annotations

import sqlite3
import unicodedata
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from starlette.testclient import TestClient

from relay.accept.submission import Submission
from relay.app import create_app
from relay.crypto import KeyRing, normalise_email
from relay.rights import consent_link
from tests.admin_helpers import USERS, Admin
from tests.conftest import TEST_KEY, TEST_KEY_2, invoke
from tests.helpers import post_json
from tests.privacy.support import at, export, rows

D0 = datetime(2026, 11, 25, 9, 30, tzinfo=UTC)


@pytest.fixture(name="settings")
def fixture_settings(settings_factory: Any) -> Any:
    return settings_factory(admin_users=USERS)


@pytest.fixture(name="client")
def fixture_client(settings, clock) -> Iterator[TestClient]:
    """Served as localhost: the admin session cookie is Secure everywhere else."""
    with TestClient(create_app(settings, clock=clock), base_url="http://localhost") as client:
        yield client


UNICODE = "zoe@exämple.fr"
ASCII = "zoe@xn--exmple-cua.fr"
CANONICAL = "zoe@exämple.fr"


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        (UNICODE, CANONICAL),
        (ASCII, CANONICAL),
        ("ZOE@XN--EXMPLE-CUA.FR", CANONICAL),
        ("Zoe@EXÄMPLE.FR", CANONICAL),
        (unicodedata.normalize("NFD", UNICODE), CANONICAL),
        (f"  {UNICODE}\t", CANONICAL),
        ("Jeanne.Martin@Example.FR ", "jeanne.martin@example.fr"),
        ("not an address", "not an address"),
        ("a@xn--invalid-", "a@xn--invalid-"),
    ],
)
def test_one_normalisation_for_every_spelling(typed, expected):
    """IDN (Unicode or xn--), case, Unicode normalisation form and whitespace give one form."""
    assert expected == normalise_email(typed)


@pytest.mark.parametrize("typed", [UNICODE, ASCII, "ZOE@XN--EXMPLE-CUA.FR", f" {UNICODE} "])
def test_keyed_hashes_and_the_form_agree_on_every_spelling(typed):
    """The form's validator stores the one form, and the keyed hash of any spelling matches it."""
    keyring = KeyRing.from_text(TEST_KEY)
    stored = Submission(name="Zoé", email=typed, message="hi").email
    assert stored == CANONICAL
    assert keyring.mac(typed) == keyring.mac(UNICODE)
    assert keyring.subject_ref(typed) == keyring.subject_ref(UNICODE)


def test_hashes_of_the_ascii_spelling_are_looked_up_too():
    """An IDN address's hashes include its xn-- spelling's (what older requests stored), after
    the canonical ones under every key; an ASCII address has only its own."""
    keyring = KeyRing.from_text(f"{TEST_KEY},{TEST_KEY_2}")
    macs = keyring.macs(ASCII)
    assert len(macs) == 4
    assert macs[0] == keyring.mac(UNICODE)
    assert len(keyring.macs("a@example.fr")) == 2


def test_every_path_finds_a_unicode_submission_by_its_ascii_spelling(client, cli, clock):
    """Submitted with the Unicode domain; withdraw, export, show, the admin lookup, a withdrawal
    link and erase typed with xn-- (and other case) all reach the same person."""
    with at(clock, D0):
        post_json(client, email=UNICODE, newsletter="on")
        withdrawn = invoke(cli, "consent", "withdraw", ASCII.upper())
        data = export(cli, f" {ASCII} ")
        invoke(cli, "subject", "show", ASCII)
        admin = Admin(client)
        admin.login("diane")
        page = admin.post("/admin/prospects", {"email": ASCII}, expect=200)
    assert "consent withdrawn" in withdrawn.output
    assert data["found"] is True
    assert data["subject"]["email"] == CANONICAL
    assert data["prospect"]["email"] == CANONICAL
    assert [e["event"] for e in data["consent_events"]] == ["granted", "withdrawn"]
    assert data["marketing"]["consent"] == "withdrawn"
    assert "Nothing is held" not in page.text
    assert CANONICAL in page.text
    with at(clock, D0):
        erased = invoke(cli, "subject", "erase", ASCII)
        after = export(cli, UNICODE)
    assert "prospects: 1" in erased.output
    assert after["prospect"] is None
    assert after["submissions"] == []


def test_withdrawal_link_made_for_the_ascii_spelling_reaches_the_record(client, cli, clock):
    """A link printed for the xn-- spelling withdraws the consent given with the Unicode one."""
    keyring = KeyRing.from_text(TEST_KEY)
    with at(clock, D0):
        post_json(client, email=UNICODE, newsletter="on")
        token = consent_link.withdrawal_token(keyring, ASCII, now=D0, days=30)
        page = client.get(f"/consent/withdraw?token={token}")  # the confirmation page
        done = client.post("/consent/withdraw", data={"token": token})  # its button
        data = export(cli, UNICODE)
    assert (page.status_code, done.status_code) == (200, 200)
    assert data["marketing"]["consent"] == "withdrawn"


def test_opposition_by_ascii_spelling_blocks_the_unicode_submission(client, cli, clock):
    """An objection typed in xn-- before any submission keeps the Unicode address opposed."""
    with at(clock, D0):
        invoke(cli, "consent", "withdraw", ASCII)
        post_json(client, email=UNICODE)
        data = export(cli, UNICODE)
    assert data["marketing"]["on_opposition_list"] is True
    assert data["marketing"]["consent"] == "withdrawn"


def test_entries_stored_under_the_ascii_spelling_before_are_still_found(
    client, cli, settings, clock
):
    """An opposition entry hashed from the xn-- spelling (as before one normalisation) is found
    by a request typed either way, and an erasure keeps the person opposed."""
    keyring = KeyRing.from_text(TEST_KEY)
    legacy = keyring.macs(ASCII)[-1]  # the hash of the xn-- spelling itself
    assert legacy != keyring.mac(ASCII)
    with at(clock, D0):
        post_json(client, email="someone@example.fr")  # creates the database
        conn = sqlite3.connect(settings.var_dir / "relay.db")
        with conn:
            conn.execute(
                "INSERT INTO opposition VALUES (?, ?, ?)",
                (legacy, "2026-11-01 00:00:00.000000", "2029-11-01 00:00:00.000000"),
            )
        conn.close()
        data = export(cli, UNICODE)
    assert data["found"] is True
    assert data["marketing"]["on_opposition_list"] is True
    assert rows(settings.var_dir, "SELECT count(*) FROM opposition") == [(1,)]


def test_a_request_that_matches_nothing_says_so(client, cli, settings, clock, tmp_path):
    """Withdrawal and export for an address relay never saw say plainly that nothing matched."""
    with at(clock, D0):
        post_json(client)
        withdrawn = invoke(cli, "consent", "withdraw", "nobody@example.org")
        erased = invoke(cli, "subject", "erase", "other@example.org")
        to_file = invoke(
            cli, "subject", "export", "fourth@example.org", "--output", str(tmp_path / "o.json")
        )
        data = export(cli, "third@example.org")
    assert "holds no record or consent for this address" in withdrawn.output
    assert "consent withdrawn" not in withdrawn.output
    assert "nothing to erase" in erased.output
    assert "relay holds nothing about this address" in to_file.output
    assert data["found"] is False
