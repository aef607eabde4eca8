"""``spec.version`` and the gates on the fields a Prometheus version does not accept. No I/O.

As prometheus-operator's version gates: a field the target version does not accept is left out with a
warning (written, it would make Prometheus refuse the whole file); a few fields are accepted only below
the release that dropped them. Without ``spec.version`` the target is 2.42.0, Debian's Prometheus, the
one this project is tested against (a 2.42 config also loads in 3.x; the reverse does not hold).

``Gates`` also collects the other warnings of one generation (a field ignored, as prometheus-operator
ignores it), so ``Generated.warnings`` lists them all in the order they arose.

A small local helper for issue 10's fields, with the same names as the shared version module issue 8
is writing (``spec_version``, ``Gates.at_least``, ``Gates.allows(minimum, what)``), so that it can
give way to it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from config_operator.generate.common import InvalidConfig

DEFAULT_VERSION = "2.42.0"

_VERSION = re.compile(r"^v?(\d+)(?:\.(\d+))?(?:\.(\d+))?(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?$")


def parse_version(text: str) -> tuple[int, int, int]:
    """``2.42.0``, ``v2.42``, ``3.0.0-rc.0`` (the pre-release is ignored); ValueError otherwise."""
    match = _VERSION.match(text.strip()) if isinstance(text, str) else None
    if match is None:
        raise ValueError(f"not a version: {text!r}")
    major, minor, patch = match.groups()
    return int(major), int(minor or 0), int(patch or 0)


def spec_version(spec: Mapping[str, Any]) -> tuple[int, int, int]:
    """spec.version (default DEFAULT_VERSION); InvalidConfig when malformed or not Prometheus 2 or 3."""
    value = spec.get("version")
    if value is None or value == "":
        return parse_version(DEFAULT_VERSION)
    try:
        version = parse_version(value)
    except ValueError:
        raise InvalidConfig(f"spec.version: not a Prometheus version: {value!r}") from None
    if version[0] not in (2, 3):
        raise InvalidConfig(f"spec.version: unsupported Prometheus version {value!r} (want 2.x or 3.x)")
    return version


@dataclass
class Gates:
    """The target version's gates, and the warnings for what was left out (one line each, no repeats)."""

    version: tuple[int, int, int]
    warnings: list[str] = field(default_factory=list)

    @property
    def version_text(self) -> str:
        return ".".join(map(str, self.version))

    def warn(self, message: str) -> None:
        """Record a warning (once, however often it arises)."""
        if message not in self.warnings:
            self.warnings.append(message)

    def at_least(self, minimum: str) -> bool:
        """Whether the version is ``minimum`` or later; no warning."""
        return self.version >= parse_version(minimum)

    def allows(self, minimum: str, what: str) -> bool:
        """Whether ``what`` (a field) may be written; if not, a warning says it was left out."""
        if self.at_least(minimum):
            return True
        self.warn(f"{what} left out: Prometheus {self.version_text} does not support it (needs {minimum})")
        return False

    def allows_below(self, maximum: str, what: str) -> bool:
        """Whether ``what``, which ``maximum`` dropped, may be written; if not, a warning says so."""
        if not self.at_least(maximum):
            return True
        self.warn(
            f"{what} left out: Prometheus {self.version_text} no longer supports it (dropped in {maximum})"
        )
        return False
