"""Go-style durations (``500ms``, ``1s``, ``3m``, ``1h30m``, ``0``, ``1.5s``) as seconds.

These are the values prometheus-operator passes on the command line, so the syntax is Go's
``time.ParseDuration``, minus negative values, which no flag of ours accepts.
"""

from __future__ import annotations

import re
from typing import Final

import click

_UNIT_SECONDS: Final = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "μs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}
# Longest units first, so that "ms" is not read as "m" followed by junk.
_PART: Final = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")


def parse_duration(text: str) -> float:
    """``"1h30m"`` -> 5400.0. Raises ValueError naming the text when it is not a Go duration."""
    if text == "0":
        return 0.0
    if not text:
        raise ValueError("empty duration")
    total = 0.0
    pos = 0
    while pos < len(text):
        match = _PART.match(text, pos)
        if match is None:
            raise ValueError(
                f"invalid duration {text!r}: want a number and a unit, e.g. 500ms, 1s, 3m, 1h30m"
            )
        total += float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        pos = match.end()
    return total


class Duration(click.ParamType[float]):
    """A click parameter type for Go durations; a bad one is a usage error naming the flag."""

    name = "duration"

    def convert(self, value: object, param: click.Parameter | None, ctx: click.Context | None) -> float:
        if isinstance(value, int | float):
            return float(value)
        try:
            return parse_duration(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)
