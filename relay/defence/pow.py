"""ALTCHA proof of work (protocol v2), issued and checked with the `altcha` package.

Why ALTCHA: self-hosted, no cookie, no third party (reference/gdpr-cnil.md B3), and its widget
is what site developers add to the page. Challenges are made in the library's *deterministic*
mode with a key signature: relay picks the counter, so it knows the answer and checks a proof
with two HMACs (the fast path), and the `counter=0` forgery the 2.0.1 slow path accepted
cannot apply (a regression test keeps it so).

Cost: PBKDF2/SHA-256 with `proof_of_work_cost` iterations per try (default 1000) and a counter
drawn from [n, 2n) with n = `proof_of_work_counter` (default 2000): about 3 million PBKDF2
iterations on average, which WebCrypto on a recent phone runs in about a second (the widget
uses several workers); relay itself derives one key (1000 iterations, ~1 ms) per challenge.

Every challenge is signed with keys derived from RELAY_SECRET_KEY (`KeyRing.subkeys`), bound to
its form and its issue time in `data`, and expires after RELAY_PROOF_OF_WORK_TTL_SECONDS. The
library also compares `expiresAt` with the system clock; relay compares it with its own.

Pure, but for a bounded memo of the payloads refused whatever the time (ProofKeys.refused).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from relay.crypto import KeyRing

if TYPE_CHECKING:
    from altcha import Payload

ALGORITHM = "PBKDF2/SHA-256"
#: The widget's default field name.
FIELD = "altcha"
#: A v2 payload of relay's challenges is ~700 characters; anything much longer is not one.
MAX_PAYLOAD_CHARS = 4096
TIME_TRAP = "time_trap"

REQUIRED = "PROOF_OF_WORK_REQUIRED"
MALFORMED = "PROOF_OF_WORK_MALFORMED"
INVALID = "PROOF_OF_WORK_INVALID"
EXPIRED = "PROOF_OF_WORK_EXPIRED"
WRONG_FORM = "PROOF_OF_WORK_WRONG_FORM"
REUSED = "PROOF_OF_WORK_REUSED"

#: code → (HTTP status, message for the person at the form).
MESSAGES = {
    REQUIRED: (
        400,
        "This form needs JavaScript to check that it was sent by a person: please enable "
        "JavaScript, reload the page and send it again.",
    ),
    MALFORMED: (400, "The form's anti-spam check could not be read; reload the page and retry."),
    INVALID: (403, "The form's anti-spam check failed; reload the page and send it again."),
    EXPIRED: (403, "The form's anti-spam check has expired; reload the page and send it again."),
    WRONG_FORM: (403, "The anti-spam check was made for another form; reload the page."),
    REUSED: (403, "This form was already sent with this anti-spam check; reload the page."),
}


@dataclass(frozen=True)
class ProofKeys:
    """HMAC keys for challenges (`sign`) and derived keys (`key_sign`), newest first."""

    sign: tuple[bytes, ...]
    key_sign: tuple[bytes, ...]
    #: Payloads refused whatever the time or form (malformed, or not signed by these keys), by
    #: their text: a flood re-sending the same made-up proof costs a dict lookup. Bounded.
    refused: dict[str, str] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def of(cls, keyring: KeyRing) -> ProofKeys:
        return cls(tuple(keyring.subkeys("altcha/challenge")), tuple(keyring.subkeys("altcha/key")))


@dataclass(frozen=True)
class Proof:
    """A verified proof: which challenge (a hash of its nonce), when it was issued and expires."""

    nonce_id: str
    issued_at: datetime
    expires_at: datetime

    def too_fast(self, now: datetime, min_fill_seconds: float) -> bool:
        """The time trap: solved and sent sooner after issue than a person fills the form."""
        return now - self.issued_at < timedelta(seconds=min_fill_seconds)


@dataclass(frozen=True)
class Refused:
    """Why a proof is refused: one of the codes above."""

    code: str

    @property
    def status(self) -> int:
        return MESSAGES[self.code][0]

    @property
    def message(self) -> str:
        return MESSAGES[self.code][1]


def issue(
    keys: ProofKeys,
    form_id: str,
    now: datetime,
    *,
    ttl_seconds: int,
    cost: int,
    counter: int,
) -> dict[str, Any]:
    """A signed challenge for `form_id`, as the JSON the widget fetches."""
    from altcha import create_challenge  # the library (and argon2) only once a form uses it

    issued = int(now.timestamp())
    challenge = create_challenge(
        ALGORITHM,
        cost,
        counter=counter + secrets.randbelow(counter),
        expires_at=issued + ttl_seconds,
        data={"form": form_id, "issued": issued},
        hmac_secret=keys.sign[0],
        hmac_key_secret=keys.key_sign[0],
    )
    out: dict[str, Any] = challenge.to_dict()
    return out


def _decode(text: str) -> dict[str, Any] | None:
    """The payload's JSON, when it has the shape Payload.from_dict reads (else None)."""
    try:
        decoded = json.loads(base64.b64decode(text, validate=True))
    except (binascii.Error, ValueError, RecursionError):
        return None
    if not isinstance(decoded, dict):
        return None
    challenge, solution = decoded.get("challenge"), decoded.get("solution")
    if not isinstance(challenge, dict) or not isinstance(solution, dict):
        return None
    params = challenge.get("parameters")
    if not isinstance(params, dict) or not params.keys() >= _PARAMETERS:
        return None
    return decoded if solution.keys() >= _SOLUTION else None


