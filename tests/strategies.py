"""Hypothesis strategies: hostile text of every kind a form can carry."""

from __future__ import annotations

from hypothesis import strategies as st

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

hostile_text = st.lists(
    st.one_of(st.sampled_from(NASTY), st.text(max_size=20)), min_size=0, max_size=12
).map("".join)

long_line = st.integers(min_value=900, max_value=3000).map(lambda n: "x" * n)
