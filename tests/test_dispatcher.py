"""The dispatcher on a real SQLite store, a FakeTransport and a fake clock: no test sleeps."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from typing import Any

import pytest

from relay import states
from relay.config import load_forms
from relay.deliver.delivery import options_for, renderer_for
from relay.deliver.dispatcher import Dispatcher
from relay.mail.transport import Accepted, CredentialsRejected, Failed, Retry, SendResult
from relay.store import dispatch as db
from tests.fakes import FakeTransport
from tests.helpers import Outbox

pytestmark = pytest.mark.anyio

CANARIES = ("Zoé Canari", "zoe.canari@example.org", "+33699887766", "Canari SARL", "secret plan")


def make(
    outbox: Any,
    transport: Any,
    clock: Any,
    *,
    lookup: Any = None,
    owner: str | None = None,
    **overrides: Any,
) -> Dispatcher:
    settings = outbox.settings.model_copy(update=overrides) if overrides else outbox.settings
    return Dispatcher(
        outbox.store,
        transport,
        renderer_for(settings),
        forms=load_forms(settings.effective_forms_file),
        keyring=outbox.keyring,
        clock=clock,
        lookup=lookup,
        options=options_for(settings),
        owner=owner,
        rand=lambda: 1.0,
    )


@pytest.fixture(name="outbox")
async def fixture_outbox(settings):
    box = await Outbox.open(settings)
    yield box
    await box.close()


async def test_accepted_send_records_the_message_id_and_one_attempt(outbox, clock):
    """A 200 makes the row `accepted` with Mailgun's id; the attempt is in the delivery log."""
    sid = await outbox.add(clock.now)
    transport = FakeTransport([Accepted("<mg-1@mg.example.com>")])
    assert await make(outbox, transport, clock).run_once() == 1
    row = await outbox.row(sid)
    assert (row["state"], row["provider_message_id"], row["attempts"]) == (
        states.ACCEPTED,
        "<mg-1@mg.example.com>",
        1,
    )
    assert row["lease_owner"] is None
    assert row["body_enc"] is not None  # kept until delivery is final
    [attempt] = await outbox.attempts(sid)
    assert (attempt["outcome"], attempt["http_status"], attempt["error"]) == ("accepted", 200, None)
    assert 0 <= attempt["duration_ms"] < 5000  # milliseconds of a fake send, not seconds or µs
    [email] = transport.sent
    assert email.to == ("sales@example.com",)
    assert email.subject == "Contact - Laboratoires Martin - Jeanne Martin"
    assert email.message_id == f"<{sid}@relay.localhost>"
    assert "jeanne.martin@example.fr" in email.reply_to


async def test_retry_after_is_honoured_then_the_row_is_sent(outbox, clock):
    """A 429 with a wait of 120 s makes the row due exactly 120 s later, not before."""
    sid = await outbox.add(clock.now)
    transport = FakeTransport([Retry(120, 429, "rate limited")])
    dispatcher = make(outbox, transport, clock)
    await dispatcher.run_once()
    row = await outbox.row(sid)
    assert (row["state"], row["next_attempt_at"]) == (
        states.RETRYING,
        clock.now + timedelta(seconds=120),
    )
    clock.now += timedelta(seconds=119)
    assert await dispatcher.run_once() == 0
    clock.now += timedelta(seconds=1)
    assert await dispatcher.run_once() == 1
    row = await outbox.row(sid)
    assert (row["state"], row["attempts"]) == (states.ACCEPTED, 2)
    outcomes = [(a["outcome"], a["http_status"]) for a in await outbox.attempts(sid)]
    assert outcomes == [("retry", 429), ("accepted", 200)]


async def test_without_retry_after_the_backoff_grows(outbox, clock):
    """Without a provider wait, attempt n waits up to base·2^(n-1) (jitter pinned to the top)."""
    sid = await outbox.add(clock.now)
    transport = FakeTransport([Retry(None, 503, "down")] * 3)
    dispatcher = make(outbox, transport, clock)
    waits = []
    for _ in range(3):
        start = clock.now
        await dispatcher.run_once()
        due = (await outbox.row(sid))["next_attempt_at"]
        waits.append((due - start).total_seconds())
        clock.now = due
    assert waits == [30, 60, 120]


