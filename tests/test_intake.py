"""Body decoding: any bytes give fields or a clean 400/415, never another exception."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from relay.accept.intake import parse_body, wants_json
from relay.errors import SubmissionRejected


@pytest.mark.parametrize(
    ("accept", "content_type", "expected"),
    [
        ("application/json", "application/x-www-form-urlencoded", True),
        ("text/html,application/xhtml+xml,*/*;q=0.8", "application/x-www-form-urlencoded", False),
        ("*/*", "application/json; charset=utf-8", True),
        ("", "multipart/form-data; boundary=x", False),
    ],
)
def test_answer_negotiation(accept, content_type, expected):
    assert expected == wants_json(accept, content_type)


def test_urlencoded_first_value_wins():
    assert parse_body("application/x-www-form-urlencoded", b"a=1&a=2&b=%C3%A9") == {
        "a": "1",
        "b": "é",
    }


def test_multipart_without_boundary_is_400():
    with pytest.raises(SubmissionRejected) as info:
        parse_body("multipart/form-data", b"--x--")
    assert (info.value.status, info.value.code) == (400, "MALFORMED_BODY")


def test_multipart_non_utf8_field_is_400():
    body = b'--B\r\nContent-Disposition: form-data; name="name"\r\n\r\n\xff\xfe\r\n--B--\r\n'
    with pytest.raises(SubmissionRejected, match="UTF-8"):
        parse_body("multipart/form-data; boundary=B", body)


def test_too_many_urlencoded_fields_is_400():
    body = "&".join(f"f{i}=x" for i in range(200)).encode()
    with pytest.raises(SubmissionRejected):
        parse_body("application/x-www-form-urlencoded", body)


@given(
    st.sampled_from(
        [
            "application/json",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=B",
            "text/plain",
        ]
    ),
    st.binary(max_size=300),
)
def test_any_body_gives_fields_or_a_clean_refusal(content_type, body):
    """Property: parse_body returns a dict or raises SubmissionRejected with a 4xx status."""
    outcome: object
    try:
        outcome = parse_body(content_type, body)
    except SubmissionRejected as exc:
        outcome = exc.status
    assert isinstance(outcome, dict) or outcome in (400, 415)
