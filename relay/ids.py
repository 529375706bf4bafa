"""Submission ids: UUIDv7, so ids sort by arrival time and reveal nothing about the sender."""

from __future__ import annotations

import uuid_utils


def new_submission_id() -> str:
    """A fresh time-sortable id (UUIDv7, RFC 9562) as its canonical 36-character string."""
    return str(uuid_utils.uuid7())
