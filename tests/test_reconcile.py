"""Reconciliation with Mailgun's EU Logs API (respx at the network edge)."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from typing import Any

import httpx
import pytest
import respx

from relay import states
from relay.mail.mailgun_logs import MailgunLogs, MailgunLogsError, logs_query
from relay.mail.reconcile import Reconciler, sync_deliveries
from relay.metrics import Metrics
from relay.store.deliveries import get_delivery
from tests.conftest import invoke
from tests.deliveries_helpers import DOMAIN, WEBHOOK_KEY, deliver, hook, read, store, submit
from tests.mailgun_fixtures import event as mailgun_event
from tests.mailgun_fixtures import logs_page, retarget

BASE = "https://api.eu.mailgun.net"
READ_KEY = "key-read-only-test"


@pytest.fixture(name="settings")
def fixture_settings(settings_factory: Any) -> Any:
    return settings_factory(
        mailgun_read_key=READ_KEY, mailgun_domain=DOMAIN, mailgun_webhook_signing_key=WEBHOOK_KEY
    )


def _item(event: str, sid: str, at: Any, **extra: Any) -> dict[str, Any]:
    return {
        "id": f"{event}-{sid}",
        "event": event,
        "@timestamp": at.isoformat(),
        "message": {"headers": {"message-id": f"{sid}@{DOMAIN}"}},
        **extra,
    }


def _page(items: list[dict[str, Any]], following: str | None = None) -> httpx.Response:
    return httpx.Response(200, json={"items": items, "pagination": {"next": following}})


def test_query_asks_for_our_message_id_without_brackets(clock):
    """The filter uses `<id>@<domain>` as Mailgun stores it; times are RFC 2822."""
    body = logs_query("sub-1234", DOMAIN, clock.now - timedelta(days=1), clock.now, "tok")
    assert body["filter"]["AND"][0]["values"] == [
        {"label": "sub-1234@mg.example.com", "value": "sub-1234@mg.example.com"}
    ]
    assert body["start"] == "Tue, 24 Nov 2026 09:30:00 +0000"
    assert body["pagination"] == {"sort": "timestamp:asc", "limit": 100, "token": "tok"}


def test_events_are_read_page_by_page(settings, clock):
    """Pages are followed through `pagination.next` until an empty page."""

    async def go() -> list[Any]:
        logs = MailgunLogs(settings, clock=clock)
        try:
            answer = await logs.events_for("s1", start=clock.now - timedelta(days=1), end=clock.now)
            return answer.events
        finally:
            await logs.aclose()

    with respx.mock(base_url=BASE, assert_all_called=True) as mg:
        route = mg.post("/v1/analytics/logs").mock(
            side_effect=[
                _page([_item("accepted", "s1", clock.now)], "t2"),
                _page([_item("delivered", "s1", clock.now), {"id": "broken"}], "t3"),
                _page([], "t4"),
            ]
        )
        events = asyncio.run(go())
    assert [e.event for e in events] == ["accepted", "delivered"]
    assert [e.submission_id for e in events] == ["s1", "s1"]
    assert route.call_count == 3
    second = json.loads(route.calls[1].request.content)
    assert second["pagination"]["token"] == "t2"
    assert route.calls[0].request.headers["authorization"].startswith("Basic ")


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (_page([_item("accepted", "s1", __import__("datetime").datetime(2026, 11, 25))]), True),
        (_page([]), False),
        (httpx.Response(500), None),
    ],
)
def test_has_message(settings, clock, answer, expected):
    """After an ambiguous send: True (Mailgun has it), False (send again), None (cannot tell)."""

    async def go() -> bool | None:
        logs = MailgunLogs(settings, clock=clock)
        try:
            return await logs.has_message("s1")
        finally:
            await logs.aclose()

    with respx.mock(base_url=BASE) as mg:
        mg.post("/v1/analytics/logs").mock(return_value=answer)
        assert asyncio.run(go()) is expected


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (
            httpx.Response(401),
            "Mailgun refused the read key (HTTP 401): check RELAY_MAILGUN_READ_KEY",
        ),
        (httpx.Response(404), "answered 404: check RELAY_MAILGUN_BASE_URL (EU host)"),
        (
            httpx.Response(400, json={"message": "unknown attribute message_id"}),
            "refused relay's message_id query (HTTP 400: unknown attribute message_id)",
        ),
        (
            httpx.Response(400, json={"message": "bad filter for a@b.example"}),
            "(HTTP 400: bad filter for <address>)",
        ),
        (httpx.Response(400, text="nope"), "(HTTP 400: no message)"),
        (httpx.Response(503), "answered HTTP 503; try again later"),
        (httpx.Response(200, text="<html>"), "something that is not JSON"),
        (httpx.Response(200, json=[1]), "an unexpected shape"),
        (httpx.ConnectTimeout("boom key-read-only-test"), "timed out"),
        (httpx.ConnectError("boom key-read-only-test"), "unreachable (ConnectError)"),
    ],
)
def test_errors_are_translated_without_payloads(settings, clock, answer, message):
    """Every failure becomes MailgunLogsError with a message to act on and no key or URL."""

    async def go() -> None:
        logs = MailgunLogs(settings, clock=clock)
        try:
            await logs.events_for("s1", start=clock.now, end=clock.now)
        finally:
            await logs.aclose()

    with respx.mock(base_url=BASE) as mg:
        mg.post("/v1/analytics/logs").mock(side_effect=[answer])
        with pytest.raises(MailgunLogsError) as caught:
            asyncio.run(go())
    assert message in str(caught.value)
    assert READ_KEY not in str(caught.value)
    assert "http" not in str(caught.value).replace("HTTP", "")


def test_client_needs_read_key_and_domain(settings_factory):
    """The Logs API client refuses to exist without RELAY_MAILGUN_READ_KEY and _DOMAIN."""
    with pytest.raises(MailgunLogsError, match="RELAY_MAILGUN_READ_KEY and RELAY_MAILGUN_DOMAIN"):
        MailgunLogs(settings_factory())


def _sync(client, settings, clock) -> Any:
    async def go() -> Any:
        logs = MailgunLogs(settings, clock=clock)
        try:
            return await sync_deliveries(store(client), logs, clock.now)
        finally:
            await logs.aclose()

    assert client.portal is not None
    return client.portal.call(go)


def test_sync_applies_events_and_marks_old_silence_unknown(client, settings, clock):
    """A delivered message found in the logs becomes delivered; one too old to be found, unknown."""
    now = clock.now
    clock.now = now - timedelta(days=4)
    old = submit(client)
    deliver(client)
    clock.now = now
    fresh = submit(client)
    deliver(client)
    queued = submit(client)
    clock.now += timedelta(hours=2)
    with respx.mock(base_url=BASE, assert_all_called=True) as mg:
        mg.post("/v1/analytics/logs").mock(
            side_effect=[
                _page([]),  # old: nothing any more
                _page([_item("accepted", fresh, clock.now), _item("delivered", fresh, clock.now)]),
                _page([]),
            ]
        )
        report = _sync(client, settings, clock)
    assert (report.checked, report.events, report.changed, report.unknown) == (
        2,
        2,
        {"delivered": 1},
        1,
    )
    assert read(client, get_delivery(fresh)).state == states.DELIVERED
    assert read(client, get_delivery(fresh)).body_present is True  # the bounce window
    assert read(client, get_delivery(old)).state == states.UNKNOWN
    assert read(client, get_delivery(queued)).state == states.QUEUED
    assert "marked unknown: 1" in report.summary()


def test_sync_is_idempotent(client, settings, clock):
    """Running sync twice over the same events records them once."""
    sid = submit(client)
    deliver(client)
    failed = _item("failed", sid, clock.now, severity="temporary", reason="greylisted")
    with respx.mock(base_url=BASE) as mg:
        mg.post("/v1/analytics/logs").mock(side_effect=lambda _request: _page([failed]))
        first = _sync(client, settings, clock)
        second = _sync(client, settings, clock)
    assert (first.events, second.events) == (1, 0)
    assert read(client, get_delivery(sid)).state == states.ACCEPTED


def test_sync_stops_at_the_first_mailgun_error(client, settings, clock):
    """A 401 from the Logs API stops the sync after that one call, and the report says the read key
    was refused."""
    for _ in range(2):
        submit(client)
    deliver(client)
    with respx.mock(base_url=BASE) as mg:
        route = mg.post("/v1/analytics/logs").mock(return_value=httpx.Response(401))
        report = _sync(client, settings, clock)
    assert route.call_count == 1
    assert report.error is not None
    assert "stopped: Mailgun refused the read key" in report.summary()


def test_cli_sync(cli, client, clock, monkeypatch):
    """`relay deliveries sync` runs one pass and prints what it did."""
    sid = submit(client)
    deliver(client)
    monkeypatch.setenv("RELAY_MAILGUN_READ_KEY", READ_KEY)
    monkeypatch.setenv("RELAY_MAILGUN_DOMAIN", DOMAIN)
    with respx.mock(base_url=BASE) as mg:
        mg.post("/v1/analytics/logs").mock(return_value=_page([_item("delivered", sid, clock.now)]))
        result = invoke(cli, "deliveries", "sync")
    assert (
        "checked 1 unconfirmed deliveries; 1 new events; now final or moved: 1 delivered"
        in result.output
    )
    with respx.mock(base_url=BASE) as mg:
        submit(client)
        deliver(client)
        mg.post("/v1/analytics/logs").mock(return_value=httpx.Response(503))
        failed = invoke(cli, "deliveries", "sync", expect=1)
    assert "sync stopped early" in failed.output


def test_cli_sync_without_settings(cli):
    """`deliveries sync` without the read key and domain exits 1 saying which settings it needs."""
    result = invoke(cli, "deliveries", "sync", expect=1)
    assert "needs RELAY_MAILGUN_READ_KEY and RELAY_MAILGUN_DOMAIN" in result.output


def test_reconciler_runs_now_and_stops(client, settings, settings_factory, clock):
    """The worker's periodic task runs a first pass at start (none without the read key), and
    stop() returns once it ends."""

    async def go() -> Any:
        off = Reconciler(store(client), settings_factory(), clock=clock)
        await off.start()
        assert off.last_report is None
        await off.stop()
        on = Reconciler(store(client), settings, clock=clock)
        await on.start()
        await asyncio.wait_for(on.ran.wait(), timeout=5)
        await on.stop()
        return on.last_report

    with respx.mock(base_url=BASE) as mg:
        mg.post("/v1/analytics/logs").mock(return_value=_page([]))
        submit(client)
        deliver(client)
        assert client.portal is not None
        report = client.portal.call(go)
    assert report is not None
    assert report.checked == 1


# --- Items are matched on their own message-id (Mailgun's payloads: tests/fixtures/mailgun) ---


def _unrelated_page() -> dict[str, Any]:
    """A Logs API answer about other messages: Mailgun's documented delivered and permanent
    failure events and the OpenAPI's own Logs item, none of them ours."""
    return logs_page(
        [
            mailgun_event("event_delivered.json"),
            mailgun_event("event_failed_permanent.json"),
            mailgun_event("logs_api_response.json"),
        ]
    )


