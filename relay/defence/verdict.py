"""The verdict on one submission: deliver, quarantine or drop, with the rules that caught it.

Pure. Certain spam (a filled honeypot) is dropped: answered as a success, nothing kept.
Suspicious submissions (the time trap, content rules) are quarantined: stored encrypted, not
delivered, until an admin releases or deletes them, or they expire.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from relay.config import FormConfig
from relay.defence import content, honeypot
from relay.defence.pow import TIME_TRAP, Proof


class Action(StrEnum):
    DELIVER = "deliver"
    QUARANTINE = "quarantine"
    DROP = "drop"


@dataclass(frozen=True)
class Verdict:
    """What to do with a submission, and the names of the rules that decided it."""

    action: Action
    rules: tuple[str, ...] = ()

    @property
    def stored(self) -> bool:
        """Whether the submission is written to the database (delivered or quarantined)."""
        return self.action is not Action.DROP

    @property
    def reason(self) -> str:
        """The rules as one short label (metrics, the admin list): e.g. `max_links,time_trap`."""
        return ",".join(self.rules)


DELIVER = Verdict(Action.DELIVER)
HONEYPOT = Verdict(Action.DROP, (honeypot.RULE,))


def screen_raw(raw: Mapping[str, Any], form: FormConfig) -> Verdict | None:
    """The certain verdict, on the fields as sent (before validation): a filled honeypot."""
    return HONEYPOT if honeypot.caught(raw, form.honeypot) else None


def rules_of(form: FormConfig) -> content.ContentRules:
    return content.ContentRules(
        max_links=form.max_links,
        blocked_domains=form.blocked_domains,
        blocked_words=form.blocked_words,
        block_disposable=form.block_disposable_domains,
    )


def screen_fields(
    form: FormConfig,
    *,
    email: str,
    message: str,
    others: tuple[str, ...] = (),
    proof: Proof | None = None,
    now: datetime,
) -> Verdict:
    """The verdict on a valid submission: quarantine when any suspicious rule matches."""
    caught = list(content.broken_rules(rules_of(form), email=email, message=message, others=others))
    if proof is not None and proof.too_fast(now, form.min_fill_seconds):
        caught.insert(0, TIME_TRAP)
    return Verdict(Action.QUARANTINE, tuple(caught)) if caught else DELIVER
