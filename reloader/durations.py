"""Go-style durations (``500ms``, ``1s``, ``3m``, ``1h30m``, ``0``, ``1.5s``) as seconds.

These are the values prometheus-operator passes on the command line, so the syntax is Go's
``time.ParseDuration``, minus negative values, which no flag of ours accepts.
tests/reloader/test_fuzz.py checks it against a model of Go's parser.
"""

from __future__ import annotations

import re
from typing import Final

import click

_UNIT_NS: Final = {
    "ns": 1,
    "us": 10**3,
    "µs": 10**3,  # U+00B5 MICRO SIGN
    "μs": 10**3,  # U+03BC GREEK SMALL LETTER MU
    "ms": 10**6,
    "s": 10**9,
    "m": 60 * 10**9,
    "h": 3600 * 10**9,
}
MAX_NS: Final = (1 << 63) - 1
"""Go's durations are int64 nanoseconds: about 292 years."""
# [0-9], not \d: Python's \d takes any Unicode digit, and float() would read "\u0661s" (Arabic-Indic one) as one second.
# Longest units first, so that "ms" is not read as "m" followed by junk.
_PART: Final = re.compile(r"(?:([0-9]+)(?:\.([0-9]*))?|\.([0-9]+))(ns|us|µs|μs|ms|s|m|h)")


def parse_duration(text: str) -> float:
    """``"1h30m"`` -> 5400.0. Raises ValueError naming the text when it is not a Go duration.

    Go's syntax and limits: an optional ``+``, number-unit pairs, at most 2562047h47m16.854775807s, and
    digits beyond nanoseconds dropped. A ``-`` is refused: no flag of ours takes a negative duration.
    """
    body = text[1:] if text.startswith("+") else text
    if text.startswith("-"):
        raise ValueError(f"invalid duration {text!r}: negative durations are not allowed")
    if body == "0":
        return 0.0
    if not body:
        raise ValueError(f"invalid duration {text!r}: empty duration" if text else "empty duration")
    total_ns = 0
    pos = 0
    while pos < len(body):
        match = _PART.match(body, pos)
        if match is None:
            raise ValueError(
                f"invalid duration {text!r}: want a number and a unit, e.g. 500ms, 1s, 3m, 1h30m"
            )
        whole, fraction, bare_fraction, unit = match.groups()
        fraction = fraction or bare_fraction or ""
        unit_ns = _UNIT_NS[unit]
        # Integers throughout: exact, and an overflow is seen however many digits there are.
        total_ns += int(whole or "0") * unit_ns
        if fraction:
            total_ns += int(fraction) * unit_ns // 10 ** len(fraction)
        if total_ns > MAX_NS:
            raise ValueError(f"invalid duration {text!r}: longer than Go's maximum, 2562047h47m16.854775807s")
        pos = match.end()
    return total_ns / 1e9


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
