"""Mailgun's published payloads (tests/fixtures/mailgun, sources in its README.md).

`load` returns a fresh copy; `retarget` points an event at one of our submissions by replacing
only what ties it to a message (message-id, user-variables) and when it happened, so the rest
of the payload stays Mailgun's own words.
"""

from __future__ import annotations

import copy
import json
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).parent / "fixtures" / "mailgun"
DOMAIN = "mg.example.com"


@cache
def _read(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def load(name: str) -> Any:
    """A fresh copy of one fixture file."""
    return copy.deepcopy(_read(name))


def event(name: str) -> dict[str, Any]:
    """The event of a fixture: the file itself, `event-data`, or the first Logs/Events item."""
    data = load(name)
    if "event-data" in data:
        return dict(data["event-data"])
    if "items" in data:
        return dict(data["items"][0])
    return dict(data)


def retarget(data: dict[str, Any], submission_id: str, at: datetime) -> dict[str, Any]:
    """The same event, about our message `<submission_id@mg.example.com>`, at `at`."""
    out = copy.deepcopy(data)
    message = out.setdefault("message", {})
    headers = message.get("headers") or {}
    headers["message-id"] = f"{submission_id}@{DOMAIN}"
    message["headers"] = headers
    out["user-variables"] = {"submission_id": submission_id}
    if "@timestamp" in out:
        out["@timestamp"] = at.isoformat().replace("+00:00", "Z")
    else:
        out["timestamp"] = at.timestamp()
    return out


def logs_page(items: list[dict[str, Any]], next_token: str | None = None) -> dict[str, Any]:
    """A Logs API answer shaped like the OpenAPI example, with `items` and one next token."""
    page: dict[str, Any] = load("logs_api_response.json")
    page["items"] = items
    page["pagination"] = {**page["pagination"], "next": next_token} if next_token else {}
    return page
