"""Admin login: argon2 passwords from settings, a signed session cookie, CSRF, rate limits.

Why this shape: admins are a handful of people named in settings, so there is no user table.
The session is a signed, timestamped cookie (itsdangerous) keyed by a key derived from
RELAY_SECRET_KEY; it carries the user name and that session's CSRF token, and the role is
looked up in settings on every request, so removing a user ends their sessions. The cookie is
HttpOnly, SameSite=Strict, Path=/admin, and Secure except on localhost. It is the one cookie
relay sets (an authentication cookie, exempt from consent: see gdpr-cnil.md K1).
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import secrets
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from itsdangerous import BadSignature, TimestampSigner, URLSafeTimedSerializer
from starlette.requests import Request
from starlette.responses import Response

from relay.clock import Clock, utcnow
from relay.config import AdminUser, Settings
from relay.crypto import KeyRing
from relay.web.deps import client_of
from relay.web.ratelimit import limiter_of

COOKIE = "relay_admin"
#: Holds the signed CSRF token of the login form (there is no session yet to hold it).
LOGIN_COOKIE = "relay_admin_login"
LOGIN_FORM_SECONDS = 3600
COOKIE_PATH = "/admin"
LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
ROLES = {"viewer": 0, "dpo": 1}


@dataclass(frozen=True)
class Session:
    """A logged-in admin and the CSRF token of this session."""

    user: AdminUser
    csrf: str
    sid: str = ""  # the random session id; the server keeps its keyed hash (admin_sessions)

    @property
    def name(self) -> str:
        return self.user.name

    def may(self, role: str) -> bool:
        return ROLES[self.user.role] >= ROLES[role]


def _signer_on(clock: Clock) -> type[TimestampSigner]:
    """itsdangerous's timestamp signer, dating and ageing tokens by the app's clock."""

    class OnClock(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(clock().timestamp())

    return OnClock


class AdminAuth:
    """Per-app login state: the users, the session signer and the failed-login limiter."""

    def __init__(self, settings: Settings, keyring: KeyRing, clock: Clock = utcnow) -> None:
        self.settings = settings
        self.users = {u.name: u for u in settings.admin_users}
        secret = hmac.new(keyring.signing_key, b"relay/admin-session", hashlib.sha256).digest()
        signer = _signer_on(clock)
        self._signer = URLSafeTimedSerializer(secret, salt="relay-admin-session", signer=signer)
        self._login_signer = URLSafeTimedSerializer(secret, salt="relay-admin-login", signer=signer)
        self._session_key = hmac.new(secret, b"relay/admin-session-id", hashlib.sha256).digest()
        self._hasher = PasswordHasher()

    @functools.cached_property
    def _dummy_hash(self) -> str:
        """Verified against for unknown names, so they take as long as known ones."""
        return self._hasher.hash(secrets.token_hex(16))

    @property
    def max_age(self) -> int:
        return self.settings.admin_session_hours * 3600

    # --- passwords and login attempts ---

    async def blocked(self, request: Request, name: str) -> bool:
        """Too many failed logins from this client's network, or for this name from it.

        Counted per network, never per name alone: wrong passwords typed from one network
        cannot keep an admin out who logs in from another (relay.web.ratelimit).
        """
        return await limiter_of(request).login_blocked(client_of(request), name)

    async def failed(self, request: Request, name: str) -> None:
        await limiter_of(request).login_failed(client_of(request), name)

    def authenticate(self, name: str, password: str) -> AdminUser | None:
        """The user if the password matches; unknown names cost the same hash as known ones."""
        user = self.users.get(name)
        try:
            self._hasher.verify(user.password_hash if user else self._dummy_hash, password)
        except (VerificationError, InvalidHashError):
            return None
        return user

    # --- the session cookie ---

    def issue(self, user: AdminUser) -> tuple[str, str]:
        """A new session cookie value and its session id (to record on the server)."""
        sid = secrets.token_urlsafe(24)
        return self._signer.dumps({"u": user.name, "c": secrets.token_urlsafe(24), "s": sid}), sid

    def session_mac(self, sid: str) -> str:
        """The keyed hash of a session id: what the server stores, never the id itself."""
        return hmac.new(self._session_key, sid.encode("utf-8"), hashlib.sha256).hexdigest()

    # --- the login form's CSRF token (a signed double-submit cookie) ---

    def login_token(self) -> tuple[str, str]:
        """(form token, cookie value) for one login form."""
        token = secrets.token_urlsafe(24)
        return token, self._login_signer.dumps(token)

    def login_token_ok(self, request: Request, token: object) -> bool:
        """The login form's token matches its cookie, and the Origin (if sent) is ours."""
        raw = request.cookies.get(LOGIN_COOKIE)
        if not raw or not isinstance(token, str) or not same_origin(request):
            return False
        try:
            expected = self._login_signer.loads(raw, max_age=LOGIN_FORM_SECONDS)
        except BadSignature:
            return False
        if not isinstance(expected, str):
            return False
        return hmac.compare_digest(token.encode("utf-8"), expected.encode("utf-8"))

    def set_login_cookie(self, response: Response, request: Request, value: str) -> None:
        response.set_cookie(
            LOGIN_COOKIE,
            value,
            max_age=LOGIN_FORM_SECONDS,
            path=COOKIE_PATH,
            secure=request.url.hostname not in LOCAL_HOSTS,
            httponly=True,
            samesite="strict",
        )

    def session(self, request: Request) -> Session | None:
        raw = request.cookies.get(COOKIE)
        if not raw:
            return None
        try:
            data = self._signer.loads(raw, max_age=self.max_age)
        except BadSignature:
            return None
        if not isinstance(data, dict):
            return None
        user = self.users.get(str(data.get("u")))
        csrf, sid = data.get("c"), data.get("s")
        if user is None or not isinstance(csrf, str) or not isinstance(sid, str):
            return None
        return Session(user, csrf, sid)

    def set_cookie(self, response: Response, request: Request, value: str) -> None:
        response.set_cookie(
            COOKIE,
            value,
            max_age=self.max_age,
            path=COOKIE_PATH,
            secure=request.url.hostname not in LOCAL_HOSTS,
            httponly=True,
            samesite="strict",
        )

    def clear_cookie(self, response: Response, request: Request) -> None:
        response.delete_cookie(
            COOKIE,
            path=COOKIE_PATH,
            secure=request.url.hostname not in LOCAL_HOSTS,
            httponly=True,
            samesite="strict",
        )


def same_origin(request: Request) -> bool:
    """A POST's Origin (when the browser sends one) must be relay's own."""
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return origin is None
    own = f"{request.url.scheme}://{request.url.netloc}"
    return origin.rstrip("/") == own


def csrf_ok(request: Request, session: Session, token: object) -> bool:
    """CSRF: the form's token equals the session's, and the Origin is ours."""
    if not isinstance(token, str) or not same_origin(request):
        return False
    return hmac.compare_digest(token.encode("utf-8"), session.csrf.encode("utf-8"))