async def test_transient_failures_end_dead_after_the_maximum_age(outbox, clock, caplog):
    """Past RELAY_DISPATCH_MAX_AGE_HOURS the row is `dead`, final, and an alert is logged."""
    sid = await outbox.add(clock.now)
    transport = FakeTransport([Retry(None, 500, "Mailgun server error (500)")] * 50)
    dispatcher = make(outbox, transport, clock, dispatch_max_age_hours=1)
    caplog.set_level(logging.INFO, logger="relay")
    for _ in range(50):
        if await dispatcher.run_once() == 0:
            row = await outbox.row(sid)
            if row["state"] == states.DEAD:
                break
            clock.now = row["next_attempt_at"]
    row = await outbox.row(sid)
    assert row["state"] == states.DEAD
    assert row["final_at"] is not None
    assert "gave up after" in row["last_error"]
    alerts = [r for r in caplog.records if r.levelno == logging.ERROR and "ALERT" in r.message]
    assert len(alerts) == 1
    assert (await outbox.attempts(sid))[-1]["outcome"] == "dead"


async def test_a_refused_message_is_failed_with_mailguns_reason(outbox, clock):
    """400/413: `failed` at once, final, with the reason; no retry."""
    sid = await outbox.add(clock.now)
    reason = "Mailgun refused the message (400: from parameter is missing)"
    dispatcher = make(outbox, FakeTransport([Failed(400, reason)]), clock)
    await dispatcher.run_once()
    row = await outbox.row(sid)
    assert (row["state"], row["last_error"], row["next_attempt_at"]) == (
        states.FAILED,
        reason,
        None,
    )
    assert row["final_at"] == clock.now
    clock.now += timedelta(days=1)
    assert await dispatcher.run_once() == 0


async def test_credentials_fault_pauses_dispatch_and_keeps_the_message_queued(outbox, clock):
    """401: the row goes back to `queued` (attempt not counted), dispatch pauses with back-off,
    one probe is sent when the pause ends, and success resumes everything."""
    first = await outbox.add(clock.now)
    others = [await outbox.add(clock.now) for _ in range(3)]
    transport = FakeTransport([CredentialsRejected(401, "Mailgun refused the API key (401)")])
    dispatcher = make(outbox, transport, clock, dispatch_concurrency=1)
    await dispatcher.run_once()
    row = await outbox.row(first)
    assert (row["state"], row["attempts"], row["first_attempt_at"]) == (states.QUEUED, 0, None)
    assert dispatcher.paused_reason == "Mailgun refused the API key (401)"
    assert dispatcher.paused_until == clock.now + timedelta(seconds=30)
    assert [a["outcome"] for a in await outbox.attempts(first)] == ["paused"]
    assert await dispatcher.run_once() == 0  # paused: nothing claimed
    clock.now += timedelta(seconds=30)
    assert await dispatcher.run_once() == 1  # the probe: one row only
    assert dispatcher.paused_reason is None
    dispatcher.options.concurrency = 10
    assert await dispatcher.run_once() == 3
    states_now = {(await outbox.row(s))["state"] for s in [first, *others]}
    assert states_now == {states.ACCEPTED}


async def test_repeated_credentials_faults_back_off(outbox, clock):
    """Each fault in a row doubles the pause, up to RELAY_DISPATCH_PAUSE_MAX_SECONDS."""
    await outbox.add(clock.now)
    transport = FakeTransport([CredentialsRejected(403, "forbidden")] * 10)
    dispatcher = make(outbox, transport, clock, dispatch_pause_max_seconds=100)
    pauses = []
    for _ in range(4):
        await dispatcher.run_once()
        assert dispatcher.paused_until is not None
        pauses.append((dispatcher.paused_until - clock.now).total_seconds())
        clock.now = dispatcher.paused_until
    assert pauses == [30, 60, 100, 100]


