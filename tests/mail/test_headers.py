"""Headers are relay's own: encoded by relay, 7-bit; the property over both transports is in
tests/properties/test_message.py."""

from __future__ import annotations

import base64

import pytest

from relay.accept.submission import Submission, validate_submission
from relay.mail.headers import HeaderError, ascii_address, encoded_words, fold, text_words


@pytest.mark.parametrize(
    ("email_address", "accepted"),
    [
        ("jeanne@example.fr", True),
        ("jeanne@exämple.fr", True),  # IDN domain: punycode in the header
        ("=?utf-8?q?x=0D=0ABcc:_v@example.com?=@example.com", False),
        ("a=?b@example.com", False),
        ("jö@example.fr", False),  # SMTPUTF8 local part: no 7-bit header can carry it
        ("用户@例子.广告", False),
    ],
)
def test_an_address_no_header_can_carry_is_refused_at_accept(email_address, accepted):
    """The address check at accept is the one the renderer uses: refused now, or sendable."""
    sub = validate_submission(
        {"name": "Jo", "email": email_address, "message": "m"}, phone_region="FR"
    )
    assert isinstance(sub, Submission) is accepted
    if not accepted:
        assert [(e.field, e.code) for e in sub] == [("email", "TYPE_EMAIL")]  # type: ignore[union-attr]


def test_a_typed_encoded_word_is_encoded_again_so_it_stays_text():
    """`=?...?=` in a value never reaches a header as is: relay wraps the whole value in its own
    word, which decodes back to the text typed; plain text stays plain; long text is split into
    words of at most 75 characters."""
    typed = "Hi =?utf-8?q?x=0D=0ABcc:_a@b?="
    [word] = text_words(typed)
    assert word.startswith("=?utf-8?b?")
    assert base64.b64decode(word.removeprefix("=?utf-8?b?").removesuffix("?=")).decode() == typed
    assert text_words("Plain subject") == ["Plain", "subject"]
    words = encoded_words("é" * 500)
    assert max(len(w) for w in words) <= 75
    decoded = b"".join(base64.b64decode(w[len("=?utf-8?b?") : -2]) for w in words)
    assert decoded.decode() == "é" * 500


def test_a_lone_surrogate_cannot_become_a_header():
    """A character UTF-8 cannot encode is a HeaderError naming no data."""
    with pytest.raises(HeaderError, match="cannot encode"):
        text_words("x\ud800")
    with pytest.raises(HeaderError, match="encoded-word"):
        ascii_address("=?x?=@example.com")


def test_folding_keeps_lines_short_and_unfolds_to_the_words():
    """Folded lines stay within 78 characters, and unfold exactly to the header."""
    words = ["word"] * 40
    folded = fold("Subject", words)
    assert all(len(line) <= 78 for line in folded.split("\r\n"))
    assert folded.replace("\r\n", "") == "Subject: " + " ".join(words)
