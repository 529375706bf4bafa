"""URLs from outside (`_next`, Referer, Origin, the forms file): parsed once, refused whole. Pure.

Why one helper: `urllib.parse.urlsplit` raises on some malformed input (an unclosed IPv6
bracket, a full-width character that NFKC-normalises to `/` or `@`), accepts other broken input
silently (a lone surrogate, control characters, an out-of-range port raises only when `.port`
is read), and each caller used to handle a different subset. `web_url` answers a `WebUrl` whose
parts are all valid, or None: nothing malformed ever reaches a redirect, a page or a log.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

#: Longest URL relay follows or shows (browsers send longer, no form needs them).
MAX_URL = 2048
#: A host: a DNS name (letters, digits, `-`, `.`, IDN already in punycode or Unicode letters),
#: or an IPv6 literal in brackets; never a delimiter, space or control character.
_HOST = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[^\s/?#@:\[\]\\%]+)$")


@dataclass(frozen=True)
class WebUrl:
    """An absolute http(s) URL whose scheme, host and port are known good."""

    url: str
    scheme: str
    host: str
    port: int | None

    @property
    def origin(self) -> str:
        """`scheme://host[:port]`, lower-cased, as browsers send it in Origin."""
        default = {"http": 80, "https": 443}[self.scheme]
        port = f":{self.port}" if self.port is not None and self.port != default else ""
        return f"{self.scheme}://{self.host}{port}"


def web_url(text: object) -> WebUrl | None:
    """`text` as an absolute http(s) URL, or None when any part of it is malformed."""
    if not isinstance(text, str) or not text or len(text) > MAX_URL:
        return None
    if not text.isprintable() or text != text.strip():
        return None  # control characters, line breaks, surrounding space
    try:
        text.encode("utf-8")  # a lone surrogate cannot be sent, stored or shown
        parts = urlsplit(text)
        port = parts.port  # raises ValueError for a port out of range or not a number
        host = parts.hostname
    except (ValueError, UnicodeError):
        return None
    if parts.scheme.lower() not in ("http", "https") or not host or not _HOST.match(host):
        return None
    if parts.username is not None or parts.password is not None:
        return None  # user:pass@ hides the real host from people reading the URL
    if "\\" in text:
        return None  # browsers read `\` as `/`: https://good\@evil
    return WebUrl(url=text, scheme=parts.scheme.lower(), host=host.lower(), port=port)


def origin_of(text: object) -> str | None:
    """The origin of an absolute http(s) URL, or None when it is malformed."""
    parsed = web_url(text)
    return parsed.origin if parsed is not None else None
