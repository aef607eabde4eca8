"""Scrape limits: a monitor's own, the PrometheusConfig's enforced ones, and the global defaults. No I/O.

prometheus-operator 0.93's precedence, field by field (sampleLimit, targetLimit, labelLimit,
labelNameLengthLimit, labelValueLengthLimit, keepDroppedTargets):

- a job gets the monitor's limit when nothing is enforced, and the smaller of the two otherwise;
- a monitor without a limit (or with 0) under an enforced one gets the enforced value written into its
  job only for Prometheus < 2.45; from 2.45 the global section carries it and applies by itself;
- the global section (2.45+) holds ``spec.<limit>`` capped at the enforced value, or the enforced value.

``bodySizeLimit`` is a byte size: a job gets the smaller of the monitor's and ``enforcedBodySizeLimit``
(whichever is set); the global one is ``spec.bodySizeLimit``, else the enforced one.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from config_operator.generate.common import InvalidConfig, Reject
from config_operator.generate.gate import Gates


@dataclass(frozen=True)
class _Limit:
    field: str
    """The field of a monitor and of the PrometheusConfig (the global default)."""
    enforced: str
    """The PrometheusConfig's enforced field."""
    key: str
    """The Prometheus field."""
    job_minimum: str
    """The Prometheus release that accepts it in a scrape job."""
    global_minimum: str
    """The Prometheus release that accepts it in the global section."""


LIMITS = (
    _Limit("sampleLimit", "enforcedSampleLimit", "sample_limit", "0.0.0", "2.45.0"),
    _Limit("targetLimit", "enforcedTargetLimit", "target_limit", "2.21.0", "2.45.0"),
    _Limit("labelLimit", "enforcedLabelLimit", "label_limit", "2.27.0", "2.45.0"),
    _Limit(
        "labelNameLengthLimit", "enforcedLabelNameLengthLimit", "label_name_length_limit", "2.27.0", "2.45.0"
    ),
    _Limit(
        "labelValueLengthLimit",
        "enforcedLabelValueLengthLimit",
        "label_value_length_limit",
        "2.27.0",
        "2.45.0",
    ),
    _Limit("keepDroppedTargets", "enforcedKeepDroppedTargets", "keep_dropped_targets", "2.47.0", "2.47.0"),
)
BODY_SIZE_JOB_MINIMUM = "2.28.0"
BODY_SIZE_GLOBAL_MINIMUM = "2.45.0"

MONITOR_LIMIT_FIELDS = frozenset({*(lim.field for lim in LIMITS), "bodySizeLimit"})
"""The limit fields of a ServiceMonitor's or PodMonitor's spec."""
SPEC_LIMIT_FIELDS = frozenset(
    {*MONITOR_LIMIT_FIELDS, *(lim.enforced for lim in LIMITS), "enforcedBodySizeLimit"}
)
"""The limit fields of a PrometheusConfig's spec."""

# prometheus-operator's ByteSize; units are powers of 1024 whether written KB or KiB, as Prometheus
# reads them (alecthomas/units' base-2 parser).
_BYTE_SIZE = re.compile(r"^(0|([0-9]*[.])?[0-9]+((K|M|G|T|E|P)i?)?B)$")
_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40, "P": 1 << 50, "E": 1 << 60}


def byte_size(value: str) -> float:
    """The bytes a ByteSize (``10MB``, ``1.5GiB``, ``0``) stands for; ValueError if malformed."""
    if not isinstance(value, str) or not _BYTE_SIZE.match(value):
        raise ValueError(f"not a byte size (like 512KB or 10MiB): {value!r}")
    if value == "0":
        return 0.0
    match = re.match(r"^([0-9.]+)([KMGTEP]?)i?B$", value)
    assert match is not None  # the pattern above admits nothing else
    return float(match[1]) * _UNITS[match[2]]


@dataclass(frozen=True)
class Enforced:
    """The PrometheusConfig's limits: global defaults and enforced values, validated."""

    defaults: Mapping[str, int]
    """spec.<limit> (the global section's value), by field name."""
    enforced: Mapping[str, int]
    """spec.enforced<Limit>, by the monitor field it caps."""
    body_size: str | None
    """spec.bodySizeLimit."""
    enforced_body_size: str | None
    """spec.enforcedBodySizeLimit."""


def _count(owner: Mapping[str, Any], field: str, error: type[ValueError], where: str) -> int | None:
    value = owner.get(field)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise error(f"{where}{field} must be a non-negative integer, not {value!r}")
    return value


