"""relay.logs: JSON lines off a terminal, readable text on one, extras as fields."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest

from relay import logs


@pytest.fixture(name="relay_logger")
def fixture_relay_logger() -> Iterator[logging.Logger]:
    logger = logging.getLogger("relay")
    saved = (list(logger.handlers), logger.level, logger.propagate)
    yield logger
    logger.handlers[:], logger.level, logger.propagate = saved[0], saved[1], saved[2]


def _record(exc: bool = False) -> logging.LogRecord:
    record = logging.LogRecord(
        "relay.webhooks", logging.INFO, __file__, 1, "webhook event", None, None
    )
    record.submission_id = "0193-abc"
    record.state = "delivered"
    if exc:
        try:
            raise ValueError("never shown")  # noqa: TRY301 - building exc_info for the test
        except ValueError:
            record.exc_info = sys.exc_info()
    return record


def test_json_lines_carry_extras_and_only_the_exception_class():
    """One JSON object per line; an exception is named, its message and traceback are not."""
    line = json.loads(logs.JsonFormatter().format(_record(exc=True)))
    assert (line["message"], line["submission_id"], line["state"]) == (
        "webhook event",
        "0193-abc",
        "delivered",
    )
    assert line["exception"] == "ValueError"
    assert "never shown" not in json.dumps(line)


def test_text_lines_for_a_terminal():
    """On a terminal a line is level, logger, message and the extras as key=value."""
    assert logs.TextFormatter().format(_record()) == (
        "INFO    relay.webhooks: webhook event submission_id=0193-abc state=delivered"
    )


@pytest.mark.parametrize(
    ("fmt", "formatter"),
    [("json", logs.JsonFormatter), ("text", logs.TextFormatter), ("auto", logs.JsonFormatter)],
)
def test_configure_picks_the_format(relay_logger, fmt, formatter):
    """`auto` means JSON when stderr is not a terminal (as under pytest)."""
    logs.configure("WARNING", fmt)
    assert len(relay_logger.handlers) == 1
    assert isinstance(relay_logger.handlers[0].formatter, formatter)
    assert (relay_logger.level, relay_logger.propagate) == (logging.WARNING, False)


def test_a_repeated_line_is_an_ordinary_record_and_the_same_json(relay_logger, capsys):
    """RepeatedLine writes, through the logger's handlers, the JSON Logger.warning would, with
    its own time; below the logger's level it writes nothing."""
    logs.configure("WARNING", "json")
    logger = logging.getLogger("relay.submit")
    extra = {"form": "contact", "status": 404, "code": "FORM_NOT_FOUND"}
    line = logs.RepeatedLine(logger, logging.WARNING, "submission refused", extra)
    line.emit()
    logger.warning("submission refused", extra=extra)
    logs.RepeatedLine(logger, logging.INFO, "not shown", extra).emit()
    repeated, ordinary = [json.loads(x) for x in capsys.readouterr().err.splitlines()]
    stamped = datetime.fromisoformat(repeated.pop("time"))
    assert abs(stamped - datetime.fromisoformat(ordinary.pop("time"))) < timedelta(seconds=5)
    assert repeated == ordinary
    assert ordinary["code"] == "FORM_NOT_FOUND"


def test_a_repeated_line_reaches_other_handlers_as_a_record(relay_logger, caplog):
    """Other handlers (here pytest's) get a record with the message and the extras as fields."""
    relay_logger.propagate = True
    caplog.set_level(logging.INFO, logger="relay")
    logger = logging.getLogger("relay.submit")
    logs.RepeatedLine(logger, logging.WARNING, "submission refused", {"code": "X"}).emit()
    [record] = caplog.records
    assert (record.getMessage(), record.levelname, getattr(record, "code", None)) == (
        "submission refused",
        "WARNING",
        "X",
    )
    assert "code=X" in logs.TextFormatter().format(record)
