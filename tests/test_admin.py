"""/admin: login, the delivery log, a timeline, retry, the DPO's lookup, and the audit trail."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.engine import Connection
from starlette.testclient import TestClient

from relay import states
from relay.app import create_app
from relay.crypto import KeyRing
from relay.store.deliveries import get_delivery
from relay.store.tables import audit_log
from tests.admin_helpers import USERS, Admin, csrf_in
from tests.conftest import TEST_KEY
from tests.deliveries_helpers import WEBHOOK_KEY, deliver, hook, read, submit


@pytest.fixture(name="settings")
def fixture_settings(settings_factory: Any) -> Any:
    return settings_factory(admin_users=USERS, mailgun_webhook_signing_key=WEBHOOK_KEY)


@pytest.fixture(name="client")
def fixture_client(settings, clock) -> Iterator[TestClient]:
    """Served as localhost: the session cookie is Secure everywhere else."""
    with TestClient(create_app(settings, clock=clock), base_url="http://localhost") as client:
        yield client


@pytest.fixture(name="log")
def fixture_log(client, clock) -> dict[str, str]:
    """One submission Mailgun took and delivered, then one it refused for good (400)."""
    delivered = submit(client)
    deliver(client)
    hook(client, delivered, "delivered", clock.now)
    failed = submit(client, "quote")
    deliver(client, 400)
    return {"delivered": delivered, "failed": failed}


def _audit(client) -> list[tuple[str, str, str | None]]:
    def query(conn: Connection) -> list[tuple[str, str, str | None]]:
        rows = conn.execute(
            select(audit_log.c.actor, audit_log.c.action, audit_log.c.target).order_by(
                audit_log.c.id
            )
        )
        return [(r[0], r[1], r[2]) for r in rows]

    return list(read(client, query))


def test_admin_users_need_unique_names():
    """Two admins with one name is a configuration error naming the variable."""
    from relay.config import load_settings
    from relay.errors import ConfigError

    with pytest.raises(ConfigError, match="RELAY_ADMIN_USERS: Value error, each admin user name"):
        load_settings(admin_users=USERS + USERS[:1])


def test_same_origin_posts_are_accepted(client, log):
    """The browser's own Origin passes the check."""
    admin = Admin(client)
    admin.login("vera")
    headers = {"Origin": "http://localhost"}
    admin.post(f"/admin/deliveries/{log['failed']}/retry", headers=headers)


def test_every_admin_page_needs_a_login(client):
    """Without a session, pages redirect to the login page (keeping where you were going)."""
    for path in ("/admin", "/admin/deliveries?state=failed", "/admin/prospects"):
        response = client.get(path, follow_redirects=False)
        assert response.status_code == 303
    assert client.get("/admin/deliveries?state=failed", follow_redirects=False).headers[
        "location"
    ] == ("/admin/login?next=/admin/deliveries%3Fstate%3Dfailed")
    post = client.post("/admin/deliveries/x/retry", follow_redirects=False)
    assert (post.status_code, post.headers["location"]) == (
        303,
        "/admin/login?next=/admin/deliveries",
    )


def test_login_sets_a_strict_http_only_cookie(client):
    """A good password: 303 with HttpOnly, SameSite=Strict, Path=/admin (Secure off localhost)."""
    response = Admin(client).login("vera")
    assert (response.status_code, response.headers["location"]) == (303, "/admin/deliveries")
    cookie = response.headers["set-cookie"].lower()
    assert "httponly" in cookie
    assert "samesite=strict" in cookie
    assert "path=/admin" in cookie
    assert "secure" not in cookie


def test_cookie_is_secure_outside_localhost(settings, clock):
    """Served on another host than localhost, the session cookie is marked Secure."""
    with TestClient(
        create_app(settings, clock=clock), base_url="https://relay.example.com"
    ) as client:
        response = Admin(client).login("vera")
    assert "secure" in response.headers["set-cookie"].lower()


def test_wrong_password_is_refused_and_audited(client):
    """A wrong password or an unknown user is refused (401) with one message, and each failure is
    audited."""
    response = Admin(client).login("vera", "not-the-password", expect=401)
    assert "Wrong user name or password." in response.text
    Admin(client).login("mallory", "whatever", expect=401)
    assert [a[:2] for a in _audit(client)] == [
        ("vera", "login.failed"),
        ("unknown-user", "login.failed"),
    ]


