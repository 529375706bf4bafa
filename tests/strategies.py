"""Hypothesis strategies for hostile input: what a bot, a copy-paste or a broken client sends."""

from __future__ import annotations

from typing import Any

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

emails = st.one_of(
    st.emails(),
    hostile_text,
    st.sampled_from(
        ["jeanne@exämple.fr", "用户@例子.广告", "a@b", "@x.fr", "a..b@x.fr", "a@x.fr\r\n"]
    ),
)

phones = st.one_of(
    hostile_text,
    st.sampled_from(["06 12 34 56 78", "+33 6 12 34 56 78", "0033612345678", "+1 (415) 555-2671"]),
    st.from_regex(r"\+?[0-9 ().-]{0,30}", fullmatch=True),
)

submissions = st.fixed_dictionaries(
    {},
    optional={
        "name": json_values,
        "email": emails,
        "phone": phones,
        "company": json_values,
        "message": json_values,
        "_replyto": emails,
        "newsletter": json_values,
        "extra": json_values,
    },
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

header_text = st.lists(
    st.one_of(
        st.sampled_from([*ENCODED_INJECTIONS, *HOMOGLYPHS, *BIDI, *ZERO_WIDTH, *NASTY]),
        st.text(max_size=15),
        st.just("Jeanne Martin"),
    ),
    max_size=10,
).map("".join)

_atext = st.text(
    alphabet="abcdefghijklmnopqrstuvwxyz0123456789!#$%&'*+/=?^_`{|}~-", min_size=1, max_size=20
)
local_parts = st.one_of(
    _atext,
    st.sampled_from(ENCODED_INJECTIONS).map(lambda w: w.replace(" ", "")),
    st.lists(st.sampled_from([*HOMOGLYPHS, "jean", "=?", "?=", ".", "ö"]), min_size=1).map("".join),
)
domains = st.one_of(
    st.sampled_from(
        ["example.com", "exämple.fr", "exаmple.com", "例子.广告", "xn--80ak6aa92e.com"]
    ),
    st.from_regex(r"[a-z]{1,10}\.(fr|com|org)", fullmatch=True),
)
header_emails = st.one_of(
    st.builds(lambda local, domain: f"{local}@{domain}", local_parts, domains),
    emails,
)

#: Whole submissions whose every field aims at a header (the shape the accept path takes).
header_submissions = st.fixed_dictionaries(
    {
        "name": header_text,
        "email": header_emails,
        "message": header_text,
    },
    optional={"phone": header_text, "company": header_text},
)
