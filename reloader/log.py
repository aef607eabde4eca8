"""Structured logging through the logging module: logfmt (default) or JSON, one line per event.

Shared by both programs; the lines are ``reloader.logline``'s, which the reloader's start-up path
writes without this module. Callers pass only safe fields (paths, counts, hashes, variable *names*):
configs hold credentials, so config bytes and environment values must never reach a log call.
"""

from __future__ import annotations

import logging
import sys
from typing import Any, Final, TextIO

from reloader.logline import FORMATS, LEVELS, format_line

__all__ = ["FORMATS", "LEVELS", "JsonFormatter", "LogfmtFormatter", "setup"]

# LogRecord attributes that are not user fields passed through ``extra=``.
_RESERVED: Final = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


def _fields(record: logging.LogRecord) -> list[tuple[str, Any]]:
    fields = [(k, v) for k, v in vars(record).items() if k not in _RESERVED]
    if record.exc_info and record.exc_info[1] is not None:
        fields.append(("err", repr(record.exc_info[1])))
    return fields


class LogfmtFormatter(logging.Formatter):
    """``msg="..." level=info ts=... key=value``: the message first, then the fields."""

    def format(self, record: logging.LogRecord) -> str:
        return format_line(
            "logfmt", record.levelno, record.getMessage(), record.created, record.name, _fields(record)
        )


class JsonFormatter(logging.Formatter):
    """One JSON object per line, ``msg`` first."""

    def format(self, record: logging.LogRecord) -> str:
        return format_line(
            "json", record.levelno, record.getMessage(), record.created, record.name, _fields(record)
        )


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
