"""Admin users for tests, and an `Admin` that logs in and clicks like a person would."""

from __future__ import annotations

import json
import re
from typing import Any

from argon2 import PasswordHasher
from starlette.testclient import TestClient

#: Cheap parameters: tests verify many logins; the hash records its own parameters.
_HASHER = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
PASSWORDS = {"vera": "viewer-password-1", "diane": "dpo-password-2"}
USERS = [
    {"name": "vera", "role": "viewer", "password_hash": _HASHER.hash(PASSWORDS["vera"])},
    {"name": "diane", "role": "dpo", "password_hash": _HASHER.hash(PASSWORDS["diane"])},
]
USERS_JSON = json.dumps(USERS)
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def csrf_in(html: str) -> str:
    match = _CSRF.search(html)
    assert match, "no CSRF field on the page"
    return match.group(1)


class Admin:
    """One browser session on /admin through TestClient."""

    def __init__(self, client: TestClient) -> None:
        self.client = client
        self.csrf = ""

    def login(self, name: str, password: str | None = None, *, expect: int | None = 303) -> Any:
        """Log in through the form; the answer's status must be `expect` (303: logged in)."""
        form = self.client.get("/admin/login", follow_redirects=False)
        token = csrf_in(form.text) if form.status_code == 200 else ""
        response = self.client.post(
            "/admin/login",
            data={"username": name, "password": password or PASSWORDS[name], "csrf": token},
            follow_redirects=False,
        )
        if expect is not None:
            assert response.status_code == expect, response.text
        if response.status_code == 303:
            page = self.client.get("/admin/deliveries")
            self.csrf = csrf_in(page.text)
        return response

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.client.get(path, follow_redirects=False, **kwargs)

    def post(
        self,
        path: str,
        data: dict[str, str] | None = None,
        *,
        expect: int | None = 303,
        **kwargs: Any,
    ) -> Any:
        """Submit an admin form with this session's CSRF token; the answer's status must be
        `expect` (303: the action was done and the page redirects; None: any)."""
        body = {"csrf": self.csrf, **(data or {})}
        response = self.client.post(path, data=body, follow_redirects=False, **kwargs)
        if expect is not None:
            assert response.status_code == expect, response.text
        return response
