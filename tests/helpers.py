"""Helpers that make tests read as user actions."""

from __future__ import annotations

from typing import Any

from starlette.testclient import TestClient

ORIGIN = "https://www.example.com"
VALID = {
    "name": "Jeanne Martin",
    "email": "jeanne.martin@example.fr",
    "phone": "06 12 34 56 78",
    "company": "Laboratoires Martin",
    "message": "Bonjour,\nje voudrais un devis.\nMerci",
}


def post_json(client: TestClient, form_id: str = "contact", **fields: Any) -> Any:
    """Post like Formspree's client library: JSON body, Accept: application/json, CORS origin."""
    body = {**VALID, **fields}
    headers = {
        "Accept": "application/json",
        "Origin": ORIGIN,
        "Formspree-Client": "@formspree/core@4",
    }
    return client.post(f"/f/{form_id}", json=body, headers=headers)


def post_form(client: TestClient, form_id: str = "contact", **fields: Any) -> Any:
    """Post like a plain HTML form: urlencoded, browser Accept header, no redirect following."""
    body = {k: v for k, v in {**VALID, **fields}.items() if v is not None}
    headers = {"Accept": "text/html,application/xhtml+xml", "Origin": ORIGIN}
    return client.post(f"/f/{form_id}", data=body, headers=headers, follow_redirects=False)
