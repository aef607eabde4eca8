"""Log lines, logfmt (default) or JSON, message first: the format both programs write.

This module does not import ``logging``: the reloader's start-up path (init mode, and the sidecar up
to its first reload) logs through ``StartupLog``, because the logging module costs about 15 ms of CPU
to import, 1.5 s under prometheus-operator's 10m CPU limit. ``reloader.log`` formats the records of
the logging module with the same ``format_line``, so a line reads the same whichever wrote it.

Callers pass only safe fields (paths, counts, hashes, variable *names*): configs hold credentials, so
config bytes and environment values must never reach a log line.
"""

from __future__ import annotations

import sys
import time

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping
    from typing import Any, Final, Protocol, TextIO

    class Log(Protocol):
        """What the reloader logs through: a ``logging.Logger`` or a ``StartupLog``."""

        def debug(self, msg: str, *, extra: Mapping[str, Any] | None = ...) -> None: ...

        def info(self, msg: str, *, extra: Mapping[str, Any] | None = ...) -> None: ...

        def warning(self, msg: str, *, extra: Mapping[str, Any] | None = ...) -> None: ...

        def error(self, msg: str, *, extra: Mapping[str, Any] | None = ...) -> None: ...


DEBUG: Final = 10
INFO: Final = 20
WARNING: Final = 30
ERROR: Final = 40
LEVELS: Final = {
    "all": DEBUG,
    "debug": DEBUG,
    "info": INFO,
    "warn": WARNING,
    "error": ERROR,
    # Above every level in use: go-kit's "none" silences the logger.
    "none": 60,
}
"""--log-level's values; the numbers are the logging module's."""
FORMATS: Final = ("logfmt", "json")
_NAMES: Final = {DEBUG: "debug", INFO: "info", WARNING: "warn", ERROR: "error", 50: "critical"}


def level_name(levelno: int) -> str:
    """go-kit's names: ``warn``, not ``warning``."""
    return _NAMES.get(levelno, str(levelno))


def timestamp(created: float) -> str:
    """RFC 3339 in UTC with milliseconds, as go-kit's ``ts``."""
    millis = int(created * 1000) % 1000
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(created)) + f".{millis:03d}Z"


_ESCAPES: Final = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b", "\f": "\\f"}


def quote(text: str) -> str:
    """``json.dumps(text)``, byte for byte, without importing json (it imports re: 1 s at 10m CPU)."""
    if text.isascii() and text.isprintable() and '"' not in text and "\\" not in text:
        return f'"{text}"'
    out: list[str] = []
    for char in text:
        if " " <= char <= "~" and char not in '"\\':
            out.append(char)
        elif char in _ESCAPES:
            out.append(_ESCAPES[char])
        elif (code := ord(char)) > 0xFFFF:  # as a UTF-16 surrogate pair, as JSON writes it
            code -= 0x10000
            out.append(f"\\u{0xD800 | code >> 10:04x}\\u{0xDC00 | code & 0x3FF:04x}")
        else:
            out.append(f"\\u{code:04x}")
    return '"' + "".join(out) + '"'


_NEEDS_QUOTES: Final = frozenset(' ="\\\n\t')


def _logfmt_value(value: object) -> str:
    text = str(value)
    if text == "" or not _NEEDS_QUOTES.isdisjoint(text):  # isdisjoint: one C call per value
        return quote(text)
    return text


def format_line(
    log_format: str, levelno: int, msg: str, ts: float, logger: str, fields: Iterable[tuple[str, object]]
) -> str:
    """One line: ``msg``, ``level``, ``ts``, ``logger`` (unless root), then ``fields`` in order."""
    head: list[tuple[str, object]] = [("msg", msg), ("level", level_name(levelno)), ("ts", timestamp(ts))]
    if logger not in ("root", ""):
        head.append(("logger", logger))
    if log_format == "json":
        import json

        doc: dict[str, object] = dict(head)
        doc.update((k, v if isinstance(v, int | float | bool | None) else str(v)) for k, v in fields)
        return json.dumps(doc)
    parts = [*head, *fields]
    return " ".join(f"{k}={_logfmt_value(v)}" for k, v in parts)


class StartupLog:
    """The logger of the start-up path, with the logging module's call shape (``extra=`` fields).

    Each line is flushed at once, so that the lines of the logging module's handler, which takes over
    the same stream later, come after them.
    """

    def __init__(self, log_format: str = "logfmt", level: str = "info", stream: TextIO | None = None) -> None:
        if log_format not in FORMATS:
            raise ValueError(f"unknown log format {log_format!r}, want one of {', '.join(FORMATS)}")
        if level not in LEVELS:
            raise ValueError(f"unknown log level {level!r}, want one of {', '.join(LEVELS)}")
        self.log_format = log_format
        self.level = level
        self._threshold = LEVELS[level]
        self._stream = stream if stream is not None else sys.stdout

    def log(self, levelno: int, msg: str, extra: Mapping[str, object] | None = None) -> None:
        if levelno < self._threshold:
            return
        line = format_line(self.log_format, levelno, msg, time.time(), "reloader", (extra or {}).items())
        self._stream.write(line + "\n")
        self._stream.flush()

    def debug(self, msg: str, extra: Mapping[str, object] | None = None) -> None:
        self.log(DEBUG, msg, extra)

    def info(self, msg: str, extra: Mapping[str, object] | None = None) -> None:
        self.log(INFO, msg, extra)

    def warning(self, msg: str, extra: Mapping[str, object] | None = None) -> None:
        self.log(WARNING, msg, extra)

    def error(self, msg: str, extra: Mapping[str, object] | None = None) -> None:
        self.log(ERROR, msg, extra)
