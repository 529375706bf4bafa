"""The file transport is for trials: files 0600, deleted by erasure and after the body bound,
refused in production unless explicitly allowed."""

from __future__ import annotations

import asyncio
import os
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from relay.app import create_app
from relay.config import load_settings
from relay.errors import ConfigError
from relay.mail.eml import FileTransport
from relay.mail.transport import RenderedEmail
from tests.conftest import TEST_KEY, invoke
from tests.deliveries_helpers import drained
from tests.helpers import post_json

PRODUCTION = {
    "environment": "production",
    "secret_key": TEST_KEY,
    "allowed_hosts": "forms.example.com",
    "controller_name": "Biosera",
    "privacy_contact": "privacy@example.com",
}
EMAIL = RenderedEmail(
    submission_id="0193-sub",
    form_id="contact",
    message_id="<0193-sub@relay.localhost>",
    sender="relay@relay.localhost",
    to=("sales@example.com",),
    reply_to="zoe@example.fr",
    subject="Website contact - 0193-sub",
    text="Bonjour",
    html="<p>Bonjour</p>",
)


def test_files_are_written_for_the_owner_only(tmp_path, clock):
    """An email file and its folder are readable by relay's user only (0600 / 0700)."""
    previous = os.umask(0o022)
    try:
        asyncio.run(FileTransport(tmp_path / "mail", clock=clock).send(EMAIL))
    finally:
        os.umask(previous)
    path = tmp_path / "mail" / "0193-sub.eml"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "mail").stat().st_mode) == 0o700


def test_erasure_deletes_the_persons_files_only(settings_factory, cli, clock):
    """Erasure deletes the files written for the person; another person's file stays."""
    settings = settings_factory(dispatch_in_serve=True)  # `make run`: serve writes the files
    mail = settings.var_dir / "mail"
    with TestClient(create_app(settings, clock=clock)) as client:
        mine = post_json(client).json()["id"]
        other = post_json(client, email="other@example.fr").json()["id"]
        drained(client)
    assert sorted(p.name for p in mail.iterdir()) == sorted([f"{mine}.eml", f"{other}.eml"])
    erased = invoke(cli, "subject", "erase", "jeanne.martin@example.fr")
    assert "mail_files_deleted: 1" in erased.output
    assert sorted(p.name for p in mail.iterdir()) == [f"{other}.eml"]


def _file(folder: Path, name: str, age: timedelta, now: datetime) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(b"Subject: trial\r\n\r\nbody")
    stamp = (now - age).timestamp()
    os.utime(path, (stamp, stamp))
    return path


def test_housekeeper_and_purge_delete_files_past_the_body_bound(settings, cli, clock):
    """Files older than RELAY_BODY_RETENTION_DAYS go at the Housekeeper's run and with
    `relay purge`; younger ones stay."""
    mail = settings.var_dir / "mail"
    now = datetime.now(UTC)
    clock.now = now
    old = _file(mail, "old.eml", timedelta(days=8), now)
    young = _file(mail, "young.eml", timedelta(days=6), now)
    with TestClient(create_app(settings, clock=clock)):
        pass
    assert not old.exists()
    assert young.exists()
    _file(mail, "young.eml", timedelta(days=7, hours=1), now)
    purged = invoke(cli, "purge")
    assert "trial email files (file transport) past their bound: 1" in purged.output
    assert list(mail.iterdir()) == []


def test_production_refuses_the_file_transport_unless_allowed(tmp_path):
    """Production without a Mailgun key refuses to start unless RELAY_ALLOW_FILE_TRANSPORT."""
    with pytest.raises(ConfigError, match="RELAY_ALLOW_FILE_TRANSPORT"):
        load_settings(var_dir=tmp_path, **PRODUCTION)
    allowed = load_settings(var_dir=tmp_path, allow_file_transport=True, **PRODUCTION)
    assert allowed.uses_file_transport
    with_key = load_settings(var_dir=tmp_path, mailgun_api_key="key-1", **PRODUCTION)
    assert not with_key.uses_file_transport


def test_relay_check_fails_on_the_file_transport_in_production(cli, monkeypatch):
    """`relay check` in production without a Mailgun key exits 1 and names the setting."""
    monkeypatch.setenv("RELAY_ENVIRONMENT", "production")
    monkeypatch.setenv("RELAY_ALLOWED_HOSTS", "forms.example.com")
    monkeypatch.setenv("RELAY_CONTROLLER_NAME", "Biosera")
    monkeypatch.setenv("RELAY_PRIVACY_CONTACT", "privacy@example.com")
    result = invoke(cli, "check", expect=1)
    assert "RELAY_ALLOW_FILE_TRANSPORT" in result.output
    monkeypatch.setenv("RELAY_ALLOW_FILE_TRANSPORT", "true")
    allowed = invoke(cli, "check")
    assert "transport: files under" in allowed.output
