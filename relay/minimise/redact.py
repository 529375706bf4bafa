"""Identifiers out of a provider's free text, before relay records it — pure, no I/O.

A receiving server's bounce text ("550 5.2.2 Mailbox of Jeanne Martin <jeanne@…> is full at
mx.example.fr [192.0.2.7]") says *why* a delivery failed, which the delivery log needs, and
often *who*, which it must not keep (the log outlives the person's record). What goes:
addresses, IP literals, host names, long numbers (phones, account ids) and names, read as
two or more capitalised words in a row. Status codes, enhanced codes and lower-case prose
stay, and so do a few capitalised phrases providers use that name nobody (KNOWN_PHRASES).
Over-redaction of other phrases is the accepted cost; the codes still say why.
"""

from __future__ import annotations

import re

MAX_TEXT = 500

_EMAIL = re.compile(r"<?[^\s<>\"'@]+@[^\s<>\"'@]+\.[A-Za-z0-9-]+>?")
_IPV4 = re.compile(r"\[?\b(?:\d{1,3}\.){3}\d{1,3}\b\]?")
_IPV6 = re.compile(r"\[?\b(?:IPv6:)?(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}\b\]?")
#: host names: dotted labels ending in a lower-case top-level domain (codes such as
#: RESOLVER.ADR.RecipNotFound end in a mixed-case label and stay)
_HOST = re.compile(r"\b(?:[A-Za-z0-9-]+\.)+[a-z]{2,24}\b")
_NUMBER = re.compile(r"\+?\d[\d ()-]{5,}\d")
_WORD = r"[A-ZÀ-ÖØ-Þ][a-zß-öø-ÿ'’-]+"
_NAME = re.compile(rf"\b{_WORD}(?:\s+{_WORD})+")


#: Capitalised phrases that providers write and that name no person: kept, so the reason
#: stays readable (Mailgun: "Please add your recipients in Account Settings").
KNOWN_PHRASES = frozenset(
    {
        "Account Settings",
        "Access Denied",
        "Exchange Online",
        "Mailbox Unavailable",
        "Microsoft Exchange",
        "Recipient Not Found",
        "Remote Server",
        "Sender Policy Framework",
        "Service Unavailable",
    }
)


def _name(match: re.Match[str]) -> str:
    text = match.group(0)
    return text if " ".join(text.split()) in KNOWN_PHRASES else "<name>"


def _number(match: re.Match[str]) -> str:
    text = match.group(0)
    return "<number>" if sum(c.isdigit() for c in text) >= 7 else text


def redact(text: str) -> str:
    """`text` on one line, bounded, with addresses, IPs, hosts, long numbers and names
    replaced by <address>, <ip>, <host>, <number> and <name>."""
    out = " ".join(text.split())
    out = _EMAIL.sub("<address>", out)
    out = _IPV6.sub("<ip>", out)
    out = _IPV4.sub("<ip>", out)
    out = _HOST.sub("<host>", out)
    out = _NUMBER.sub(_number, out)
    out = _NAME.sub(_name, out)
    return out[:MAX_TEXT]
