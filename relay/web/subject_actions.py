"""The DPO's buttons on /admin/prospects → the data-subject actions of relay.rights.privacy.

The admin page and the CLI call the same functions, so a request made from the page is
recorded in the request register and the audit log exactly like one made with `relay subject`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from relay.crypto import KeyRing
from relay.errors import SubjectError
from relay.minimise.retention import Bounds
from relay.rights import erasure, privacy
from relay.store import Store

ACTIONS = ("export", "erase", "restrict", "withdraw")


class UnknownAction(SubjectError):
    """Raised for a button name that is not one of ACTIONS."""


@dataclass(frozen=True)
class ActionResult:
    """What the page shows after an action, and for export the file to download."""

    summary: str
    download: bytes | None = None
    filename: str | None = None


@dataclass(frozen=True)
class Context:
    """What the actions need besides the store: who the controller is, where mail files are."""

    controller: dict[str, Any]
    mail_dir: Path
    bounds: Bounds = field(default_factory=Bounds)


async def run_action(
    action: str,
    store: Store,
    keyring: KeyRing,
    email: str,
    *,
    actor: str,
    now: datetime,
    context: Context,
) -> ActionResult:
    """Run one subject action for `email`; its outcome as the page shows it (a refusal too)."""
    try:
        return await _run(action, store, keyring, email, actor=actor, now=now, context=context)
    except SubjectError as exc:
        if isinstance(exc, UnknownAction):
            raise
        return ActionResult(f"refused: {exc}")


async def _run(
    action: str,
    store: Store,
    keyring: KeyRing,
    email: str,
    *,
    actor: str,
    now: datetime,
    context: Context,
) -> ActionResult:
    if action == "export":
        data = await privacy.export_subject(
            store,
            keyring,
            email,
            actor=actor,
            now=now,
            controller=context.controller,
            bounds=context.bounds,
        )
        body = json.dumps(data, ensure_ascii=False, indent=2, default=str).encode("utf-8")
        return ActionResult("export ready", body, "subject-export.json")
    if action == "erase":
        relayed = await erasure.relayed_emails(store, keyring, email)
        counts = await erasure.erase_subject(
            store, keyring, email, actor=actor, now=now, mail_dir=context.mail_dir
        )
        removed = ", ".join(f"{k}: {v}" for k, v in counts.items())
        reminder = (
            f"; {len(relayed)} email(s) already handed on: delete them in the Microsoft 365 "
            "mailbox, and mind Mailgun's logs (kept a few days)"
            if relayed
            else ""
        )
        return ActionResult(f"erased ({removed}){reminder}")
    if action == "restrict":
        await privacy.restrict_subject(store, keyring, email, actor=actor, now=now, restricted=True)
        return ActionResult("record restricted")
    if action == "withdraw":
        done = await privacy.withdraw_consent(
            store, keyring, email, actor=actor, now=now, source=f"admin:{actor}"
        )
        if not done.known:
            return ActionResult(
                "relay holds no record or consent for this address; it is now on the "
                "opposition list (keyed hash only)"
            )
        return ActionResult("consent withdrawn" if done.changed else "already withdrawn")
    msg = f"unknown action {action!r}"
    raise UnknownAction(msg)
