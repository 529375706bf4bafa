"""Headers are relay's own: encoded by relay, 7-bit; the property over both transports is in
tests/properties/test_message.py."""

from __future__ import annotations

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
    """`=?...?=` in a value never reaches a header as is: relay wraps it in its own word."""
    words = text_words("Hi =?utf-8?q?x=0D=0ABcc:_a@b?=")
    assert all(word.startswith("=?utf-8?b?") for word in words)
    assert text_words("Plain subject") == ["Plain", "subject"]
    assert all(len(word) <= 75 for word in encoded_words("é" * 500))


def test_a_lone_surrogate_cannot_become_a_header():
    """A character UTF-8 cannot encode is a HeaderError naming no data."""
    with pytest.raises(HeaderError, match="cannot encode"):
        text_words("x\ud800")
    with pytest.raises(HeaderError, match="encoded-word"):
        ascii_address("=?x?=@example.com")


def test_folding_keeps_lines_short_and_unfolds_to_the_words():
    """Folded lines stay within 78 characters except one overlong word, and unfold exactly."""
    words = ["word"] * 40
    folded = fold("Subject", words)
    assert all(len(line) <= 78 for line in folded.split("\r\n"))
    assert folded.replace("\r\n", "") == "Subject: " + " ".join(words)
