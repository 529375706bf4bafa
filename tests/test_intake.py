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
    """A script (JSON in Accept, or a JSON body) is answered in JSON; a browser's form in HTML."""
    assert expected == wants_json(accept, content_type)


def test_urlencoded_first_value_wins():
    """A repeated urlencoded field keeps its first value, and percent-encoded UTF-8 is decoded."""
    assert parse_body("application/x-www-form-urlencoded", b"a=1&a=2&b=%C3%A9") == {
        "a": "1",
        "b": "é",
    }


@pytest.mark.parametrize(
    ("content_type", "body", "status", "code"),
    [
        ("text/plain", b"name=x", 415, "UNSUPPORTED_MEDIA_TYPE"),
        ("application/json", b"{not json", 400, "MALFORMED_BODY"),
        ("application/json", b"[1, 2]", 400, "MALFORMED_BODY"),
        ("application/x-www-form-urlencoded", b"name=%FF%FE", 400, "MALFORMED_BODY"),
        (
            "application/x-www-form-urlencoded",
            "&".join(f"f{i}=x" for i in range(200)).encode(),
            400,
            "MALFORMED_BODY",
        ),
        ("multipart/form-data", b"--x--", 400, "MALFORMED_BODY"),
        ("multipart/form-data; boundary=x", b"garbage without parts", 400, "MALFORMED_BODY"),
        (
            "multipart/form-data; boundary=B",
            b'--B\r\nContent-Disposition: form-data; name="name"\r\n\r\n\xff\xfe\r\n--B--\r\n',
            400,
            "MALFORMED_BODY",
        ),
        (
            "multipart/form-data; boundary=B",
            b'--B\r\nContent-Disposition: form-data; name="cv"; filename="cv.pdf"\r\n\r\n'
            b"%PDF\r\n--B--\r\n",
            400,
            "NO_FILE_UPLOADS",
        ),
    ],
    ids=[
        "not a form",
        "broken JSON",
        "JSON not an object",
        "urlencoded not UTF-8",
        "200 urlencoded fields",
        "multipart without boundary",
        "multipart without parts",
        "multipart field not UTF-8",
        "multipart file part",
    ],
)
def test_unreadable_bodies_are_refused_with_their_code(content_type, body, status, code):
    """Each body relay cannot read is a SubmissionRejected with its status and code."""
    with pytest.raises(SubmissionRejected) as info:
        parse_body(content_type, body)
    assert (info.value.status, info.value.code) == (status, code)


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
    """Property: parse_body returns a dict or refuses with 400, or 415 for a type it cannot read."""
    outcome: object
    try:
        outcome = parse_body(content_type, body)
    except SubmissionRejected as exc:
        outcome = exc.status
    refused = 415 if content_type == "text/plain" else 400
    assert isinstance(outcome, dict) or outcome == refused
