"""Hypothesis strategies for hostile input: what a bot, a copy-paste or a broken client sends.

Two kinds. The first part is raw hostility (any text, any JSON value), for parsers that must
never raise whatever they get. The second part (issue 15) puts the same hostile classes
*inside otherwise valid submissions*: a property fed mostly invalid input tests the refusal
path two thousand times and the path that writes an email nine times (the old `submissions`
strategy: 10 valid in 2,000 examples; `header_submissions`: 90 in 2,000). `submission_cases`
reaches the valid branch in about nine examples out of ten, measured by
tests/properties/test_submissions.py::test_most_generated_submissions_are_valid.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import idna
from hypothesis import strategies as st

HOSTILE_SNIPPETS = [
    "\r\n",
    "\n",
    "\r",
    "\x00",
    "\x1b[31m",
    "\u2028",
    "\u2029",
    "\u202e",  # right-to-left override
    "שלום עולם",  # right-to-left text
    "مرحبا",
    "👩‍🔬🧪",  # emoji with a zero-width joiner
    "<script>alert(1)</script>",
    "\"'><img src=x onerror=alert(1)>",
    "Bcc: victim@example.com",
    "=?utf-8?q?encoded?=",
    "é" * 300,
    "x" * 5000,
    "\ud800",  # a lone surrogate (cannot be encoded)
    " ",
    "",
]

hostile_text = st.one_of(
    st.text(),
    st.sampled_from(HOSTILE_SNIPPETS),
    st.lists(st.sampled_from([*HOSTILE_SNIPPETS, "Jean", "a@b.fr", "06 12"]), max_size=6).map(
        "".join
    ),
)

json_values: st.SearchStrategy[Any] = st.one_of(
    hostile_text,
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True),
    st.lists(st.text(max_size=5), max_size=3),
    st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=3),
)

#: Characters that break headers or markup, flip direction, or need several bytes.
NASTY = [
    "\r",
    "\n",
    "\r\n",
    "\x00",
    "\x0b",
    "\x1b",
    "\u2028",
    "\u2029",
    "\u202e",  # right-to-left override
    "\u200f",
    "<",
    ">",
    "&",
    '"',
    "'",
    "<script>alert(1)</script>",
    "<img src=http://evil.example/x.png>",
    "=?utf-8?b?SGk=?=",
    "Bcc: victim@example.com",
    "مرحبا",
    "שלום",
    "😀",
    "👩‍👩‍👧",
    "é",
]

markup_text = st.lists(
    st.one_of(st.sampled_from(NASTY), st.text(max_size=20)), min_size=0, max_size=12
).map("".join)

long_line = st.integers(min_value=900, max_value=3000).map(lambda n: "x" * n)


# --- issue 9: hostile values aimed at email headers -----------------------------------------

#: Encoded-words that decode to CR LF and a header, in the forms parsers accept.
ENCODED_INJECTIONS = [
    "=?utf-8?q?x=0D=0ABcc:_victim@example.com?=",
    "=?utf-8?Q?=0D=0AContent-Type:_text/html?=",
    "=?UTF-8?B?DQpCY2M6IHZpY3RpbUBleGFtcGxlLmNvbQ==?=",  # "\r\nBcc: victim@example.com"
    "=?iso-8859-1?q?=0A=0A<b>body</b>?=",
    "=?utf-8?q?a?= =?utf-8?q?=0D=0A?=",
    "=?utf-8*fr?q?x=0D=0AX-Evil:_1?=",
    "=?utf-8?q?",
    "?=",
]
#: Look-alike letters (Cyrillic, Greek, full-width) and direction controls.
HOMOGLYPHS = ["а", "е", "о", "р", "с", "ѕ", "ο", "Ａ", "＠", "．", "ℯ"]
BIDI = ["\u202e", "\u202d", "\u2066", "\u2067", "\u2068", "\u2069", "\u200f", "\u200e", "\u061c"]
ZERO_WIDTH = ["\u200b", "\u200c", "\u200d", "\ufeff", "\u00ad"]


# --- issue 15: hostile content inside otherwise valid submissions ----------------------------

#: The limits of relay.accept.submission.LIMITS, restated: a generated value is valid by
#: construction, not by asking the code under test.
NAME_MAX, EMAIL_MAX, PHONE_MAX, COMPANY_MAX, MESSAGE_MAX = 200, 254, 40, 200, 10_000
#: Unicode categories no one-line field may hold (control, separators, lone surrogates).
FORBIDDEN: tuple[Literal["Cc", "Cs", "Zl", "Zp"], ...] = ("Cc", "Cs", "Zl", "Zp")

#: Hostile pieces a valid one-line field may hold: encoded-words that decode to CR LF and a
#: header, markup, homoglyphs, bidi and zero-width controls, header-shaped text, RTL, emoji.
LINE_PIECES = [
    *ENCODED_INJECTIONS,
    *HOMOGLYPHS,
    *BIDI,
    *ZERO_WIDTH,
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "\"'><b>x</b>",
    "</td></tr></table>",
    "<!-- x -->",
    "&amp;",
    "&lt;script&gt;",
    "Bcc: victim@example.com",
    "Content-Type: text/html",
    "=?",
    "?=",
    "<v@x.fr>, w@y.fr",
    "(comment)",
    '"quoted"',
    "مرحبا",
    "שלום",
    "👩‍🔬",
    "😀",
    "é",
    "\u00a0",
    "\ufffd",
]
_printable = st.characters(exclude_categories=FORBIDDEN)
_line_piece = st.one_of(
    st.sampled_from(LINE_PIECES),
    st.text(alphabet=_printable, min_size=1, max_size=12),
    st.just("Jeanne Martin"),
)
#: A piece that is not blank: no character of it is whitespace (which is Zs or FORBIDDEN).
_solid_piece = st.one_of(
    st.sampled_from([piece for piece in LINE_PIECES if piece.strip() == piece]),
    st.text(alphabet=st.characters(exclude_categories=(*FORBIDDEN, "Zs")), min_size=1, max_size=8),
)


def one_line(limit: int) -> st.SearchStrategy[str]:
    """A one-line value of at most `limit` characters that is not blank once trimmed, made of
    hostile pieces, or a run of one character close to the limit (an overlong header word)."""
    pieces = st.builds(
        lambda first, rest: (first + "".join(rest))[:limit],
        _solid_piece,
        st.lists(_line_piece, max_size=7),
    )
    run = st.builds(
        lambda char, size: (char * size)[:limit],
        st.sampled_from(["x", "é", "😀", "\u202e", "=?"]),
        st.integers(min_value=max(1, limit - 30), max_value=limit),
    )
    return st.one_of(pieces, run)


def _message_line() -> st.SearchStrategy[str]:
    return st.one_of(
        st.lists(st.one_of(_line_piece, st.just("\t")), max_size=8).map("".join),
        st.integers(min_value=900, max_value=3000).map(lambda n: "x" * n),  # no place to fold
        st.integers(min_value=100, max_value=600).map(lambda n: "é😀" * n),
        st.just(""),
    )


_ends = st.sampled_from(["\n", "\r\n", "\r"])
#: A message: a first line that is not blank, then hostile lines, among them lines too long
#: for SMTP, each ended by CR LF, LF or CR.
messages = st.builds(
    lambda first, lines: (first + "".join(end + line for line, end in lines))[:MESSAGE_MAX],
    one_line(200),
    st.lists(st.tuples(_message_line(), _ends), max_size=5),
)

_ATEXT = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'*+/=?^_`{|}~-"
_atom = st.text(alphabet=_ATEXT, min_size=1, max_size=16)
#: Dot-atom local parts; `=?` is refused at accept (an address is never an encoded-word).
valid_locals = st.lists(_atom, min_size=1, max_size=4).map(
    lambda atoms: ".".join(atoms)[:64].strip(".").replace("=?", "=x")
)
#: Domains email-validator takes: ASCII, IDN (also as xn--), look-alike letters, full width.
VALID_DOMAINS = [
    "example.com",
    "exämple.fr",
    "exаmple.com",  # a Cyrillic а
    "例子.广告",
    "xn--80ak6aa92e.com",
    "bücher.de",
    "ＥＸＡＭＰＬＥ.com",
    "Example.COM",
    "1.com",
]
valid_domains = st.one_of(
    st.sampled_from(VALID_DOMAINS),
    st.from_regex(r"[a-z][a-z0-9]{0,20}(\.[a-z][a-z0-9]{0,10})?\.(fr|com|org)", fullmatch=True),
)


@dataclass(frozen=True)
class Address:
    """A generated address as typed, and the 7-bit addr-spec a Reply-To must carry for it."""

    typed: str
    ascii: str


def _address(local: str, domain: str, pad: tuple[str, str]) -> Address:
    encoded = idna.encode(domain, uts46=True).decode("ascii")
    return Address(f"{pad[0]}{local}@{domain}{pad[1]}", f"{local.lower()}@{encoded}")


valid_addresses = st.builds(
    _address,
    valid_locals,
    valid_domains,
    st.sampled_from([("", ""), (" ", ""), ("", "  "), ("\u00a0", "")]),
)

#: Phones as people type them (E.164 once parsed) and text kept as typed.
valid_phones = st.one_of(
    st.sampled_from(
        [
            "06 12 34 56 78",
            "+33 6 12 34 56 78",
            "0033612345678",
            "+1 (415) 555-2671",
            "０６１２３４５６７８",
        ]
    ),
    one_line(PHONE_MAX),
)

#: Keys relay does not read: whatever they hold is dropped (not `_gotcha`: a filled trap is
#: spam, dropped whole).
_IGNORED = st.dictionaries(
    st.sampled_from(["Bcc", "cc", "extra", "newsletter", "to", "subject", "reply_to"]),
    json_values,
    max_size=2,
)


@dataclass(frozen=True)
class SubmissionCase:
    """A generated raw submission; `broken` names the one field made invalid and the code
    relay must answer for it, or is None when every field is valid."""

    raw: dict[str, Any]
    address: Address
    broken: tuple[str, str] | None = None


@st.composite
def valid_cases(draw: st.DrawFn) -> SubmissionCase:
    """Every field valid (required ones present, within limits), every one hostile."""
    address = draw(valid_addresses)
    raw: dict[str, Any] = draw(_IGNORED)
    email_key = draw(st.sampled_from(["email", "email", "email", "_replyto"]))
    raw.update(
        {"name": draw(one_line(NAME_MAX)), email_key: address.typed, "message": draw(messages)}
    )
    if draw(st.booleans()):
        raw["phone"] = draw(valid_phones)
    if draw(st.booleans()):
        raw["company"] = draw(one_line(COMPANY_MAX))
    return SubmissionCase(raw, address)


def _with_control(text: str, control: str, limit: int) -> str:
    """`text` with `control` inside it (between two letters, so trimming cannot remove it)."""
    return f"a{control}b{text}"[:limit]


#: Characters that make a one-line value invalid wherever they sit (INVALID_CHARACTERS).
LINE_BREAKERS = ["\r\n", "\n", "\r", "\x00", "\x1b", "\x0b", "\u2028", "\u2029", "\x85", "\t"]
#: The same for a message, where CR, LF and tab are allowed.
MESSAGE_BREAKERS = ["\x00", "\x1b", "\x0b", "\u2028", "\u2029", "\x85", "\x7f"]
NOT_TEXT: list[Any] = [None, 0, 1.5, True, ["x"], {"x": "y"}]
INVALID_ADDRESSES = [
    "not-an-address",
    "a@b",
    "@x.fr",
    "a..b@x.fr",
    "=?utf-8?q?x=0D=0ABcc:_v@x.fr?=@example.com",
    "a=?b@example.com",
    "jö@example.fr",  # SMTPUTF8 local part: no 7-bit header can carry it
    "用户@例子.广告",
    "a@exam_ple.com",
    "a b@example.com",
]


@st.composite
def broken_cases(draw: st.DrawFn) -> SubmissionCase:
    """A valid case with exactly one field made invalid, and the code relay must give."""
    case = draw(valid_cases())
    raw = dict(case.raw)
    raw.pop("_replyto", None)
    raw["email"] = case.address.typed
    field = draw(st.sampled_from(["name", "email", "message", "phone", "company"]))
    limits = {"name": NAME_MAX, "phone": PHONE_MAX, "company": COMPANY_MAX, "message": MESSAGE_MAX}
    if field == "email":
        how = draw(st.sampled_from(["invalid", "characters", "missing", "blank"]))
        if how == "invalid":
            raw["email"] = draw(st.sampled_from(INVALID_ADDRESSES))
        elif how == "characters":  # a header injected into the address itself
            control = draw(st.sampled_from(LINE_BREAKERS))
            raw["email"] = f"a@example.com{control}Bcc: v@example.com"
        elif how == "missing":
            del raw["email"]
        else:
            raw["email"] = draw(st.sampled_from(["", "  ", "\u00a0"]))
        code = {
            "invalid": "TYPE_EMAIL",
            "characters": "INVALID_CHARACTERS",
            "missing": "REQUIRED_FIELD_MISSING",
        }.get(how, "REQUIRED_FIELD_EMPTY")
        return SubmissionCase(raw, case.address, ("email", code))
    hows = ["too_long", "characters", "not_text"]
    if field in ("name", "message"):
        hows += ["missing", "blank"]
    how = draw(st.sampled_from(hows))
    value = raw.get(field) or draw(one_line(limits[field]))
    if how == "too_long":
        raw[field] = "y" * (limits[field] + draw(st.integers(1, 50)))
        code = "TOO_LONG"
    elif how == "characters":
        breakers = MESSAGE_BREAKERS if field == "message" else LINE_BREAKERS
        raw[field] = _with_control(value, draw(st.sampled_from(breakers)), limits[field])
        code = "INVALID_CHARACTERS"
    elif how == "not_text":
        choices = NOT_TEXT if field in ("name", "message") else NOT_TEXT[1:]  # None: absent
        raw[field] = draw(st.sampled_from(choices))
        code = "TYPE_TEXT"
    elif how == "missing":
        del raw[field]
        code = "REQUIRED_FIELD_MISSING"
    else:
        raw[field] = draw(st.sampled_from(["", " ", "\u00a0 "]))
        code = "REQUIRED_FIELD_EMPTY"
    return SubmissionCase(raw, case.address, (field, code))


#: Nine valid cases in ten, one with a broken field: both branches, mostly the valid one.
submission_cases = st.integers(min_value=0, max_value=9).flatmap(
    lambda n: broken_cases() if n == 0 else valid_cases()
)
#: The raw dicts of `submission_cases`, for tests that post them as they are.
submissions = submission_cases.map(lambda case: case.raw)


# --- the demo form of tests/formspree_forms.py: declared fields and Formspree's specials -------

#: Values of the declared `quantity` (number) field, and what relay keeps for each.
QUANTITIES: dict[Any, Any] = {"12": 12, " 1 000 ": 1000, "2,5": "2.5", 3.0: 3, 7: 7, "1e3": 1000}
#: Values of the declared `backup_email` field, and the normalised spelling relay keeps.
BACKUP_EMAILS = {
    "Jeanne@Example.COM": "Jeanne@example.com",
    "a@bücher.de": "a@bücher.de",
    "x@xn--80ak6aa92e.com": "x@аррӏе.com",
    "O.Brien+tag@EXAMPLE.fr": "O.Brien+tag@example.fr",
}
#: Phones in the declared `mobile` (tel) field, and their E.164 spelling.
MOBILES = {"06 12 34 56 78": "+33612345678", "+1 (415) 555-2671": "+14155552671"}


@dataclass(frozen=True)
class DemoCase:
    """A valid submission to the demo form and what relay must keep of it: the declared
    values, the visitor's subject, whether the email is text only."""

    raw: dict[str, Any]
    address: Address
    declared: dict[str, Any]
    subject: str | None
    plain: bool


