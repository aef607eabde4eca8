"""``spec.version``: the Prometheus version the config is for, and the gates on fields it does not accept.

As prometheus-operator's version gates: a field the version does not accept is left out of the job
with a warning (never written, so Prometheus never refuses the config); the rest of the job stays.
No I/O.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from config_operator.generate.common import InvalidConfig

DEFAULT_VERSION = "2.42.0"
"""Without spec.version: Debian's Prometheus, the one the project is tested against. prometheus-operator
defaults to the version it bundles (3.x); a 2.42 config is also valid for 3.x, the reverse is not."""

# semver, tolerant as blang/semver's ParseTolerant: a leading "v", and a missing minor or patch.
_VERSION = re.compile(r"^v?(\d+)(?:\.(\d+))?(?:\.(\d+))?(?:-([0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?$")


@dataclass(frozen=True, order=True)
class Version:
    """A Prometheus version; a pre-release sorts before its release (3.0.0-rc.0 < 3.0.0)."""

    major: int
    minor: int
    patch: int
    release: bool = True
    """False for a pre-release such as -rc.0."""
    pre: str = ""

    def __str__(self) -> str:
        core = f"{self.major}.{self.minor}.{self.patch}"
        return core if self.release else f"{core}-{self.pre}"


def parse_version(text: str) -> Version:
    """``2.42.0``, ``v2.42``, ``3.0.0-rc.0``; ValueError otherwise."""
    match = _VERSION.match(text.strip()) if isinstance(text, str) else None
    if match is None:
        raise ValueError(f"not a version: {text!r}")
    major, minor, patch, pre = match.groups()
    return Version(int(major), int(minor or 0), int(patch or 0), pre is None, pre or "")


def spec_version(spec: Mapping[str, Any]) -> Version:
    """spec.version (default DEFAULT_VERSION); InvalidConfig when malformed or not Prometheus 2 or 3."""
    value = spec.get("version")
    if value is None or value == "":
        return parse_version(DEFAULT_VERSION)
    try:
        version = parse_version(value)
    except ValueError:
        raise InvalidConfig(f"spec.version: not a Prometheus version: {value!r}") from None
    if version.major not in (2, 3):
        raise InvalidConfig(f"spec.version: unsupported Prometheus version {value!r} (want 2.x or 3.x)")
    return version


@dataclass
class Gates:
    """The version's gates, and the warnings for what they left out (one line each)."""

    version: Version
    warnings: list[str] = field(default_factory=list)

    def at_least(self, minimum: str) -> bool:
        """Whether the version is ``minimum`` or later; no warning."""
        return self.version >= parse_version(minimum)

    def allows(self, minimum: str, what: str) -> bool:
        """Whether ``what`` (a field path) may be written; if not, a warning says it was left out."""
        if self.at_least(minimum):
            return True
        self.warnings.append(
            f"{what} left out: Prometheus {self.version} does not support it (needs {minimum})"
        )
        return False
