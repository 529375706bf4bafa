"""Encryption of personal data at rest, and keyed hashes to find a person without storing them.

Why: a copy of the database file alone must reveal no name, email, phone, company or message.
Each value is sealed with AES-256-GCM (authenticated: a tampered or swapped ciphertext fails
to open) under a key derived from ``RELAY_SECRET_KEY``. Every ciphertext starts with the id of
the key that sealed it, so keys can rotate: the newest key seals, every key in the ring opens.

``RELAY_SECRET_KEY`` holds one or more keys separated by commas, newest first; each key is
urlsafe base64 of at least 32 random bytes (``relay keys generate`` prints one).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import unicodedata
from dataclasses import dataclass

import idna
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from relay.errors import ConfigError, RelayError

FORMAT_V1 = b"\x01"
KEY_ID_BYTES = 4
NONCE_BYTES = 12
MIN_KEY_BYTES = 32


class DecryptionFailed(RelayError):
    """Raised when a ciphertext was sealed by an unknown key, or was altered since."""


def generate_key() -> str:
    """A new random key in the form RELAY_SECRET_KEY takes."""
    return base64.urlsafe_b64encode(os.urandom(32)).decode("ascii").rstrip("=")


def _decode_key(text: str) -> bytes:
    padded = text.strip() + "=" * (-len(text.strip()) % 4)
    try:
        raw = base64.urlsafe_b64decode(padded.encode("ascii"))
    except (binascii.Error, UnicodeEncodeError, ValueError):
        msg = "RELAY_SECRET_KEY: a key is not urlsafe base64 (generate one: relay keys generate)"
        raise ConfigError(msg) from None
    if len(raw) < MIN_KEY_BYTES:
        msg = (
            f"RELAY_SECRET_KEY: a key decodes to {len(raw)} bytes; at least {MIN_KEY_BYTES} "
            "random bytes are needed (generate one: relay keys generate)"
        )
        raise ConfigError(msg)
    return raw


def _derive(master: bytes, purpose: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"relay/" + purpose).derive(
        master
    )


@dataclass(frozen=True)
class _Key:
    key_id: bytes
    aead: AESGCM
    mac_key: bytes
    sign_key: bytes


def _make_key(master: bytes) -> _Key:
    return _Key(
        key_id=hashlib.sha256(b"relay/key-id/" + master).digest()[:KEY_ID_BYTES],
        aead=AESGCM(_derive(master, b"aead")),
        mac_key=_derive(master, b"mac"),
        sign_key=_derive(master, b"sign"),
    )


class KeyRing:
    """The keys relay knows, newest first. The newest seals; any of them opens."""

    def __init__(self, masters: list[bytes]) -> None:
        if not masters:
            msg = "RELAY_SECRET_KEY: no key given"
            raise ConfigError(msg)
        self._keys = [_make_key(m) for m in masters]
        self._by_id = {k.key_id: k for k in self._keys}

    @classmethod
    def from_text(cls, text: str) -> KeyRing:
        """Parse RELAY_SECRET_KEY: comma-separated keys, newest first."""
        return cls([_decode_key(part) for part in text.split(",") if part.strip()])

    @property
    def current_key_id(self) -> str:
        return self._keys[0].key_id.hex()

    @property
    def key_ids(self) -> list[str]:
        return [k.key_id.hex() for k in self._keys]

    @property
    def signing_key(self) -> bytes:
        """For signed tokens (withdrawal links, time traps): derived, never the master key."""
        return self._keys[0].sign_key

    def subkeys(self, label: str) -> list[bytes]:
        """A distinct 32-byte key per ring key for one purpose (`label`), newest first.

        HMAC of the derived signing key with the label: keys for different labels are
        independent, and an old key still checks what it signed until it leaves the ring.
        """
        data = b"relay/subkey/" + label.encode("ascii")
        return [hmac.new(k.sign_key, data, hashlib.sha256).digest() for k in self._keys]

    def seal(self, plaintext: bytes, aad: bytes) -> bytes:
        """Encrypt under the newest key; `aad` binds the ciphertext to its row and field."""
        key = self._keys[0]
        nonce = os.urandom(NONCE_BYTES)
        return FORMAT_V1 + key.key_id + nonce + key.aead.encrypt(nonce, plaintext, aad)

    def open(self, token: bytes, aad: bytes) -> bytes:
        """Decrypt with whichever key sealed it; DecryptionFailed if unknown or altered."""
        head = 1 + KEY_ID_BYTES
        if len(token) < head + NONCE_BYTES + 16 or token[:1] != FORMAT_V1:
            msg = "ciphertext has an unknown format"
            raise DecryptionFailed(msg)
        key = self._by_id.get(token[1:head])
        if key is None:
            msg = f"ciphertext sealed by key {token[1:head].hex()}, which is not in the key ring"
            raise DecryptionFailed(msg)
        nonce = token[head : head + NONCE_BYTES]
        try:
            return key.aead.decrypt(nonce, token[head + NONCE_BYTES :], aad)
        except InvalidTag:
            msg = "ciphertext failed authentication (altered, or opened with the wrong context)"
            raise DecryptionFailed(msg) from None

    @staticmethod
    def key_id_of(token: bytes) -> str:
        """Which key sealed a ciphertext (for rotation)."""
        return token[1 : 1 + KEY_ID_BYTES].hex()

    def mac(self, value: str) -> str:
        """Keyed hash of a normalised value (an email) under the newest key, hex."""
        return self.macs(value)[0]

    def macs(self, value: str) -> list[str]:
        """The keyed hash under every key, newest first: to find rows hashed before a rotation.

        For an internationalised domain, the hashes of its ASCII (``xn--``) spelling follow:
        before one normalisation served every path, a request typed that way stored its
        opposition entry or consent event under that spelling's hash, and this finds them.
        """
        canonical = normalise_email(value)
        spellings = [canonical]
        legacy = _ascii_spelling(canonical)
        if legacy != canonical:
            spellings.append(legacy)
        return [
            hmac.new(k.mac_key, spelling.encode("utf-8"), hashlib.sha256).hexdigest()
            for spelling in spellings
            for k in self._keys
        ]

    def subject_ref(self, value: str) -> str:
        """A stable, never-reused, non-identifying reference to a person for the audit log:
        the first 16 hex digits of the keyed hash (record numbers are reused after erasure)."""
        return f"subject:{self.mac(value)[:16]}"


def _domain_unicode(domain: str) -> str:
    """A domain in its one Unicode spelling (IDNA 2008 with UTS #46 mapping: case-folded,
    ``xn--`` labels decoded); unchanged but lower-cased when it is not a valid IDN."""
    if domain.isascii() and "xn--" not in domain.lower():
        return domain.lower()
    try:
        return str(idna.decode(domain, uts46=True))
    except (idna.IDNAError, UnicodeError, ValueError):
        return domain.lower()


def _ascii_spelling(canonical: str) -> str:
    local, at, domain = canonical.rpartition("@")
    if not at or domain.isascii():
        return canonical
    try:
        return f"{local}@{idna.encode(domain, uts46=True).decode('ascii')}"
    except (idna.IDNAError, UnicodeError, ValueError):
        return canonical


def normalise_email(address: str) -> str:
    """One person, one address, whatever its spelling; every path that takes one uses this.

    Trimmed, Unicode NFC, lower-cased local part (in practice no mailbox tells case apart),
    and the domain in its Unicode form (``xn--`` decoded, case-folded), the form the form's
    validator (email-validator) stores. Pure; never raises.
    """
    text = unicodedata.normalize("NFC", address).strip()
    local, at, domain = text.rpartition("@")
    if not at:
        return text.lower()
    return f"{local.lower()}@{unicodedata.normalize('NFC', _domain_unicode(domain.strip()))}"