async def test_a_crash_between_claim_and_send_is_taken_over_after_the_lease(outbox, clock):
    """A worker that claimed and died: nobody touches the row until its lease expires; then
    another worker waits until Mailgun's logs can show a send the first may have made
    (RELAY_RESEND_LOOKUP_DELAY_SECONDS after the claim), asks the lookup, and sends once."""
    claimed_at = clock.now
    sid = await outbox.add(clock.now)
    lease = timedelta(seconds=outbox.settings.dispatch_lease_seconds)
    [claimed] = await outbox.store.write(db.claim("crashed-worker", clock.now, lease, 10))
    assert claimed.id == sid
    asked = []

    async def lookup(submission_id):
        asked.append(submission_id)
        return False

    transport = FakeTransport()
    survivor = make(outbox, transport, clock, lookup=lookup)
    assert await survivor.run_once() == 0  # leased to the crashed worker
    clock.now += lease
    assert await survivor.run_once() == 1  # taken over, and given back: too soon to ask
    ask_at = claimed_at + timedelta(seconds=outbox.settings.resend_lookup_delay_seconds)
    row = await outbox.row(sid)
    assert (row["state"], row["next_attempt_at"], row["attempts"], asked) == (
        states.RETRYING,
        ask_at,
        1,
        [],
    )
    clock.now = ask_at
    assert await survivor.run_once() == 1
    row = await outbox.row(sid)
    assert (row["state"], row["attempts"]) == (states.ACCEPTED, 2)
    assert asked == [sid]
    assert len(transport.sent) == 1


async def test_an_ambiguous_timeout_is_not_resent_when_the_lookup_finds_it(outbox, clock):
    """A read timeout may have reached Mailgun: before resending, the lookup is asked; True
    marks the row accepted without a second email."""
    sid = await outbox.add(clock.now)
    transport = FakeTransport([Retry(None, None, "no answer in time", ambiguous=True)])

    async def lookup(submission_id):
        return True

    dispatcher = make(outbox, transport, clock, lookup=lookup)
    await dispatcher.run_once()
    assert [a["outcome"] for a in await outbox.attempts(sid)] == ["ambiguous"]
    clock.now += timedelta(hours=1)
    await dispatcher.run_once()
    row = await outbox.row(sid)
    assert (row["state"], row["provider_message_id"]) == (
        states.ACCEPTED,
        f"<{sid}@relay.localhost>",
    )
    assert len(transport.sent) == 1
    assert [a["outcome"] for a in await outbox.attempts(sid)] == ["ambiguous", "found"]


@pytest.mark.parametrize("answer", [False, None, RuntimeError("lookup down")])
async def test_when_the_lookup_cannot_confirm_the_message_is_resent(outbox, clock, answer):
    """False, None (cannot tell) or a failing lookup: send again (our Message-Id lets the
    recipient side recognise the duplicate)."""
    sid = await outbox.add(clock.now)
    transport = FakeTransport([Retry(None, None, "connection dropped", ambiguous=True)])

    async def lookup(submission_id):
        if isinstance(answer, Exception):
            raise answer
        return answer

    dispatcher = make(outbox, transport, clock, lookup=lookup)
    await dispatcher.run_once()
    clock.now += timedelta(hours=1)
    await dispatcher.run_once()
    assert (await outbox.row(sid))["state"] == states.ACCEPTED
    assert [e.message_id for e in transport.sent] == [f"<{sid}@relay.localhost>"] * 2


async def test_local_problems_are_recorded_without_losing_the_row(outbox, clock, settings_factory):
    """A form removed from the forms file retries; a wiped body fails; both say why."""
    gone = await outbox.add(clock.now, form_id="removed")
    wiped = await outbox.add(clock.now)
    await outbox.store.write(db.wipe_body(wiped, clock.now))
    dispatcher = make(outbox, FakeTransport(), clock)
    await dispatcher.run_once()
    row = await outbox.row(gone)
    assert (row["state"], row["last_error"]) == (
        states.RETRYING,
        "form 'removed' is not in the forms file any more",
    )
    row = await outbox.row(wiped)
    assert (row["state"], row["last_error"]) == (
        states.FAILED,
        "the message body was already wiped; nothing to send",
    )


async def test_a_body_sealed_by_an_unknown_key_retries_with_a_clear_error(outbox, clock):
    """A key missing from RELAY_SECRET_KEY is a configuration fault: the row retries."""
    from sqlalchemy import update

    from relay.store.tables import submissions

    sid = await outbox.add(clock.now)

    def corrupt(conn):
        conn.execute(
            update(submissions).where(submissions.c.id == sid).values(body_enc=b"\x01" + b"0" * 40)
        )

    await outbox.store.write(corrupt)
    await make(outbox, FakeTransport(), clock).run_once()
    row = await outbox.row(sid)
    assert row["state"] == states.RETRYING
    assert "check RELAY_SECRET_KEY" in row["last_error"]


