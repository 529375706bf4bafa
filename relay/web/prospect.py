"""Build the prospect side of an accepted submission: sealed fields and the consent grant.

Pure apart from the key ring: called once per accepted submission, outside the writer, so the
group writer only does the lookup and the upsert.
"""

from __future__ import annotations

from typing import Any

from relay.accept.submission import Submission, consent_from
from relay.config import FormConfig
from relay.crypto import KeyRing
from relay.store.consent import ConsentGrant, wording_sha256
from relay.store.prospects import ProspectUpsert, aad


def _value(raw: dict[str, Any], field: str) -> str:
    value = raw.get(field)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)[:64]


def prospect_of(
    keyring: KeyRing, form: FormConfig, sub: Submission, raw: dict[str, Any]
) -> ProspectUpsert:
    """The record refresh for `sub`: never the message, never anything about the client."""
    macs = tuple(keyring.macs(sub.email))
    mac = macs[0]

    def seal(field: str, value: str | None) -> bytes | None:
        if value is None:
            return None
        return keyring.seal(value.encode("utf-8"), aad(mac, field))

    consent = None
    wording = form.marketing_consent
    if wording is not None and consent_from(raw, wording.field).given:
        consent = ConsentGrant(
            form_id=form.id,
            wording_version=wording.wording_version,
            wording_sha256=wording_sha256(wording.wording),
            notice_version=form.notice_version,
            field=wording.field,
            value=_value(raw, wording.field),
        )
    email_enc = seal("email", sub.email)
    name_enc = seal("name", sub.name)
    assert email_enc is not None  # noqa: S101 - email is required by the Submission model
    assert name_enc is not None  # noqa: S101 - name too
    return ProspectUpsert(
        email_mac=mac,
        lookup_macs=macs,
        email_enc=email_enc,
        name_enc=name_enc,
        company_enc=seal("company", sub.company),
        phone_enc=seal("phone", sub.phone),
        legal_basis=form.legal_basis.value,
        consent=consent,
        keyring=keyring,
    )
