"""Redaction of a provider's free text before the delivery log keeps it (issue 15)."""

from __future__ import annotations

from hypothesis import event, given
from hypothesis import strategies as st

from relay.minimise.redact import MAX_TEXT, redact
from tests.properties.test_events import identifiers, server_texts
from tests.strategies import hostile_text

#: Host names a bounce quotes (the receiving server, the person's mail domain).
hosts = st.from_regex(r"(mx|mail|smtp)[0-9]?\.[a-z]{2,12}\.(fr|com|org|net)", fullmatch=True)
#: People's names as servers quote them: two or more capitalised words.
names = st.sampled_from(["Jeanne Martin", "Élodie Dupré", "Jean-Pierre Lefèvre", "Anne O'Neil"])


@st.composite
def bounces(draw: st.DrawFn) -> tuple[str, list[str]]:
    """A bounce as servers write it: status codes first, then prose quoting identifiers."""
    text, planted = draw(server_texts())
    extra = draw(st.lists(st.one_of(identifiers, hosts, names), max_size=3))
    for identifier in extra:
        text += f" {identifier} " + draw(st.sampled_from(["is full", "rejected", "unknown"]))
    return "550 5.2.2 said: " + text, planted + extra


@given(st.one_of(bounces(), bounces(), hostile_text.map(lambda text: (text, []))))
def test_redaction_keeps_why_and_removes_who(drawn):
    """Property: redacted text is one line of single spaces, at most MAX_TEXT characters,
    holds none of the addresses, IPs, phone numbers, host names and names quoted in it (set
    off by spaces, brackets, quotes or punctuation), and keeps the codes that open a bounce."""
    text, planted = drawn
    out = redact(text)
    assert out == " ".join(out.split())
    assert len(out) <= MAX_TEXT
    for identifier in planted:
        assert identifier not in out
    if planted:
        event("identifiers quoted")
        assert out.startswith("550 5.2.2 said:")
