"""Go-style durations (``500ms``, ``1s``, ``3m``, ``1h30m``, ``0``, ``1.5s``) as seconds.

These are the values prometheus-operator passes on the command line, so the syntax is Go's
``time.ParseDuration``, minus negative values, which no flag of ours accepts.
tests/reloader/test_fuzz.py checks it against a model of Go's parser.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Final

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
_DIGITS: Final = frozenset("0123456789")
"""ASCII only: float() would read "\u0661s" (an Arabic-Indic one) as one second, Go does not."""
# Longest first, so that "ms" is not read as "m" followed by junk. Plain string scanning, not re:
# init mode parses durations, and importing re costs about 1 s of wall time under a 10m CPU limit.
_UNITS: Final = ("ns", "us", "µs", "μs", "ms", "s", "m", "h")


def _digits(text: str, pos: int) -> int:
    """The end of the run of ASCII digits at ``pos``."""
    while pos < len(text) and text[pos] in _DIGITS:
        pos += 1
    return pos


def _part(text: str, pos: int) -> tuple[str, str, str, int] | None:
    """(whole digits, fraction digits, unit, end) of the number-unit pair at ``pos``, or None."""
    whole_end = _digits(text, pos)
    whole, fraction, end = text[pos:whole_end], "", whole_end
    if text.startswith(".", end):
        fraction_end = _digits(text, end + 1)
        fraction, end = text[end + 1 : fraction_end], fraction_end
    if not whole and not fraction:
        return None
    for unit in _UNITS:
        if text.startswith(unit, end):
            return whole, fraction, unit, end + len(unit)
    return None


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
        part = _part(body, pos)
        if part is None:
            raise ValueError(
                f"invalid duration {text!r}: want a number and a unit, e.g. 500ms, 1s, 3m, 1h30m"
            )
        whole, fraction, unit, end = part
        unit_ns = _UNIT_NS[unit]
        # Integers throughout: exact, and an overflow is seen however many digits there are.
        total_ns += int(whole or "0") * unit_ns
        if fraction:
            total_ns += int(fraction) * unit_ns // 10 ** len(fraction)
        if total_ns > MAX_NS:
            raise ValueError(f"invalid duration {text!r}: longer than Go's maximum, 2562047h47m16.854775807s")
        pos = end
    return total_ns / 1e9
