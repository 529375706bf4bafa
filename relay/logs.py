"""Logging set-up, done once by the entry point: JSON lines off a terminal, text on one.

Log records carry ids, forms, states and counts as `extra` fields; never personal data.
"""

from __future__ import annotations

import atexit
import itertools
import json
import logging
import sys
import threading
import time
from datetime import UTC, datetime
from typing import Any, cast

#: Attributes every LogRecord has; anything else was passed through `extra=`.
_SAMPLE = logging.LogRecord("", 0, "", 0, "", None, None).__dict__
_STANDARD = set(_SAMPLE) | {"message", "asctime"}
#: LogRecord.__init__ sets these first, always the same number: extras come after them.
_SET_BY_INIT = len(_SAMPLE)
#: When logging was imported, as LogRecord.relativeCreated counts.
_STARTED: float = logging._startTime  # type: ignore[attr-defined]
#: One encoder, made once (json.dumps with options builds a new one per call).
_ENCODER = json.JSONEncoder(default=str, ensure_ascii=False)


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    items = itertools.islice(record.__dict__.items(), _SET_BY_INIT, None)
    return {k: v for k, v in items if k not in _STANDARD}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message and the `extra` fields.

    Cheap, as a flood writes one line per refusal: the time's seconds are formatted once per
    second, the encoder is made once, only the attributes after LogRecord's own are scanned.
    """

    def __init__(self) -> None:
        super().__init__()
        self._second = -1
        self._stamp = ""

    def _time(self, record: logging.LogRecord) -> str:
        return self.stamp(record.created, record.msecs)

    def stamp(self, created: float, msecs: float) -> str:
        """The time of a line created at `created` (seconds since the epoch, as
        LogRecord.created) and `msecs` (its milliseconds, as LogRecord.msecs)."""
        second = int(created)
        if second != self._second:
            moment = datetime.fromtimestamp(second, UTC)
            self._second, self._stamp = second, moment.strftime("%Y-%m-%dT%H:%M:%S")
        return f"{self._stamp}.{int(msecs):03d}+00:00"

    def format(self, record: logging.LogRecord) -> str:
        if type(record) is _Repeated:  # RepeatedLine: everything but the time encoded once
            return f'{{"time": "{self._time(record)}", {record.json_tail}'
        out: dict[str, Any] = {
            "time": self._time(record),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            **_extras(record),
        }
        if record.exc_info and record.exc_info[0] is not None:
            out["exception"] = record.exc_info[0].__name__
        return _ENCODER.encode(out)


class _Repeated(logging.LogRecord):
    """A RepeatedLine's record: a LogRecord like any other, plus its JSON outside __dict__."""

    __slots__ = ("json_tail",)
    json_tail: str


class RepeatedLine:
    """One log line a flood repeats (same logger, level, message and extras every time).

    Why: a refusal line through Logger.warning costs ~10 µs (a new LogRecord, a JSON
    encoding), a quarter of answering the refusal. This builds the record once and copies it,
    stamping only the time, and JsonFormatter writes its JSON encoded once; it still goes
    through the logger's level, filters and handlers, so tests and other handlers see an
    ordinary record.
    """

    def __init__(self, logger: logging.Logger, level: int, msg: str, extra: dict[str, Any]) -> None:
        self._logger = logger
        self._level = level
        record = logger.makeRecord(logger.name, level, "(repeated)", 0, msg, (), None, extra=extra)
        self._attributes = record.__dict__
        encoded = {"level": record.levelname.lower(), "logger": logger.name, "message": msg}
        self._tail = _ENCODER.encode({**encoded, **extra})[1:]  # after the opening brace

    def emit(self, **varying: str) -> None:
        """Log the line; `varying` extras (an id) are added to this one record and its JSON."""
        if not self._logger.isEnabledFor(self._level):
            return
        tail = self._tail
        if varying:
            added = ", ".join(f'"{k}": {_ENCODER.encode(v)}' for k, v in varying.items())
            tail = f"{tail[:-1]}, {added}}}"
        now = time.time()
        msecs = int((now - int(now)) * 1000) + 0.0  # as LogRecord computes it
        sink = _sole_buffered_json(self._logger, self._level)
        if sink is not None:  # what the record would become, without building the record
            formatter = cast("JsonFormatter", sink.formatter)
            sink.add_line(f'{{"time": "{formatter.stamp(now, msecs)}", {tail}', self._level)
            return
        record = _Repeated.__new__(_Repeated)
        record.__dict__.update(self._attributes)
        if varying:
            record.__dict__.update(varying)
        record.created = now
        record.msecs = msecs
        record.relativeCreated = (now - _STARTED) * 1000
        record.json_tail = tail
        self._logger.handle(record)


