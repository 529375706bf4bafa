"""Content rules of a form, with no third party: links, sender domains, words. Pure.

Each rule that matches is named in the verdict (`max_links`, `blocked_domain`, `blocked_word`,
`disposable_domain`); what matched is never reported, so a verdict holds no personal data.
The disposable-domain list is the `disposable-email-domains` package (the community list
maintained at github.com/disposable-email-domains), read only when a form turns it on.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from functools import cache, lru_cache

MAX_LINKS = "max_links"
BLOCKED_DOMAIN = "blocked_domain"
BLOCKED_WORD = "blocked_word"
DISPOSABLE_DOMAIN = "disposable_domain"

#: What a reader (or a mail client) would turn into a link: a scheme, or a bare www. host.
_LINK = re.compile(r"(?i)(?:\b(?:https?|ftp)://|\bwww\.[a-z0-9-]+\.|\[url[=\]])")


@dataclass(frozen=True)
class ContentRules:
    """One form's rules, as the forms file declares them."""

    max_links: int | None = None
    blocked_domains: tuple[str, ...] = ()
    blocked_words: tuple[str, ...] = ()
    block_disposable: bool = False


def count_links(text: str) -> int:
    """How many links `text` holds (URLs with a scheme, www. hosts, BBCode [url])."""
    return len(_LINK.findall(text))


def domain_of(email: str) -> str:
    """The domain of an address, lower-cased, without a trailing dot."""
    return email.rpartition("@")[2].strip().lower().rstrip(".")


def _parents(domain: str) -> list[str]:
    """`a.b.example` → [`a.b.example`, `b.example`, `example`]: a block covers subdomains."""
    labels = domain.split(".")
    return [".".join(labels[i:]) for i in range(len(labels))]


def in_domains(domain: str, listed: Collection[str]) -> bool:
    return any(parent in listed for parent in _parents(domain))


@lru_cache(maxsize=256)
def _words_pattern(words: tuple[str, ...]) -> re.Pattern[str]:
    alternatives = "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))
    return re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)", re.IGNORECASE)


def has_blocked_word(texts: Iterable[str], words: tuple[str, ...]) -> bool:
    """Whether a whole word (or phrase) of `words` appears in any text, ignoring case."""
    if not words:
        return False
    pattern = _words_pattern(words)
    return any(pattern.search(text.casefold()) for text in texts)


@cache
def disposable_domains() -> frozenset[str]:
    """The maintained list of throw-away mail domains, loaded once on first use."""
    from disposable_email_domains import blocklist  # a big set; only forms that ask load it

    return frozenset(blocklist)


def broken_rules(
    rules: ContentRules, *, email: str, message: str, others: Iterable[str] = ()
) -> tuple[str, ...]:
    """The names of the rules this submission breaks, in a fixed order (empty: none)."""
    caught: list[str] = []
    if rules.max_links is not None and count_links(message) > rules.max_links:
        caught.append(MAX_LINKS)
    domain = domain_of(email)
    if rules.blocked_domains and in_domains(domain, rules.blocked_domains):
        caught.append(BLOCKED_DOMAIN)
    if has_blocked_word([message, *others], rules.blocked_words):
        caught.append(BLOCKED_WORD)
    if rules.block_disposable and in_domains(domain, disposable_domains()):
        caught.append(DISPOSABLE_DOMAIN)
    return tuple(caught)
