"""The README's answer table, one row per answer: what a JSON client and a browser get from
POST /f/{form}, with the code, what is stored and what relay_submissions_total counts.

Each row is asked twice, as Formspree's client (Accept: application/json) and as a plain HTML
form (urlencoded, a browser's Accept), against its own fresh relay. For each the test checks
the status, the code (JSON) or the page (HTML), the CORS header, the headers the README
promises (Retry-After, Allow; Connection: close when a body is refused unread), that nothing
was stored (no outbox row, prospect, consent event, idempotency answer or spent proof) unless
the row is a success, that relay_submissions_total counted exactly this one outcome, and that a
refusal wrote its one log line. A last test holds the table to the README's.
"""

from __future__ import annotations

import json
import logging
import re
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import anyio
import pytest
from starlette.testclient import TestClient

from relay.app import create_app
from tests.conftest import FakeClock
from tests.defence_helpers import DEFENCE_FORMS_TOML, proof, real_clock, tamper
from tests.helpers import ORIGIN, VALID, asgi_request

README = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")

DECLARED_TOML = """
[[forms]]
id = "declared"
recipients = ["sales@example.com"]
allowed_origins = ["https://www.example.com"]
legal_basis = "contract"
notice_version = "2026-03-20"

[[forms.fields]]
name = "quantity"
label = { fr = "Quantité", en = "Quantity" }
kind = "number"

[[forms.fields]]
name = "product"
label = { fr = "Produit", en = "Product" }
kind = "select"
choices = ["Sérum", "Milieu"]
"""
TABLES = ("submissions", "prospects", "consent_events", "idempotency_keys", "proof_nonces")
#: What one accepted submission with the box ticked adds (its prospect and consent event).
ONE_ACCEPTED = {"submissions": 1, "prospects": 1, "consent_events": 1}
#: Every row's person ticks the consent box, so a stored submission would show everywhere.
PERSON = {**VALID, "newsletter": "on"}


@dataclass(frozen=True)
class Answer:
    """What came back, from TestClient or a raw ASGI call alike."""

    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8")


@dataclass(frozen=True)
class Sent:
    """One request: as JSON (`fields`) for a script, urlencoded for a browser, or raw `body`."""

    path: str = "/f/contact"
    method: str = "POST"
    fields: dict[str, Any] | None = None
    body: bytes | None = None
    content_type: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    files: dict[str, Any] | None = None


@dataclass(frozen=True)
class Relay:
    """A fresh relay for one case: its client, clock and settings."""

    client: TestClient
    clock: FakeClock
    settings: Any


#: A request builder: (relay, browser) → what to send, once it prepared what the case needs.
Builder = Callable[[Relay, bool], Sent]


@dataclass(frozen=True)
class Row:
    """One answer of the README's table."""

    name: str
    status: int  # to a JSON client
    code: str | None  # the code in `errors` (None: a success)
    html: int | None  # to a browser (None: a browser cannot send this)
    says: str  # the browser's page says this (or, for a 303, goes there)
    build: Builder
    form: str = "contact"  # the form label of the metric ("unknown": no such form)
    outcome: str | None = None  # the metric's outcome (default: the code in lower case)
    under: str | None = None  # a field error, listed under this field's name
    cors: bool = True  # the answer lets the form's own site read it
    headers: dict[str, str] = field(default_factory=dict)  # and carries these headers
    stored: dict[str, int] = field(default_factory=dict)  # rows added (none: a refusal)
    settings: dict[str, Any] = field(default_factory=dict)


def fields(path: str = "/f/contact", **changes: Any) -> Builder:
    """The person's fields with `changes` (None removes one), as JSON or urlencoded."""
    values = {k: v for k, v in {**PERSON, **changes}.items() if v is not None}
    return lambda relay, browser: Sent(path, fields=values)


def raw(content_type: str, as_json: bytes, as_form: bytes, **headers: str) -> Builder:
    """A body sent as is: `as_json` by a script, `as_form` (urlencoded) by a browser."""

    def build(relay: Relay, browser: bool) -> Sent:
        kind = "application/x-www-form-urlencoded" if browser else content_type
        return Sent(body=as_form if browser else as_json, content_type=kind, headers=headers)

    return build


def foreign(relay: Relay, browser: bool) -> Sent:
    """The person's fields, from a page on a site the form does not list."""
    return Sent(fields=PERSON, headers={"Origin": "https://evil.example"})


def with_file(relay: Relay, browser: bool) -> Sent:
    files = {k: (None, v) for k, v in PERSON.items()}
    return Sent(files={**files, "cv": ("cv.pdf", b"%PDF-1.4", "application/pdf")})


