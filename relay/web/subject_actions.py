"""The DPO's buttons on /admin/prospects → the data-subject actions of relay.privacy.

The admin page and the CLI call the same functions, so a request made from the page is
recorded in the request register and the audit log exactly like one made with `relay subject`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from relay import privacy
from relay.crypto import KeyRing
from relay.errors import RelayError
from relay.store import Store

ACTIONS = ("export", "erase", "restrict", "withdraw")


class UnknownAction(RelayError):
    """Raised for a button name that is not one of ACTIONS."""


@dataclass(frozen=True)
class ActionResult:
    """What the page shows after an action, and for export the file to download."""

    summary: str
    download: bytes | None = None
    filename: str | None = None


async def run_action(
    action: str, store: Store, keyring: KeyRing, email: str, *, actor: str, now: datetime
) -> ActionResult:
    """Run one subject action for `email`; its outcome as the page shows it."""
    if action == "export":
        data = await privacy.export_subject(store, keyring, email, actor=actor, now=now)
        body = json.dumps(data, ensure_ascii=False, indent=2, default=str).encode("utf-8")
        return ActionResult("export ready", body, "subject-export.json")
    if action == "erase":
        counts = await privacy.erase_subject(store, keyring, email, actor=actor, now=now)
        removed = ", ".join(f"{k}: {v}" for k, v in counts.items())
        return ActionResult(f"erased ({removed})")
    if action == "restrict":
        done = await privacy.restrict_subject(
            store, keyring, email, actor=actor, now=now, restricted=True
        )
        return ActionResult("record restricted" if done else "no record to restrict")
    if action == "withdraw":
        done = await privacy.withdraw_consent(
            store, keyring, email, actor=actor, now=now, source=f"admin:{actor}"
        )
        return ActionResult("consent withdrawn" if done else "no consent to withdraw")
    msg = f"unknown action {action!r}"
    raise UnknownAction(msg)
