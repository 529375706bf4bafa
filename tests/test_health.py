"""GET /healthz, /readyz and /metrics."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from starlette.testclient import TestClient

from relay.app import create_app
from tests.deliveries_helpers import store, submit
from tests.helpers import post_json


def test_healthz_says_the_process_is_alive(client):
    """/healthz answers 200 {"status": "ok"}."""
    response = client.get("/healthz")
    assert (response.status_code, response.json()) == (200, {"status": "ok"})


def test_ready_with_an_empty_queue(settings_factory, clock):
    """Database reachable, file transport, the dispatcher running, nothing waiting: ready."""
    settings = settings_factory(dispatch_in_serve=True)
    with TestClient(create_app(settings, clock=clock)) as client:
        response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ready",
        "checks": {
            "database": True,
            "transport": "file",
            "dispatch": "running",
            "oldest_queued_age_seconds": 0.0,
            "queue_depth": 0,
        },
    }


def test_a_web_instance_stays_ready_when_the_queue_is_old(client, clock):
    """A message waiting too long is a delivery problem, not an accepting one: the web
    instance stays ready (a load balancer keeps it) and reports it as a warning."""
    submit(client)
    clock.now += timedelta(seconds=901)
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json()["warnings"] == ["oldest queued message is 901 s old (limit 900 s)"]


@dataclass
class PausedDispatcher:
    paused_reason: str | None


def test_a_web_instance_reports_a_paused_dispatch_as_a_warning(client):
    """The in-process dispatcher's pause (e.g. Mailgun refused the key) is reported, in the
    body and in relay_dispatch_paused, without taking the instance out of rotation."""
    client.app_state["dispatcher"] = PausedDispatcher("Mailgun answered 401: check the API key")
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json()["warnings"] == [
        "dispatch paused: Mailgun answered 401: check the API key"
    ]
    assert "relay_dispatch_paused 1.0" in client.get("/metrics").text
    client.app_state["dispatcher"] = PausedDispatcher(None)
    ready = client.get("/readyz")
    assert (ready.status_code, ready.json()["checks"]["dispatch"]) == (200, "running")
    assert "warnings" not in ready.json()
    assert "relay_dispatch_paused 0.0" in client.get("/metrics").text


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        (
            {"mailgun_api_key": "key-test"},
            "RELAY_MAILGUN_API_KEY is set but RELAY_MAILGUN_DOMAIN is not",
        ),
        (
            {"mailgun_domain": "mg.example.com"},
            "RELAY_MAILGUN_DOMAIN is set but RELAY_MAILGUN_API_KEY is not",
        ),
    ],
)
def test_a_web_only_instance_warns_about_half_a_transport(
    settings_factory, clock, overrides, reason
):
    """Mailgun needs both key and domain; a web-only instance (which sends nothing) stays
    ready and warns. (One that dispatches refuses to start, see below.)"""
    settings = settings_factory(dispatch_in_serve=False, **overrides)
    with TestClient(create_app(settings, clock=clock)) as client:
        response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json()["warnings"] == [f"transport not configured: {reason}"]
    assert response.json()["checks"]["dispatch"] == "not running here"


def test_serve_with_dispatch_refuses_half_a_mailgun_configuration(settings_factory, clock):
    """With the dispatcher in serve, a key without a domain stops start-up with a clear error."""
    from relay.errors import ConfigError

    with pytest.raises(ConfigError, match="RELAY_MAILGUN_DOMAIN must be set"):
        create_app(
            settings_factory(mailgun_api_key="key-test", dispatch_in_serve=True), clock=clock
        )


def test_ready_with_mailgun_configured(settings_factory, clock):
    """With Mailgun settings, /readyz is 200 and names Mailgun as the transport."""
    settings = settings_factory(mailgun_api_key="key-test", mailgun_domain="mg.example.com")
    with TestClient(create_app(settings, clock=clock)) as client:
        response = client.get("/readyz")
    assert (response.status_code, response.json()["checks"]["transport"]) == (200, "mailgun")


def test_not_ready_when_the_database_is_gone(client, settings):
    """A database that cannot answer makes the instance not ready (and metrics still answer)."""
    assert client.portal is not None
    client.portal.call(store(client).engine.dispose)
    for path in settings.var_dir.glob("relay.db*"):
        path.unlink()
    response = client.get("/readyz")
    assert response.status_code == 503
    assert "database unreachable" in response.json()["reasons"]
    assert client.get("/metrics").status_code == 200


def test_metrics_in_prometheus_format(client, clock):
    """Submissions by form and outcome, deliveries by state, queue depth and age, and the rest."""
    submit(client)
    post_json(client, email="not-an-email", expect=422)
    post_json(client, "nope", expect=404)
    clock.now += timedelta(seconds=30)
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    text = response.text
    for line in [
        'relay_submissions_total{form="contact",outcome="accepted"} 1.0',
        'relay_submissions_total{form="contact",outcome="invalid_fields"} 1.0',
        'relay_submissions_total{form="unknown",outcome="form_not_found"} 1.0',
        'relay_deliveries{state="queued"} 1.0',
        'relay_deliveries{state="delivered"} 0.0',
        "relay_queue_depth 1.0",
        "relay_queue_oldest_age_seconds 30.0",
        "# TYPE relay_mailgun_request_duration_seconds histogram",
        "# TYPE relay_webhook_events_total counter",
        "# TYPE relay_purged_total counter",
        "relay_dispatch_paused 0.0",
        "relay_lease_takeovers_total 0.0",
    ]:
        assert line in text


def test_each_app_has_its_own_registry(settings_factory, clock):
    """Two apps in one process do not share counters (no global registry)."""
    apps = [create_app(settings_factory(), clock=clock) for _ in range(2)]
    with TestClient(apps[0]) as first:
        submit(first)
    with TestClient(apps[1]) as second:
        text = second.get("/metrics").text
    assert 'outcome="accepted"' not in text


@pytest.fixture(name="token_client")
def fixture_token_client(settings_factory, clock) -> Any:
    with TestClient(create_app(settings_factory(metrics_token="s3cret-token"), clock=clock)) as c:
        yield c


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({}, 401),
        ({"Authorization": "Bearer wrong"}, 401),
        ({"Authorization": "Basic czNjcmV0LXRva2Vu"}, 401),
        ({"Authorization": "Bearer s3cret-token"}, 200),
    ],
)
def test_metrics_behind_a_bearer_token(token_client, headers, status):
    """With RELAY_METRICS_TOKEN set, /metrics needs exactly that bearer token."""
    response = token_client.get("/metrics", headers=headers)
    assert response.status_code == status
    if status == 401:
        assert response.headers["www-authenticate"] == 'Bearer realm="relay metrics"'


@pytest.mark.parametrize(
    ("method", "path", "kwargs"),
    [
        ("GET", "/healthz", {}),
        ("GET", "/readyz", {}),
        ("GET", "/metrics", {}),
        ("POST", "/webhooks/mailgun", {"json": {}}),
        ("GET", "/f/contact/thanks", {}),
    ],
)
def test_public_routes_never_set_or_read_cookies(client, method, path, kwargs):
    """K1: no Set-Cookie on public routes; a stray cookie changes nothing."""
    plain = client.request(method, path, **kwargs)
    client.cookies.set("tracker", "x")
    with_cookie = client.request(method, path, **kwargs)
    client.cookies.clear()
    assert "set-cookie" not in plain.headers
    assert (plain.status_code, plain.content) == (with_cookie.status_code, with_cookie.content)
