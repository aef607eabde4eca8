"""Version gates: a field the target Prometheus does not know is left out with a warning. No I/O.

``Gates`` also collects the other warnings of one generation (a field ignored, as prometheus-operator
ignores it), so that ``Generated.warnings`` lists them all in the order they arose.

prometheus-operator writes a field only when ``spec.version`` is at least the Prometheus release that
introduced it (and a few only below the release that dropped them); anything else would make
Prometheus reject the whole file. Without ``spec.version`` nothing is gated: the config is for a
current Prometheus.

A small local helper for issue 10's fields; it is meant to give way to the package's shared version
module once that lands.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from config_operator.generate.common import InvalidConfig

_VERSION = re.compile(r"^v?(\d+)\.(\d+)\.(\d+)(?:[-+][0-9A-Za-z.-]+)?$")


def parse_version(value: str) -> tuple[int, int, int]:
    """``2.42.0`` or ``v2.42.0`` (a pre-release or build suffix is ignored); ValueError if malformed."""
    match = _VERSION.match(value) if isinstance(value, str) else None
    if match is None:
        raise ValueError(f"not a Prometheus version: {value!r}")
    major, minor, patch = (int(g) for g in match.groups())
    return major, minor, patch


class Gates:
    """The target version and the warnings for every field it made us leave out, in first-seen order."""

    def __init__(self, spec: Mapping[str, Any]) -> None:
        value = spec.get("version")
        self.version: tuple[int, int, int] | None = None
        if value is not None:
            try:
                self.version = parse_version(value)
            except ValueError as exc:
                raise InvalidConfig(f"spec.version: {exc}") from None
            if self.version[0] not in (2, 3):
                raise InvalidConfig(f"spec.version: unsupported Prometheus version {value!r}")
        self.spec_version = value
        self._warnings: dict[str, None] = {}

    @property
    def warnings(self) -> tuple[str, ...]:
        return tuple(self._warnings)

    def warn(self, message: str) -> None:
        """Record a warning about something left out for another reason."""
        self._warnings.setdefault(message)

    def at_least(self, minimum: str) -> bool:
        """Whether the target version has what ``minimum`` introduced (always, with no version)."""
        return self.version is None or self.version >= parse_version(minimum)

    def allows(self, field: str, minimum: str) -> bool:
        """``at_least(minimum)``; when not, records that ``field`` was left out."""
        if self.at_least(minimum):
            return True
        self._warnings.setdefault(
            f"{field}: left out, needs Prometheus >= {minimum} (spec.version is {self.spec_version})"
        )
        return False

    def allows_below(self, field: str, maximum: str) -> bool:
        """Whether the target version is older than ``maximum`` (which dropped ``field``)."""
        if self.version is not None and self.version < parse_version(maximum):
            return True
        self._warnings.setdefault(
            f"{field}: left out, Prometheus >= {maximum} no longer accepts it"
            + (f" (spec.version is {self.spec_version})" if self.spec_version is not None else "")
        )
        return False
