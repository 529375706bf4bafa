"""The DPO's buttons (export, erase, restrict, withdraw) → relay.privacy's subject actions.

Why an adapter: the subject actions belong to the privacy issue (`relay.privacy`), built on
another branch. The admin page calls only `run_action`; when `relay.privacy` is absent the
page says the actions are not installed (501) instead of pretending. At merge, the lead checks
that NAMES matches the function names of `relay.privacy`, whose functions take
``(store, keyring, email, *, actor, now)`` and may be sync or async.
"""

from __future__ import annotations

import importlib
import inspect
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from relay.crypto import KeyRing
from relay.errors import RelayError
from relay.store import Store

#: Button → function of relay.privacy.
NAMES = {"export": "export", "erase": "erase", "restrict": "restrict", "withdraw": "withdraw"}
ACTIONS = tuple(NAMES)


class SubjectActionsUnavailable(RelayError):
    """Raised when relay.privacy (or one of its functions) is not part of this build."""


@dataclass(frozen=True)
class ActionResult:
    """What the page shows after an action, and for export the file to download."""

    summary: str
    download: bytes | None = None
    filename: str | None = None


def _function(action: str) -> Any:
    try:
        privacy = importlib.import_module("relay.privacy")
    except ModuleNotFoundError as exc:
        if exc.name != "relay.privacy":
            raise
        msg = "the data-subject actions (relay.privacy) are not installed in this build"
        raise SubjectActionsUnavailable(msg) from None
    function = getattr(privacy, NAMES[action], None)
    if function is None:
        msg = f"relay.privacy has no {NAMES[action]}() in this build"
        raise SubjectActionsUnavailable(msg)
    return function


async def run_action(
    action: str, store: Store, keyring: KeyRing, email: str, *, actor: str, now: datetime
) -> ActionResult:
    """Run one subject action for `email`; its outcome as the page shows it."""
    if action not in NAMES:
        msg = f"unknown action {action!r}"
        raise SubjectActionsUnavailable(msg)
    result = _function(action)(store, keyring, email, actor=actor, now=now)
    if inspect.isawaitable(result):
        result = await result
    if action == "export":
        data = result if isinstance(result, bytes) else json.dumps(result, default=str, indent=2)
        body = data if isinstance(data, bytes) else data.encode("utf-8")
        return ActionResult("export ready", body, "subject-export.json")
    return ActionResult(f"{action}: {result}" if result is not None else f"{action}: done")
