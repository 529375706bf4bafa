"""Every email header value relay writes, encoded by relay itself: 7-bit, never a line break. Pure.

Why relay owns this: the standard library's email policy is not a sanitiser. Python 3.11
decodes an RFC 2047 encoded-word (`=?utf-8?q?...=0D=0A...?=`) found in a value while it
refolds the header, and writes the decoded CR LF into the message (the CVE-2024-6923 class);
Mailgun and mail clients decode encoded-words too. So a submitted value is taken as literal
text: whatever it holds, relay turns it into header *words* that are either plain printable
ASCII (no `=?` anywhere) or encoded-words relay made itself (`=?utf-8?b?...?=`). A decoder
decodes once, so `=?...?=` typed by a person comes back as the same literal text.

The same functions decide at accept time (submission.py) and at send time (both transports),
so a value that cannot make a valid header is refused with 422, never accepted and then stuck.
"""

from __future__ import annotations

import base64
import re

from email_validator import EmailNotValidError, validate_email

from relay.mail.transport import RenderedEmail

#: RFC 2047: an encoded-word is at most 75 characters; 12 of them are `=?utf-8?b?` and `?=`,
#: leaving 63 base64 characters, i.e. 45 bytes of UTF-8 per word (a multiple of 3).
_WORD_BYTES = 45
#: A plain token longer than this is encoded (and so split) rather than left on a long line.
_MAX_PLAIN_TOKEN = 60
#: RFC 5322 recommends lines of at most 78 characters; folding keeps to it.
LINE = 78
_PLAIN = re.compile(r"^[\x21-\x7e]+( [\x21-\x7e]+)*$")
_ATOM = r"[A-Za-z0-9!#$%&'*+/^_`{|}~=?-]+"
_ADDR_SPEC = re.compile(rf"^{_ATOM}(\.{_ATOM})*@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")
#: RFC 5322 specials: a display name holding one is encoded, never quoted.
#: An address email-validator gives back unchanged (a property test holds it so): a dot-atom
#: local part of at most 64 characters, then a lower-case domain of LDH labels (none with
#: `--` as its third and fourth characters, which IDNA reserves: `xn--`) ending in an
#: alphabetic top-level label. Nearly every stored address is one (they were normalised at
#: accept time), so a message's Reply-To skips the validator's ~20 µs; anything else is still
#: checked by it.
_LABEL = r"(?![a-z0-9]{2}--)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_PLAIN_ADDRESS = re.compile(
    rf"(?=[.{_ATOM[1:-2]}]{{1,64}}@)"  # the local part's length, looked ahead
    rf"{_ATOM}(?:\.{_ATOM})*@(?:{_LABEL}\.)+[a-z]{{2,63}}"
)
_MAX_ADDRESS = 254
_SPECIALS = frozenset('()<>[]:;@\\,."')


class HeaderError(ValueError):
    """A value that cannot be written as a 7-bit header (raised with a message naming no data)."""


def _is_plain(text: str, *, phrase: bool = False) -> bool:
    if not _PLAIN.match(text) or "=?" in text:
        return False
    if phrase and any(char in _SPECIALS for char in text):
        return False
    return all(len(token) <= _MAX_PLAIN_TOKEN for token in text.split(" "))


def encoded_words(text: str) -> list[str]:
    """`text` as RFC 2047 B encoded-words of whole characters, each at most 75 characters."""
    words: list[str] = []
    chunk = b""
    for char in text:
        data = char.encode("utf-8", "strict")  # a lone surrogate raises UnicodeEncodeError
        if len(chunk) + len(data) > _WORD_BYTES:
            words.append(_word(chunk))
            chunk = b""
        chunk += data
    if chunk:
        words.append(_word(chunk))
    return words


def _word(data: bytes) -> str:
    return "=?utf-8?b?" + base64.b64encode(data).decode("ascii") + "?="


def text_words(text: str) -> list[str]:
    """An unstructured value (Subject) as words: plain ASCII tokens, or encoded-words.

    `text` must already be one line (render.header_safe); anything else is encoded, so even a
    stray control character comes out as an encoded-word, never as a raw byte.
    """
    try:
        if _is_plain(text):
            return text.split(" ")
        return encoded_words(text)
    except UnicodeEncodeError:
        msg = "a header value holds a character UTF-8 cannot encode"
        raise HeaderError(msg) from None