@st.composite
def _demo_cases(draw: st.DrawFn) -> DemoCase:
    """A valid submission to the demo form, every text hostile, with what relay must keep:
    (declared values, the visitor's subject, text-only) beside the raw fields."""
    case = draw(valid_cases())
    raw = dict(case.raw)
    if draw(st.booleans()):
        del raw["name"]  # the demo form does not require a name
    declared: dict[str, Any] = {}
    choice = draw(st.sampled_from(["Sérum", "Milieu"]))
    raw[draw(st.sampled_from(["product", "Product"]))] = draw(st.sampled_from(["", " "])) + choice
    declared["product"] = choice
    if draw(st.booleans()):
        raw["country"] = draw(one_line(40))
        declared["country"] = raw["country"].strip()
    if draw(st.booleans()):
        quantity = draw(st.sampled_from(list(QUANTITIES)))
        raw["quantity"], declared["quantity"] = quantity, QUANTITIES[quantity]
    ticked = draw(st.sampled_from(["on", True, "", False, None]))
    if ticked is not None:
        raw["urgent"] = ticked
    if ticked in ("on", True):
        declared["urgent"] = True
    if draw(st.booleans()):
        raw["details"] = draw(messages.map(lambda text: text[:500]))
        details = raw["details"].replace("\r\n", "\n").replace("\r", "\n").strip()
        if details:
            declared["details"] = details
    if draw(st.booleans()):
        backup = draw(st.sampled_from(list(BACKUP_EMAILS)))
        raw["backup_email"], declared["backup_email"] = backup, BACKUP_EMAILS[backup]
    if draw(st.booleans()):
        mobile = draw(st.sampled_from(list(MOBILES)))
        raw["mobile"], declared["mobile"] = mobile, MOBILES[mobile]
    subject = None
    if draw(st.booleans()):
        raw["_subject"] = draw(one_line(150))
        subject = " ".join(raw["_subject"].split()) or None
    plain = draw(st.sampled_from([None, "plain", " PLAIN ", "html"]))
    if plain is not None:
        raw["_format"] = plain
    if draw(st.booleans()):
        raw["_language"] = draw(st.sampled_from(["fr", "en-GB", "de", "<script>"]))
    text_only = plain is not None and plain.strip().lower() == "plain"
    return DemoCase(raw, case.address, declared, subject, text_only)


demo_cases = _demo_cases()