def wrong_method(relay: Relay, browser: bool) -> Sent:
    """A browser opening the form's URL (GET); a script sending PUT."""
    return Sent(method="GET" if browser else "PUT")


def pow_field(make: Callable[[TestClient, FakeClock], str | None]) -> Builder:
    """The person's fields to the guarded form, with the `altcha` field `make` gives."""

    def build(relay: Relay, browser: bool) -> Sent:
        payload = make(relay.client, relay.clock)
        altcha = {} if payload is None else {"altcha": payload}
        return Sent("/f/guarded", fields={**PERSON, **altcha})

    return build


def _expired(client: TestClient, clock: FakeClock) -> str:
    payload = proof(client)
    clock.now += timedelta(minutes=11)
    return payload


def _forged(client: TestClient, clock: FakeClock) -> str:
    return tamper(proof(client), lambda d: d["solution"].update(derivedKey="00" * 32))


def _spent(client: TestClient, clock: FakeClock) -> str:
    """A proof already sent once with a submission that was accepted."""
    payload = proof(client)
    clock.now += timedelta(seconds=10)  # a person's pace: not the time trap
    first = client.post(
        "/f/guarded", json={**PERSON, "altcha": payload}, headers={"Origin": ORIGIN}
    )
    assert first.status_code == 202, first.text
    return payload


def after_one_accepted(relay: Relay, browser: bool) -> Sent:
    """The person's fields, once a first submission from the same client was accepted."""
    first = relay.client.post("/f/contact", json=PERSON, headers={"Origin": ORIGIN})
    assert first.status_code == 202, first.text
    return Sent(fields=PERSON)


def store_refuses(relay: Relay, browser: bool) -> Sent:
    """The person's fields, to a database that refuses the consent event of the accept (the
    last write of its transaction, so the row and prospect before it must roll back)."""
    db = sqlite3.connect(relay.settings.var_dir / "relay.db")
    try:
        db.execute(
            "CREATE TRIGGER refuse BEFORE INSERT ON consent_events "
            "BEGIN SELECT RAISE(ABORT, 'disk full'); END"
        )
        db.commit()
    finally:
        db.close()
    return Sent(fields=PERSON)


def trickle(relay: Relay, browser: bool) -> Sent:
    """A body whose end never comes (sent through a raw ASGI call: see _trickle)."""
    if browser:
        return Sent(body=b"name=Jea", content_type="application/x-www-form-urlencoded")
    return Sent(body=b'{"name": "Jea', content_type="application/json")


