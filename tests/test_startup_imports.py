"""What `relay serve` loads at start: the modules of features it is not configured for stay
unimported (issue "Fast and light": each costs start-up time and memory in every process)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from relay.store.db import HEAD
from tests.conftest import TEST_KEY
from tests.instances import bare_env

#: Loaded only when configured or used: Redis (RELAY_REDIS_URL), Mailgun (RELAY_MAILGUN_*),
#: the admin pages and the consent page (their first request), proof of work (a form's
#: first challenge), the throw-away domain list (a form's block_disposable_domains),
#: PostgreSQL (its URL), WebSockets (never).
UNCONFIGURED = (
    "altcha",
    "argon2",
    "disposable_email_domains",
    "httpx",
    "itsdangerous",
    "limits",
    "redis",
    "sqlalchemy.dialects.postgresql",
    "websockets",
    "relay.mail.mailgun",
    "relay.mail.mailgun_logs",
    "relay.ops.redis_conn",
    "relay.rights.erasure",
    "relay.rights.privacy",
    "relay.web.admin",
    "relay.web.auth",
    "relay.web.consent",
)
#: Loaded only when used: migrations (an empty or older database), the alerts watch (a
#: dispatcher runs).
AT_IMPORT = (*UNCONFIGURED, "alembic", "relay.ops.alerts")


def _run(code: str, env: dict[str, str] | None = None) -> tuple[list[str], list[str]]:
    """What `code` printed in a fresh interpreter, and which of AT_IMPORT it then had loaded."""
    probe = (
        f"{code}\nimport json, sys\n"
        f"print(json.dumps(sorted(m for m in {AT_IMPORT!r} if m in sys.modules)))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, env=env
    )
    *printed, last = result.stdout.strip().splitlines()
    loaded: list[str] = json.loads(last)
    return printed, loaded


def _loaded(code: str, env: dict[str, str] | None = None) -> list[str]:
    """Which of AT_IMPORT a fresh interpreter has loaded after running `code`."""
    return _run(code, env)[1]


def test_importing_the_serve_command_loads_no_optional_feature():
    """`import relay.cli.serve` (what `relay serve` imports) loads none of the modules of
    optional features, migrations or the alerts watch."""
    assert _loaded("import relay.cli.serve") == []


def test_a_started_app_without_optional_features_has_not_loaded_them(tmp_path: Path):
    """An app built on the defaults whose lifespan has run on an existing database (opened,
    dispatcher, Housekeeper and alerts watch started) has loaded none of the optional
    features, nor the migrations."""
    env = bare_env(RELAY_VAR_DIR=str(tmp_path / "var"), RELAY_SECRET_KEY=TEST_KEY)
    start = (
        "import asyncio\n"
        "from relay.app import create_app\n"
        "app = create_app()\n"
        "async def main():\n"
        "    async with app.router.lifespan_context(app) as state:\n"
        "        assert state['dispatcher'] is not None\n"
        "asyncio.run(main())\n"
    )
    first = _loaded(start, env)  # creates the database: the migrations run
    again = _loaded(start, env)
    assert "alembic" in first  # the probe sees what was used
    assert again == ["relay.ops.alerts"]


def test_a_start_that_upgrades_the_database_leaves_alembic_out_of_the_server(tmp_path: Path):
    """`relay serve`/`relay worker` upgrade a new or older embedded database in a `relay db
    upgrade` process: the schema is this release's afterwards, and the server process has
    not loaded Alembic (it would stay resident)."""
    env = bare_env(RELAY_VAR_DIR=str(tmp_path / "var"), RELAY_SECRET_KEY=TEST_KEY)
    upgrade = (
        "import asyncio\n"
        "from relay.cli.serve import upgrade_apart, _revision\n"
        "from relay.config import load_settings\n"
        "settings = load_settings()\n"
        "upgrade_apart(settings)\n"
        "print(asyncio.run(_revision(settings)))\n"
    )
    revision, loaded = _run(upgrade, env)
    assert revision == [HEAD]
    assert loaded == []
