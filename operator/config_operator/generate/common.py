"""The lowest layer of generation: errors, durations, label names, and YAML output. No I/O.

Every other module of the package imports from here; this one imports none of them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import yaml

SECRET_KEY = "prometheus.yaml.gz"


SCHEMES = frozenset({"http", "https"})


_DURATION = re.compile(r"^(?:(\d+)y)?(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?(?:(\d+)ms)?$")
_DURATION_UNITS_MS = (
    365 * 24 * 3600_000,
    7 * 24 * 3600_000,
    24 * 3600_000,
    3600_000,
    60_000,
    1000,
    1,
)
# Most durations are one number and one unit ("30s"): read those without the general pattern.
_SIMPLE_DURATION = re.compile(r"(\d+)(ms|[ywdhms])")
_UNIT_MS = dict(zip(("y", "w", "d", "h", "m", "s", "ms"), _DURATION_UNITS_MS, strict=True))
_NOT_IN_LABEL_NAME = re.compile(r"[^a-zA-Z0-9_]")
LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


class InvalidConfig(ValueError):
    """The PrometheusConfig itself is malformed; the message is one line naming the field."""


class Reject(ValueError):
    """A monitor is malformed; becomes a Rejected entry, never escapes this module."""


@dataclass(frozen=True)
class Rejected:
    """A selected monitor that was skipped, and why."""

    kind: str
    namespace: str
    name: str
    reason: str

    def __str__(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}: {self.reason}"


def sanitize_label_name(name: str) -> str:
    """A Kubernetes label name as a Prometheus label-name suffix: every other character becomes ``_``."""
    return _NOT_IN_LABEL_NAME.sub("_", name)


def parse_duration_ms(value: str) -> int:
    """A Prometheus duration (``30s``, ``1m30s``, ``500ms``) in milliseconds; ValueError if malformed."""
    if value == "0":  # Prometheus accepts a bare zero
        return 0
    simple = _SIMPLE_DURATION.fullmatch(value) if isinstance(value, str) else None
    if simple is not None:
        return int(simple[1]) * _UNIT_MS[simple[2]]
    match = _DURATION.match(value) if isinstance(value, str) else None
    if not value or match is None or not any(match.groups()):
        raise ValueError(f"not a valid duration: {value!r}")
    return sum(int(g) * unit for g, unit in zip(match.groups(), _DURATION_UNITS_MS, strict=True) if g)


def dump_yaml(data: Any) -> bytes:
    """YAML in the mappings' insertion order, with no aliases and no line wrapping."""
    text = yaml.dump(
        data,
        Dumper=_Dumper,
        sort_keys=False,
        default_flow_style=False,
        allow_unicode=True,
        width=1 << 30,
    )
    return text.encode()


# libyaml's emitter is about three times faster and writes the same bytes (the golden tests hold both
# to the same files); the pure-Python one is the fallback where PyYAML was built without it.
_BaseDumper: type[yaml.SafeDumper] = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


class _Dumper(_BaseDumper):  # type: ignore[valid-type,misc]
    # A shared list (say, the same sourceLabels twice) must not turn into &id001 anchors.
    def ignore_aliases(self, data: Any) -> bool:
        return True


def sorted_deep(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): sorted_deep(value[k]) for k in sorted(value, key=str)}
    if isinstance(value, list):
        return [sorted_deep(v) for v in value]
    return value