FIELD_ERROR = "Some fields need correcting"
ROWS = [
    Row("accepted", 202, None, 303, "http://relay.test/f/contact/thanks", fields(),
        outcome="accepted", stored=ONE_ACCEPTED),
    Row("spam", 202, None, 303, "http://relay.test/f/contact/thanks", fields(_gotcha="x"),
        outcome="dropped"),
    Row("malformed body", 400, "MALFORMED_BODY", 400, "The form could not be read",
        raw("application/json", b"{broken", b"name=%FF%FE")),
    Row("Content-Length not a number", 400, "MALFORMED_BODY", 400,
        "The form could not be read",
        raw("application/json", b"{}", b"name=x", **{"Content-Length": "abc"})),
    Row("file part", 400, "NO_FILE_UPLOADS", 400, "The form could not be read", with_file),
    Row("bad Idempotency-Key", 400, "INVALID_IDEMPOTENCY_KEY", None, "",
        raw("application/json", b"{}", b"", **{"Idempotency-Key": ""})),
    Row("no proof of work", 400, "PROOF_OF_WORK_REQUIRED", 400, "needs JavaScript",
        pow_field(lambda c, k: None), form="guarded"),
    Row("proof not a payload", 400, "PROOF_OF_WORK_MALFORMED", 400,
        "anti-spam check could not be read", pow_field(lambda c, k: "%%%"), form="guarded"),
    Row("foreign origin", 403, "ORIGIN_NOT_ALLOWED", 403, "This site may not use this form",
        foreign, cors=False),
    Row("forged proof", 403, "PROOF_OF_WORK_INVALID", 403, "anti-spam check failed",
        pow_field(_forged), form="guarded"),
    Row("expired proof", 403, "PROOF_OF_WORK_EXPIRED", 403, "anti-spam check has expired",
        pow_field(_expired), form="guarded"),
    Row("proof of another form", 403, "PROOF_OF_WORK_WRONG_FORM", 403,
        "made for another form", pow_field(lambda c, k: proof(c, "other")),
        form="guarded"),
    Row("proof sent twice", 403, "PROOF_OF_WORK_REUSED", 403,
        "already sent with this anti-spam check", pow_field(_spent), form="guarded"),
    Row("unknown form", 404, "FORM_NOT_FOUND", 404, "Form not found", fields("/f/nope"),
        form="unknown", cors=False),
    Row("form URL as endpoint", 404, "FORM_NOT_FOUND", 404, "Form not found",
        fields("/f/contact/f/contact"), form="unknown", cors=False),
    Row("wrong method", 405, "METHOD_NOT_ALLOWED", 405, "This address only accepts forms",
        wrong_method, headers={"allow": "POST, OPTIONS"}),
    Row("body too slow", 408, "BODY_TIMEOUT", 408, "The form took too long to arrive",
        trickle, headers={"connection": "close"}, settings={"body_timeout_seconds": 0.2}),
    Row("body too large", 413, "BODY_TOO_LARGE", 413, "The form is too large",
        fields("/f/quote", message="x" * 5000), form="quote", headers={"connection": "close"}),
    Row("unsupported media type", 415, "UNSUPPORTED_MEDIA_TYPE", 415,
        "The form was sent in an unsupported format",
        lambda relay, browser: Sent(body=b"name=x", content_type="text/plain")),
    Row("missing field", 422, "REQUIRED_FIELD_MISSING", 422, FIELD_ERROR, fields(name=None),
        under="name", outcome="invalid_fields"),
    Row("empty field", 422, "REQUIRED_FIELD_EMPTY", 422, FIELD_ERROR, fields(name=""),
        under="name", outcome="invalid_fields"),
    Row("not an email", 422, "TYPE_EMAIL", 422, FIELD_ERROR, fields(email="nope"),
        under="email", outcome="invalid_fields"),
    Row("not text", 422, "TYPE_TEXT", None, "", fields(name=42), under="name",
        outcome="invalid_fields"),
    Row("not a number", 422, "TYPE_NUMERIC", 422, FIELD_ERROR,
        fields("/f/declared", quantity="douze"), form="declared", under="quantity",
        outcome="invalid_fields"),
    Row("too long", 422, "TOO_LONG", 422, FIELD_ERROR, fields(name="x" * 201), under="name",
        outcome="invalid_fields"),
    Row("line break", 422, "INVALID_CHARACTERS", 422, FIELD_ERROR, fields(company="a\nb"),
        under="company", outcome="invalid_fields"),
    Row("not a choice", 422, "INVALID_CHOICE", 422, FIELD_ERROR,
        fields("/f/declared", product="Autre"), form="declared", under="product",
        outcome="invalid_fields"),
    Row("invalid, with error_url", 422, "TYPE_EMAIL", 303, "https://www.example.com/devis",
        fields("/f/quote", email="nope"), form="quote", under="email",
        outcome="invalid_fields"),
    Row("_cc", 422, "CC_NOT_ALLOWED", 422, "This form sends only to its own recipients",
        fields(_cc="someone@example.net")),
    Row("client over its limit", 429, "RATE_LIMITED", 429, "Too many submissions",
        after_one_accepted, headers={"retry-after": "60"},
        settings={"rate_limit_client": "1/minute"}),
    Row("form budget spent", 429, "RATE_LIMITED", 429, "Too many submissions",
        after_one_accepted, headers={"retry-after": "60"},
        settings={"rate_limit_form": "1/minute"}),
    Row("database refuses", 503, "STORE_UNAVAILABLE", 503, "Please try again in a moment",
        store_refuses, headers={"retry-after": "5"}),
    Row("Redis down, failing closed", 503, "RATE_LIMIT_UNAVAILABLE", 503,
        "Please try again in a moment", fields(), headers={"retry-after": "5"},
        settings={"redis_url": "redis://127.0.0.1:1/0", "redis_fail": "closed"}),
]  # fmt: skip
CASES = [
    pytest.param(row, browser, id=f"{row.name}-{'html' if browser else 'json'}")
    for row in ROWS
    for browser in (False, True)
    if not browser or row.html is not None
]


def _counts(settings: Any) -> dict[str, int]:
    db = sqlite3.connect(settings.var_dir / "relay.db")
    try:
        query = "SELECT count(*) FROM {}"
        return {t: int(db.execute(query.format(t)).fetchone()[0]) for t in TABLES}
    finally:
        db.close()


_SAMPLE = re.compile(r'^relay_submissions_total\{form="([^"]+)",outcome="([^"]+)"\} (\S+)$', re.M)


def _counted(client: TestClient) -> dict[tuple[str, str], float]:
    return {(f, o): float(v) for f, o, v in _SAMPLE.findall(client.get("/metrics").text)}