def test_a_page_of_unrelated_items_moves_nothing_and_is_reported(client, settings, clock):
    """If Mailgun ignores the message_id filter, its items (a `delivered` among them) are not
    taken as ours: no event is recorded, no state moves, and the run says so."""
    sid = submit(client)
    deliver(client)
    metrics = Metrics()

    async def go() -> Any:
        logs = MailgunLogs(settings, clock=clock, metrics=metrics)
        try:
            return await sync_deliveries(store(client), logs, clock.now, settings=settings)
        finally:
            await logs.aclose()

    with respx.mock(base_url=BASE) as mg:
        mg.post("/v1/analytics/logs").mock(return_value=httpx.Response(200, json=_unrelated_page()))
        assert client.portal is not None
        report = client.portal.call(go)
    assert (report.events, report.changed, report.foreign) == (0, {}, 3)
    assert "its message_id filter was refused or ignored" in report.summary()
    row = read(client, get_delivery(sid))
    assert (row.state, row.last_event) == (states.ACCEPTED, None)
    assert b"relay_logs_foreign_items_total 3.0" in metrics.exposition()


def test_an_unrelated_page_cannot_stop_a_resend(settings, clock):
    """Before a resend, a page of other messages' events proves nothing: None (cannot tell),
    never True."""

    async def go() -> bool | None:
        logs = MailgunLogs(settings, clock=clock)
        try:
            return await logs.has_message("s1")
        finally:
            await logs.aclose()

    with respx.mock(base_url=BASE) as mg:
        mg.post("/v1/analytics/logs").mock(return_value=httpx.Response(200, json=_unrelated_page()))
        assert asyncio.run(go()) is None