def _sole_buffered_json(logger: logging.Logger, level: int) -> BufferedStream | None:
    """The one handler a record of `logger` would reach, if it is a BufferedStream writing
    JSON and nothing on the way filters (then a RepeatedLine can hand it its line directly:
    a server's usual set-up); None otherwise (tests' handlers, filters, text lines)."""
    found: BufferedStream | None = None
    current: logging.Logger | None = logger
    while current is not None:
        if current.filters:
            return None
        for handler in current.handlers:
            if found is not None or type(handler) is not BufferedStream:
                return None
            found = handler
        if not current.propagate:
            break
        current = current.parent
    if found is None or found.filters or level < found.level:
        return None
    return found if type(found.formatter) is JsonFormatter else None


class TextFormatter(logging.Formatter):
    """Human lines for a terminal, extras appended as key=value."""

    def format(self, record: logging.LogRecord) -> str:
        extras = " ".join(f"{k}={v}" for k, v in _extras(record).items())
        base = f"{record.levelname:<7} {record.name}: {record.getMessage()}"
        return f"{base} {extras}" if extras else base


class BufferedStream(logging.StreamHandler):  # type: ignore[type-arg]
    """A StreamHandler that writes its lines in batches: at most `interval` seconds late.

    Why: a server logs one line per submission and per refusal, and a write to stderr (a
    pipe to journald, a file) is a system call costing as much as building the line. Lines
    are kept in order in memory and one thread writes them together, `interval` after the
    first of a batch; an ERROR or worse, a full buffer, close() and flush() (logging's atexit
    hook calls both) write at once, so a crash's last words are not left in memory. A signal
    that ends the process skips atexit: servers call relay.logs.flush() as they stop.
    """

    def __init__(self, stream: Any, *, interval: float = 0.05, max_lines: int = 1024) -> None:
        super().__init__(stream)
        self.interval = interval
        self.max_lines = max_lines
        self._lines: list[str] = []
        self._wake = threading.Event()
        self._stopped = False
        self._writer = threading.Thread(target=self._write_batches, name="relay-log", daemon=True)
        self._writer.start()
        # logging's own exit hook forgets handlers once logging is reconfigured (dictConfig
        # drops them from its list): this one writes the last lines whatever happened
        atexit.register(self.flush)

    def emit(self, record: logging.LogRecord) -> None:  # called with the handler's lock held
        try:
            line = self.format(record)
        except Exception:  # noqa: BLE001 - logging's own contract: report, never raise
            self.handleError(record)
            return
        self._add(line, record.levelno)

    def add_line(self, line: str, level: int) -> None:
        """A line already formatted (relay.logs.RepeatedLine), as emit() would add it."""
        with self.lock:  # type: ignore[union-attr]  # created by Handler.__init__
            self._add(line, level)

    def _add(self, line: str, level: int) -> None:
        self._lines.append(line)
        if level >= logging.ERROR or len(self._lines) >= self.max_lines:
            self._write_out()
        elif len(self._lines) == 1:
            self._wake.set()

    def _write_out(self) -> None:
        """Write what is buffered (with the lock held); a stream closed or gone loses the
        batch, as a StreamHandler's failed write loses its line, and never raises."""
        lines, self._lines = self._lines, []
        if lines:
            try:
                self.stream.write(self.terminator.join(lines) + self.terminator)
                self.stream.flush()
            except (OSError, ValueError):
                pass

    def _write_batches(self) -> None:
        while not self._stopped:
            self._wake.wait()
            time.sleep(self.interval)
            with self.lock:  # type: ignore[union-attr]  # created by Handler.__init__
                self._wake.clear()
                self._write_out()

    def flush(self) -> None:
        with self.lock:  # type: ignore[union-attr]
            self._write_out()

    def close(self) -> None:
        """Write what is buffered; the handler keeps working. logging calls close() on every
        handler at exit and also whenever it is reconfigured (uvicorn's dictConfig does so at
        start, leaving relay's logger its handler): stopping the writer here would leave the
        lines in memory until the next flush."""
        self.flush()
        super().close()

    def stop(self) -> None:
        """Write what is buffered and end the writer thread (the handler is being replaced)."""
        self.flush()
        self._stopped = True
        self._wake.set()
        atexit.unregister(self.flush)


def flush() -> None:
    """Write what relay's handlers hold now: the last step of a server's shutdown, as uvicorn
    ends the process by re-raising SIGTERM, and a signal's default action skips atexit."""
    for handler in logging.getLogger("relay").handlers:
        handler.flush()


def configure(level: str = "INFO", fmt: str = "auto", *, buffered: bool = False) -> None:
    """Send relay's logs to stderr; `auto` picks JSON unless stderr is a terminal.

    `buffered` (servers): lines are written in batches, at most 50 ms late (BufferedStream).
    """
    use_json = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    handler = BufferedStream(sys.stderr) if buffered else logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if use_json else TextFormatter())
    # What no relay line shows, not computed for every record (the logging HOWTO's
    # "Optimization" section): the caller's file and line, thread, process and its name.
    logging._srcfile = None
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    root = logging.getLogger("relay")
    for old in root.handlers:
        if isinstance(old, BufferedStream):
            old.stop()
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False
