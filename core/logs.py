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
import re
import sys
from collections.abc import Mapping
from contextvars import ContextVar, Token
from datetime import UTC, datetime
from types import MappingProxyType

import orjson

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
    """``2026-11-28T11:37:00.123Z``, the date and time formatted once a second."""
    # Why: bench/README.md, "Steps since the 10:54 run" (timestamp per second)
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
    """``logger.log(level, msg, extra=fields)``; the fields named in ``safe``
    (and ``msg``, if named) skip the formatter's scrubbing regexes."""
    logger.log(level, "%s", msg, extra={**fields, "_safe": safe})


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