async def test_a_transport_that_raises_does_not_stop_delivery(outbox, clock):
    """An unexpected exception from a transport is an ambiguous retry, named by class only."""

    class Broken(FakeTransport):
        async def send(self, email):
            raise ValueError(email.reply_to)

    sid = await outbox.add(clock.now)
    await make(outbox, Broken(), clock).run_once()
    row = await outbox.row(sid)
    assert (row["state"], row["last_error"]) == (states.RETRYING, "transport raised ValueError")
    assert (await outbox.attempts(sid))[0]["outcome"] == "ambiguous"


async def test_stop_finishes_sends_in_flight(outbox, clock):
    """On stop, a send already under way may finish within the grace period and is recorded."""
    sid = await outbox.add(clock.now)
    transport = FakeTransport()
    transport.gate = asyncio.Event()
    dispatcher = make(outbox, transport, clock)
    await dispatcher.start()
    await transport.in_flight.wait()
    stopping = asyncio.create_task(dispatcher.stop())
    await dispatcher.stopping.wait()  # stop is under way, the send still in flight
    transport.gate.set()
    await stopping
    assert not dispatcher.running
    assert (await outbox.row(sid))["state"] == states.ACCEPTED


async def test_stop_releases_what_is_still_in_flight_after_the_grace(outbox, clock):
    """Past the grace period an in-flight send is cancelled and its row released (queued, the
    attempt not counted), marked interrupted so the next attempt checks before resending."""
    sid = await outbox.add(clock.now)
    waiting = await outbox.add(clock.now)
    transport = FakeTransport()
    transport.gate = asyncio.Event()
    dispatcher = make(
        outbox,
        transport,
        clock,
        dispatch_stop_grace_seconds=0.05,
        dispatch_concurrency=1,
    )
    await dispatcher.start()
    await transport.in_flight.wait()
    await dispatcher.stop()
    row = await outbox.row(sid)
    assert (row["state"], row["attempts"], row["lease_owner"]) == (states.QUEUED, 0, None)
    assert [a["outcome"] for a in await outbox.attempts(sid)] == ["interrupted"]
    assert (await outbox.row(waiting))["state"] == states.QUEUED  # never claimed
    [again] = await outbox.store.write(db.claim("next", clock.now, timedelta(minutes=2), 1))
    assert (again.id, again.maybe_sent) == (sid, True)


async def test_rows_claimed_ahead_are_given_back_at_stop(outbox, clock):
    """The loop claims `concurrency` rows ahead of its free slots (one claim, one transaction,
    for many sends); at stop, a row claimed but not started goes back to `queued` with
    nothing counted or logged, and the send in flight finishes."""
    started = await outbox.add(clock.now - timedelta(seconds=2))
    ahead = await outbox.add(clock.now - timedelta(seconds=1))
    untouched = await outbox.add(clock.now)
    transport = FakeTransport()
    transport.gate = asyncio.Event()
    dispatcher = make(outbox, transport, clock, dispatch_poll_seconds=0.01, dispatch_concurrency=1)
    await dispatcher.start()
    await transport.in_flight.wait()
    assert [(await outbox.row(s))["state"] for s in (started, ahead, untouched)] == [
        states.SENDING,
        states.SENDING,
        states.QUEUED,
    ]
    assert transport.started == 1
    stopping = asyncio.create_task(dispatcher.stop())
    await dispatcher.stopping.wait()  # stop is asked while the first send is in flight
    transport.gate.set()
    await stopping
    assert (await outbox.row(started))["state"] == states.ACCEPTED
    row = await outbox.row(ahead)
    assert (row["state"], row["attempts"], row["lease_owner"]) == (states.QUEUED, 0, None)
    assert row["first_attempt_at"] is None
    assert await outbox.attempts(ahead) == []
    assert [e.submission_id for e in transport.sent] == [started]


async def test_a_pause_gives_back_the_rows_claimed_ahead(outbox, clock):
    """After a credentials fault the rows claimed ahead are released at once (not held for
    the length of the pause, when another worker could send them)."""
    first = await outbox.add(clock.now - timedelta(seconds=1))
    ahead = [await outbox.add(clock.now) for _ in range(2)]
    transport = FakeTransport([CredentialsRejected(401, "Mailgun refused the API key (401)")])
    dispatcher = make(outbox, transport, clock, dispatch_poll_seconds=0.01, dispatch_concurrency=1)
    await dispatcher.start()
    try:
        async with asyncio.timeout(5):
            # queued at the start too: wait for the pause, then for the rows to be given back
            given_back = False
            while dispatcher.paused_reason is None or not given_back:
                await asyncio.sleep(0.01)
                rows = {(await outbox.row(s))["state"] for s in [first, *ahead]}
                given_back = rows == {states.QUEUED}
        assert dispatcher.paused_reason is not None
    finally:
        await dispatcher.stop()
    assert transport.started == 1
    assert [await outbox.attempts(s) for s in ahead] == [[], []]


