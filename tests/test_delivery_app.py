"""Delivery wired into the app (`relay serve`) and `relay worker`, through their real surfaces."""

from __future__ import annotations

import signal
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text
from starlette.testclient import TestClient

from relay.app import create_app
from relay.config import Settings, load_settings
from relay.errors import ConfigError
from tests.conftest import TEST_KEY
from tests.deliveries_helpers import drained
from tests.fakes import FakeTransport
from tests.helpers import ORIGIN, VALID, post_json
from tests.instances import Proc, bare_env


def state_of(settings: Settings, submission_id: str) -> str | None:
    engine = create_engine(f"sqlite:///{settings.var_dir / 'relay.db'}")
    try:
        with engine.connect() as conn:
            return conn.execute(
                text("SELECT state FROM submissions WHERE id = :id"), {"id": submission_id}
            ).scalar()
    finally:
        engine.dispose()


def test_serve_delivers_to_eml_files_without_a_mailgun_key(settings_factory, clock):
    """The `make run` default: the submission becomes var/mail/<id>.eml, the row `accepted`."""
    settings = settings_factory(dispatch_in_serve=True)
    with TestClient(create_app(settings, clock=clock), base_url="http://relay.test") as client:
        sid = post_json(client).json()["id"]
        drained(client)
    path = settings.var_dir / "mail" / f"{sid}.eml"
    assert b"Jeanne Martin" in path.read_bytes()
    assert state_of(settings, sid) == "accepted"


def test_a_given_transport_is_used_by_the_dispatcher_in_serve(settings_factory, clock):
    """The transport given to create_app is the one the in-process dispatcher sends the accepted
    submission through."""
    transport = FakeTransport()
    settings = settings_factory(dispatch_in_serve=True)
    app = create_app(settings, clock=clock, transport=transport)
    with TestClient(app, base_url="http://relay.test") as client:
        sid = post_json(client).json()["id"]
        drained(client)
    assert [e.submission_id for e in transport.sent] == [sid]


def test_serve_without_the_dispatcher_leaves_rows_queued(settings_factory, clock):
    """RELAY_DISPATCH_IN_SERVE=false: separate workers deliver; serve only accepts."""
    settings = settings_factory(dispatch_in_serve=False)
    with TestClient(create_app(settings, clock=clock), base_url="http://relay.test") as client:
        sid = post_json(client).json()["id"]
    assert state_of(settings, sid) == "queued"
    assert not (settings.var_dir / "mail").exists()


def test_a_mailgun_key_without_a_domain_stops_start_up(settings_factory):
    """A Mailgun API key without RELAY_MAILGUN_DOMAIN stops the app at start, saying so."""
    settings = settings_factory(mailgun_api_key="k" * 40, dispatch_in_serve=True)
    with pytest.raises(ConfigError, match="RELAY_MAILGUN_DOMAIN must be set"):
        create_app(settings)


def test_a_lease_shorter_than_two_requests_is_refused():
    """A lease that a slow request could outlive would allow a double send."""
    with pytest.raises(ConfigError, match="RELAY_DISPATCH_LEASE_SECONDS must be more than twice"):
        load_settings(dispatch_lease_seconds=20, mailgun_timeout_seconds=10)


# --- SIGTERM against real processes ---------------------------------------------------------


def _env(settings: Settings) -> dict[str, str]:
    return bare_env(
        RELAY_VAR_DIR=str(settings.var_dir),
        RELAY_FORMS_FILE=str(settings.forms_file),
        RELAY_SECRET_KEY=TEST_KEY,
        RELAY_LOG_FORMAT="json",
    )


def _delivered(proc: Proc, sid: str) -> None:
    """Wait for the dispatcher's own line saying `sid` was handed over (no polling of files)."""
    proc.wait_for(f'"submission_id": "{sid}", "form": "contact", "state": "accepted"', 20)


@pytest.mark.slow
def test_relay_worker_delivers_and_exits_cleanly_on_sigterm(settings_factory, tmp_path):
    """`relay worker` delivers what `relay serve` queued, then exits 0 on SIGTERM."""
    settings = settings_factory(dispatch_in_serve=False)
    # the real clock: the worker process has no fake one
    with TestClient(create_app(settings), base_url="http://relay.test") as client:
        sid = post_json(client).json()["id"]
    process = Proc("relay worker", ["worker"], _env(settings), tmp_path)
    try:
        _delivered(process, sid)
    finally:
        process.stop()
    err = process.output
    assert process.popen.returncode == 0, err
    assert '"dispatcher stopped"' in err
    assert '"worker exited cleanly"' in err
    assert (settings.var_dir / "mail" / f"{sid}.eml").exists()
    assert state_of(settings, sid) == "accepted"
    assert VALID["email"] not in err


@pytest.mark.slow
def test_relay_serve_delivers_and_drains_the_dispatcher_on_sigterm(settings, tmp_path):
    """`relay serve` accepts, delivers in the same process, and on SIGTERM stops the
    dispatcher and completes shutdown. (uvicorn then re-raises the signal it caught, so process
    managers see "terminated by SIGTERM" after a clean shutdown.)"""
    process = Proc("relay serve", ["serve", "--port", "0"], _env(settings), tmp_path)
    try:
        url = f"{process.url()}/f/contact"
        headers = {"Accept": "application/json", "Origin": ORIGIN}
        sid = httpx.post(url, json=VALID, headers=headers, timeout=5).json()["id"]
        _delivered(process, sid)
    finally:
        process.stop()
    err = process.output
    assert process.popen.returncode == -signal.SIGTERM, err
    assert (Path(settings.var_dir) / "mail" / f"{sid}.eml").exists()
    assert '"dispatcher stopped"' in err
    assert "Application shutdown complete" in err
    assert err.index('"dispatcher stopped"') < err.index("Application shutdown complete")


def test_the_dispatcher_is_in_the_lifespan_state(settings_factory, clock):
    """Other parts (readiness) find it under "dispatcher"; None when serve does not dispatch."""
    settings = settings_factory(dispatch_in_serve=True)
    app = create_app(settings, clock=clock, transport=FakeTransport())
    with TestClient(app) as client:
        dispatcher = client.app_state["dispatcher"]
        assert dispatcher.running
        assert dispatcher.paused_reason is None
    assert not dispatcher.running
    with TestClient(create_app(settings_factory(dispatch_in_serve=False), clock=clock)) as client:
        assert client.app_state["dispatcher"] is None
