"""A worker's own /healthz, /readyz and /metrics (`relay worker --http-port`): ready when it
can deliver; its pause, queue age and Mailgun figures visible (issue 14.2)."""

from __future__ import annotations

import asyncio
import socket
from datetime import timedelta

import httpx
import pytest

from relay.app import create_worker_app
from relay.deliver.delivery import running_worker
from relay.mail.transport import CredentialsRejected
from tests.conftest import invoke
from tests.fakes import FakeTransport
from tests.helpers import Outbox

REFUSED = "Mailgun refused the API key (401: Forbidden); check RELAY_MAILGUN_API_KEY"


@pytest.mark.anyio
async def test_a_worker_is_ready_when_it_can_deliver(settings_factory, clock):
    """Database reachable, dispatcher running, empty queue: 200, and /healthz and /metrics
    answer with the worker's own registry."""
    settings = settings_factory()
    async with running_worker(settings, clock, transport=FakeTransport()) as runtime:
        app = create_worker_app(runtime)
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app), base_url="http://worker"
        ) as http:
            ready = await http.get("/readyz")
            health = await http.get("/healthz")
            metrics = await http.get("/metrics")
    assert (ready.status_code, ready.json()["status"]) == (200, "ready")
    assert ready.json()["checks"]["dispatch"] == "running"
    assert health.json() == {"status": "ok"}
    assert "relay_dispatch_paused 0.0" in metrics.text


@pytest.mark.anyio
async def test_a_paused_worker_with_an_old_queue_is_not_ready(settings_factory, clock):
    """Mailgun refusing the key pauses dispatch: the worker's /readyz is 503 naming the pause
    (and, once the message is old, the queue's age); relay_dispatch_paused is 1."""
    settings = settings_factory()
    box = await Outbox.open(settings)
    await box.add(clock.now)
    await box.close()
    transport = FakeTransport([CredentialsRejected(401, REFUSED)] * 5)
    async with running_worker(settings, clock, transport=transport) as runtime:
        app = create_worker_app(runtime)
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app), base_url="http://worker"
        ) as http:
            await asyncio.wait_for(runtime.dispatcher.drained(), 10)
            paused = await http.get("/readyz")
            clock.now += timedelta(seconds=901)
            old = await http.get("/readyz")
            metrics = await http.get("/metrics")
    assert paused.status_code == 503
    assert paused.json()["reasons"] == [f"dispatch paused: {REFUSED}"]
    assert old.json()["reasons"] == [
        f"dispatch paused: {REFUSED}",
        "oldest queued message is 901 s old (limit 900 s)",
    ]
    assert "relay_dispatch_paused 1.0" in metrics.text
    assert "relay_queue_depth 1.0" in metrics.text


@pytest.mark.anyio
async def test_worker_metrics_need_the_token_when_one_is_set(settings_factory, clock):
    """RELAY_METRICS_TOKEN protects the worker's /metrics exactly like the web instance's."""
    settings = settings_factory(metrics_token="s3cret-token")
    async with running_worker(settings, clock, transport=FakeTransport()) as runtime:
        app = create_worker_app(runtime)
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app), base_url="http://worker"
        ) as http:
            refused = await http.get("/metrics")
            allowed = await http.get("/metrics", headers={"Authorization": "Bearer s3cret-token"})
    assert (refused.status_code, allowed.status_code) == (401, 200)


def test_worker_refuses_an_http_port_in_use(cli):
    """`relay worker --http-port` on a port already taken exits 1 at once, saying so."""
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        result = invoke(cli, "worker", "--http-port", str(port), expect=1)
    assert f"--http-port: cannot listen on 127.0.0.1:{port}" in result.output


@pytest.mark.anyio
async def test_a_worker_without_database_or_dispatcher_is_not_ready(settings_factory, clock):
    """A stopped dispatcher and an unreachable database each make the worker not ready."""
    settings = settings_factory()
    async with running_worker(settings, clock, transport=FakeTransport()) as runtime:
        app = create_worker_app(runtime)
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app), base_url="http://worker"
        ) as http:
            await runtime.dispatcher.stop()
            stopped = await http.get("/readyz")
            await runtime.store.engine.dispose()
            for path in settings.var_dir.glob("relay.db*"):
                path.unlink()
            (settings.var_dir / "relay.db").mkdir()  # not a database any more
            gone = await http.get("/readyz")
            (settings.var_dir / "relay.db").rmdir()
    assert (stopped.status_code, stopped.json()["reasons"]) == (503, ["dispatcher not running"])
    assert "database unreachable" in gone.json()["reasons"]