async def test_the_loop_delivers_everything_due(outbox, clock):
    """Started in the background, the dispatcher empties the outbox by itself."""
    ids = [await outbox.add(clock.now) for _ in range(25)]
    transport = FakeTransport()
    dispatcher = make(outbox, transport, clock, dispatch_concurrency=4)
    await dispatcher.start()
    await dispatcher.drained()
    await dispatcher.stop()
    assert {(await outbox.row(s))["state"] for s in ids} == {states.ACCEPTED}
    assert sorted(e.submission_id for e in transport.sent) == sorted(ids)


async def test_drained_wakes_the_loop_instead_of_waiting_for_the_poll(outbox, clock):
    """drained() does not wait out the poll interval (60 s in tests): a row queued after the
    loop went idle is delivered by the time it returns; once stopped, it returns at once."""
    transport = FakeTransport()
    dispatcher = make(outbox, transport, clock)
    await dispatcher.start()
    await asyncio.wait_for(dispatcher.drained(), 5)
    sid = await outbox.add(clock.now)
    await asyncio.wait_for(dispatcher.drained(), 5)
    assert (await outbox.row(sid))["state"] == states.ACCEPTED
    await dispatcher.stop()
    await asyncio.wait_for(dispatcher.drained(), 1)
    assert [e.submission_id for e in transport.sent] == [sid]


async def test_bodies_are_wiped_once_delivery_is_final_or_after_the_bound(outbox, clock):
    """Accepted bodies are wiped RELAY_BODY_RETENTION_DAYS after acceptance; wiping one again
    finds nothing (wipe_body); the delivery log row stays."""
    sid = await outbox.add(clock.now)
    other = await outbox.add(clock.now)
    dispatcher = make(outbox, FakeTransport(), clock)
    await dispatcher.run_once()
    clock.now += timedelta(days=7) - timedelta(seconds=1)
    assert await outbox.store.write(db.wipe_bodies_due(clock.now, timedelta(days=7))) == 0
    clock.now += timedelta(seconds=1)
    assert await dispatcher.wipe_due() == 2
    row = await outbox.row(sid)
    assert (row["body_enc"], row["body_wiped_at"], row["state"]) == (None, clock.now, "accepted")
    assert await outbox.store.write(db.wipe_body(other, clock.now)) is False  # already wiped
    assert len(await outbox.attempts(sid)) == 1


async def test_a_delivered_body_is_kept_for_the_bounce_window_then_wiped(outbox, clock):
    """`delivered` (set by webhooks) keeps its body RELAY_DELIVERED_BODY_HOURS (24) after
    delivery, so a delayed bounce can still be retried; the next pass after that wipes it."""
    from relay.mail.events import ProviderEvent
    from relay.store.deliveries import record_event

    sid = await outbox.add(clock.now)
    dispatcher = make(outbox, FakeTransport(), clock)
    await dispatcher.run_once()
    delivered_at = clock.now
    # what the webhook endpoint records for Mailgun's `delivered` (its own store job)
    event = ProviderEvent("ev-1", "delivered", delivered_at, sid, None)
    recorded = await outbox.store.write(record_event(event, delivered_at, source="webhook"))
    assert recorded.state == states.DELIVERED
    clock.now = delivered_at + timedelta(hours=24) - timedelta(minutes=1)
    assert await dispatcher.wipe_due() == 0
    assert (await outbox.row(sid))["body_enc"] is not None
    clock.now = delivered_at + timedelta(hours=24)  # one wipe pass a minute at most
    assert await dispatcher.wipe_due() == 1
    assert ((await outbox.row(sid))["body_enc"], (await outbox.row(sid))["body_wiped_at"]) == (
        None,
        clock.now,
    )


