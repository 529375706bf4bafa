"""`relay deliveries` and `relay admin hash-password` through the real CLI."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from argon2 import PasswordHasher

from relay import states
from relay.cli.deliveries import render_table
from relay.spans import human_age, parse_since
from relay.store.deliveries import get_delivery
from tests.conftest import invoke
from tests.deliveries_helpers import BAD_RECIPIENT, WEBHOOK_KEY, deliver, hook, read, submit


@pytest.fixture(name="settings")
def fixture_settings(settings_factory):
    return settings_factory(mailgun_webhook_signing_key=WEBHOOK_KEY)


@pytest.fixture(name="log")
def fixture_log(client, clock):
    """Three submissions: one delivered (Mailgun took it, its webhook said so), one refused
    by Mailgun for good (400), one still queued."""
    delivered = submit(client)
    deliver(client)
    hook(client, delivered, "delivered", clock.now)
    failed = submit(client, "quote")
    deliver(client, 400)
    queued = submit(client)
    return {"delivered": delivered, "failed": failed, "queued": queued}


def test_list_is_tab_separated_when_piped(cli, log):
    """Piped output: a header and one tab-separated line per submission, newest first."""
    result = invoke(cli, "deliveries")
    lines = [line.split("\t") for line in result.output.splitlines()]
    assert lines[0] == ["id", "form", "received", "state", "attempts", "last event", "age"]
    assert [(line[0], line[3]) for line in lines[1:]] == [
        (log["queued"], "queued"),
        (log["failed"], "failed"),
        (log["delivered"], "delivered"),
    ]


def test_list_filters_by_state_and_form(cli, log):
    """--state and --form narrow the list."""
    failed = invoke(cli, "deliveries", "--state", "failed", "--json")
    assert [d["id"] for d in json.loads(failed.output)] == [log["failed"]]
    contact = invoke(cli, "deliveries", "--form", "quote", "--json")
    assert [d["form"] for d in json.loads(contact.output)] == ["quote"]


def test_list_since_excludes_older_submissions(cli, log):
    """--since takes a span or a date; the test submissions are dated 2026-11-25."""
    assert json.loads(invoke(cli, "deliveries", "--since", "2026-11-26", "--json").output) == []
    assert len(json.loads(invoke(cli, "deliveries", "--since", "2026-11-24", "--json").output)) == 3


def test_json_has_no_personal_data(cli, log):
    """The JSON list holds ids, states and times; none of the submitted fields."""
    output = invoke(cli, "deliveries", "--json").output
    assert "jeanne" not in output.lower()
    first = json.loads(output)[0]
    assert set(first) >= {"id", "form", "received_at", "state", "attempts", "last_event"}


def test_bad_since_is_a_clear_error(cli):
    """An unreadable --since says what it accepts."""
    result = invoke(cli, "deliveries", "--since", "yesterday", expect=2)
    assert "neither a span such as 24h" in result.output


def test_show_prints_the_timeline(cli, log):
    """`show` prints state, last error and each attempt."""
    result = invoke(cli, "deliveries", "show", log["failed"])
    assert f"submission {log['failed']}  form quote  state failed" in result.output
    assert f"HTTP 400 - Mailgun refused the message (400: {BAD_RECIPIENT})" in result.output
    as_json = json.loads(invoke(cli, "deliveries", "show", log["failed"], "--json").output)
    assert [s["what"] for s in as_json["timeline"]] == ["received", "failed"]


def test_show_unknown_id_exits_1(cli, client):
    """An unknown id is an error naming it."""
    result = invoke(cli, "deliveries", "show", "nope", expect=1)
    assert result.output == "Error: no submission nope\n"


def test_retry_requeues_a_failed_submission(cli, client, clock, log):
    """`retry` puts a failed submission back in the queue and notes it on the timeline, after
    the refusal; the dispatcher then sends it again."""
    clock.now += timedelta(minutes=5)
    result = invoke(cli, "deliveries", "retry", log["failed"])
    assert result.output == f"submission {log['failed']} requeued\n"
    row = read(client, get_delivery(log["failed"]))
    assert (row.state, row.attempts, row.final_at) == (states.QUEUED, 0, None)
    clock.now += timedelta(seconds=1)
    deliver(client)
    steps = json.loads(invoke(cli, "deliveries", "show", log["failed"], "--json").output)
    whats = [s["what"] for s in steps["timeline"]]
    assert whats == ["received", "failed", "requeued", "accepted"]


@pytest.mark.parametrize(
    ("which", "message"),
    [
        ("queued", "is queued; only failed or dead submissions can be retried"),
        ("delivered", "is delivered; only failed or dead"),
    ],
)
def test_retry_refuses_what_is_not_failed(cli, log, which, message):
    """Only failed or dead submissions are retried."""
    result = invoke(cli, "deliveries", "retry", log[which], expect=1)
    assert message in result.output


def test_retry_refuses_when_the_body_is_gone(cli, client, clock, log):
    """A failed submission whose body retention has passed (`relay purge` wiped it) cannot be
    sent again."""
    clock.now += timedelta(days=8)
    invoke(cli, "purge")
    assert read(client, get_delivery(log["failed"])).body_present is False
    result = invoke(cli, "deliveries", "retry", log["failed"], expect=1)
    assert "its body was wiped" in result.output


def test_retry_unknown_id(cli, client):
    """`deliveries retry` of an unknown id exits 1 naming the id."""
    result = invoke(cli, "deliveries", "retry", "nope", expect=1)
    assert result.output == "Error: no submission nope\n"


def test_hash_password_prints_an_argon2_hash(cli):
    """`relay admin hash-password` prompts twice and prints a hash that verifies."""
    result = invoke(
        cli, "admin", "hash-password", input="correct horse battery\ncorrect horse battery\n"
    )
    digest = result.output.strip().splitlines()[-1]
    assert PasswordHasher().verify(digest, "correct horse battery")


def test_hash_password_refuses_short_passwords(cli):
    """`admin hash-password` refuses a password shorter than 12 characters with exit 1."""
    result = invoke(cli, "admin", "hash-password", input="short\nshort\n", expect=1)
    assert "at least 12 characters" in result.output


NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30m", NOW - timedelta(minutes=30)),
        ("24h", NOW - timedelta(hours=24)),
        ("7d", NOW - timedelta(days=7)),
        ("2w", NOW - timedelta(weeks=2)),
        ("2026-11-01", datetime(2026, 11, 1, tzinfo=UTC)),
        ("2026-11-01T10:00+01:00", datetime(2026, 11, 1, 9, 0, tzinfo=UTC)),
    ],
)
def test_parse_since(text, expected):
    """`--since` takes a span (minutes, hours, days, weeks) back from now or an ISO date or time,
    read as UTC unless it says otherwise."""
    assert parse_since(text, NOW) == expected


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [(5, "5s"), (61, "1m"), (7200, "2h"), (3 * 86400 + 5, "3d"), (-3, "0s")],
)
def test_human_age(seconds, expected):
    """Ages print in their largest whole unit; a negative age prints as 0s."""
    assert human_age(timedelta(seconds=seconds)) == expected


def test_render_table_on_a_terminal_aligns_columns():
    """On a terminal the table is aligned under a rule; piped it is tab-separated."""
    table = render_table(("id", "state"), [["a", "queued"], ["bbbb", "failed"]], tty=True)
    assert table.splitlines() == ["id    state", "----  ------", "a     queued", "bbbb  failed"]
    assert render_table(("id",), [["a"]], tty=False) == "id\na"


def test_list_says_when_it_stops_at_the_limit(cli, log):
    """With more matches than --limit, the newest N are listed and stderr says more match;
    at or under the limit, nothing is said."""
    cut = invoke(cli, "deliveries", "--limit", "2")
    assert [line.split("\t")[0] for line in cut.stdout.splitlines()[1:]] == [
        log["queued"],
        log["failed"],
    ]
    assert "showing the newest 2 matching submissions; more match: raise --limit" in cut.stderr
    whole = invoke(cli, "deliveries", "--limit", "3", "--json")
    assert len(json.loads(whole.stdout)) == 3
    assert whole.stderr == ""