def test_login_attempts_are_rate_limited(client):
    """After 5 failures for a user from one network, even the right password waits (429)."""
    admin = Admin(client)
    for _ in range(5):
        admin.login("vera", "guess", expect=401)
    response = admin.login("vera", expect=429)
    assert "Too many failed attempts" in response.text


def _login_from(client: TestClient, ip: str, name: str, password: str) -> int:
    """Log in as a person at `ip` would, through the trusted proxy that names them."""
    client.headers["X-Forwarded-For"] = ip
    return int(Admin(client).login(name, password, expect=None).status_code)


@pytest.fixture(name="proxied")
def fixture_proxied(settings_factory, clock) -> Iterator[TestClient]:
    """/admin behind a trusted reverse proxy at 10.0.0.1, so each request names its visitor."""
    settings = settings_factory(admin_users=USERS, trusted_proxies="10.0.0.1")
    app = create_app(settings, clock=clock)
    with TestClient(app, base_url="http://localhost", client=("10.0.0.1", 1)) as client:
        yield client


def test_wrong_passwords_from_one_network_do_not_lock_out_another(proxied):
    """Failures typed from one network block that network only: the admin logs in from
    another, and other names from the guessing network are blocked as well."""
    from tests.admin_helpers import PASSWORDS

    for _ in range(5):
        assert _login_from(proxied, "203.0.113.9", "vera", "guess") == 401
    assert _login_from(proxied, "203.0.113.200", "vera", PASSWORDS["vera"]) == 429
    assert _login_from(proxied, "203.0.113.9", "diane", PASSWORDS["diane"]) == 429
    assert _login_from(proxied, "198.51.100.4", "vera", PASSWORDS["vera"]) == 303


def test_login_failures_fade_after_the_window(proxied, clock):
    """The block lasts the 15-minute window of the injected clock, then logins pass again."""
    from tests.admin_helpers import PASSWORDS

    for _ in range(5):
        _login_from(proxied, "203.0.113.9", "vera", "guess")
    assert _login_from(proxied, "203.0.113.9", "vera", PASSWORDS["vera"]) == 429
    clock.now += timedelta(minutes=31)
    assert _login_from(proxied, "203.0.113.9", "vera", PASSWORDS["vera"]) == 303


def test_login_redirects_only_within_admin(client):
    """`next` never leads off /admin (no open redirect)."""
    for target, expected in [
        ("/admin/prospects", "/admin/prospects"),
        ("//evil.example", "/admin/deliveries"),
        ("https://evil.example", "/admin/deliveries"),
    ]:
        client.cookies.clear()
        token = csrf_in(client.get("/admin/login").text)
        response = client.post(
            "/admin/login",
            data={
                "username": "vera",
                "password": "viewer-password-1",
                "next": target,
                "csrf": token,
            },
            follow_redirects=False,
        )
        assert response.headers["location"] == expected


def test_delivery_log_shows_states_and_counts(client, log):
    """The log lists delivered and failed submissions, newest first, with 24 h and 7 d counts."""
    admin = Admin(client)
    admin.login("vera")
    page = admin.get("/admin/deliveries")
    assert page.status_code == 200
    assert page.text.index(log["failed"]) < page.text.index(log["delivered"])
    assert '<td data-window="24h" data-state="delivered">1</td>' in page.text
    assert '<td data-window="7d" data-state="failed">1</td>' in page.text
    assert "Jeanne" not in page.text
    failed_only = admin.get("/admin/deliveries?state=failed&form=quote&since=7d")
    assert log["failed"] in failed_only.text
    assert log["delivered"] not in failed_only.text


def test_bad_filters_are_explained(client, log):
    """Unknown state, unknown form and an unreadable `since` filter are each explained on a 400
    page."""
    admin = Admin(client)
    admin.login("vera")
    page = admin.get("/admin/deliveries?state=lost&form=nope&since=soon")
    assert page.status_code == 400
    for problem in (
        "unknown state &#39;lost&#39;",
        "unknown form &#39;nope&#39;",
        "neither a span",
    ):
        assert problem in page.text