async def test_a_delivered_row_without_a_delivery_time_is_wiped_at_once(outbox, clock):
    """A `delivered` row without final_at (written before the bounce window existed) has no
    window to wait for: the next wipe pass removes its body."""
    from sqlalchemy import update

    from relay.store.tables import submissions

    sid = await outbox.add(clock.now)
    await make(outbox, FakeTransport(), clock).run_once()

    def delivered(conn):
        # a direct write: such rows were left by versions before the bounce window (no
        # final_at); no current flow makes one
        conn.execute(
            update(submissions).where(submissions.c.id == sid).values(state=states.DELIVERED)
        )

    await outbox.store.write(delivered)
    hold = timedelta(hours=24)
    assert await outbox.store.write(db.wipe_bodies_due(clock.now, timedelta(days=7), hold)) == 1
    assert (await outbox.row(sid))["body_enc"] is None


@pytest.mark.parametrize("status", [500, 503, 504])
async def test_after_a_5xx_the_resend_waits_for_mailguns_logs_then_asks(outbox, clock, status):
    """A 5xx may hide a message that went out: with a read key (a lookup) the next attempt
    waits RELAY_RESEND_LOOKUP_DELAY_SECONDS for Mailgun's logs to show it, then asks first."""
    sid = await outbox.add(clock.now)
    transport = FakeTransport([Retry(None, status, f"Mailgun server error ({status})", True)])
    asked: list[str] = []

    async def lookup(submission_id):
        asked.append(submission_id)
        return True

    dispatcher = make(outbox, transport, clock, lookup=lookup, resend_lookup_delay_seconds=900)
    sent_at = clock.now
    await dispatcher.run_once()
    assert (await outbox.row(sid))["next_attempt_at"] == sent_at + timedelta(seconds=900)
    clock.now = sent_at + timedelta(seconds=899)
    assert await dispatcher.run_once() == 0
    clock.now = sent_at + timedelta(seconds=900)
    assert await dispatcher.run_once() == 1
    assert (asked, len(transport.sent), (await outbox.row(sid))["state"]) == (
        [sid],
        1,
        states.ACCEPTED,
    )


async def test_without_a_lookup_an_ambiguous_send_retries_on_the_backoff(outbox, clock):
    """Without a read key nothing can be asked, so there is nothing to wait for: backoff only."""
    sid = await outbox.add(clock.now)
    transport = FakeTransport([Retry(None, 503, "Mailgun server error (503)", True)])
    dispatcher = make(outbox, transport, clock, resend_lookup_delay_seconds=900)
    await dispatcher.run_once()
    assert (await outbox.row(sid))["next_attempt_at"] == clock.now + timedelta(seconds=30)


async def test_the_lookup_wait_never_passes_the_maximum_age(outbox, clock):
    """Waiting for the logs stops at the maximum age: one last try then, not none."""
    sid = await outbox.add(clock.now)
    transport = FakeTransport([Retry(None, 503, "Mailgun server error (503)", True)])

    async def lookup(submission_id):
        return False

    dispatcher = make(
        outbox,
        transport,
        clock,
        lookup=lookup,
        resend_lookup_delay_seconds=3600,
        dispatch_max_age_hours=0.5,
    )
    await dispatcher.run_once()
    assert (await outbox.row(sid))["next_attempt_at"] == clock.now + timedelta(minutes=30)


async def test_an_outcome_is_not_written_once_the_lease_is_lost(outbox, clock):
    """A worker too slow for its lease cannot overwrite the row another worker now owns."""
    sid = await outbox.add(clock.now)
    lease = timedelta(seconds=30)
    await outbox.store.write(db.claim("slow", clock.now, lease, 1))
    clock.now += lease
    await outbox.store.write(db.claim("fast", clock.now, lease, 1))
    attempt = db.Attempt(clock.now, db.ACCEPTED, 200, 5)
    assert await outbox.store.write(db.mark_accepted(sid, "slow", "<x>", attempt)) is False
    row = await outbox.row(sid)
    assert (row["state"], row["lease_owner"]) == (states.SENDING, "fast")
    assert await outbox.store.write(db.release(sid, "slow")) is False


