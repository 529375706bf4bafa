"""`relay worker`'s service function in-process, the transport choice and logging (its trial key:
tests/test_trial_key.py)."""

from __future__ import annotations

import asyncio
import io
import json
import logging

import pytest

from relay import logs
from relay.clock import utcnow
from relay.deliver.delivery import open_transport, run_worker, running_worker
from relay.mail.eml import FileTransport
from relay.mail.mailgun import MailgunTransport
from tests.helpers import Outbox


@pytest.mark.anyio
async def test_run_worker_delivers_until_stopped(settings_factory):
    """The worker delivers what is due (as .eml files without a Mailgun key); run_worker
    drains and returns once `stop` is set."""
    settings = settings_factory()
    box = await Outbox.open(settings)
    sid = await box.add(utcnow())
    await box.close()
    async with running_worker(settings, utcnow) as runtime:
        await asyncio.wait_for(runtime.dispatcher.drained(), 10)
        assert (settings.var_dir / "mail" / f"{sid}.eml").exists()
    stop = asyncio.Event()
    worker = asyncio.create_task(run_worker(settings, stop, utcnow))
    stop.set()
    await asyncio.wait_for(worker, 10)


@pytest.mark.anyio
async def test_the_transport_follows_the_settings(settings_factory):
    """No key: .eml files. A key: Mailgun on the configured host and domain."""
    async with open_transport(settings_factory(), utcnow) as transport:
        assert isinstance(transport, FileTransport)
    settings = settings_factory(mailgun_api_key="k" * 40, mailgun_domain="mg.example.com")
    async with open_transport(settings, utcnow) as transport:
        assert isinstance(transport, MailgunTransport)
        assert transport.url == "https://api.eu.mailgun.net/v3/mg.example.com/messages"


def test_json_and_text_log_lines_carry_the_extra_fields(monkeypatch):
    """JSON lines off a terminal (with extras and the exception's class only), text on one."""
    stream = io.StringIO()
    monkeypatch.setattr("sys.stderr", stream)
    logs.configure("INFO", "json")
    log = logging.getLogger("relay.test")
    try:
        raise ValueError("secret detail")  # noqa: TRY301 - the handler below logs it
    except ValueError:
        log.exception("boom", extra={"submission_id": "s1"})
    line = json.loads(stream.getvalue().splitlines()[-1])
    assert (line["message"], line["submission_id"], line["exception"]) == (
        "boom",
        "s1",
        "ValueError",
    )
    assert "secret detail" not in stream.getvalue()
    logs.configure("INFO", "text")
    log.info("hello", extra={"form": "contact"})
    assert stream.getvalue().splitlines()[-1] == "INFO    relay.test: hello form=contact"
    log.info("plain")
    assert stream.getvalue().splitlines()[-1] == "INFO    relay.test: plain"


def test_relay_worker_refuses_a_mailgun_key_without_a_domain(cli, monkeypatch):
    """A configuration error stops `relay worker` at once with exit 1 and what to fix."""
    from tests.conftest import invoke

    monkeypatch.setenv("RELAY_MAILGUN_API_KEY", "k" * 40)
    result = invoke(cli, "worker", expect=1)
    assert "RELAY_MAILGUN_DOMAIN must be set when RELAY_MAILGUN_API_KEY is" in result.output
