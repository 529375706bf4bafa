"""The self-service withdrawal link: an opaque, expiring token that names one person.

The token is the address and an expiry sealed with the key ring (AES-256-GCM authenticates
both), so it cannot be forged, altered or read by anyone but relay, and the URL reveals
nothing. Pure: no I/O.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

from relay.crypto import DecryptionFailed, KeyRing, normalise_email
from relay.errors import SubjectError

LINK_AAD = b"relay/consent-withdraw-link/v1"


def withdrawal_token(keyring: KeyRing, email: str, *, now: datetime, days: int) -> str:
    """An opaque, expiring token: the sealed address and expiry (AES-GCM authenticates both)."""
    expires = int((now + timedelta(days=days)).timestamp())
    plain = json.dumps({"e": normalise_email(email), "x": expires}).encode()
    return base64.urlsafe_b64encode(keyring.seal(plain, LINK_AAD)).decode().rstrip("=")


class InvalidLink(SubjectError):
    """A withdrawal link that was altered, sealed by a retired key, or has expired."""


def email_of_token(keyring: KeyRing, token: str, *, now: datetime) -> str:
    """The address a withdrawal token was made for; InvalidLink if forged or expired."""
    try:
        raw = base64.urlsafe_b64decode(token.encode("ascii") + b"=" * (-len(token) % 4))
        data = json.loads(keyring.open(raw, LINK_AAD))
        email, expires = str(data["e"]), int(data["x"])
    except (ValueError, KeyError, TypeError, UnicodeError, DecryptionFailed):
        msg = "this withdrawal link is not valid"
        raise InvalidLink(msg) from None
    if datetime.fromtimestamp(expires, UTC) < now:
        msg = "this withdrawal link has expired"
        raise InvalidLink(msg)
    return email
