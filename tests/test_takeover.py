"""A crashed worker's in-flight sends: the takeover is on the submission's timeline, counted,
and several dispatchers without a read key are warned about (issue 14.5)."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from typing import Any

import pytest

from relay.deliver.delivery import build_dispatcher
from relay.metrics import Metrics
from relay.store import Store
from relay.store import dispatch as db
from relay.store.peers import application_name
from tests.conftest import invoke
from tests.fakes import FakeTransport
from tests.helpers import Outbox
from tests.test_dispatcher import make

LEASE = timedelta(seconds=120)


def test_a_takeover_is_on_the_timeline_and_counted(settings, clock, cli):
    """A row claimed by a worker that died is taken over after its lease: `deliveries show`
    lists the lost attempt (who held it, when it was taken over, that it may have been sent)
    and the new one, so it
    shows as many attempts as `deliveries` counts; relay_lease_takeovers_total counts it."""
    metrics = Metrics()

    async def crash_and_take_over() -> str:
        box = await Outbox.open(settings)
        try:
            sid = await box.add(clock.now)
            await box.store.write(db.claim("crashed-worker", clock.now, LEASE, 5))
            clock.now += LEASE
            survivor = make(box, FakeTransport(), clock, owner="survivor")
            survivor.metrics = metrics
            assert await survivor.run_once() == 1
            return sid
        finally:
            await box.close()

    sid = asyncio.run(crash_and_take_over())
    shown = invoke(cli, "deliveries", "show", sid)
    listed = invoke(cli, "deliveries")
    steps = [line.split("\t") for line in shown.output.splitlines() if "\tattempt\t" in line]
    assert [step[2] for step in steps] == ["taken_over", "accepted"]
    assert steps[0][3] == (
        "lease of crashed-worker expired mid-send (crashed or stalled); taken over by "
        "survivor at 2026-11-25 09:32:00Z: the message may have reached Mailgun already"
    )
    assert listed.output.splitlines()[1].split("\t")[4] == "2"
    assert "relay_lease_takeovers_total 1.0" in metrics.exposition().decode()


@pytest.mark.anyio
async def test_a_taken_over_row_asks_the_lookup_before_sending_again(settings, clock):
    """With a read key (a lookup), the survivor waits until Mailgun's logs can show the lost
    send, asks them, and does not resend."""
    box = await Outbox.open(settings)
    try:
        sid = await box.add(clock.now)
        await box.store.write(db.claim("crashed-worker", clock.now, LEASE, 5))
        clock.now += LEASE
        transport = FakeTransport()

        async def found(_submission_id: str) -> bool:
            return True

        survivor = make(box, transport, clock, lookup=found, owner="survivor")
        await survivor.run_once()  # too soon: Mailgun's logs may not show the lost send yet
        clock.now += timedelta(seconds=settings.resend_lookup_delay_seconds)
        await survivor.run_once()
        outcomes = [a["outcome"] for a in await box.attempts(sid)]
    finally:
        await box.close()
    assert transport.sent == []
    assert outcomes == ["taken_over", "found"]


@pytest.mark.anyio
@pytest.mark.postgres
async def test_several_dispatchers_without_a_read_key_are_warned_about(
    settings, clock, postgres_url, caplog
):
    """On PostgreSQL, a dispatcher without RELAY_MAILGUN_READ_KEY that sees another
    dispatching process logs a warning naming the risk and the fix; alone, it does not."""
    caplog.set_level(logging.WARNING, logger="relay.dispatch")
    migrator = await Store.open(postgres_url, migrate=True)
    await migrator.close()
    stores: list[Any] = []
    try:
        for name in ("relay dispatcher other-host:1", application_name(dispatching=True)):
            store = await Store.open(postgres_url, application_name=name)
            stores.append(store)
        alone = _dispatcher(settings, stores[1], clock)
        await alone.start()
        await alone.stop()
        assert "several dispatchers run on this database" not in caplog.text
        await stores[0].read(lambda conn: conn.exec_driver_sql("SELECT 1").scalar())  # a session
        await stores[1].read(lambda conn: conn.exec_driver_sql("SELECT 1").scalar())
        crowded = _dispatcher(settings, stores[1], clock)
        await crowded.start()
        await crowded.stop()
    finally:
        for store in stores:
            await store.close()
    assert "several dispatchers run on this database without RELAY_MAILGUN_READ_KEY" in (
        caplog.text
    )


def _dispatcher(settings: Any, store: Store, clock: Any) -> Any:
    from relay.config import load_forms
    from relay.keyfile import load_keyring

    return build_dispatcher(
        settings,
        store,
        FakeTransport(),
        forms=load_forms(settings.effective_forms_file),
        keyring=load_keyring(settings, create=True),
        clock=clock,
    )