#: The keys Payload.from_dict requires (it raises KeyError without them).
_PARAMETERS = frozenset(("algorithm", "nonce", "salt", "cost"))
_SOLUTION = frozenset(("counter", "derivedKey"))


def _key_signed(decoded: dict[str, Any], keys: ProofKeys) -> bool:
    """Whether the solution's derived key matches the challenge's key signature under a key of
    the ring: two HMACs on the decoded JSON, where the library's full check first builds its
    objects and serialises the parameters as canonical JSON (~50 µs). A flood of made-up
    solutions is refused on this alone; a match still goes through the library's whole
    verification."""
    signature = decoded["challenge"]["parameters"].get("keySignature")
    derived = decoded["solution"]["derivedKey"]
    if not isinstance(signature, str) or not isinstance(derived, str):
        return False
    try:
        key = bytes.fromhex(derived)
    except ValueError:
        return False
    return any(
        hmac.compare_digest(hmac.digest(k, key, "sha256").hex(), signature) for k in keys.key_sign
    )


def _verified(payload: Payload, keys: ProofKeys) -> str | None:
    """None when a key of the ring signed the challenge and the solution is right, else a code."""
    from altcha import verify_solution  # see issue()

    for sign, key_sign in zip(keys.sign, keys.key_sign, strict=True):
        try:
            result = verify_solution(payload, sign, hmac_key_secret=key_sign)
        except (ValueError, TypeError, AttributeError, RecursionError):
            return MALFORMED
        if result.invalid_signature:
            continue  # maybe signed by an older key of the ring
        if result.expired:
            return EXPIRED
        return None if result.verified else INVALID
    return INVALID


#: How many refused payloads ProofKeys.refused keeps (each at most MAX_PAYLOAD_CHARS).
REFUSED_KEPT = 512


def _remember(keys: ProofKeys, payload: str, code: str) -> Refused:
    if len(keys.refused) >= REFUSED_KEPT:
        keys.refused.clear()
    keys.refused[payload] = code
    return Refused(code)


def check(payload: Any, keys: ProofKeys, form_id: str, now: datetime) -> Proof | Refused:
    """Verify the `altcha` field of a submission to `form_id` at `now` (single use is not
    checked here: the caller records `Proof.nonce_id` until `Proof.expires_at`)."""
    if payload is None or (isinstance(payload, str) and not payload.strip()):
        return Refused(REQUIRED)
    if not isinstance(payload, str) or len(payload) > MAX_PAYLOAD_CHARS:
        return Refused(MALFORMED)
    known = keys.refused.get(payload)
    if known is not None:
        return Refused(known)
    decoded = _decode(payload.strip())
    if decoded is None:
        return _remember(keys, payload, MALFORMED)
    if not _key_signed(decoded, keys):
        return _remember(keys, payload, INVALID)
    from altcha import Payload  # see issue()

    try:
        parsed = Payload.from_dict(decoded)
    except (ValueError, KeyError, TypeError, AttributeError):
        return Refused(MALFORMED)
    problem = _verified(parsed, keys)
    if problem is not None:
        return Refused(problem)
    params = parsed.challenge.parameters
    data, expires = params.data, params.expires_at
    if not isinstance(data, dict) or type(expires) is not int:
        return Refused(INVALID)  # signed, but not by relay's issue(): no form or no expiry
    issued = data.get("issued")
    if type(issued) is not int:
        return Refused(INVALID)
    if data.get("form") != form_id:
        return Refused(WRONG_FORM)
    expires_at = datetime.fromtimestamp(expires, UTC)
    if now >= expires_at:
        return Refused(EXPIRED)
    nonce_id = hashlib.sha256(f"altcha|{params.nonce}".encode()).hexdigest()
    return Proof(nonce_id, datetime.fromtimestamp(issued, UTC), expires_at)
