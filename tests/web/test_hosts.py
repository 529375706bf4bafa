"""A foreign Host header never shapes an answer; production must know its hosts."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from relay.app import create_app
from relay.config import load_settings
from relay.errors import ConfigError
from tests.conftest import TEST_KEY
from tests.helpers import post_json


@pytest.fixture(name="hosted")
def fixture_hosted(settings_factory, clock):
    app = create_app(
        settings_factory(allowed_hosts="forms.example.com, *.example.org"), clock=clock
    )
    with TestClient(app, base_url="https://forms.example.com") as client:
        yield client


def test_an_allowed_host_builds_the_thank_you_link(hosted):
    """With RELAY_ALLOWED_HOSTS, an allowed Host is relay's own address in the answer."""
    assert post_json(hosted).json()["next"] == "https://forms.example.com/f/contact/thanks"


@pytest.mark.parametrize("host", ["evil.example", "forms.example.com.evil.example", "example.org"])
def test_a_foreign_host_is_refused_before_anything_is_done(hosted, host):
    """Any other Host gets 400 and nothing is accepted (no answer built from it)."""
    response = hosted.post(
        "/f/contact",
        json={"name": "Jo", "email": "jo@example.fr", "message": "m"},
        headers={"Host": host, "Accept": "application/json"},
    )
    assert response.status_code == 400
    assert host not in response.text


def test_a_wildcard_host_and_loopback_are_answered(hosted):
    """`*.example.org` covers its subdomains; loopback is always answered (health checks)."""
    assert hosted.get("/healthz", headers={"Host": "relay.example.org"}).status_code == 200
    assert hosted.get("/healthz", headers={"Host": "127.0.0.1:8000"}).status_code == 200


def test_production_refuses_to_start_without_hosts():
    """RELAY_ENVIRONMENT=production needs RELAY_PUBLIC_URL or RELAY_ALLOWED_HOSTS."""
    production = {
        "environment": "production",
        "secret_key": TEST_KEY,
        "mailgun_api_key": "key-1",
        "controller_name": "Biosera",
        "privacy_contact": "privacy@example.com",
    }
    with pytest.raises(ConfigError, match="RELAY_PUBLIC_URL or RELAY_ALLOWED_HOSTS"):
        load_settings(**production)
    assert load_settings(**production, allowed_hosts="a.fr")
    assert load_settings(**production, public_url="https://forms.example.com")


@pytest.mark.parametrize("value", ["forms.example.com/path", "a b", "https://x.fr", ""])
def test_a_malformed_allowed_host_is_a_config_error(value):
    """Each entry must be a host name; the error names the setting."""
    with pytest.raises(ConfigError, match="RELAY_ALLOWED_HOSTS"):
        load_settings(allowed_hosts=value)
