"""The worker loop: claim due rows → render → send → record, with bounded concurrency.

Why this shape: delivery is at-least-once (docs/decisions/0001). A row is claimed with a lease
before it is sent and its outcome recorded after, so a crash anywhere leaves it claimable
again; a row whose earlier attempt may have reached Mailgun is checked with `lookup` (when
one is configured) before it is sent again, and carries our own Message-Id otherwise.

On stop (SIGTERM) the loop stops claiming, lets in-flight sends finish for a grace period,
and releases whatever is still in flight. After 401/403 (credentials, not the message) it
pauses with back-off; `paused_reason` says why, for logs and readiness.

What it is doing is observable without polling: `stopping` is set once stop is asked, and
`drained()` returns once the loop has found nothing more due, with nothing in flight.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import socket
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from relay import states
from relay.clock import Clock, utcnow
from relay.config import FormConfig
from relay.crypto import DecryptionFailed, KeyRing
from relay.deliver import backoff
from relay.deliver.outcomes import OutcomeWriter, log_attempt
from relay.deliver.pacing import Pacer, nobody
from relay.errors import RelayError, RenderError, StoreUnavailable
from relay.mail import transport as t
from relay.mail.render import Renderer, SubmissionView
from relay.metrics import Metrics
from relay.store import Store
from relay.store import dispatch as db
from relay.store.outbox import open_body
from relay.store.peers import PeerWatch

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

log = logging.getLogger("relay.dispatch")

Lookup = Callable[[str], Awaitable[bool | None]]
#: While the database is down, "cannot claim submissions" is logged at most this often.
CLAIM_LOG_EVERY = timedelta(minutes=1)


def worker_id() -> str:
    """Who holds a lease: host, process and a random suffix (two dispatchers in one process)."""
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


@dataclass
class Options:
    """The dispatcher's knobs (settings RELAY_DISPATCH_*, RELAY_BODY_RETENTION_DAYS,
    RELAY_DELIVERED_BODY_HOURS, RELAY_RESEND_LOOKUP_DELAY_SECONDS)."""

    concurrency: int = 20
    lease: timedelta = timedelta(seconds=120)
    poll_seconds: float = 1.0
    stop_grace_seconds: float = 10.0
    body_retention: timedelta = timedelta(days=7)
    delivered_hold: timedelta = timedelta(hours=24)
    lookup_delay: timedelta = timedelta(minutes=15)
    wipe_every: timedelta = timedelta(minutes=1)
    policy: backoff.Policy = field(default_factory=backoff.Policy)


def _resolve(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


def _reap(tasks: set[asyncio.Task[None]]) -> set[asyncio.Task[None]]:
    """Drop finished sends; a bug in one is logged (by class) and its row waits for its lease
    to expire, to be tried again, instead of stopping delivery."""
    for task in tasks:
        if task.done() and not task.cancelled() and task.exception() is not None:
            name = type(task.exception()).__name__
            log.error("delivery of one submission crashed", extra={"error": name})
    return {task for task in tasks if not task.done()}


class Dispatcher:
    """Delivers the outbox. `start()` runs the loop as a task; `stop()` drains it."""

    def __init__(
        self,
        store: Store,
        transport: t.Transport,
        renderer: Renderer,
        *,
        forms: dict[str, FormConfig],
        keyring: KeyRing,
        clock: Clock = utcnow,
        lookup: Lookup | None = None,
        options: Options | None = None,
        owner: str | None = None,
        rand: Callable[[], float] = random.random,
        metrics: Metrics | None = None,
        visitors: Callable[[], bool] = nobody,
    ) -> None:
        self.store = store
        self.transport = transport
        self.renderer = renderer
        self.forms = forms
        self.keyring = keyring
        self.clock = clock
        self.lookup = lookup
        self.options = options or Options()
        self.owner = owner or worker_id()
        self.rand = rand
        self.paused_reason: str | None = None
        self.paused_until: datetime | None = None
        self._faults = 0
        #: set once `stop()` is asked: the loop claims nothing more
        self.stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        # drained(): each call asks for a fresh pass (`_asked`); a pass that begins after the
        # ask and ends with nothing claimed and nothing in flight answers it (`_idle_upto`)
        self._asked = 0
        self._idle_upto = 0
        self._idle = asyncio.Event()
        self._last_wipe: datetime | None = None
        # rows being prepared or sent (not those only waiting for their outcome to be written)
        self._in_flight = 0
        self._woken = False  # a slot freed, stop or a pass was asked, since the loop looked
        self._waiter: asyncio.Future[None] | None = None
        self._outcomes = OutcomeWriter(store, busy=lambda: self._in_flight > 0)
        self._pacer = Pacer(visitors=visitors)
        self.metrics = metrics
        self._claim_failing_since: datetime | None = None
        self._claim_logged_at: datetime | None = None
        self._peers = PeerWatch(store, self.lookup is not None, self.options.concurrency)

    # --- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Run the loop in the background until `stop()`."""
        self.stopping.clear()
        await self._peers.check(self.clock())
        self._task = asyncio.create_task(self._run(), name="relay-dispatcher")
        log.info(
            "dispatcher started",
            extra={"worker": self.owner, "concurrency": self.options.concurrency},
        )

    async def stop(self) -> None:
        """Stop claiming; finish in-flight sends within the grace period, release the rest."""
        if self._task is None:
            return
        self.stopping.set()
        self._wake()
        await self._task
        self._task = None
        log.info("dispatcher stopped", extra={"worker": self.owner})

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def drained(self) -> None:
        """Until the running loop has delivered (or scheduled) everything due now.

        Wakes the loop at once (not at its next poll) and returns when a pass that began after
        this call found nothing to claim and nothing is in flight, or when the loop has stopped.
        Rows retrying later, or held back by a pause, are not waited for.
        """
        self._asked += 1
        asked = self._asked
        self._wake()
        while self._idle_upto < asked and self.running:
            assert self._task is not None  # noqa: S101 - running says so
            self._idle.clear()
            idle = asyncio.ensure_future(self._idle.wait())
            try:
                await asyncio.wait({idle, self._task}, return_when="FIRST_COMPLETED")
            finally:
                idle.cancel()

    async def run_once(self) -> int:
        """Claim what is due now and process it all; returns how many rows were handled.

        The loop's unit of work, exposed so tests (with a fake clock) drive it step by step.
        """
        if not self._may_claim():
            return 0
        claimed = await self._claim(self._limit(0))
        self._in_flight += len(claimed)
        await asyncio.gather(*(self._process(row) for row in claimed))
        await self.wipe_due()
        return len(claimed)

    # --- the loop --------------------------------------------------------------------------

    def _may_claim(self) -> bool:
        if self.stopping.is_set():
            return False
        return self.paused_until is None or self.clock() >= self.paused_until

    def _limit(self, in_flight: int) -> int:
        # While paused, one probe at a time finds out whether the configuration works again.
        if self.paused_reason is not None:
            return 0 if in_flight else 1
        return self.options.concurrency - in_flight

    async def _claim(self, limit: int) -> list[db.Claimed]:
        if limit <= 0:
            return []
        now = self.clock()
        self._outcomes.flush()  # the finished sends' outcomes go in the claim's transaction
        try:
            claimed = await self.store.write(db.claim(self.owner, now, self.options.lease, limit))
        except StoreUnavailable as exc:
            self._claims_failing(exc, now)
            return []
        if self._claim_failing_since is not None:
            down = int((now - self._claim_failing_since).total_seconds())
            log.warning("claims work again", extra={"after_seconds": down})
            self._claim_failing_since = self._claim_logged_at = None
        for row in claimed:
            if row.taken_over_from is not None:
                self._taken_over(row)
        return claimed

    def _claims_failing(self, exc: StoreUnavailable, now: datetime) -> None:
        """Log a database outage when it starts, then once a minute: not at every poll."""
        if self._claim_failing_since is None:
            self._claim_failing_since = now
        if self._claim_logged_at is not None and now - self._claim_logged_at < CLAIM_LOG_EVERY:
            return
        self._claim_logged_at = now
        down = int((now - self._claim_failing_since).total_seconds())
        log.error(
            "cannot claim submissions", extra={"error": str(exc), "failing_for_seconds": down}
        )

    def _taken_over(self, row: db.Claimed) -> None:
        """A crashed (or stalled) worker's send is ours now: say so; it is on the timeline."""
        if self.metrics is not None:
            self.metrics.lease_takeovers.inc()
        log.warning(
            "took over a send whose lease expired",
            extra={
                "submission_id": row.id,
                "previous_worker": row.taken_over_from,
                "lookup": self.lookup is not None,
            },
        )

    async def _run(self) -> None:
        """Claim a batch ahead of the free slots and start rows as slots free up.

        Why ahead: sends end one by one (each at its own Mailgun latency), so claiming only
        for the slots just freed meant claims of a few rows, each a transaction (a commit
        costs as much CPU as rendering a message). With up to `concurrency` rows claimed
        ahead in `ready`, a claim takes about twenty rows, and the outcomes written meanwhile
        share its transaction. A row waits in `ready` at most until a slot frees (one send),
        well inside its lease; on pause or stop the rows not started are given back.
        """
        tasks: set[asyncio.Task[None]] = set()
        ready: deque[db.Claimed] = deque()
        try:
            while not self.stopping.is_set():
                serving = self._asked  # the drained() calls this pass can answer
                self._woken = False  # what happens from here on ends the wait below
                if self.paused_reason is not None and ready:
                    await self._give_back(ready)
                free = self._limit(self._in_flight) if self._may_claim() else 0
                claimed: list[db.Claimed] = []
                if free > len(ready):
                    ahead = self.options.concurrency if self.paused_reason is None else 0
                    claimed = await self._claim(free - len(ready) + ahead)
                    ready.extend(claimed)
                while free > 0 and ready:
                    admitted = await self._pacer.admit()  # requests on this loop go first
                    if not self._may_claim():
                        break  # stopping, or paused meanwhile: `ready` is given back
                    for _ in range(min(admitted, free, len(ready))):
                        self._in_flight += 1
                        free -= 1
                        task = asyncio.create_task(self._paced(ready.popleft()))
                        task.add_done_callback(self._row_done)
                        tasks.add(task)
                await self.wipe_due()
                await self._peers.check(self.clock())
                tasks = _reap(tasks)
                if not claimed and not ready and not tasks:
                    self._idle_upto = serving
                    self._idle.set()
                await self._wait()
        finally:
            await self._give_back(ready)
            await self._drain(tasks)

    async def _paced(self, row: db.Claimed) -> None:
        await self._pacer.metered(self._process(row))

    def _row_done(self, _task: asyncio.Task[None]) -> None:
        """A row is settled (its outcome written): a drained() waiting may be answered."""
        if self._idle_upto < self._asked:
            self._wake()

    async def _give_back(self, ready: deque[db.Claimed]) -> None:
        """Release rows claimed ahead but not started: due again at once, no attempt counted."""
        rows = list(ready)
        ready.clear()
        await asyncio.gather(*(self._release(row, None) for row in rows))

    async def _wait(self) -> None:
        """Until a send finishes, stop or a pass is asked, or the poll interval (or pause) runs
        out."""
        timeout = self.options.poll_seconds
        if self.paused_until is not None:
            remaining = (self.paused_until - self.clock()).total_seconds()
            timeout = max(0.0, min(timeout, remaining))
        if self._woken or self.stopping.is_set():
            return
        loop = asyncio.get_running_loop()
        self._waiter = waiter = loop.create_future()
        timer = loop.call_later(timeout, _resolve, waiter)
        try:
            await waiter
        finally:
            timer.cancel()
            self._waiter = None

    def _wake(self) -> None:
        """A slot is free, or stop or a pass was asked: the loop's wait ends."""
        self._woken = True
        if self._waiter is not None:
            _resolve(self._waiter)

    async def _drain(self, tasks: set[asyncio.Task[None]]) -> None:
        pending = {task for task in tasks if not task.done()}
        if pending:
            _, pending = await asyncio.wait(pending, timeout=self.options.stop_grace_seconds)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
            log.warning("released in-flight submissions at stop", extra={"count": len(pending)})

    async def wipe_due(self) -> int:
        """Wipe bodies whose delivery is settled (at most once per `wipe_every`): delivered
        ones once the bounce window has passed, accepted ones past the body bound."""
        now = self.clock()
        if self._last_wipe is not None and now - self._last_wipe < self.options.wipe_every:
            return 0
        self._last_wipe = now
        try:
            wiped = await self.store.write(
                db.wipe_bodies_due(now, self.options.body_retention, self.options.delivered_hold)
            )
        except StoreUnavailable as exc:
            log.error("cannot wipe delivered bodies", extra={"error": str(exc)})  # noqa: TRY400 - no SQL in logs
            return 0
        if wiped:
            log.info("message bodies wiped after delivery", extra={"count": wiped})
        return wiped

    # --- one row ---------------------------------------------------------------------------

    async def _process(self, row: db.Claimed) -> None:
        """One claimed row, counted in `_in_flight` by the caller until its send is over: its
        slot is free while its outcome waits to be written with others."""
        sending = False
        slot_freed = False
        try:
            if row.maybe_sent and await self._too_soon_to_ask(row):
                return
            if row.maybe_sent and await self._already_there(row):
                return
            email = self._prepare(row)
            if isinstance(email, t.RenderedEmail):
                started = time.monotonic()
                sending = True
                result = await self._send(email)
                sending = False
                duration = int((time.monotonic() - started) * 1000)
            else:
                result, duration = email, None
            self._free_slot()
            slot_freed = True
            await self._settle(row, result, duration)
        except asyncio.CancelledError:
            outcome = db.INTERRUPTED if sending else None
            await asyncio.shield(self._release(row, outcome))
            raise
        finally:
            if not slot_freed:
                self._free_slot()

    def _free_slot(self) -> None:
        self._in_flight -= 1
        self._wake()

    async def _too_soon_to_ask(self, row: db.Claimed) -> bool:
        """A send that may have reached Mailgun began less than `lookup_delay` ago (a worker
        stopped or crashed mid-send): its logs may not show it yet, so asking now could
        wrongly answer "not there". Give the row back, due once the logs have caught up."""
        if self.lookup is None or row.maybe_sent_at is None:
            return False
        ask_at = row.maybe_sent_at + self.options.lookup_delay
        if self.clock() >= ask_at:
            return False
        # a takeover is already on the timeline (dated when the lost send began), so the next
        # claim finds it and still asks
        await self._write(db.release(row.id, self.owner, None, not_before=ask_at), row)
        return True

    async def _already_there(self, row: db.Claimed) -> bool:
        """Ask the lookup whether the provider already has this message (never raises)."""
        if self.lookup is None:
            return False
        try:
            found = await self.lookup(row.id)
        except Exception as exc:  # noqa: BLE001 - another module's lookup; cannot tell = resend
            log.warning("delivery lookup failed", extra={"error": type(exc).__name__})
            return False
        if found is not True:
            return False
        now = self.clock()
        attempt = db.Attempt(now, db.FOUND, error="earlier attempt found at the provider")
        message_id = self.renderer.message_id(row.id)
        if await self._record(db.accepted(row.id, self.owner, message_id, attempt), row):
            log_attempt(row, states.ACCEPTED, attempt)
        return True

    def _prepare(self, row: db.Claimed) -> t.RenderedEmail | t.Retry | t.Failed:
        """Decrypt and render; a local problem becomes a result, worded without the data."""
        form = self.forms.get(row.form_id)
        if form is None:
            return t.Retry(None, None, f"form {row.form_id!r} is not in the forms file any more")
        if row.body_enc is None:
            return t.Failed(None, "the message body was already wiped; nothing to send")
        try:
            fields = open_body(self.keyring, row.id, row.body_enc)
        except DecryptionFailed as exc:
            return t.Retry(None, None, f"cannot decrypt the body ({exc}); check RELAY_SECRET_KEY")
        except (ValueError, TypeError):
            return t.Failed(None, "the decrypted body is not valid JSON")
        try:
            return self.renderer.render(view_of(row, fields), form)
        except RenderError as exc:
            return t.Retry(None, None, str(exc))

    async def _send(self, email: t.RenderedEmail) -> t.SendResult:
        try:
            return await self.transport.send(email)
        except RelayError as exc:
            return t.Retry(None, None, f"transport error ({type(exc).__name__})", ambiguous=True)
        except Exception as exc:  # noqa: BLE001 - a transport bug must not kill the loop
            name = type(exc).__name__
            log.error("transport raised", extra={"error": name})  # noqa: TRY400 - no payload in logs
            return t.Retry(None, None, f"transport raised {name}", ambiguous=True)

    async def _settle(self, row: db.Claimed, result: t.SendResult, duration: int | None) -> None:
        now = self.clock()
        status = None if isinstance(result, t.Accepted) else result.status
        if not isinstance(result, t.CredentialsRejected):
            self._resume()
        if isinstance(result, t.Accepted):
            attempt = db.Attempt(now, db.ACCEPTED, 200, duration)
            outcome = db.accepted(row.id, self.owner, result.message_id, attempt)
            if await self._record(outcome, row):
                log_attempt(row, states.ACCEPTED, attempt)
            return
        decision = backoff.decide(
            result,
            row.attempts,
            row.first_attempt_at,
            now,
            policy=self.options.policy,
            faults=self._faults + 1,
            rand=self.rand,
        )
        if isinstance(decision, backoff.Retry):
            ambiguous = isinstance(result, t.Retry) and result.ambiguous
            kind = db.AMBIGUOUS if ambiguous else db.RETRY
            at = self._not_before_logs_settle(decision.at, now, row) if ambiguous else decision.at
            attempt = db.Attempt(now, kind, status, duration, decision.error)
            if await self._record(db.retry(row.id, self.owner, at, attempt), row):
                log_attempt(row, states.RETRYING, attempt, next_attempt_at=at)
        elif isinstance(decision, backoff.Pause):
            # Pause before the row is released: else the loop may claim it again meanwhile.
            self._pause(decision)
            attempt = db.Attempt(now, db.PAUSED, status, duration, decision.error)
            if await self._write(db.release(row.id, self.owner, attempt), row):
                log_attempt(row, states.QUEUED, attempt)
        else:
            state = states.DEAD if isinstance(decision, backoff.Dead) else states.FAILED
            kind = db.DEAD if state == states.DEAD else db.FAILED
            attempt = db.Attempt(now, kind, status, duration, decision.error)
            if await self._record(db.final(row.id, self.owner, state, attempt), row):
                log_attempt(row, state, attempt)

    def _not_before_logs_settle(self, at: datetime, now: datetime, row: db.Claimed) -> datetime:
        """After a send that may have reached Mailgun (timeout, 5xx), the next attempt asks
        Mailgun's logs first; recent events take a while to show there, so with a lookup the
        retry waits at least `lookup_delay` (never past the maximum age)."""
        if self.lookup is None:
            return at
        deadline = row.first_attempt_at + self.options.policy.max_age
        return max(at, min(now + self.options.lookup_delay, deadline))

    def _pause(self, decision: backoff.Pause) -> None:
        now = self.clock()
        if self.paused_until is not None and now < self.paused_until:
            return  # already paused by another in-flight send: one fault, one back-off step
        self._faults += 1
        self.paused_reason = decision.error
        self.paused_until = decision.until
        log.error(
            "dispatch paused: configuration fault",
            extra={"error": decision.error, "until": decision.until.isoformat()},
        )

    def _resume(self) -> None:
        if self.paused_reason is None:
            return
        self.paused_reason = None
        self.paused_until = None
        self._faults = 0
        log.warning("dispatch resumed: the configuration works again")

    async def _release(self, row: db.Claimed, outcome: str | None) -> None:
        attempt = None
        if outcome is not None:
            attempt = db.Attempt(self.clock(), outcome, error="interrupted at shutdown")
        await self._write(db.release(row.id, self.owner, attempt), row)

    async def _record(self, outcome: db.Outcome, row: db.Claimed) -> bool:
        """Write an attempt's outcome, batched with others'; False if it was not written."""
        return await self._owned(self._outcomes.write(outcome), row)

    async def _write(self, job: Callable[[Connection], bool], row: db.Claimed) -> bool:
        return await self._owned(self.store.write(job), row)

    async def _owned(self, write: Awaitable[bool], row: db.Claimed) -> bool:
        try:
            owned = await write
        except StoreUnavailable as exc:
            # The lease will expire and another pass (or worker) takes the row over.
            log.error(  # noqa: TRY400 - no SQL in logs
                "cannot record a delivery outcome",
                extra={"submission_id": row.id, "error": str(exc)},
            )
            return False
        if not owned:
            log.warning(
                "lease lost before the outcome was recorded", extra={"submission_id": row.id}
            )
        return owned


def view_of(row: db.Claimed, fields: dict[str, Any]) -> SubmissionView:
    """What the templates render for a claimed row whose body opened to `fields`."""
    return SubmissionView.from_fields(
        fields,
        id=row.id,
        form_id=row.form_id,
        received_at=row.received_at,
        legal_basis=row.legal_basis,
        notice_version=row.notice_version,
        consent_given=row.consent_given,
        consent_wording_version=row.consent_wording_version,
    )
