"""Helpers that make tests read as user actions."""

from __future__ import annotations

from typing import Any

from starlette.testclient import TestClient

ORIGIN = "https://www.example.com"
VALID = {
    "name": "Jeanne Martin",
    "email": "jeanne.martin@example.fr",
    "phone": "06 12 34 56 78",
    "company": "Laboratoires Martin",
    "message": "Bonjour,\nje voudrais un devis.\nMerci",
}


def post_json(
    client: TestClient,
    form_id: str = "contact",
    *,
    headers: Any = None,
    expect: int | None = 202,
    **fields: Any,
) -> Any:
    """Post like Formspree's client library: JSON body, Accept: application/json, CORS origin.

    The answer's status must be `expect` (accepted unless a test says otherwise; None: any).
    """
    body = {**VALID, **fields}
    sent = {
        "Accept": "application/json",
        "Origin": ORIGIN,
        "Formspree-Client": "@formspree/core@4",
        **(headers or {}),
    }
    return expected(client.post(f"/f/{form_id}", json=body, headers=sent), expect)


def post_form(
    client: TestClient,
    form_id: str = "contact",
    *,
    headers: Any = None,
    expect: int | None = 303,
    **fields: Any,
) -> Any:
    """Post like a plain HTML form: urlencoded, browser Accept header, no redirect following.

    The answer's status must be `expect` (the success redirect unless a test says otherwise).
    """
    body = {k: v for k, v in {**VALID, **fields}.items() if v is not None}
    sent = {"Accept": "text/html,application/xhtml+xml", "Origin": ORIGIN, **(headers or {})}
    response = client.post(f"/f/{form_id}", data=body, headers=sent, follow_redirects=False)
    return expected(response, expect)


def expected(response: Any, status: int | None) -> Any:
    """`response`, once its status is `status` (None: whatever it is)."""
    if status is not None:
        assert response.status_code == status, response.text
    return response


def asgi_request(
    client: TestClient,
    receive: Any,
    *,
    path: str = "/f/contact",
    headers: dict[str, str] | None = None,
) -> list[dict[str, Any]]:
    """One raw ASGI POST through the app `client` started (its lifespan state), its body read
    from `receive`: what TestClient cannot do, since it reads a streamed body whole before the
    app sees any of it. The messages the app sent back."""
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    wanted = {"Content-Type": "application/json", "Accept": "application/json", **(headers or {})}
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"relay.test")]
        + [(k.lower().encode(), v.encode()) for k, v in wanted.items()],
        "client": ("203.0.113.9", 5000),
        "server": ("relay.test", 80),
        "state": dict(client.app_state),
    }
    portal: Any = client.portal
    portal.call(client.app, scope, receive, send)
    return sent


def queued(store: Any, keyring: Any, now: Any, form_id: str = "contact", **fields: Any) -> Any:
    """Put one submission in the outbox the way the accept endpoint does; returns its id."""

    from relay.ids import new_submission_id
    from relay.store import outbox

    submission_id = new_submission_id()
    body = {**VALID, "phone": "+33612345678", **fields}
    sealed = outbox.seal_body(keyring, submission_id, body)
    row = outbox.NewSubmission(
        id=submission_id,
        form_id=form_id,
        received_at=now,
        legal_basis="legitimate_interest",
        notice_version="2026-03-20",
        consent_given=False,
        consent_wording_version="v1" if form_id == "contact" else None,
        body_enc=sealed,
        subject_mac=keyring.mac(body["email"]),
    )

    async def go() -> str:
        earlier = await store.write(outbox.accept(row))
        assert earlier is None, "an accept without an idempotency key replayed an answer"
        return submission_id

    return go()


class Outbox:
    """A real store (the test's own SQLite, or PostgreSQL) plus readers for rows and attempts."""

    def __init__(self, store: Any, keyring: Any, settings: Any) -> None:
        self.store = store
        self.keyring = keyring
        self.settings = settings

    @classmethod
    async def open(cls, settings: Any, url: str | None = None) -> Outbox:
        from relay.keyfile import load_keyring
        from relay.store import Store

        store = await Store.open(url or settings.effective_database_url, migrate=True)
        return cls(store, load_keyring(settings, create=True), settings)

    async def close(self) -> None:
        await self.store.close()

    async def add(self, now: Any, form_id: str = "contact", **fields: Any) -> str:
        return str(await queued(self.store, self.keyring, now, form_id, **fields))

    async def row(self, submission_id: str) -> dict[str, Any]:
        from sqlalchemy import select

        from relay.store.tables import submissions

        def query(conn: Any) -> dict[str, Any]:
            found = conn.execute(select(submissions).where(submissions.c.id == submission_id))
            return dict(found.mappings().one())

        return dict(await self.store.read(query))

    async def attempts(self, submission_id: str) -> list[dict[str, Any]]:
        from sqlalchemy import select

        from relay.store.tables import delivery_attempts as da

        def query(conn: Any) -> list[dict[str, Any]]:
            found = conn.execute(
                select(da).where(da.c.submission_id == submission_id).order_by(da.c.id)
            )
            return [dict(r) for r in found.mappings()]

        return list(await self.store.read(query))