def plain_address(address: str) -> bool:
    """True when `address` is one email-validator gives back unchanged (with
    `globally_deliverable=False`) and holds no `=?`: a dot-atom of at most 64 characters at a
    lower-case LDH domain, at most 254 characters in all (`_PLAIN_ADDRESS`; a property test
    holds it), which a 7-bit header carries as it is."""
    return (
        len(address) <= _MAX_ADDRESS
        and "=?" not in address
        and _PLAIN_ADDRESS.fullmatch(address) is not None
    )


def ascii_address(address: str, *, local_domains: bool = False) -> str:
    """The address as a 7-bit addr-spec (IDN domain in punycode), or HeaderError.

    Refused: anything email-validator refuses, a non-ASCII local part (SMTPUTF8: not 7-bit),
    quoted local parts, and `=?` anywhere (mail parsers decode encoded-words in addresses).
    `local_domains` lets the operator's own sender use a special-use domain (relay.localhost)
    as long as it is a plain ASCII dot-atom address.
    """
    if "=?" in address:
        msg = "an address may not contain an encoded-word"
        raise HeaderError(msg)
    if plain_address(address):
        return address
    try:
        checked = validate_email(
            address,
            check_deliverability=False,
            allow_smtputf8=False,
            globally_deliverable=False,  # operators' .localhost/.test addresses are fine here
        )
    except EmailNotValidError:
        if local_domains and _ADDR_SPEC.match(address):
            return address
        msg = "not an address that can be written in a 7-bit header"
        raise HeaderError(msg) from None
    result = str(checked.ascii_email or "")
    if not result or not result.isascii() or "=?" in result:  # pragma: no cover - belt and braces
        msg = "not an address that can be written in a 7-bit header"
        raise HeaderError(msg)
    return result


def address_words(name: str, address: str, *, local_domains: bool = False) -> list[str]:
    """`Name <address>` as words; the name plain when it is a plain phrase, else encoded."""
    addr = ascii_address(address, local_domains=local_domains)
    if not name:
        return [addr]
    try:
        name_words = name.split(" ") if _is_plain(name, phrase=True) else [_one_word(name)]
    except UnicodeEncodeError:
        msg = "a display name holds a character UTF-8 cannot encode"
        raise HeaderError(msg) from None
    return [*name_words, f"<{addr}>"]


def _one_word(name: str) -> str:
    """A display name as ONE encoded-word, shortened with "…" when it does not fit.

    Why one: between two encoded-words of a display name, RFC 2047 decoders drop the
    whitespace and Python's address parser keeps it, so a split name would read differently
    in different clients. The full name is in the body; the header only labels the address.
    """
    data = name.encode("utf-8", "strict")
    if len(data) <= _WORD_BYTES:
        return _word(data)
    ellipsis = "…".encode()
    kept = b""
    for char in name:
        piece = char.encode("utf-8")
        if len(kept) + len(piece) + len(ellipsis) > _WORD_BYTES:
            break
        kept += piece
    return _word(kept.rstrip() + ellipsis)


def one_line(words: list[str]) -> str:
    """Words joined by single spaces: the value handed to an API that folds it itself."""
    return " ".join(words)


def fold(name: str, words: list[str]) -> str:
    """`Name: value` folded between words at 78 characters, lines joined by CRLF + space."""
    lines: list[str] = []
    line = f"{name}:"
    for word in words:
        if len(line) + 1 + len(word) > LINE and line != f"{name}:":
            lines.append(line)
            line = ""
        line = f"{line} {word}"
    lines.append(line)
    return "\r\n".join(lines)


def parse_words(value: str) -> list[str]:
    """Split a one-line value made by `one_line` back into its words."""
    return value.split(" ") if value else []


def top_headers(email: RenderedEmail, *, date: str | None = None) -> list[tuple[str, list[str]]]:
    """The message's own headers, in order, as words: the one list both transports write."""
    recipients = [f"{address}," for address in email.to]
    recipients[-1] = recipients[-1].rstrip(",")
    headers = [
        ("From", parse_words(email.sender)),
        ("To", recipients),
        ("Reply-To", parse_words(email.reply_to)),
        ("Subject", text_words(email.subject)),
        ("Message-ID", [email.message_id]),
    ]
    if date is not None:
        headers.append(("Date", date.split(" ")))
    headers.append(("X-Relay-Submission-Id", [email.submission_id]))
    return headers