async def test_no_personal_data_reaches_the_delivery_log_or_the_logs(outbox, clock, caplog):
    """A whole run with canary data: none of it in delivery_attempts, rows' errors or logs."""
    name, email, phone, company, message = CANARIES
    fields = {"name": name, "email": email, "phone": phone, "company": company, "message": message}
    caplog.set_level(logging.DEBUG, logger="relay")
    results: list[SendResult] = [
        Retry(None, 503, "Mailgun server error (503: Service Unavailable)"),
        Retry(None, None, "no answer from Mailgun in time (ReadTimeout)", ambiguous=True),
        CredentialsRejected(401, "Mailgun refused the API key (401: Forbidden)"),
        Failed(400, "Mailgun refused the message (400: to parameter is not a valid address)"),
    ]
    sids = [await outbox.add(clock.now, **fields) for _ in results]
    dispatcher = make(outbox, FakeTransport(results), clock, dispatch_concurrency=1)
    for _ in range(8):
        await dispatcher.run_once()
        clock.now += timedelta(hours=1)
    text = " ".join(r.getMessage() + str(r.__dict__) for r in caplog.records)
    for sid in sids:
        text += str(await outbox.attempts(sid))
        row = await outbox.row(sid)
        text += str({k: v for k, v in row.items() if k != "body_enc"})
    for canary in CANARIES:
        assert canary not in text
    assert "+33 6 99" not in text
    stored = b"".join(p.read_bytes() for p in outbox.settings.var_dir.glob("relay.db*"))
    for canary in CANARIES:
        assert canary.encode() not in stored  # the database files hold ciphertext only


async def test_a_bug_while_processing_one_row_does_not_stop_the_loop(outbox, clock, caplog):
    """An unexpected error for one row is logged by class; the row is retried after its lease
    and the loop keeps delivering the others."""

    class Exploding(FakeTransport):
        async def send(self, email):
            if email.submission_id == bad:
                self.started += 1
                return "not a SendResult"
            return await super().send(email)

    bad = await outbox.add(clock.now)
    good = await outbox.add(clock.now)
    transport = Exploding()
    dispatcher = make(outbox, transport, clock)
    await dispatcher.start()
    await dispatcher.drained()
    await dispatcher.stop()
    assert (await outbox.row(good))["state"] == states.ACCEPTED
    assert "delivery of one submission crashed" in caplog.text


async def test_a_store_that_cannot_write_loses_nothing(outbox, clock, caplog):
    """Claims, outcomes and wipes that cannot be written are logged; the row keeps its lease and
    is taken over later, so nothing is lost."""
    sid = await outbox.add(clock.now)

    class ClosingStore(FakeTransport):
        async def send(self, email):
            await outbox.store.writer.stop()  # the database goes away mid-send
            return await super().send(email)

    dispatcher = make(outbox, ClosingStore(), clock)
    assert await dispatcher.run_once() == 1
    assert "cannot record a delivery outcome" in caplog.text
    clock.now += timedelta(minutes=5)
    assert await dispatcher.run_once() == 0
    assert "cannot claim submissions" in caplog.text
    assert await dispatcher.wipe_due() == 0
    assert "cannot wipe delivered bodies" in caplog.text
    row = await outbox.row(sid)
    assert (row["state"], row["lease_owner"]) == (states.SENDING, dispatcher.owner)


async def test_an_outcome_after_a_lost_lease_is_dropped_and_logged(outbox, clock, caplog):
    """A send slower than its lease: another worker took the row, so this one writes nothing."""
    sid = await outbox.add(clock.now)
    transport = FakeTransport()
    transport.gate = asyncio.Event()
    slow = make(outbox, transport, clock, owner="slow")
    running = asyncio.create_task(slow.run_once())
    await transport.in_flight.wait()
    clock.now += timedelta(seconds=outbox.settings.dispatch_lease_seconds)
    await outbox.store.write(db.claim("fast", clock.now, timedelta(minutes=2), 1))
    transport.gate.set()
    await running
    assert "lease lost before the outcome was recorded" in caplog.text
    row = await outbox.row(sid)
    assert (row["state"], row["lease_owner"]) == (states.SENDING, "fast")
    # the only line is the takeover "fast" logged; the slow worker wrote nothing
    assert [a["outcome"] for a in await outbox.attempts(sid)] == [db.TAKEN_OVER]


async def test_claims_take_the_oldest_due_rows_across_states(outbox, clock):
    """Queued, retrying and lease-expired rows are claimed in the order they fell due, at most
    `limit` of them, and a row not due yet stays (each state is read off its index)."""
    from tests.test_dispatch_postgres import oldest_due_first

    await oldest_due_first(outbox, clock)
