"""`relay send-test`: one clearly marked test message through the real transport, and its fate.

The message is rendered with the form's own templates (so they are tested too), from
placeholder fields that name no one, prefixed `[TEST]`, and sent once to the form's
recipients. It is recorded in the delivery log as a test row (relay.store.probes). Then the
command waits, up to a bound, for Mailgun's verdict: webhooks update the row, and with
RELAY_MAILGUN_READ_KEY the Logs API is asked directly, through the same idempotent job.
relay.deliver.send_check words the verdict and the fix.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from html import escape

from relay import states
from relay.clock import Clock
from relay.config import FormConfig, Settings
from relay.deliver.delivery import open_transport, renderer_for
from relay.deliver.send_check import Verdict, outcome, refused
from relay.ids import new_submission_id
from relay.mail import transport as t
from relay.mail.mailgun_logs import MailgunLogs, MailgunLogsError
from relay.mail.render import SubmissionView
from relay.store import Store
from relay.store import dispatch as db
from relay.store.deliveries import get_delivery, record_event
from relay.store.probes import OWNER, insert_test_send, last_event_description

BANNER = (
    "TEST MESSAGE sent by `relay send-test` to check the set-up. It is not a submission: "
    "no one filled in the form and relay stored nothing about a person. You may delete it."
)
#: How the test row's attempt reads in the delivery log.
MARK = "test message (relay send-test)"
#: Look this far back in Mailgun's logs: clocks differ.
SLACK = timedelta(minutes=10)


@dataclass
class SendTestReport:
    """What happened, step by step, for the command to print."""

    submission_id: str
    to: tuple[str, ...]
    via: str
    verdict: Verdict
    steps: list[str] = field(default_factory=list)


#: The placeholder submitter of a test message: names no one, and makes a valid Reply-To (the
#: operator's own sender may sit on a special-use domain such as relay.localhost).
PLACEHOLDER = "send-test@example.com"


def marked_email(
    settings: Settings, form: FormConfig, submission_id: str, now: datetime
) -> t.RenderedEmail:
    """The form's own email for placeholder fields, marked as a test in subject and body."""
    view = SubmissionView.from_fields(
        {"name": "relay send-test", "email": PLACEHOLDER, "company": "relay", "message": BANNER},
        id=submission_id,
        form_id=form.id,
        received_at=now,
        legal_basis=form.legal_basis.value,
        notice_version=form.notice_version,
        consent_given=False,
        consent_wording_version=None,
    )
    email = renderer_for(settings).render(view, form)
    return dataclasses.replace(
        email,
        subject=f"[TEST] {email.subject}",
        text=f"{BANNER}\n\n{email.text}",
        html=f"<p><strong>{escape(BANNER)}</strong></p>\n{email.html}",
    )


def _outcome(sid: str, result: t.SendResult, attempt: db.Attempt) -> db.Outcome:
    if isinstance(result, t.Accepted):
        return db.accepted(sid, OWNER, result.message_id, attempt)
    return db.final(sid, OWNER, states.FAILED, attempt)  # a test is never retried


def _attempt(result: t.SendResult, at: datetime, duration: int) -> db.Attempt:
    """The delivery-log line, saying it was a test (shown by `relay deliveries show`)."""
    if isinstance(result, t.Accepted):
        return db.Attempt(at, db.ACCEPTED, 200, duration, MARK)
    kind = db.RETRY if isinstance(result, t.Retry) else db.FAILED
    return db.Attempt(at, kind, result.status, duration, f"{MARK}: {result.error}")


async def send_test(
    settings: Settings,
    form: FormConfig,
    *,
    clock: Clock,
    wait_seconds: float,
    poll_seconds: float = 2.0,
) -> SendTestReport:
    """Send, record, wait for the verdict (at most `wait_seconds`), and say what happened."""
    sid = new_submission_id()
    now = clock()
    email = marked_email(settings, form, sid, now)
    mailgun = settings.mailgun_api_key is not None
    via = (
        f"Mailgun ({settings.mailgun_domain} at {settings.mailgun_base_url})"
        if mailgun
        else f"the file transport ({settings.var_dir / 'mail'}; no RELAY_MAILGUN_API_KEY set)"
    )
    report = SendTestReport(sid, email.to, via, Verdict(True, ""))
    store = await Store.from_settings(settings, create=True)  # it writes the delivery log
    try:
        lease = timedelta(seconds=settings.dispatch_lease_seconds + wait_seconds)
        await store.write(insert_test_send(sid, form, now, lease))
        async with open_transport(settings, clock) as transport:
            started = time.monotonic()
            result = await transport.send(email)
            duration = int((time.monotonic() - started) * 1000)
        attempt = _attempt(result, clock(), duration)
        await store.write(db.finish([_outcome(sid, result, attempt)]))
        if not isinstance(result, t.Accepted):
            kind = "retry" if isinstance(result, t.Retry) else "refused"
            report.verdict = refused(kind, result.error)
            return report
        if not mailgun:
            path = settings.var_dir / "mail" / f"{sid}.eml"
            report.verdict = Verdict(True, f"written to {path}; nothing left this machine")
            return report
        report.steps.append(f"accepted by Mailgun as {result.message_id}")
        report.verdict = await _wait(
            store, settings, sid, clock, wait_seconds, poll_seconds, report
        )
        return report
    finally:
        await store.close()


async def _wait(
    store: Store,
    settings: Settings,
    sid: str,
    clock: Clock,
    wait_seconds: float,
    poll_seconds: float,
    report: SendTestReport,
) -> Verdict:
    """Until the row is final (webhooks, or the Logs API asked here) or `wait_seconds` pass."""
    deadline = time.monotonic() + wait_seconds
    logs = MailgunLogs(settings, clock=clock) if settings.mailgun_read_key is not None else None
    since = clock() - SLACK
    try:
        while True:
            if logs is not None:
                try:
                    answer = await logs.events_for(sid, start=since, end=clock())
                    for event in answer.events:
                        await store.write(record_event(event, clock(), source="sync"))
                except MailgunLogsError as exc:
                    report.steps.append(f"Logs API: {exc}")
                    await logs.aclose()
                    logs = None
            row = await store.read(get_delivery(sid))
            state = row.state if row is not None else states.UNKNOWN
            left = deadline - time.monotonic()
            if state in states.FINAL or left <= 0:
                description = await store.read(last_event_description(sid))
                last_error = row.last_error if row is not None else None
                return outcome(sid, state, description=description, last_error=last_error)
            await asyncio.sleep(min(poll_seconds, left))
    finally:
        if logs is not None:
            await logs.aclose()
