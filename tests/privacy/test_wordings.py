"""A consent wording is stored once per (form, version); changing it needs a new version."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from relay.app import create_app
from relay.errors import ConfigError
from tests.conftest import invoke

OLD = "I agree to receive news about Biosera products by email."


def test_changed_wording_without_new_version_fails_check_and_start(
    client, cli, forms_file, settings
):
    """Once published, v1's text is fixed: `relay check` and start-up refuse an edited text."""
    invoke(cli, "check")
    forms_file.write_text(forms_file.read_text().replace(OLD, "I agree to anything."))
    result = invoke(cli, "check", expect=1)
    assert "wording changed but wording_version is still 'v1'" in result.output
    with pytest.raises(ConfigError, match="wording_version"), TestClient(create_app(settings)):
        pass


def test_new_version_is_accepted_and_stored(client, cli, forms_file):
    """Bumping wording_version with the new text passes `relay check`."""
    text = forms_file.read_text().replace(OLD, "New words.").replace('"v1"', '"v2"')
    forms_file.write_text(text)
    invoke(cli, "check")


def test_check_without_database_skips_the_comparison(cli):
    """Before the first start there is nothing published to compare with."""
    invoke(cli, "check")


@pytest.mark.postgres
def test_instances_starting_together_register_the_wordings_once(postgres_url):
    """Two instances registering the same wordings at once on PostgreSQL both succeed (the
    second inserts nothing), and a conflicting text is still reported."""
    import asyncio
    from datetime import UTC, datetime

    from relay.store import Store
    from relay.store.consent import Wording, register_wordings_job

    async def go() -> tuple[list[list[str]], list[str]]:
        stores = [await Store.open(postgres_url, migrate=(n == 0)) for n in range(2)]
        try:
            wordings = [Wording("contact", "v1", "I agree to receive news.")]
            now = datetime(2026, 11, 25, tzinfo=UTC)
            both = await asyncio.gather(
                *(s.write(register_wordings_job(wordings, now)) for s in stores)
            )
            changed = [Wording("contact", "v1", "Another text.")]
            conflict = await stores[0].write(register_wordings_job(changed, now))
            return list(both), conflict
        finally:
            for store in stores:
                await store.close()

    both, conflict = asyncio.run(go())
    assert both == [[], []]
    assert len(conflict) == 1
