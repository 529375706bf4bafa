"""The trial key: without RELAY_SECRET_KEY, relay makes var/secret.key once (0600, announced)
and every process (the app, the worker, the CLI) reads that same key.

`relay serve` doing it as a real process, on embedded defaults, is in tests/cli/test_serve.py.
"""

from __future__ import annotations

import logging

import pytest
from starlette.testclient import TestClient

from relay.app import create_app
from relay.crypto import KeyRing
from relay.errors import ConfigError
from relay.keyfile import load_keyring
from tests.conftest import invoke
from tests.helpers import VALID, post_json

ANNOUNCED = "RELAY_SECRET_KEY is not set: created a random trial key in {path}."


def test_the_first_start_makes_the_trial_key_and_later_ones_reuse_it(settings_factory, caplog):
    """With create (serve, worker), a missing key file is made 0600 with a valid key and
    announced once; the next load reads the same key, announcing nothing."""
    settings = settings_factory(secret_key=None)
    caplog.set_level(logging.WARNING, logger="relay")
    first = load_keyring(settings, create=True)
    assert settings.key_file.stat().st_mode & 0o777 == 0o600
    assert KeyRing.from_text(settings.key_file.read_text()).key_ids == first.key_ids
    announced = [r.getMessage() for r in caplog.records]
    assert [m.split(" Set ")[0] for m in announced] == [ANNOUNCED.format(path=settings.key_file)]
    assert load_keyring(settings, create=True).key_ids == first.key_ids
    assert load_keyring(settings).key_ids == first.key_ids
    assert len(caplog.records) == 1


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (None, "RELAY_SECRET_KEY is not set and {path} does not exist (run `relay serve` once)"),
        ("short", "{path}: RELAY_SECRET_KEY: a key is not urlsafe base64"),
        (b"\xff\xfe", "{path}: cannot read the key file (UnicodeDecodeError)"),
    ],
    ids=["missing", "not a key", "not ASCII"],
)
def test_a_trial_key_that_cannot_be_read_is_a_config_error(settings_factory, content, problem):
    """Without create (every other command), a missing or unreadable key file is a ConfigError
    naming the file and what is wrong, and no file is made."""
    settings = settings_factory(secret_key=None)
    if content is not None:
        settings.key_file.parent.mkdir(parents=True)
        if isinstance(content, str):
            settings.key_file.write_text(content, encoding="ascii")
        else:
            settings.key_file.write_bytes(content)
    with pytest.raises(ConfigError) as caught:
        load_keyring(settings)
    assert str(caught.value).startswith(problem.format(path=settings.key_file))
    assert settings.key_file.exists() is (content is not None)


def test_the_app_and_the_cli_share_the_trial_key(settings_factory, cli, monkeypatch, clock):
    """The app makes the key at its first start and keeps it over a restart; the CLI, with no
    RELAY_SECRET_KEY either, opens what the app sealed with it."""
    settings = settings_factory(secret_key=None)
    with TestClient(create_app(settings, clock=clock)) as client:
        post_json(client)
    key = settings.key_file.read_text()
    with TestClient(create_app(settings, clock=clock)):
        pass
    assert settings.key_file.read_text() == key
    monkeypatch.delenv("RELAY_SECRET_KEY")
    exported = invoke(cli, "subject", "export", VALID["email"])
    assert f'"name": "{VALID["name"]}"' in exported.output


@pytest.mark.parametrize(
    "command", [("subject", "export", "a@b.fr"), ("consent", "link", "a@b.fr")]
)
def test_a_command_without_key_or_trial_file_says_what_to_do(cli, settings, monkeypatch, command):
    """With neither RELAY_SECRET_KEY nor a trial key file, a command that needs the key exits 1
    saying so and how to get one, and makes no key file."""
    monkeypatch.delenv("RELAY_SECRET_KEY")
    result = invoke(cli, *command, expect=1)
    assert result.output == (
        f"Error: RELAY_SECRET_KEY is not set and {settings.key_file} does not exist "
        "(run `relay serve` once)\n"
    )
    assert not settings.key_file.exists()
