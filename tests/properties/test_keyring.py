"""The key ring: RELAY_SECRET_KEY or the trial key file; sealing, opening, keyed hashes
(issue 15)."""

from __future__ import annotations

import base64
import re
import unicodedata
from collections.abc import Callable
from pathlib import Path

import idna
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from relay.config import Settings
from relay.crypto import DecryptionFailed, KeyRing
from relay.errors import ConfigError
from relay.keyfile import load_keyring
from tests.strategies import VALID_DOMAINS

masters = st.binary(min_size=32, max_size=64)


@st.composite
def key_texts(draw: st.DrawFn) -> tuple[str, list[bytes]]:
    """RELAY_SECRET_KEY as operators write it: urlsafe base64 with or without padding, spaces
    around, empty entries between commas; and the keys it holds, newest first."""
    keys = draw(st.lists(masters, min_size=1, max_size=3, unique=True))
    parts = []
    for key in keys:
        text = base64.urlsafe_b64encode(key).decode("ascii")
        if draw(st.booleans()):
            text = text.rstrip("=")
        parts.append(
            draw(st.sampled_from(["", " ", "\n"])) + text + draw(st.sampled_from(["", " "]))
        )
    separator = draw(st.sampled_from([",", ", ", ",,"]))
    return separator.join(parts), keys


def outcome(load: Callable[[], KeyRing]) -> KeyRing | ConfigError:
    """The ring, or the ConfigError that refused it."""
    try:
        return load()
    except ConfigError as exc:
        return exc


def ring_of(*keys: bytes) -> KeyRing:
    return KeyRing.from_text(",".join(base64.urlsafe_b64encode(key).decode() for key in keys))


@given(drawn=key_texts(), plaintext=st.binary(max_size=200), aad=st.binary(max_size=40))
def test_the_newest_key_seals_and_every_key_of_the_ring_opens(drawn, plaintext, aad):
    """Property: a ring read from any well-written RELAY_SECRET_KEY holds its keys in order,
    seals under the first, and opens what any one of its keys sealed alone (rotation), with
    the same associated data only."""
    text, keys = drawn
    ring = KeyRing.from_text(text)
    assert ring.key_ids == [ring_of(key).current_key_id for key in keys]
    token = ring.seal(plaintext, aad)
    assert KeyRing.key_id_of(token) == ring_of(keys[0]).current_key_id
    assert ring.open(token, aad) == plaintext
    for key in keys:
        assert ring.open(ring_of(key).seal(plaintext, aad), aad) == plaintext
    with pytest.raises(DecryptionFailed):
        ring.open(token, aad + b"x")


@given(keys=st.lists(masters, min_size=2, max_size=2, unique=True), data=st.data())
def test_an_altered_ciphertext_or_a_foreign_key_never_opens(keys, data):
    """Property: flipping any bit of a ciphertext, cutting it short, or opening it with a ring
    that lacks the key that sealed it raises DecryptionFailed; nothing else comes out."""
    token = ring_of(keys[0]).seal(b"jeanne@example.fr", b"row-1/email")
    position = data.draw(st.integers(min_value=0, max_value=len(token) - 1))
    bit = data.draw(st.integers(min_value=0, max_value=7))
    altered = bytearray(token)
    altered[position] ^= 1 << bit
    cut = token[: data.draw(st.integers(min_value=0, max_value=len(token) - 1))]
    for bad, ring in (
        (bytes(altered), ring_of(*keys)),
        (cut, ring_of(*keys)),
        (token, ring_of(keys[1])),
    ):
        with pytest.raises(DecryptionFailed):
            ring.open(bad, b"row-1/email")


@st.composite
def spellings(draw: st.DrawFn) -> tuple[str, str]:
    """One address, and another way a person types it (case, IDN or xn--, NFD, spaces)."""
    local = draw(
        st.from_regex(r"[a-z][a-z0-9.+_-]{0,15}", fullmatch=True).filter(lambda s: ".." not in s)
    )
    domain = draw(st.sampled_from([d for d in VALID_DOMAINS if d.isascii() or "." in d]))
    canonical_domain = idna.decode(idna.encode(domain, uts46=True))
    canonical = f"{local}@{canonical_domain}"
    other_domain = draw(
        st.sampled_from(
            [
                canonical_domain,
                canonical_domain.upper(),
                idna.encode(domain, uts46=True).decode("ascii"),
                unicodedata.normalize("NFD", canonical_domain),
            ]
        )
    )
    other_local = draw(st.sampled_from([local, local.upper(), local.title()]))
    pad = draw(st.sampled_from(["", " ", "\t"]))
    return canonical, f"{pad}{other_local}@{other_domain}{pad}"


@given(pair=spellings(), keys=st.lists(masters, min_size=2, max_size=2, unique=True))
def test_every_spelling_of_an_address_has_one_keyed_hash_under_every_key(pair, keys):
    """Property: the keyed hash of an address is the same whatever its spelling (case, IDN in
    Unicode or xn--, Unicode normal form, spaces), and a ring after rotation still finds the
    hash the old key made."""
    canonical, typed = pair
    old, rotated = ring_of(keys[1]), ring_of(*keys)
    assert old.mac(typed) == old.mac(canonical)
    assert rotated.mac(typed) == rotated.mac(canonical) != old.mac(canonical)
    assert old.mac(canonical) in rotated.macs(typed)


#: Every message a refused RELAY_SECRET_KEY gets: none has room for the text itself.
KEY_PROBLEMS = re.compile(
    r"RELAY_SECRET_KEY: (no key given"
    r"|a key is not urlsafe base64 \(generate one: relay keys generate\)"
    r"|a key decodes to [0-9]+ bytes; at least 32 random bytes are needed "
    r"\(generate one: relay keys generate\))"
)


@given(st.text(max_size=120))
@example("not base64 !!!")
@example(",, ,")
def test_any_secret_key_text_is_a_ring_or_a_config_error_that_does_not_echo_it(text):
    """Property: any RELAY_SECRET_KEY text gives a ring or a ConfigError naming the variable
    in one of three fixed messages (the text is a secret: never repeated), never another
    exception."""
    got = outcome(lambda: KeyRing.from_text(text))
    if isinstance(got, ConfigError):
        assert KEY_PROBLEMS.fullmatch(str(got)), str(got)


@pytest.fixture(name="key_settings", scope="module")
def fixture_key_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return Settings(var_dir=tmp_path_factory.mktemp("keys"))


@given(content=st.one_of(st.binary(max_size=120), key_texts().map(lambda d: d[0].encode())))
def test_any_key_file_gives_a_ring_or_an_error_naming_the_file(key_settings, content):
    """Property: whatever bytes the trial key file holds, loading it gives a ring or a
    ConfigError naming the file and the problem (never its content), never another
    exception."""
    path: Path = key_settings.key_file
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    got = outcome(lambda: load_keyring(key_settings))
    if isinstance(got, ConfigError):
        problem = str(got).removeprefix(f"{path}: ")
        assert problem != str(got)
        assert KEY_PROBLEMS.fullmatch(problem) or problem == (
            "cannot read the key file (UnicodeDecodeError)"
        )
    else:
        assert got.key_ids