def test_timeline_and_retry(client, log):
    """The detail page shows why it failed and a retry button; retry requeues it (with CSRF)."""
    admin = Admin(client)
    admin.login("vera")
    page = admin.get(f"/admin/deliveries/{log['failed']}")
    assert page.status_code == 200
    assert (
        "Mailgun refused the message (400: &#39;to&#39; parameter is not a valid address"
        in page.text
    )
    assert "HTTP 400" in page.text
    assert "Retry delivery" in page.text
    admin.post(f"/admin/deliveries/{log['failed']}/retry", {"csrf": "forged"}, expect=403)
    response = admin.post(f"/admin/deliveries/{log['failed']}/retry")
    after = admin.get(response.headers["location"])
    assert "Requeued: it will be sent again shortly." in after.text
    assert read(client, get_delivery(log["failed"])).state == states.QUEUED
    assert ("vera", "delivery.retry", log["failed"]) in _audit(client)


def test_no_retry_button_for_a_delivered_submission(client, log):
    """A delivered submission has no retry button, and a forged retry comes back with a notice
    saying why."""
    admin = Admin(client)
    admin.login("vera")
    page = admin.get(f"/admin/deliveries/{log['delivered']}")
    assert "Retry delivery" not in page.text
    response = admin.post(f"/admin/deliveries/{log['delivered']}/retry")
    assert response.headers["location"].endswith("?notice=not_retryable")
    page = admin.get(response.headers["location"])
    assert "Only failed or dead submissions can be retried." in page.text


def test_unknown_submission_is_404(client):
    """An unknown submission id is a 404."""
    admin = Admin(client)
    admin.login("vera")
    assert admin.get("/admin/deliveries/nope").status_code == 404


@pytest.mark.parametrize("origin", ["https://evil.example", "null", "http://localhost:8443"])
def test_cross_site_posts_are_refused(client, log, origin):
    """A POST from another (or an opaque) origin is refused even with the right token."""
    admin = Admin(client)
    admin.login("vera")
    admin.post(f"/admin/deliveries/{log['failed']}/retry", headers={"Origin": origin}, expect=403)
    assert read(client, get_delivery(log["failed"])).state == states.FAILED


def _details(client) -> list[str | None]:
    def query(conn: Connection) -> list[str | None]:
        return [r[0] for r in conn.execute(select(audit_log.c.detail).order_by(audit_log.c.id))]

    return list(read(client, query))


def test_each_page_view_writes_one_audit_line(client, log):
    """Each page view is one audit line (who, what, which submission), whose details keep the filter
    but no filter value that looks like personal data."""
    admin = Admin(client)
    admin.login("vera")
    before = len(_audit(client))
    admin.get("/admin/deliveries")
    admin.get(f"/admin/deliveries/{log['failed']}")
    admin.get("/admin/deliveries?state=failed&since=jeanne@example.fr")
    assert _audit(client)[before:] == [
        ("vera", "view.deliveries", None),
        ("vera", "view.delivery", log["failed"]),
        ("vera", "view.deliveries", None),
    ]
    assert "state=failed" in str(_details(client))
    assert "jeanne" not in str(_details(client))


def test_logout_ends_the_session(client):
    """Logout needs the session's CSRF token, then sends to the login page and the session no longer
    opens pages."""
    admin = Admin(client)
    admin.login("vera")
    admin.post("/admin/logout", {"csrf": "wrong"}, expect=403)
    response = admin.post("/admin/logout")
    assert (response.status_code, response.headers["location"]) == (303, "/admin/login")
    assert admin.get("/admin/deliveries").status_code == 303


def test_tampered_or_expired_sessions_are_refused(client, clock):
    """A session cookie past RELAY_ADMIN_SESSION_HOURS (by the app's clock), or altered, sends
    the admin back to the login page."""
    admin = Admin(client)
    admin.login("vera")
    good = client.cookies.get("relay_admin")
    assert good is not None
    clock.now += timedelta(hours=8, minutes=1)
    assert admin.get("/admin/deliveries").status_code == 303  # the cookie is sent, and too old
    clock.now -= timedelta(hours=8, minutes=1)
    assert admin.get("/admin/deliveries").status_code == 200
    client.cookies.delete("relay_admin")
    client.cookies.set("relay_admin", good[:-2] + "xx", path="/admin")
    assert admin.get("/admin/deliveries").status_code == 303


