"""A forms file with declared fields, per-form required fields and `allow_subject` (issue 10)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.helpers import expected

FORMS_WITH_FIELDS = """
[[forms]]
id = "demo"
title = "Demande de démonstration"
language = "fr"
recipients = ["sales@example.com"]
allowed_origins = ["https://www.example.com"]
legal_basis = "contract"
notice_version = "2026-03-20"
subject = "Démo - {{ name }}"
required = ["email", "message"]
allow_subject = true

[[forms.fields]]
name = "product"
label = { fr = "Produit", en = "Product" }
kind = "select"
choices = ["Sérum", "Milieu"]
required = true

[[forms.fields]]
name = "country"
label_fr = "Pays"
label_en = "Country"
max_length = 40

[[forms.fields]]
name = "quantity"
label = { fr = "Quantité", en = "Quantity" }
kind = "number"

[[forms.fields]]
name = "urgent"
label = { fr = "Urgent", en = "Urgent" }
kind = "checkbox"

[[forms.fields]]
name = "details"
label = { fr = "Détails", en = "Details" }
kind = "long_text"
max_length = 500

[[forms.fields]]
name = "backup_email"
label = { fr = "Autre adresse", en = "Other address" }
kind = "email"

[[forms.fields]]
name = "mobile"
label = { fr = "Portable", en = "Mobile" }
kind = "tel"

[[forms]]
id = "contact"
recipients = ["sales@example.com"]
allowed_origins = ["https://www.example.com"]
legal_basis = "legitimate_interest"
notice_version = "2026-03-20"
language = "en"
"""

DEMO = {"email": "jeanne.martin@example.fr", "message": "Bonjour", "product": "Sérum"}


def write_forms(tmp_path: Path, text: str = FORMS_WITH_FIELDS) -> Path:
    path = tmp_path / "forms-fields.toml"
    path.write_text(text, encoding="utf-8")
    return path


def post_demo(
    client: Any, path: str = "/f/demo", *, expect: int | None = 202, **fields: Any
) -> Any:
    """Post like @formspree/core (JSON, Accept: application/json) to the demo form; its status
    must be `expect` (None: any)."""
    body = {k: v for k, v in {**DEMO, **fields}.items() if v is not None}
    headers = {"Accept": "application/json", "Origin": "https://www.example.com"}
    return expected(client.post(path, json=body, headers=headers), expect)
