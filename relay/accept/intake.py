"""Body bytes → raw fields, and which kind of answer the client wants. Pure: no I/O.

Three media types are accepted, as Formspree's clients send them: urlencoded and multipart
from HTML forms, JSON from scripts. A multipart file part is refused (relay relays text, and
files would carry personal data it has no reason to hold). Fields are returned as sent; the
submission rules pick the ones they know and drop the rest.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import parse_qsl

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header

from relay.errors import SubmissionRejected
from relay.i18n import N_

URLENCODED = "application/x-www-form-urlencoded"
MULTIPART = "multipart/form-data"
JSON = "application/json"
SUPPORTED = (URLENCODED, MULTIPART, JSON)
MAX_FIELDS = 100
#: python-multipart refuses longer boundaries (RFC 2046 allows 70): a 400, never an exception.
MAX_BOUNDARY = 256
#: `filename=` or `filename*=` (RFC 6266/5987) anywhere in a Content-Disposition: a file part.
_FILENAME = re.compile(rb';\s*filename\*?\s*=\s*("(?:[^"\\]|\\.)*"|[^;]*)', re.IGNORECASE)


def media_type(content_type: str) -> str:
    """The bare media type of a Content-Type header, lower-cased."""
    return content_type.split(";", 1)[0].strip().lower()


def wants_json(accept: str, content_type: str, kind: str | None = None) -> bool:
    """JSON answers for scripts (Accept: application/json, or a JSON body); HTML for browsers.

    `kind`, in these functions: media_type(content_type), when the caller has it already.
    """
    if kind is None:
        kind = media_type(content_type)
    return "application/json" in accept.lower() or kind == JSON


def require_supported(content_type: str, kind: str | None = None) -> None:
    """Refuse (415) a media type relay cannot read, before any of the body is read."""
    if (media_type(content_type) if kind is None else kind) not in SUPPORTED:
        raise SubmissionRejected(
            415,
            "UNSUPPORTED_MEDIA_TYPE",
            "Send the form as application/x-www-form-urlencoded, multipart/form-data "
            "or application/json.",
        )


def parse_body(content_type: str, body: bytes, kind: str | None = None) -> dict[str, Any]:
    """Decode a request body into its fields, or raise SubmissionRejected (400 / 415)."""
    if kind is None:
        kind = media_type(content_type)
    if kind == JSON:
        return _parse_json(body)
    if kind == URLENCODED:
        return _parse_urlencoded(body)
    require_supported(content_type)
    return _parse_multipart(content_type, body)


#: translated with its number as {0} (relay.i18n.translate)
LONG_BOUNDARY = N_(
    "The request body is not valid multipart form data (the boundary is over {0} characters)."
)


def _malformed(message: str) -> SubmissionRejected:
    """400 MALFORMED_BODY with one whole sentence (each marked, so each is translated)."""
    return SubmissionRejected(400, "MALFORMED_BODY", message)


#: json.loads(str) without its per-call checks (the decoder it uses when given no options).
_DECODER = json.JSONDecoder()


def loads(body: bytes) -> Any:
    """json.loads(body), exactly: an object (what every form sends) is decoded straight from
    UTF-8, as json.loads would decide for it, without its encoding detection (~1 µs a flood's
    request); anything else through json.loads itself (a BOM, UTF-16 or -32)."""
    if body[:1] == b"{" and body[1:2] != b"\x00":
        return _DECODER.decode(body.decode("utf-8", "surrogatepass"))
    return json.loads(body)


def _parse_json(body: bytes) -> dict[str, Any]:
    try:
        data = loads(body)
    except (ValueError, RecursionError):
        raise _malformed(N_("The request body is not valid JSON.")) from None
    if not isinstance(data, dict):
        raise SubmissionRejected(
            400, "MALFORMED_BODY", "The JSON body must be an object of field names to values."
        )
    return data


def _parse_urlencoded(body: bytes) -> dict[str, Any]:
    try:
        pairs = parse_qsl(
            body.decode("utf-8"),
            keep_blank_values=True,
            strict_parsing=False,
            encoding="utf-8",
            errors="strict",
            max_num_fields=MAX_FIELDS,
        )
    except (UnicodeDecodeError, ValueError):
        raise _malformed(
            N_("The request body is not valid form data (UTF-8, at most 100 fields).")
        ) from None
    fields: dict[str, Any] = {}
    for key, value in pairs:
        fields.setdefault(key, value)  # the first value of a repeated field wins
    return fields


class _MultipartCollector:
    """Callbacks for python-multipart's streaming parser: collect text fields, refuse files."""

    def __init__(self) -> None:
        self.fields: dict[str, Any] = {}
        self.file_part = False
        self._filenames: list[bytes] = []
        self._header_field = b""
        self._header_value = b""
        self._name: str | None = None
        self._data = bytearray()
        self._count = 0

    def callbacks(self) -> dict[str, Any]:
        return {
            "on_part_begin": self._part_begin,
            "on_header_field": self._on_header_field,
            "on_header_value": self._on_header_value,
            "on_header_end": self._header_end,
            "on_part_data": self._part_data,
            "on_part_end": self._part_end,
        }

    def _part_begin(self) -> None:
        self._name, self._data = None, bytearray()
        self._header_field = self._header_value = b""
        self._filenames = []

    def _on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_field += data[start:end]

    def _on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def _header_end(self) -> None:
        if self._header_field.lower() == b"content-disposition":
            _, params = parse_options_header(self._header_value)
            # parse_options_header drops `filename*=`: look for either form in the raw value.
            self._filenames = [m.group(1) for m in _FILENAME.finditer(self._header_value)]
            name = params.get(b"name")
            self._name = name.decode("utf-8", "replace") if name is not None else None
        self._header_field = self._header_value = b""

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        self._data += data[start:end]

    def _part_end(self) -> None:
        if self._filenames:
            # An optional file input left empty (empty filename and content, as browsers
            # send it) is no file: ignore it. Any other file part refuses the whole form.
            empty = all(
                v.strip().strip(b'"') in (b"", b"UTF-8''", b"utf-8''") for v in self._filenames
            )
            if not (empty and not self._data):
                self.file_part = True
            return
        self._count += 1
        if self._name is None or self._count > MAX_FIELDS:
            return
        try:
            value = bytes(self._data).decode("utf-8")
        except UnicodeDecodeError:
            raise _malformed(
                N_("The request body is not valid multipart form data (fields must be UTF-8).")
            ) from None
        self.fields.setdefault(self._name, value)


def _parse_multipart(content_type: str, body: bytes) -> dict[str, Any]:
    _, params = parse_options_header(content_type)
    boundary = params.get(b"boundary")
    if not boundary:
        raise _malformed(
            N_("The request body is not valid multipart form data (no boundary in Content-Type).")
        )
    if len(boundary) > MAX_BOUNDARY:
        raise _malformed(LONG_BOUNDARY.format(MAX_BOUNDARY))
    collector = _MultipartCollector()
    try:
        parser = MultipartParser(boundary, collector.callbacks())  # type: ignore[arg-type]
        parser.write(body)
        parser.finalize()
    except FormParserError:  # every parse error of python-multipart, the boundary's included
        raise _malformed(N_("The request body is not valid multipart form data.")) from None
    if collector.file_part:
        raise SubmissionRejected(
            400,
            "NO_FILE_UPLOADS",
            "This form does not accept file uploads: send text fields only.",
        )
    return collector.fields