def test_a_viewer_cannot_reach_prospects(client):
    """The viewer role sees the delivery log only; prospect pages answer 403 (audited)."""
    admin = Admin(client)
    admin.login("vera")
    assert "Prospects" not in admin.get("/admin/deliveries").text
    assert admin.get("/admin/prospects").status_code == 403
    admin.post("/admin/prospects", {"email": "jeanne.martin@example.fr"}, expect=403)
    admin.post("/admin/prospects/export", {"email": "jeanne.martin@example.fr"}, expect=403)
    assert ("vera", "denied", "/admin/prospects") in _audit(client)


def test_dpo_looks_a_prospect_up_by_email(client, clock):
    """The DPO sees the decrypted record, its submissions and the action buttons; it is audited."""
    sid = submit(client)
    admin = Admin(client)
    admin.login("diane")
    form = admin.get("/admin/prospects")
    assert form.status_code == 200
    page = admin.post("/admin/prospects", {"email": " Jeanne.Martin@example.fr "}, expect=200)
    for text in ("Jeanne Martin", "Laboratoires Martin", "jeanne.martin@example.fr", sid):
        assert text in page.text
    for action in ("export", "erase", "restrict", "withdraw"):
        assert f'action="/admin/prospects/{action}"' in page.text
    ref = KeyRing.from_text(TEST_KEY).subject_ref("jeanne.martin@example.fr")
    assert ("diane", "view.prospect", ref) in _audit(client)
    assert "jeanne" not in str(_audit(client)).lower()


def test_lookup_without_a_match(client):
    """A lookup that finds nothing says so and is audited under the address's stable reference."""
    admin = Admin(client)
    admin.login("diane")
    page = admin.post("/admin/prospects", {"email": "nobody@example.org"}, expect=200)
    assert "Nothing is held for this address." in page.text
    ref = KeyRing.from_text(TEST_KEY).subject_ref("nobody@example.org")
    assert ("diane", "view.prospect", ref) in _audit(client)
    admin.post("/admin/prospects", {"email": "x@example.org", "csrf": "bad"}, expect=403)


def test_login_page_and_csrf_helper(client):
    """The login page asks for a password; once logged in it redirects, and pages carry the
    session's CSRF token."""
    page = client.get("/admin/login")
    assert page.status_code == 200
    assert 'name="password" type="password"' in page.text
    admin = Admin(client)
    admin.login("diane")
    assert client.get("/admin/login", follow_redirects=False).status_code == 303
    assert csrf_in(admin.get("/admin/prospects").text) == admin.csrf


def test_unknown_subject_action_is_refused_by_the_adapter(client, clock):
    """run_action accepts only the four actions, whatever relay.rights.privacy holds."""
    import asyncio

    from relay.web.subject_actions import Context, UnknownAction, run_action
    from tests.deliveries_helpers import store

    keyring = KeyRing.from_text(TEST_KEY)
    with pytest.raises(UnknownAction, match="unknown action 'explode'"):
        asyncio.run(
            run_action(
                "explode",
                store(client),
                keyring,
                "a@b.fr",
                actor="t",
                now=clock.now,
                context=Context(controller={}, mail_dir=Path("var/mail")),
            )
        )


def test_dpo_runs_the_subject_actions_from_the_page(client):
    """Export downloads the JSON export; restrict, withdraw and erase run relay.rights.privacy's
    actions, each recorded in the request register and the audit log."""
    from relay.store.tables import subject_requests

    submit(client)
    admin = Admin(client)
    admin.login("diane")
    email = {"email": "jeanne.martin@example.fr"}
    export = admin.post("/admin/prospects/export", email, expect=200)
    assert export.headers["content-disposition"].startswith("attachment;")
    assert export.json()["prospect"]["name"] == "Jeanne Martin"
    assert "record restricted" in admin.post("/admin/prospects/restrict", email, expect=200).text
    admin.post("/admin/prospects/withdraw", email, expect=200)
    erased = admin.post("/admin/prospects/erase", email, expect=200)
    assert "erased (" in erased.text
    kinds = read(client, lambda conn: list(conn.execute(select(subject_requests.c.kind)).scalars()))
    assert {"export", "restrict", "erase"} <= set(kinds)
    gone = admin.post("/admin/prospects", email, expect=200)
    assert "Nothing is held for this address." in gone.text