@pytest.mark.parametrize(
    ("variables", "mine"),
    [
        ({"submission_id": "s1"}, True),
        ({}, True),
        ({"submission_id": "s2"}, False),
    ],
)
def test_an_item_is_ours_only_if_its_message_id_and_variable_agree(
    settings, clock, variables, mine
):
    """Our message-id with our (or no) `submission_id` variable is ours; a different variable
    is not, whatever the message-id says."""
    item = retarget(mailgun_event("event_delivered.json"), "s1", clock.now)
    item["user-variables"] = variables

    async def go() -> Any:
        logs = MailgunLogs(settings, clock=clock)
        try:
            return await logs.events_for("s1", start=clock.now, end=clock.now)
        finally:
            await logs.aclose()

    with respx.mock(base_url=BASE) as mg:
        mg.post("/v1/analytics/logs").mock(return_value=httpx.Response(200, json=logs_page([item])))
        answer = asyncio.run(go())
    assert (len(answer.events), answer.foreign) == ((1, 0) if mine else (0, 1))


def test_sync_finds_a_delayed_bounce_after_delivered(client, settings, clock):
    """A submission delivered within the bounce window is looked up again; Mailgun's delayed
    bounce in its logs makes it failed, with the reason, even if the webhook was lost."""
    sid = submit(client)
    deliver(client)
    delivered = retarget(mailgun_event("event_delivered.json"), sid, clock.now)
    bounce_at = clock.now + timedelta(hours=2)
    bounce = retarget(mailgun_event("event_failed_delayed_bounce.json"), sid, bounce_at)
    metrics = Metrics()

    async def go(now: Any) -> Any:
        logs = MailgunLogs(settings, clock=clock)
        try:
            return await sync_deliveries(
                store(client), logs, now, settings=settings, metrics=metrics
            )
        finally:
            await logs.aclose()

    assert client.portal is not None
    with respx.mock(base_url=BASE) as mg:
        mg.post("/v1/analytics/logs").mock(
            side_effect=[
                httpx.Response(200, json=logs_page([delivered])),
                httpx.Response(200, json=logs_page([delivered, bounce])),
            ]
        )
        first = client.portal.call(go, clock.now + timedelta(hours=1))
        second = client.portal.call(go, bounce_at + timedelta(hours=1))
    assert (first.changed, second.checked, second.changed) == ({"delivered": 1}, 1, {"failed": 1})
    row = read(client, get_delivery(sid))
    assert (row.state, row.retryable) == (states.FAILED, True)
    assert row.last_error is not None
    assert row.last_error.startswith("generic - 550 5.1.1")
    assert b'relay_delayed_bounces_total{source="sync"} 1.0' in metrics.exposition()


def test_delivered_submissions_past_the_bounce_window_are_not_looked_up(client, settings, clock):
    """Once RELAY_DELIVERED_BODY_HOURS have passed since delivery, sync leaves it alone."""
    sid = submit(client)
    deliver(client)
    hook(client, sid, "delivered", clock.now)
    clock.now += timedelta(hours=24, minutes=1)
    with respx.mock(base_url=BASE, assert_all_called=False) as mg:
        route = mg.post("/v1/analytics/logs").mock(return_value=httpx.Response(200, json={}))
        report = _sync(client, settings, clock)
    assert (report.checked, route.call_count) == (0, 0)
