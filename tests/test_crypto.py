"""Encryption at rest: authenticated, bound to its row, tagged with its key, rotatable."""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from relay.crypto import DecryptionFailed, KeyRing, generate_key, normalise_email
from relay.errors import ConfigError
from tests.conftest import TEST_KEY, TEST_KEY_2


def test_seal_and_open_round_trip():
    """Sealed text holds nothing of the plaintext and opens back to it, emoji included, under the
    same key and row."""
    ring = KeyRing.from_text(TEST_KEY)
    token = ring.seal("Zoë 👩‍🔬".encode(), b"submission:1")
    assert "Zoë".encode() not in token
    assert ring.open(token, b"submission:1") == "Zoë 👩‍🔬".encode()


def test_ciphertext_is_bound_to_its_row():
    """A ciphertext copied to another row (other AAD) does not open."""
    ring = KeyRing.from_text(TEST_KEY)
    token = ring.seal(b"secret", b"submission:1")
    with pytest.raises(DecryptionFailed, match="failed authentication"):
        ring.open(token, b"submission:2")


def test_tampered_ciphertext_does_not_open():
    """A ciphertext with one bit flipped fails authentication instead of opening."""
    ring = KeyRing.from_text(TEST_KEY)
    token = bytearray(ring.seal(b"secret", b"a"))
    token[-1] ^= 1
    with pytest.raises(DecryptionFailed, match="failed authentication"):
        ring.open(bytes(token), b"a")


@pytest.mark.parametrize("token", [b"", b"\x02" + b"0" * 40, b"\x01short"])
def test_malformed_ciphertext(token):
    """Bytes that are not relay's format (empty, another version, too short) are refused as such."""
    with pytest.raises(DecryptionFailed, match="unknown format"):
        KeyRing.from_text(TEST_KEY).open(token, b"a")


def test_old_key_still_opens_after_a_new_key_is_added():
    """Newest key first seals; older keys in the ring still open what they sealed."""
    old = KeyRing.from_text(TEST_KEY)
    token = old.seal(b"kept", b"a")
    both = KeyRing.from_text(f"{TEST_KEY_2},{TEST_KEY}")
    assert both.open(token, b"a") == b"kept"
    assert KeyRing.key_id_of(token) == old.current_key_id
    assert KeyRing.key_id_of(both.seal(b"new", b"a")) == both.current_key_id != old.current_key_id
    assert both.key_ids == [both.current_key_id, old.current_key_id]


def test_unknown_key_is_named_by_id_only():
    """A ciphertext sealed by a key the ring lacks is refused naming the key as missing."""
    token = KeyRing.from_text(TEST_KEY).seal(b"x", b"a")
    with pytest.raises(DecryptionFailed, match="not in the key ring"):
        KeyRing.from_text(TEST_KEY_2).open(token, b"a")


def test_mac_is_keyed_and_normalised():
    """The email MAC ignores case and spaces, differs under another key, and is one per ring key."""
    ring = KeyRing.from_text(TEST_KEY)
    assert ring.mac(" Jeanne@Example.FR ") == ring.mac("jeanne@example.fr")
    assert ring.mac("a@b.fr") != KeyRing.from_text(TEST_KEY_2).mac("a@b.fr")
    assert len(ring.macs("a@b.fr")) == 1
    assert normalise_email(" A@B.fr") == "a@b.fr"


def test_generated_keys_are_valid_and_distinct():
    """`relay keys generate` gives 32 random bytes in urlsafe base64, a different key each time."""
    a, b = generate_key(), generate_key()
    assert a != b
    assert len(base64.urlsafe_b64decode(a + "=")) == 32
    assert KeyRing.from_text(a).current_key_id != KeyRing.from_text(b).current_key_id


@pytest.mark.parametrize(
    ("text", "problem"),
    [("", "no key given"), ("c2hvcnQ", "at least 32"), ("not base64 !!!", "not urlsafe base64")],
)
def test_bad_keys_are_explained(text, problem):
    """An empty, short or non-base64 key is refused saying which."""
    with pytest.raises(ConfigError, match=problem):
        KeyRing.from_text(text)


def test_signing_key_is_derived_not_the_master():
    """The signing key is the master key's HKDF for `relay/sign`, not the master key itself."""
    master = base64.urlsafe_b64decode(TEST_KEY + "=")
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"relay/sign")
    signing_key = KeyRing.from_text(TEST_KEY).signing_key
    assert signing_key == derived.derive(master)
    assert signing_key != master[:32]
