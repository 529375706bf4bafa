"""Canary personal data never reaches the database file in clear, nor the logs."""

from __future__ import annotations

import logging
from typing import Any

from tests.helpers import post_form, post_json

CANARIES: dict[str, Any] = {
    "name": "Canaryname Zebulon",
    "email": "canary.zebulon@canary-example.fr",
    "phone": "+33 6 99 88 77 66",
    "company": "CanaryCorp Unlimited",
    "message": "CANARY-MESSAGE-TEXT lorem ipsum\nsecond line",
}
NEEDLES = [
    b"Canaryname",
    b"Zebulon",
    b"canary.zebulon",
    b"canary-example",
    b"+33699887766",
    b"99 88 77 66",
    b"CanaryCorp",
    b"CANARY-MESSAGE-TEXT",
]


def test_raw_database_file_holds_no_personal_data_in_clear(client, settings, caplog):
    """After JSON and form submissions, grepping the SQLite files (db, WAL) finds no canary."""
    caplog.set_level(logging.DEBUG, logger="relay")
    for _ in range(3):
        post_json(client, **CANARIES)
        post_form(client, **CANARIES)
    files = [p for p in settings.var_dir.iterdir() if p.name.startswith("relay.db")]
    assert files
    for path in files:
        raw = path.read_bytes()
        for needle in NEEDLES:
            assert needle not in raw, (path.name, needle)
    logged = "\n".join(r.getMessage() + str(r.__dict__) for r in caplog.records)
    for needle in NEEDLES:
        assert needle.decode() not in logged
    assert "submission accepted" in logged
