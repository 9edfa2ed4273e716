"""JSON-lines logging with a per-request (or per-job) context and redaction.

Every line is one JSON object on stdout: ``ts``, ``level``, ``logger``, ``msg``, the
bound context (``request_id``, ``message_id`` ...) and any ``extra=`` fields.
Secrets never reach a line: fields named like a password or token are replaced,
and the rendered text is scrubbed of bearer tokens, JWTs and email addresses
(the local part is masked), because exception texts and library messages may
quote them.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import threading
import time
from collections import deque
from collections.abc import Mapping
from contextvars import ContextVar, Token
from datetime import UTC, datetime
from itertools import groupby
from types import MappingProxyType

import orjson

from core.periodic import Periodic

_context: ContextVar[Mapping] = ContextVar("log_context", default=MappingProxyType({}))

# No line shows the caller's file and line, so the logging module need not
# walk the stack for every record (an optimisation the logging HOWTO lists).
# Thread and process stay: Dramatiq's own formatter prints them at boot.
logging._srcfile = None

# Attributes every LogRecord has; anything else came in through ``extra=``.
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}
_SECRET_KEY = re.compile(r"pass|token|secret|authorization|cookie|jwt", re.I)
_SCRUBBERS = (
    (re.compile(r"(?i)\bbearer\s+[^\s,;\"']+"), "Bearer [redacted]"),
    (re.compile(r"\beyJ[\w-]*\.[\w-]+\.[\w-]*"), "[jwt]"),
    (
        re.compile(
            r"(?i)((?:password|passwd|secret|token)[\"']?\s*[:=]\s*)"
            r"(\"[^\"]*\"|'[^']*'|[^\s,;&\"']+)"
        ),
        r"\1[redacted]",
    ),
    (
        re.compile(r"[A-Za-z0-9._%+-]+(@[A-Za-z0-9-]+(?:\.[\w-]+)+)"),
        r"***\1",
    ),
)
REDACTED = "[redacted]"
LINE_FLUSH_S = 0.1
LINE_BACKLOG = 100_000  # ~10 s of lines at bench rates; older ones are dropped


def bind(**fields) -> Token:
    """Add fields to every line logged in this context; undo with :func:`unbind`."""
    current = _context.get()
    return _context.set(
        {**current, **{k: v for k, v in fields.items() if v is not None}}
    )


def unbind(token: Token) -> None:
    _context.reset(token)


def scrub(text: str) -> str:
    """``text`` without bearer tokens, JWTs, password assignments or full emails."""
    for pattern, replacement in _SCRUBBERS:
        text = pattern.sub(replacement, text)
    return text


def _clean(key: str, value):
    if _SECRET_KEY.search(key):
        return REDACTED
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, dict):
        return {k: _clean(str(k), v) for k, v in value.items()}
    return value


# The last whole second formatted, as one tuple: threads swap it whole.
_last_second: tuple = (None, "")


def _timestamp(created: float) -> str:
    """``2026-11-28T11:37:00.123Z``; the date and time part is formatted once
    a second (datetime formatting was 3 % of a timeline read's CPU)."""
    global _last_second
    second = int(created)
    micros = round((created - second) * 1_000_000)  # as datetime rounds
    if micros == 1_000_000:
        second, micros = second + 1, 0
    cached, text = _last_second
    if cached != second:
        text = datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S")
        _last_second = (second, text)
    return f"{text}.{micros // 1000:03d}Z"


class JsonFormatter(logging.Formatter):
    """One JSON object per record, context and extras included, secrets removed."""

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "ts": _timestamp(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
        }
        # Fields a caller vouches for (``extra={"_safe": {...}}``, e.g. the
        # access log's method, route and status) skip the scrubbing regexes.
        safe = getattr(record, "_safe", ())
        message = record.getMessage()
        line["msg"] = message if "msg" in safe else scrub(message)
        line.update(_context.get())
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                line[key] = value if key in safe else _clean(key, value)
        if record.exc_info:
            line["exc"] = scrub(self.formatException(record.exc_info))
        return orjson.dumps(line, default=str).decode()


def log_fields(
    logger: logging.Logger, level: int, msg: str, fields: dict, safe: frozenset
) -> None:
    """Log ``msg`` with ``fields``; those named in ``safe`` skip the scrubbing.

    The same line as ``logger.log(level, msg, extra=fields)``. When the one
    handler it would reach is the JSON stream handler configured here (as in
    production), the line is built here and buffered for that handler's stream
    (``_PendingLines``): a LogRecord and its trip through the logging machinery
    cost a timeline read 4 times the ~3 µs of building the line itself. Any
    other set-up (a test's capture handler, filters, a user's logging config)
    takes the standard path.
    """
    if not logger.isEnabledFor(level):
        return
    handler = _sole_json_handler(logger, level)
    if handler is None:
        logger.log(level, "%s", msg, extra={**fields, "_safe": safe})
        return
    line = {
        "ts": _timestamp(time.time()),
        "level": logging.getLevelName(level).lower(),
        "logger": logger.name,
        "msg": msg if "msg" in safe else scrub(msg),
    }
    line.update(_context.get())
    for key, value in fields.items():
        line[key] = value if key in safe else _clean(key, value)
    _LINES.add(handler, orjson.dumps(line, default=str).decode() + handler.terminator)


class _PendingLines:
    """Lines of ``log_fields`` for our own handler, written out by a thread of
    the process every ``LINE_FLUSH_S``: a write system call per request, and
    under four request threads the GIL hand-over around it, leave the request
    path (nginx's ``access_log ... buffer= flush=`` does the same). Like
    nginx's, the last ~0.1 s of lines is lost if the process is killed."""

    def __init__(self):
        self._pending: deque = deque(maxlen=LINE_BACKLOG)
        self._writing = threading.Lock()
        self._writer = Periodic(self.flush, LINE_FLUSH_S, "log-lines")
        os.register_at_fork(after_in_child=self._forget)

    def add(self, handler: logging.StreamHandler, text: str) -> None:
        self._pending.append((handler, text))
        self._writer.ensure_started()

    def _forget(self) -> None:
        """In a forked child: the parent writes its own pending lines, and a
        lock its writer held at the fork would never be released here."""
        self._pending.clear()
        self._writing = threading.Lock()

    def flush(self) -> None:
        with self._writing:
            pop = self._pending.popleft
            batch = [pop() for _ in range(len(self._pending))]
            # one write per run of lines for the same handler, in order
            for handler, run in groupby(batch, key=lambda item: item[0]):
                text = "".join(line for _, line in run)
                with handler.lock:
                    handler.stream.write(text)
                    handler.stream.flush()


_LINES = _PendingLines()


def flush() -> None:
    """Write out the lines ``log_fields`` has buffered in this process."""
    _LINES.flush()


def _sole_json_handler(logger: logging.Logger, level: int):
    """The only handler a record of ``logger`` would reach, if it is our JSON
    StreamHandler without filters; None otherwise."""
    if logger.filters:
        return None
    found = None
    node = logger
    while node is not None:
        for handler in node.handlers:
            if found is not None:
                return None
            found = handler
        if not node.propagate:
            break
        node = node.parent
    if (
        type(found) is not logging.StreamHandler
        or not isinstance(found.formatter, JsonFormatter)
        or found.filters
        or level < found.level
    ):
        return None
    return found


def dict_config(level: str = "INFO") -> dict:
    """A ``logging.config.dictConfig`` that sends everything through JSON to stdout
    (gunicorn's ``logconfig_dict`` takes it as is)."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": JsonFormatter}},
        "handlers": {
            "stdout": {
                "class": "logging.StreamHandler",
                "formatter": "json",
                "stream": "ext://sys.stdout",
            }
        },
        "root": {"level": level.upper(), "handlers": ["stdout"]},
        "loggers": {
            "gunicorn.error": {
                "level": level.upper(),
                "handlers": [],
                "propagate": True,
                "qualname": "gunicorn.error",
            },
            # Request lines come from api.access_log, with the route template.
            "gunicorn.access": {
                "level": "WARNING",
                "handlers": [],
                "propagate": False,
                "qualname": "gunicorn.access",
            },
            "pika": {"level": "WARNING"},
        },
    }


def setup(level: str = "INFO", stream=None) -> None:
    """Replace the root logger's handlers with one JSON handler on ``stream``."""
    handler = logging.StreamHandler(stream or sys.stdout)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    logging.getLogger("pika").setLevel(logging.WARNING)
