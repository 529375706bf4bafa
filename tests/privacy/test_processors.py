"""Processors as the policy names them: Mailgun EU over https in production, subjects without
personal data, the erasure report's reminders, withdrawal links and who to write to."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from relay.config import FormConfig, load_forms, load_settings
from relay.crypto import KeyRing
from relay.deliver.delivery import renderer_for
from relay.errors import ConfigError
from relay.mail.render import SubmissionView
from tests.conftest import TEST_KEY, invoke
from tests.helpers import VALID, post_json
from tests.privacy.support import at, export

EMAIL = VALID["email"]
D0 = datetime(2026, 11, 25, 9, 30, tzinfo=UTC)
PRODUCTION = {
    "environment": "production",
    "secret_key": TEST_KEY,
    "allowed_hosts": "forms.example.com",
    "mailgun_api_key": "key-1",
    "controller_name": "Biosera",
    "privacy_contact": "privacy@example.com",
}


@pytest.mark.parametrize(
    ("overrides", "problem"),
    [
        ({"mailgun_base_url": "https://api.mailgun.net"}, "must be https://api.eu.mailgun.net"),
        ({"mailgun_base_url": "http://api.eu.mailgun.net"}, "must use https"),
        (
            {"mailgun_base_url": "http://api.mailgun.net", "mailgun_allow_non_eu": True},
            "must use https",
        ),
        ({"public_url": "http://127.0.0.1:8000"}, "RELAY_PUBLIC_URL points at this machine"),
        ({"privacy_contact": None}, "RELAY_PRIVACY_CONTACT must be set in production"),
        ({"controller_name": None}, "RELAY_CONTROLLER_NAME and RELAY_PRIVACY_CONTACT"),
    ],
)
def test_production_refuses_what_the_policy_does_not_name(tmp_path, overrides, problem):
    """Start-up in production refuses a non-EU or plain-http Mailgun, a loopback public URL
    and a missing privacy contact, naming the setting."""
    with pytest.raises(ConfigError, match=problem):
        load_settings(var_dir=tmp_path, **{**PRODUCTION, **overrides})


def test_the_us_region_needs_an_explicit_override(tmp_path):
    """RELAY_MAILGUN_ALLOW_NON_EU lets production use another https Mailgun host; development
    is not checked."""
    us = load_settings(
        var_dir=tmp_path,
        mailgun_base_url="https://api.mailgun.net",
        mailgun_allow_non_eu=True,
        **PRODUCTION,
    )
    assert us.mailgun_base_url == "https://api.mailgun.net"
    dev = load_settings(var_dir=tmp_path, mailgun_base_url="http://127.0.0.1:9999")
    assert dev.environment == "development"


def test_relay_check_refuses_a_us_mailgun_in_production(cli, monkeypatch):
    """`relay check` exits 1 on a non-EU Mailgun host in production and names the override."""
    for name, value in {
        "RELAY_ENVIRONMENT": "production",
        "RELAY_ALLOWED_HOSTS": "forms.example.com",
        "RELAY_MAILGUN_API_KEY": "key-1",
        "RELAY_MAILGUN_BASE_URL": "https://api.mailgun.net",
        "RELAY_CONTROLLER_NAME": "Biosera",
        "RELAY_PRIVACY_CONTACT": "privacy@example.com",
    }.items():
        monkeypatch.setenv(name, value)
    result = invoke(cli, "check", expect=1)
    assert "RELAY_MAILGUN_ALLOW_NON_EU" in result.output
    monkeypatch.setenv("RELAY_MAILGUN_BASE_URL", "https://api.eu.mailgun.net")
    ok = invoke(cli, "check")
    assert "transport: Mailgun at https://api.eu.mailgun.net" in ok.output


def test_shipped_subject_template_keeps_personal_data_out(settings_factory, tmp_path):
    """The shipped forms file and the default subject give the form's title and a short id,
    never a name, company or address."""

    settings = settings_factory(forms_file=None)
    [form] = load_forms(settings.effective_forms_file).values()
    renderer = renderer_for(settings)
    view = SubmissionView(
        id="0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b",
        form_id=form.id,
        received_at=D0,
        name="Jeanne Martin",
        email=EMAIL,
        phone=None,
        company="Laboratoires Martin",
        message="hi",
        legal_basis="legitimate_interest",
        notice_version="v",
        consent_given=False,
        consent_wording_version=None,
    )
    assert renderer.subject(view, form) == "Website contact - 2e3f4a5b"
    bare = FormConfig(
        id="bare", recipients=("a@example.com",), legal_basis="contract", notice_version="v"
    )
    assert renderer.subject(view, bare) == "bare - 2e3f4a5b"


def test_erasure_report_reminds_of_mailgun_logs_and_the_mailbox(client, cli, clock):
    """Once emails were handed on, the erasure report names both copies relay cannot reach."""
    from tests.deliveries_helpers import deliver, submit

    with at(clock, D0):
        sid = submit(client)
        deliver(client)
        result = invoke(cli, "subject", "erase", EMAIL)
    assert "Microsoft 365 mailbox" in result.output
    assert "Mailgun's logs" in result.output
    assert f"message id <{sid}@" in result.output


def test_production_withdrawal_link_needs_a_public_url(cli, monkeypatch):
    """In production `relay consent link` refuses a loopback link (no RELAY_PUBLIC_URL) and
    prints the public one when it is set."""
    for name, value in {
        "RELAY_ENVIRONMENT": "production",
        "RELAY_ALLOWED_HOSTS": "forms.example.com",
        "RELAY_MAILGUN_API_KEY": "key-1",
        "RELAY_CONTROLLER_NAME": "Biosera",
        "RELAY_PRIVACY_CONTACT": "privacy@example.com",
    }.items():
        monkeypatch.setenv(name, value)
    refused = invoke(cli, "consent", "link", EMAIL, expect=1)
    assert "RELAY_PUBLIC_URL is not set" in refused.output
    monkeypatch.setenv("RELAY_PUBLIC_URL", "https://relay.example.com")
    link = invoke(cli, "consent", "link", EMAIL)
    assert link.output.startswith("https://relay.example.com/consent/withdraw?token=")


@pytest.fixture(name="settings")
def fixture_settings(settings_factory: Any) -> Any:
    return settings_factory(
        privacy_contact="privacy@biosera.example",
        controller_name="Biosera SAS",
        controller_address="15 Rue du Mans, 49300 Cholet, France",
    )


def test_invalid_link_page_gives_the_privacy_contact(client):
    """A forged or expired link's page says whom to write to."""
    page = client.get("/consent/withdraw?token=forged")
    assert page.status_code == 400
    assert "Write to privacy@biosera.example" in page.text


def test_export_names_the_configured_controller(client, cli, clock, monkeypatch):
    """The export's controller comes from the settings, not from the code."""
    monkeypatch.setenv("RELAY_CONTROLLER_NAME", "Biosera SAS")
    monkeypatch.setenv("RELAY_PRIVACY_CONTACT", "privacy@biosera.example")
    with at(clock, D0):
        post_json(client)
        data = export(cli, EMAIL)
    assert data["controller"] == {
        "name": "Biosera SAS",
        "address": None,
        "contact": "privacy@biosera.example",
    }
    assert KeyRing.from_text(TEST_KEY).mac(EMAIL) not in str(data)