def _size(owner: Mapping[str, Any], field: str, error: type[ValueError], where: str) -> str | None:
    value = owner.get(field)
    if value is None or value == "":
        return None
    try:
        byte_size(value)
    except ValueError as exc:
        raise error(f"{where}{field}: {exc}") from None
    return str(value)


def enforced_limits(spec: Mapping[str, Any]) -> Enforced:
    """The PrometheusConfig's limit fields; InvalidConfig names a malformed one."""
    defaults, enforced = {}, {}
    for lim in LIMITS:
        if (v := _count(spec, lim.field, InvalidConfig, "spec.")) is not None:
            defaults[lim.field] = v
        if (v := _count(spec, lim.enforced, InvalidConfig, "spec.")) is not None:
            enforced[lim.field] = v
    return Enforced(
        defaults=defaults,
        enforced=enforced,
        body_size=_size(spec, "bodySizeLimit", InvalidConfig, "spec."),
        enforced_body_size=_size(spec, "enforcedBodySizeLimit", InvalidConfig, "spec."),
    )


def global_limits(limits: Enforced, gates: Gates) -> dict[str, Any]:
    """The limits of the global section, in prometheus-operator's order (body size first)."""
    out: dict[str, Any] = {}
    body = limits.body_size if limits.body_size is not None else limits.enforced_body_size
    if body is not None and gates.allows(BODY_SIZE_GLOBAL_MINIMUM, "global.body_size_limit"):
        out["body_size_limit"] = body
    for lim in LIMITS:
        value = limits.defaults.get(lim.field)
        cap = limits.enforced.get(lim.field)
        if value:
            if cap and value > cap:
                gates.warn(f"spec.{lim.field} {value} is greater than spec.{lim.enforced} {cap}: using {cap}")
                value = cap
        elif cap:
            # Jobs without a limit of their own inherit the enforced one from here (2.45+).
            value = cap
        else:
            continue
        if gates.allows(lim.global_minimum, f"global.{lim.key}"):
            out[lim.key] = value
    return out


@dataclass(frozen=True)
class JobLimits:
    """What one monitor's jobs get."""

    counts: tuple[tuple[str, int], ...]
    """(Prometheus field, value), in prometheus-operator's order."""
    body_size: str | None


def job_limits(monitor_spec: Mapping[str, Any], limits: Enforced, gates: Gates, monitor: str) -> JobLimits:
    """A monitor's limits against the enforced ones; Reject names a malformed monitor field.

    ``monitor`` (``ServiceMonitor ns/name``) begins the warnings for limits the version leaves out."""
    if (
        not limits.enforced
        and limits.enforced_body_size is None
        and MONITOR_LIMIT_FIELDS.isdisjoint(monitor_spec)
    ):
        return _NO_LIMITS  # most monitors, under most PrometheusConfigs
    own = {lim.field: _count(monitor_spec, lim.field, Reject, "spec.") for lim in LIMITS}
    own_body = _size(monitor_spec, "bodySizeLimit", Reject, "spec.")
    counts = []
    for lim in LIMITS:
        value = _final(own[lim.field], limits.enforced.get(lim.field), gates)
        if value is not None and gates.allows(lim.job_minimum, f"{monitor}: {lim.key}"):
            counts.append((lim.key, value))
    body = _smaller_size(own_body, limits.enforced_body_size)
    if body is not None and not gates.allows(BODY_SIZE_JOB_MINIMUM, f"{monitor}: body_size_limit"):
        body = None
    return JobLimits(tuple(counts), body)


_NO_LIMITS = JobLimits((), None)


def _final(own: int | None, enforced: int | None, gates: Gates) -> int | None:
    if not enforced:
        return own
    if not own:
        # From 2.45 the global section holds the enforced value and applies to jobs without a limit.
        return None if gates.at_least("2.45.0") else enforced
    return min(own, enforced)


def _smaller_size(own: str | None, enforced: str | None) -> str | None:
    if enforced is None:
        return own
    if own is None:
        return enforced
    return enforced if byte_size(own) > byte_size(enforced) else own


def apply_job_limits(job: dict[str, Any], limits: JobLimits) -> None:
    """Put the limits where prometheus-operator does: the counts right after relabel_configs, the body
    size right before metric_relabel_configs (so fields written in between keep their place)."""
    if not limits.counts and limits.body_size is None:
        return
    out: dict[str, Any] = {}
    for key, value in job.items():
        if key == "metric_relabel_configs" and limits.body_size is not None:
            out["body_size_limit"] = limits.body_size
        out[key] = value
        if key == "relabel_configs":
            out.update(limits.counts)
    if limits.body_size is not None:
        out.setdefault("body_size_limit", limits.body_size)
    if "relabel_configs" not in job:
        out.update(limits.counts)
    job.clear()
    job.update(out)
