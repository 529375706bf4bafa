"""relay.logs: JSON lines off a terminal, readable text on one, extras as fields."""

from __future__ import annotations

import json
import logging
import sys
import threading
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


def test_a_repeated_line_with_a_varying_id_is_the_json_logger_info_writes(relay_logger, capsys):
    """A varying extra (the submission id) is in that one record's JSON and fields, as if it
    had been passed to Logger.info, and does not stick to the next use of the line."""
    logs.configure("INFO", "json")
    logger = logging.getLogger("relay.submit")
    line = logs.RepeatedLine(logger, logging.INFO, "submission accepted", {"form": "contact"})
    line.emit(submission_id="0193-first")
    logger.info("submission accepted", extra={"form": "contact", "submission_id": "0193-first"})
    line.emit(submission_id='0193-"second"')
    first, ordinary, second = [json.loads(x) for x in capsys.readouterr().err.splitlines()]
    first.pop("time"), ordinary.pop("time"), second.pop("time")
    assert first == ordinary
    assert second == {**ordinary, "submission_id": '0193-"second"'}


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


class _Stream:
    """A stream that records each write (a system call in production)."""

    def __init__(self) -> None:
        self.writes: list[str] = []
        self.written = threading.Event()  # set by each write: tests wait on it, never poll

    def write(self, text: str) -> int:
        self.writes.append(text)
        self.written.set()
        return len(text)

    def flush(self) -> None:
        return None


def _buffered(interval: float, max_lines: int = 1024) -> tuple[logs.BufferedStream, _Stream]:
    stream = _Stream()
    handler = logs.BufferedStream(stream, interval=interval, max_lines=max_lines)
    handler.setFormatter(logging.Formatter("%(message)s"))
    return handler, stream


def _emit(handler: logging.Handler, message: str, level: int = logging.INFO) -> None:
    handler.handle(logging.LogRecord("relay.t", level, __file__, 1, message, None, None))


def test_a_buffered_stream_writes_its_lines_together_in_order():
    """Lines logged together reach the stream in one write, in order, within the interval."""
    handler, stream = _buffered(interval=0.01)
    try:
        for n in range(5):
            _emit(handler, f"line {n}")
        assert stream.writes == []  # not one system call per line
        assert stream.written.wait(5)
        assert stream.writes == ["line 0\nline 1\nline 2\nline 3\nline 4\n"]
    finally:
        handler.stop()


def test_errors_a_full_buffer_and_close_write_at_once():
    """An ERROR line, the buffer's limit and close() write what is buffered without waiting."""
    handler, stream = _buffered(interval=3600, max_lines=3)
    _emit(handler, "first")
    _emit(handler, "failed", logging.ERROR)
    assert stream.writes == ["first\nfailed\n"]
    for n in range(3):
        _emit(handler, f"many {n}")
    assert stream.writes[1:] == ["many 0\nmany 1\nmany 2\n"]
    _emit(handler, "last words")
    handler.close()
    assert stream.writes[2:] == ["last words\n"]
    handler.stop()


def test_a_buffered_stream_keeps_writing_after_logging_closes_it():
    """logging closes every handler when it is reconfigured (uvicorn's dictConfig at start)
    while relay's logger keeps its own: lines logged after close() still reach the stream
    within the interval, not at the next flush."""
    handler, stream = _buffered(interval=0.01)
    try:
        handler.close()  # what logging.config.dictConfig does to every existing handler
        _emit(handler, "after close")
        assert stream.written.wait(5)
        assert stream.writes == ["after close\n"]
    finally:
        handler.stop()


def test_servers_configure_a_buffered_stream(relay_logger):
    """`relay serve` and `relay worker` ask for batched writes; other commands write each line."""
    logs.configure("INFO", "json", buffered=True)
    assert isinstance(relay_logger.handlers[0], logs.BufferedStream)
    logs.configure("INFO", "json")
    assert type(relay_logger.handlers[0]) is logging.StreamHandler


def test_a_repeated_line_hands_a_buffered_json_stream_the_line_a_record_would_make(
    relay_logger,
):
    """With a server's set-up (one BufferedStream writing JSON, no filter), a RepeatedLine
    skips the record but writes the very JSON Logger.info would; a filter anywhere on the
    way, or another handler, sends it through the record as usual (the filter applies)."""
    stream = _Stream()
    logs.configure("INFO", "json", buffered=True)
    sink = relay_logger.handlers[0]
    assert isinstance(sink, logs.BufferedStream)
    sink.setStream(stream)
    logger = logging.getLogger("relay.submit")
    line = logs.RepeatedLine(logger, logging.INFO, "submission accepted", {"form": "contact"})
    try:
        line.emit(submission_id="0193-a")
        logger.info("submission accepted", extra={"form": "contact", "submission_id": "0193-a"})
        sink.flush()
        direct, ordinary = (json.loads(text) for text in stream.writes[0].splitlines())
        assert abs(
            datetime.fromisoformat(direct.pop("time"))
            - datetime.fromisoformat(ordinary.pop("time"))
        ) < timedelta(seconds=5)
        assert direct == ordinary
        refused: list[str] = []

        def keep_out(record: logging.LogRecord) -> bool:
            refused.append(record.getMessage())
            return False

        logger.addFilter(keep_out)
        line.emit(submission_id="0193-b")
        sink.flush()
        assert refused == ["submission accepted"]
        assert len(stream.writes) == 1  # the filter kept the second line out
    finally:
        logger.filters.clear()
        sink.stop()
