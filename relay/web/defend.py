"""The defence step of POST /f/{form_id}: from the fields as sent to a Verdict (issue 8).

Order of cost: honeypot (a dict lookup) → proof of work (two HMACs) → field validation →
content rules and time trap. Refusals raise SubmissionRejected; spam is not refused, it gets a
Verdict (drop or quarantine) and the caller answers it as a success, so a bot learns nothing.
The proof is spent (`spend_proof`) only when the submission is about to be stored, so a person
who corrects a field after a 422 can send the same solved challenge again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from starlette.requests import Request

from relay.accept.form_input import FormInput, read_form
from relay.accept.submission import Submission
from relay.config import FormConfig
from relay.defence import pow as proof_of_work
from relay.defence.pow import Proof, Refused
from relay.defence.verdict import Verdict, screen_fields, screen_raw
from relay.errors import SubmissionRejected
from relay.web.deps import Deps, store_of
from relay.web.replay import ledger_of


@dataclass(frozen=True)
class Defended:
    """The verdict, and for a stored verdict the valid submission and its proof of work."""

    verdict: Verdict
    form_input: FormInput | None = None  # None when dropped (never validated)
    proof: Proof | None = None

    @property
    def submission(self) -> Submission | None:
        return None if self.form_input is None else self.form_input.submission


def _refuse(code: str) -> SubmissionRejected:
    refused = Refused(code)
    return SubmissionRejected(refused.status, code, refused.message)


def check_proof(deps: Deps, form: FormConfig, raw: dict[str, Any], now: datetime) -> Proof | None:
    """The form's proof of work, verified (not yet spent); None when the form asks for none."""
    if not form.proof_of_work:
        return None
    result = proof_of_work.check(raw.get(proof_of_work.FIELD), deps.proof_keys, form.id, now)
    if isinstance(result, Refused):
        raise _refuse(result.code)
    return result


@dataclass(frozen=True)
class Screened:
    """What relay.web.floodgate already found for a submission it hands on: the fields as
    parsed and the verified proof of work, so the endpoint does neither twice."""

    raw: dict[str, Any]
    proof: Proof | None


def defend(
    deps: Deps,
    form: FormConfig,
    raw: dict[str, Any],
    now: datetime,
    screened: Screened | None = None,
) -> Defended:
    """Screen one submission; raises SubmissionRejected (proof of work, 422 fields: the
    form's built-in and declared fields, relay.accept.form_input). With `screened`, the
    honeypot and the proof of work were checked in front already."""
    if screened is None:
        certain = screen_raw(raw, form)
        if certain is not None:
            return Defended(certain)
        proof = check_proof(deps, form, raw, now)
    else:
        proof = screened.proof
    form_input = read_form(raw, form, phone_region=deps.settings.phone_default_region)
    sub = form_input.submission
    declared = tuple(v for v in form_input.declared.values() if isinstance(v, str))
    verdict = screen_fields(
        form,
        email=sub.email,
        message=sub.message,
        others=(sub.name, sub.company or "", *declared),
        proof=proof,
        now=now,
    )
    return Defended(verdict, form_input, proof)


async def spend_proof(request: Request, defended: Defended) -> None:
    """Record the proof as used; a second use (any instance) is refused with 403."""
    proof = defended.proof
    if proof is None:
        return
    first = await ledger_of(request).first_use(store_of(request), proof.nonce_id, proof.expires_at)
    if not first:
        raise _refuse(proof_of_work.REUSED)
