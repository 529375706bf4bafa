"""Admin sessions end on the server at logout; notices come from a fixed set; the login form
carries CSRF; with no admin users, /admin says how to add one."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from relay.app import create_app
from tests.admin_helpers import PASSWORDS, USERS, Admin, csrf_in


@pytest.fixture(name="admin_client")
def fixture_admin_client(settings_factory, clock):
    app = create_app(settings_factory(admin_users=USERS), clock=clock)
    with TestClient(app, base_url="http://localhost") as client:
        yield client


def test_logout_revokes_the_session_for_every_copy_of_the_cookie(admin_client):
    """A cookie copied before logout no longer opens any admin page after it."""
    admin = Admin(admin_client)
    admin.login("vera")
    copied = dict(admin_client.cookies)
    assert admin.get("/admin/deliveries").status_code == 200
    admin.post("/admin/logout")
    admin_client.cookies.clear()
    for name, value in copied.items():
        admin_client.cookies.set(name, value, path="/admin")
    replayed = admin.get("/admin/deliveries")
    assert replayed.status_code == 303
    assert replayed.headers["location"].startswith("/admin/login")


def test_a_notice_in_the_url_is_never_shown_as_text(admin_client):
    """`?notice=` selects one of relay's own messages; any other text shows nothing."""
    admin = Admin(admin_client)
    admin.login("vera")
    page = admin.get("/admin/deliveries/nope?notice=Your+account+is+locked,+call+0800")
    assert "account is locked" not in page.text
    assert 'class="notice"' not in page.text


def test_the_login_form_needs_its_csrf_token(admin_client):
    """A login posted without the form's token (or with another's) is refused with 403."""
    data = {"username": "vera", "password": PASSWORDS["vera"]}
    bare = admin_client.post("/admin/login", data=data, follow_redirects=False)
    assert bare.status_code == 403
    assert "set-cookie" not in bare.headers or "relay_admin=" not in bare.headers["set-cookie"]
    token = csrf_in(admin_client.get("/admin/login").text)
    forged = admin_client.post(
        "/admin/login", data={**data, "csrf": token + "x"}, follow_redirects=False
    )
    assert forged.status_code == 403
    foreign = admin_client.post(
        "/admin/login",
        data={**data, "csrf": token},
        headers={"Origin": "https://evil.example"},
        follow_redirects=False,
    )
    assert foreign.status_code == 403
    fresh = csrf_in(admin_client.get("/admin/login").text)  # each form page has its own
    good = admin_client.post("/admin/login", data={**data, "csrf": fresh}, follow_redirects=False)
    assert good.status_code == 303


def test_without_admin_users_admin_says_how_to_add_one(client):
    """No RELAY_ADMIN_USERS: /admin explains `relay admin hash-password` and the setting."""
    page = client.get("/admin", follow_redirects=False)
    assert page.status_code == 200
    assert "No admin users yet" in page.text
    assert "relay admin hash-password" in page.text
    assert "RELAY_ADMIN_USERS" in page.text
    assert "how to add one" in client.get("/admin/login").text
