"""Shared fixtures: hermetic settings per test, the real app through TestClient, the real CLI."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from starlette.testclient import TestClient

from relay.app import create_app
from relay.cli import main
from relay.cli.common import Seams
from relay.config import Settings

# Two fixed test keys (urlsafe base64 of 32 bytes); never used outside tests.
TEST_KEY = "dGVzdC1rZXktb25lLXRoaXJ0eS10d28tYnl0ZXMtbG9uZyE"
TEST_KEY_2 = "dGVzdC1rZXktdHdvLXRoaXJ0eS10d28tYnl0ZXMtbG9uZyE"
ORIGIN = "https://www.example.com"

hypothesis_settings.register_profile(
    "relay", deadline=None, max_examples=200, suppress_health_check=[HealthCheck.too_slow]
)
hypothesis_settings.load_profile("relay")

FORMS_TOML = """
[[forms]]
id = "contact"
recipients = ["sales@example.com"]
allowed_origins = ["https://www.example.com"]
legal_basis = "legitimate_interest"
notice_version = "2026-03-20"
subject = "Contact - {{ company }} - {{ name }}"
max_body_bytes = 20000

[forms.marketing_consent]
field = "newsletter"
wording = "I agree to receive news about Biosera products by email."
wording_version = "v1"

[[forms]]
id = "quote"
recipients = ["sales@example.com"]
allowed_origins = ["https://www.example.com"]
legal_basis = "contract"
notice_version = "2026-03-20"
subject = "Quote - {{ name }}"
max_body_bytes = 4096
success_url = "https://www.example.com/merci"
error_url = "https://www.example.com/devis"
"""


@pytest.fixture(autouse=True)
def clean_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    """No RELAY_* variable of the developer's shell leaks into a test."""
    for name in list(os.environ):
        if name.startswith("RELAY_"):
            monkeypatch.delenv(name)


@pytest.fixture(name="forms_file")
def fixture_forms_file(tmp_path: Path) -> Path:
    path = tmp_path / "forms.toml"
    path.write_text(FORMS_TOML, encoding="utf-8")
    return path


@pytest.fixture(name="settings_factory")
def fixture_settings_factory(tmp_path: Path, forms_file: Path) -> Any:
    """Build Settings for this test's own var/ and database, with overrides."""

    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "var_dir": tmp_path / "var",
            "forms_file": forms_file,
            "secret_key": TEST_KEY,
            "log_format": "json",
            # no dispatcher in the app: rows stay where a test put them, whatever the timing.
            # Tests that deliver drive the real dispatcher themselves (tests.deliveries_helpers
            # `deliver`), or ask for it (dispatch_in_serve=True) and wait on `drained()`
            "dispatch_in_serve": False,
            # issue 10: the shipped default is French; tests read English unless they ask
            "default_language": "en",
        }
        values.update(overrides)
        return Settings(**values)

    return make


@pytest.fixture(name="settings")
def fixture_settings(settings_factory: Any) -> Any:
    return settings_factory()


class FakeClock:
    """A clock that only moves when a test moves it."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime(2026, 11, 25, 9, 30, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture(name="clock")
def fixture_clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(name="client")
def fixture_client(settings: Settings, clock: FakeClock) -> Iterator[TestClient]:
    app = create_app(settings, clock=clock)
    with TestClient(app, base_url="http://relay.test") as client:
        yield client


class RelayRunner(CliRunner):
    """CliRunner whose commands read the test's clock (relay.cli.common.Seams), the app's too."""

    def __init__(self, clock: FakeClock) -> None:
        super().__init__()
        self.clock = clock

    def invoke(self, *args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("obj", Seams(self.clock))
        return super().invoke(*args, **kwargs)


@pytest.fixture(name="cli")
def fixture_cli(
    settings: Settings, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> RelayRunner:
    """The real `relay` command, with this test's settings in its environment and its clock."""
    monkeypatch.setenv("RELAY_VAR_DIR", str(settings.var_dir))
    monkeypatch.setenv("RELAY_FORMS_FILE", str(settings.forms_file))
    monkeypatch.setenv("RELAY_SECRET_KEY", TEST_KEY)
    return RelayRunner(clock)


def invoke(cli: CliRunner, *args: str, expect: int | None = 0, **kwargs: Any) -> Any:
    """Run `relay ARGS`; its exit code must be `expect` (success unless a test says otherwise;
    None: whatever it is)."""
    result = cli.invoke(main, list(args), catch_exceptions=False, **kwargs)
    if expect is not None:
        assert result.exit_code == expect, result.output
    return result


# --- real services for the multi-instance mode (never mocks) -------------------------------

POSTGRES_ADMIN_URL = os.environ.get(
    "TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def service_missing(what: str, exc: BaseException) -> None:
    """Locally a missing service skips with a clear message; in CI (CI=true) it fails the test."""
    message = f"{what} is not reachable ({type(exc).__name__}: {exc}); .ci/run starts it"
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(message)
    pytest.skip(message)


async def _pg_admin(sql: str) -> None:
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            await conn.execute(text(sql))
    finally:
        await engine.dispose()


@pytest.fixture(name="postgres_url")
def fixture_postgres_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database for this test alone, dropped afterwards."""
    import asyncio
    import uuid

    name = f"relay_t_{uuid.uuid4().hex[:16]}"
    try:
        asyncio.run(_pg_admin(f'CREATE DATABASE "{name}"'))
    except OSError as exc:
        service_missing("PostgreSQL at 127.0.0.1:5432", exc)
    base = POSTGRES_ADMIN_URL.rsplit("/", 1)[0]
    yield f"{base}/{name}"
    asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


# --- issue 3: delivery ------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def reset_relay_logging() -> Iterator[None]:
    """`relay serve`/`relay worker` configure the "relay" logger; undo it after each test so
    caplog keeps seeing relay's records whatever the test order."""
    import logging

    logger = logging.getLogger("relay")
    saved = (list(logger.handlers), logger.level, logger.propagate)
    yield
    logger.handlers[:], logger.level, logger.propagate = saved[0], saved[1], saved[2]
