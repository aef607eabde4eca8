"""The PrometheusConfig's own spec: the fields we know, and their validation. No I/O.

A malformed PrometheusConfig raises ``InvalidConfig``; the caller keeps the last good Secret.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from config_operator import selectors
from config_operator.generate.common import DNS_SUBDOMAIN, InvalidConfig, parse_duration_ms
from config_operator.resources import ObjectKey, PrometheusConfig

DEFAULT_SCRAPE_INTERVAL = "30s"
DEFAULT_EVALUATION_INTERVAL = "30s"

SPEC_FIELDS = frozenset(
    {
        "serviceMonitorSelector",
        "serviceMonitorNamespaceSelector",
        "podMonitorSelector",
        "podMonitorNamespaceSelector",
        "scrapeInterval",
        "scrapeTimeout",
        "evaluationInterval",
        "externalLabels",
        "ruleFiles",
        "alerting",
        "additionalScrapeConfigs",
        "secretName",
        "paused",
        "ruleSelector",
        "ruleNamespaceSelector",
        "probeSelector",
        "probeNamespaceSelector",
        "serviceDiscoveryRole",
        "additionalAlertRelabelConfigs",
        "additionalAlertManagerConfigs",
        # issue 10: sharding, external labels, the target version (for version gates)
        "shards",
        "prometheusExternalLabelName",
        "replicaExternalLabelName",
        "version",
        # issue 10: limits (generate.limits)
        "sampleLimit",
        "targetLimit",
        "labelLimit",
        "labelNameLengthLimit",
        "labelValueLengthLimit",
        "keepDroppedTargets",
        "bodySizeLimit",
        "enforcedSampleLimit",
        "enforcedTargetLimit",
        "enforcedLabelLimit",
        "enforcedLabelNameLengthLimit",
        "enforcedLabelValueLengthLimit",
        "enforcedKeepDroppedTargets",
        "enforcedBodySizeLimit",
        # issue 10: tenancy (generate.tenancy)
        "enforcedNamespaceLabel",
        "excludedFromEnforcement",
        "ignoreNamespaceSelectors",
        "overrideHonorLabels",
        "overrideHonorTimestamps",
        "podTargetLabels",
        # issue 10: global fields (generate.globals)
        "scrapeProtocols",
        "queryLogFile",
        "scrapeFailureLogFile",
        # issue 10: remote write (generate.remote_write)
        "remoteWrite",
        # issue 8
        "scrapeClasses",
        "arbitraryFSAccessThroughSMs",
    }
)


def validate_spec(pc: PrometheusConfig) -> Mapping[str, Any]:
    if not isinstance(pc, Mapping):
        raise InvalidConfig("PrometheusConfig must be a mapping")
    key = ObjectKey.of(pc)
    if not key.name or not key.namespace:
        raise InvalidConfig("PrometheusConfig needs metadata.name and metadata.namespace")
    spec: Any = pc.get("spec")
    if spec is None:
        spec = {}
    if not isinstance(spec, Mapping):
        raise InvalidConfig("spec must be a mapping")
    unknown = sorted(set(spec) - SPEC_FIELDS)
    if unknown:
        raise InvalidConfig(f"spec has unknown field(s): {', '.join(unknown)}")
    name = spec.get("secretName")
    if name is not None and (not isinstance(name, str) or not DNS_SUBDOMAIN.match(name)):
        raise InvalidConfig(f"spec.secretName {name!r} is not a valid Secret name")
    if spec.get("paused") is not None and not isinstance(spec["paused"], bool):
        raise InvalidConfig("spec.paused must be a boolean")
    return spec


def duration_field(spec: Mapping[str, Any], field: str, default: str) -> str:
    value = spec.get(field)
    if value is None:
        return default
    try:
        parse_duration_ms(value)
    except ValueError:
        raise InvalidConfig(f"spec.{field}: not a valid duration: {value!r}") from None
    return str(value)


def selector_field(spec: Mapping[str, Any], field: str) -> Mapping[str, Any] | None:
    value = spec.get(field)
    if value is None:
        return None
    try:
        selectors.validate(value)
    except ValueError as exc:
        raise InvalidConfig(f"spec.{field}: {exc}") from None
    return value  # type: ignore[no-any-return]
