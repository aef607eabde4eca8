"""Structured logging: logfmt (default) or JSON, one line per event, message first.

Shared by both programs. Callers pass only safe fields (paths, counts, hashes, variable *names*):
configs hold credentials, so config bytes and environment values must never reach a log call.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any, Final, TextIO

LEVELS: Final = {
    "all": logging.DEBUG,
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warn": logging.WARNING,
    "error": logging.ERROR,
    # Above every level in use: go-kit's "none" silences the logger.
    "none": logging.CRITICAL + 10,
}
FORMATS: Final = ("logfmt", "json")

# LogRecord attributes that are not user fields passed through ``extra=``.
_RESERVED: Final = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in vars(record).items() if k not in _RESERVED}


def _level_name(record: logging.LogRecord) -> str:
    return "warn" if record.levelno == logging.WARNING else record.levelname.lower()


def _timestamp(record: logging.LogRecord) -> str:
    millis = int(record.created * 1000) % 1000
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{millis:03d}Z"


def _logfmt_value(value: object) -> str:
    text = str(value)
    if text == "" or any(c in text for c in ' ="\\\n\t'):
        return json.dumps(text)
    return text


class LogfmtFormatter(logging.Formatter):
    """``msg="..." level=info ts=... key=value``: the message first, then the fields."""

    def format(self, record: logging.LogRecord) -> str:
        parts = {"msg": record.getMessage(), "level": _level_name(record), "ts": _timestamp(record)}
        parts.update({"logger": record.name} if record.name not in ("root", "") else {})
        parts.update(_fields(record))
        if record.exc_info and record.exc_info[1] is not None:
            parts["err"] = repr(record.exc_info[1])
        return " ".join(f"{k}={_logfmt_value(v)}" for k, v in parts.items())


class JsonFormatter(logging.Formatter):
    """One JSON object per line, ``msg`` first."""

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "msg": record.getMessage(),
            "level": _level_name(record),
            "ts": _timestamp(record),
        }
        doc.update({"logger": record.name} if record.name not in ("root", "") else {})
        doc.update(
            {k: v if isinstance(v, int | float | bool | None) else str(v) for k, v in _fields(record).items()}
        )
        if record.exc_info and record.exc_info[1] is not None:
            doc["err"] = repr(record.exc_info[1])
        return json.dumps(doc)


def setup(log_format: str = "logfmt", level: str = "info", stream: TextIO | None = None) -> None:
    """Route the root logger to ``stream`` (default stderr; config-reloader passes stdout, as Go's
    reloader logs there) in the chosen format; replaces earlier handlers."""
    if log_format not in FORMATS:
        raise ValueError(f"unknown log format {log_format!r}, want one of {', '.join(FORMATS)}")
    if level not in LEVELS:
        raise ValueError(f"unknown log level {level!r}, want one of {', '.join(LEVELS)}")
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(LogfmtFormatter() if log_format == "logfmt" else JsonFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(LEVELS[level])
    # aiohttp's access log would print every scrape of /metrics.
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
