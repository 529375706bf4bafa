"""What relay reads out of a request body, in each of the three ways clients send it (issue 15)."""

from __future__ import annotations

import json
import secrets
from typing import Any
from urllib.parse import urlencode

from hypothesis import given
from hypothesis import strategies as st

from relay.accept.intake import loads, parse_body
from tests.strategies import SubmissionCase, submission_cases


def as_json(fields: dict[str, str]) -> tuple[str, bytes]:
    """As @formspree/core sends: JSON (non-ASCII escaped by the standard library)."""
    return "application/json", json.dumps(fields).encode("ascii")


def as_urlencoded(fields: dict[str, str]) -> tuple[str, bytes]:
    """As a browser posts a plain form: percent-encoded UTF-8."""
    return "application/x-www-form-urlencoded", urlencode(fields).encode("ascii")


def as_multipart(fields: dict[str, str]) -> tuple[str, bytes]:
    """As a browser posts an enctype=multipart/form-data form: one part per field, raw UTF-8."""
    boundary = "----relayBoundary" + secrets.token_hex(8)
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
        + value.encode("utf-8")
        + b"\r\n"
        for name, value in fields.items()
    ]
    return f"multipart/form-data; boundary={boundary}", b"".join(
        parts
    ) + f"--{boundary}--\r\n".encode()


def text_fields(case: SubmissionCase) -> dict[str, str]:
    """The fields a form can send: UTF-8 text (no numbers, lists, nulls or lone surrogates)."""
    raw: dict[str, Any] = case.raw
    return {name: value for name, value in raw.items() if isinstance(value, str) and utf8(value)}


def utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


@given(case=submission_cases, encode=st.sampled_from([as_json, as_urlencoded, as_multipart]))
def test_the_fields_read_from_a_body_are_the_fields_sent(case, encode):
    """Property: whatever text the fields hold (CR LF, lone CR, NUL, bidi controls, encoded-
    words, 10,000-character lines), the fields parse_body reads out of a JSON, urlencoded or
    multipart body are exactly the fields the client encoded, names and values."""
    fields = text_fields(case)
    content_type, body = encode(fields)
    assert parse_body(content_type, body) == fields


def _outcome(decode: Any, body: bytes) -> tuple[str, Any]:
    try:
        return "ok", decode(body)
    except ValueError as exc:  # UnicodeDecodeError and JSONDecodeError alike
        return "error", type(exc).__name__


json_bytes = st.one_of(
    st.binary(max_size=64),
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(st.characters(exclude_categories=())),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
        max_leaves=8,
    ).flatmap(
        lambda value: st.sampled_from(["utf-8", "utf-16-le", "utf-32-be", "utf-8-sig"]).map(
            lambda codec: json.dumps(value, ensure_ascii=False).encode(codec, "surrogatepass")
        )
    ),
    st.binary(max_size=32).map(lambda tail: b"{" + tail),
    st.dictionaries(st.text(max_size=3), st.text(st.characters(categories=["Cs"]), min_size=1))
    .filter(bool)
    .map(lambda fields: json.dumps(fields, ensure_ascii=False).encode("utf-8", "surrogatepass")),
)


@given(body=json_bytes)
def test_relays_json_decoding_is_json_loads(body):
    """Property: relay.accept.intake.loads, json.loads without its encoding detection for an
    object, decodes any bytes (objects, arrays, UTF-16, BOMs, lone surrogates, junk after a
    brace) to what json.loads gives, or fails where it fails, with the same kind of error."""
    assert _outcome(loads, body) == _outcome(json.loads, body)
