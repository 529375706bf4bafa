"""What `relay send-test` tells the operator: the verdict, and the fix — pure, no I/O.

Why: the common set-up mistakes with Mailgun EU and Microsoft 365 look alike from outside
("no email arrived"); each has a recognisable answer (see relay/mail/mailgun.py and
shared/reference/mailgun-m365.md) and a precise fix, written down here once.
"""

from __future__ import annotations

from dataclasses import dataclass

from relay import states

#: Microsoft 365's MX hosts answer from *.protection.outlook.com / *.outlook.com.
M365_MARKERS = ("outlook.com", "protection.outlook", "microsoft")

FIX_REGION = (
    "wrong region: an EU domain exists only on https://api.eu.mailgun.net (a US one only on "
    "https://api.mailgun.net); set RELAY_MAILGUN_BASE_URL to the domain's region, and check "
    "RELAY_MAILGUN_DOMAIN is spelt as in Mailgun's Domains page"
)
FIX_KEY = (
    "wrong key kind: RELAY_MAILGUN_API_KEY must be a Domain Sending Key of RELAY_MAILGUN_DOMAIN "
    "(Mailgun: Sending > Domain settings > Sending API keys) or the account's private API key; "
    "not the read-only key (RELAY_MAILGUN_READ_KEY), not the webhook signing key, not a key of "
    "another domain"
)
FIX_UNVERIFIED = (
    "unverified domain: add the SPF (TXT include:mailgun.org) and DKIM records Mailgun shows "
    "for the domain to its DNS, press 'Verify DNS settings' in Mailgun, and send again"
)
FIX_BASE_URL = (
    "RELAY_MAILGUN_BASE_URL has a path or is not the API host: use https://api.eu.mailgun.net"
)
FIX_M365 = (
    "Microsoft 365 refused the message: check the recipient mailbox exists, and that the "
    "sending domain passes SPF, DKIM and DMARC (Mailgun's domain page shows the records); "
    "an admin can release it from Microsoft 365's quarantine if it was held there"
)
FIX_TRANSIENT = "a temporary problem (network, rate limit, Mailgun busy): run it again shortly"
FIX_NO_VERDICT = (
    "Mailgun accepted it, but no verdict came in time: relay learns it from Mailgun's webhooks "
    "(RELAY_MAILGUN_WEBHOOK_SIGNING_KEY, pointed at /webhooks/mailgun) or its Logs API "
    "(RELAY_MAILGUN_READ_KEY); set one, or run `relay deliveries show {id}` later"
)


@dataclass(frozen=True)
class Verdict:
    """One line saying what happened, an optional fix, and whether the set-up works."""

    ok: bool
    what: str
    fix: str | None = None

    def lines(self) -> list[str]:
        return [self.what] + ([f"fix: {self.fix}"] if self.fix else [])


def fix_for(error: str) -> str | None:
    """The fix for a refusal, from the text relay.mail.mailgun gives it."""
    text = error.lower()
    if "unverified" in text or "not allowed to send" in text:
        return FIX_UNVERIFIED
    if "other region" in text or "domain not found" in text or ("not found at" in text):
        return FIX_REGION
    if "without a message id" in text:
        return FIX_BASE_URL
    if "refused the api key" in text or "(401" in text or "(403" in text:
        return FIX_KEY
    if "base_url" in text:
        return FIX_REGION
    return None


def refused(kind: str, error: str) -> Verdict:
    """The transport did not take the message: `kind` is `failed`, `retry` or `credentials`."""
    if kind == "retry":
        return Verdict(False, f"not sent: {error}", fix_for(error) or FIX_TRANSIENT)
    return Verdict(False, f"refused by Mailgun: {error}", fix_for(error))


def is_m365(description: str | None) -> bool:
    return description is not None and any(m in description.lower() for m in M365_MARKERS)


def outcome(
    submission_id: str,
    state: str,
    *,
    description: str | None,
    last_error: str | None,
) -> Verdict:
    """The verdict once Mailgun has been heard from (or the wait is over)."""
    if state == states.DELIVERED:
        where = "Microsoft 365" if is_m365(description) else "the recipients' mail server"
        said = f" ({description})" if description else ""
        return Verdict(True, f"delivered to {where}{said}")
    if state in (states.FAILED, states.DEAD, "rejected"):
        reason = last_error or description or "no reason given"
        fix = FIX_M365 if is_m365(reason) else fix_for(reason)
        return Verdict(False, f"not delivered: {reason}", fix or FIX_M365)
    return Verdict(
        True, "accepted by Mailgun; not confirmed yet", FIX_NO_VERDICT.format(id=submission_id)
    )