def _send(client: TestClient, sent: Sent, browser: bool, *, trickling: bool) -> Answer:
    accept = "text/html,application/xhtml+xml" if browser else "application/json"
    headers = {"Accept": accept, "Origin": ORIGIN, **sent.headers}
    if sent.content_type:
        headers["Content-Type"] = sent.content_type
    if trickling:
        return _trickle(client, sent, headers)
    kwargs: dict[str, Any] = {"content": sent.body, "files": sent.files}
    if sent.fields is not None:
        kwargs["data" if browser else "json"] = sent.fields
    response = client.request(
        sent.method, sent.path, headers=headers, follow_redirects=False, **kwargs
    )
    return Answer(response.status_code, dict(response.headers), response.content)


def _trickle(client: TestClient, sent: Sent, headers: dict[str, str]) -> Answer:
    """A body whose first chunk arrives and the rest never does (a raw ASGI request)."""
    pending = [{"type": "http.request", "body": sent.body, "more_body": True}]

    async def receive() -> dict[str, Any]:
        if pending:
            return pending.pop()
        await anyio.sleep(5)  # the rest never comes in time
        return {"type": "http.request", "body": b"}", "more_body": False}

    start, *bodies = asgi_request(client, receive, path=sent.path, headers=headers)
    answer_headers = {k.decode(): v.decode() for k, v in start["headers"]}
    return Answer(start["status"], answer_headers, b"".join(m.get("body", b"") for m in bodies))


@pytest.mark.parametrize(("row", "browser"), CASES)
def test_each_answer_is_the_readmes(forms_file, settings_factory, caplog, row, browser):
    """Each row of the README's table: its status and code (JSON) or page (HTML), its CORS and
    headers, nothing stored unless accepted, exactly one count of its outcome, and one
    `submission refused` line (form, status, code) for each refusal."""
    forms_file.write_text(DEFENCE_FORMS_TOML + DECLARED_TOML, encoding="utf-8")
    settings = settings_factory(**row.settings)
    clock = real_clock()  # the altcha library also checks expiry on the system clock
    caplog.set_level(logging.INFO, logger="relay")
    with TestClient(create_app(settings, clock=clock), base_url="http://relay.test") as client:
        sent = row.build(Relay(client, clock, settings), browser)
        counts, counted = _counts(settings), _counted(client)
        caplog.clear()
        answer = _send(client, sent, browser, trickling=row.build is trickle)
        after, now = _counts(settings), _counted(client)

    assert answer.status == (row.html if browser else row.status), answer.text
    if browser and answer.status == 303:
        assert answer.headers["location"] == row.says
    elif browser:
        assert answer.headers["content-type"] == "text/html; charset=utf-8"
        assert row.says in answer.text
    else:
        _check_json(answer, row)
    assert answer.headers.get("access-control-allow-origin") == (ORIGIN if row.cors else None)
    assert {k: answer.headers.get(k) for k in row.headers} == row.headers
    assert answer.headers.get("connection") == row.headers.get("connection")  # else kept alive
    assert {t: after[t] - counts[t] for t in TABLES if after[t] != counts[t]} == row.stored
    added = {k: v - counted.get(k, 0.0) for k, v in now.items() if v != counted.get(k, 0.0)}
    assert added == {(row.form, row.outcome or str(row.code).lower()): 1.0}
    refusals = [
        (r.form, r.status, r.code) for r in caplog.records if r.getMessage() == "submission refused"
    ]
    logged = (row.outcome or str(row.code)).upper()
    assert refusals == ([] if row.code is None else [(row.form, row.status, logged)])


def _check_json(answer: Answer, row: Row) -> None:
    assert answer.headers["content-type"] == "application/json"
    body = json.loads(answer.body)
    if row.code is None:
        assert (body["ok"], body["next"], len(body["id"])) == (True, row.says, 36)
        return
    assert body["ok"] is False
    assert isinstance(body["error"], str)
    assert body["error"]
    assert [(e.get("field"), e["code"]) for e in body["errors"]] == [(row.under, row.code)]


def _readme_answers() -> set[tuple[int, str]]:
    """(status, code) for each code the README's answer table names."""
    table = README.split("| answer | when |", 1)[1].split("\n\n", 1)[0]
    found: set[tuple[int, str]] = set()
    for line in table.splitlines()[2:]:
        statuses, when = line.strip("|").split("|", 1)
        codes = [
            c
            for c in re.findall(r"`([A-Z][A-Z0-9_]+)`", when)
            if "_" in c and not c.startswith("RELAY_")
        ]
        for status in re.findall(r"\d{3}", statuses):
            found.update((int(status), code) for code in codes or ["(none)"])
    return found


def test_the_table_has_a_row_for_each_answer_of_the_readme():
    """Every (status, code) the README's answer table names has a row here, and every row
    here is in the README: the two tables are the same contract."""
    rows = {(r.status, r.code or "(none)") for r in ROWS}
    rows |= {(r.html, "(none)") for r in ROWS if r.code is None and r.html is not None}
    assert rows == _readme_answers()
