"""The raw Kubernetes objects the operator reads and writes, as TypedDicts, plus their identities.

This module does no I/O and holds no logic: it is the vocabulary the other layers share. The dicts are
exactly what the API server sends (camelCase keys); every field is optional (``total=False``) because
the API may omit any of them, and the code that reads them validates what it needs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, TypedDict

GROUP = "reloader.dev"
VERSION = "v1alpha1"
PLURAL = "prometheusconfigs"
KIND = "PrometheusConfig"
API_VERSION = f"{GROUP}/{VERSION}"

MONITORING_GROUP = "monitoring.coreos.com"
MONITORING_VERSION = "v1"
MONITORING_API_VERSION = f"{MONITORING_GROUP}/{MONITORING_VERSION}"
SERVICE_MONITOR_KIND = "ServiceMonitor"
SERVICE_MONITOR_PLURAL = "servicemonitors"
POD_MONITOR_KIND = "PodMonitor"
POD_MONITOR_PLURAL = "podmonitors"
PROMETHEUS_RULE_KIND = "PrometheusRule"
PROMETHEUS_RULE_PLURAL = "prometheusrules"
PROBE_KIND = "Probe"
PROBE_PLURAL = "probes"

MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY_VALUE = "config-operator"
# On the rule ConfigMaps: the PrometheusConfig (in the same namespace) they belong to.
RULEFILES_LABEL = "reloader.dev/prometheusconfig"


class OwnerReference(TypedDict, total=False):
    """metadata.ownerReferences[]."""

    apiVersion: str
    kind: str
    name: str
    uid: str
    controller: bool
    blockOwnerDeletion: bool


class ObjectMeta(TypedDict, total=False):
    """The subset of metadata the operator reads or writes."""

    name: str
    namespace: str
    uid: str
    resourceVersion: str
    generation: int
    labels: dict[str, str]
    annotations: dict[str, str]
    ownerReferences: list[OwnerReference]
    deletionTimestamp: str


class LabelSelectorRequirement(TypedDict, total=False):
    """One matchExpressions entry: key, operator (In, NotIn, Exists, DoesNotExist), values."""

    key: str
    operator: str
    values: list[str]


class LabelSelector(TypedDict, total=False):
    """A Kubernetes label selector; ``{}`` selects everything."""

    matchLabels: dict[str, str]
    matchExpressions: list[LabelSelectorRequirement]


class NamespaceSelector(TypedDict, total=False):
    """A monitor's namespaceSelector: ``any`` or an explicit list; absent means its own namespace."""

    any: bool
    matchNames: list[str]


class RelabelConfig(TypedDict, total=False):
    """A prometheus-operator RelabelConfig (camelCase; rendered in snake_case)."""

    sourceLabels: list[str]
    separator: str
    targetLabel: str
    regex: str
    modulus: int
    replacement: str
    action: str


class Endpoint(TypedDict, total=False):
    """One ServiceMonitor endpoint (the supported subset)."""

    port: str
    path: str
    interval: str
    scrapeTimeout: str
    scheme: str
    params: dict[str, list[str]]
    honorLabels: bool
    relabelings: list[RelabelConfig]
    metricRelabelings: list[RelabelConfig]


class PodMetricsEndpoint(Endpoint, total=False):
    """One PodMonitor podMetricsEndpoint; same subset as Endpoint."""


class ServiceMonitorSpec(TypedDict, total=False):
    """ServiceMonitor.spec, supported subset."""

    selector: LabelSelector
    namespaceSelector: NamespaceSelector
    endpoints: list[Endpoint]
    jobLabel: str
    targetLabels: list[str]
    podTargetLabels: list[str]


class PodMonitorSpec(TypedDict, total=False):
    """PodMonitor.spec, supported subset."""

    selector: LabelSelector
    namespaceSelector: NamespaceSelector
    podMetricsEndpoints: list[PodMetricsEndpoint]
    jobLabel: str
    podTargetLabels: list[str]


class ServiceMonitor(TypedDict, total=False):
    """monitoring.coreos.com/v1 ServiceMonitor."""

    apiVersion: str
    kind: str
    metadata: ObjectMeta
    spec: ServiceMonitorSpec


class PodMonitor(TypedDict, total=False):
    """monitoring.coreos.com/v1 PodMonitor."""

    apiVersion: str
    kind: str
    metadata: ObjectMeta
    spec: PodMonitorSpec


class SecretKeySelector(TypedDict, total=False):
    """A key of a Secret in the PrometheusConfig's own namespace."""

    name: str
    key: str


class AlertmanagerEndpoint(TypedDict, total=False):
    """spec.alerting.alertmanagers[]: ``static`` host:port list (with scheme, pathPrefix, apiVersion,
    timeout), or a Prometheus resource's entry: a Service by namespace, name and port (and the rest)."""

    static: list[str]
    namespace: str
    name: str
    port: str | int
    scheme: str
    pathPrefix: str
    apiVersion: str
    timeout: str
    enableHttp2: bool
    tlsConfig: dict[str, Any]
    bearerTokenFile: str
    basicAuth: dict[str, SecretKeySelector]
    authorization: dict[str, Any]
    relabelings: list[RelabelConfig]
    alertRelabelings: list[RelabelConfig]


class AlertingSpec(TypedDict, total=False):
    """spec.alerting."""

    alertmanagers: list[AlertmanagerEndpoint]


class Condition(TypedDict, total=False):
    """A status condition."""

    type: str
    status: Literal["True", "False", "Unknown"]
    reason: str
    message: str
    lastTransitionTime: str
    observedGeneration: int


class PrometheusConfigSpec(TypedDict, total=False):
    """PrometheusConfig.spec (see design.md)."""

    serviceMonitorSelector: LabelSelector
    serviceMonitorNamespaceSelector: LabelSelector
    podMonitorSelector: LabelSelector
    podMonitorNamespaceSelector: LabelSelector
    scrapeInterval: str
    scrapeTimeout: str
    evaluationInterval: str
    externalLabels: dict[str, str]
    ruleFiles: list[str]
    alerting: AlertingSpec
    additionalScrapeConfigs: SecretKeySelector
    secretName: str
    paused: bool
    ruleSelector: LabelSelector
    ruleNamespaceSelector: LabelSelector
    probeSelector: LabelSelector
    probeNamespaceSelector: LabelSelector
    serviceDiscoveryRole: Literal["Endpoints", "EndpointSlice"]
    additionalAlertRelabelConfigs: SecretKeySelector
    additionalAlertManagerConfigs: SecretKeySelector


class PrometheusConfigStatus(TypedDict, total=False):
    """PrometheusConfig.status."""

    observedGeneration: int
    conditions: list[Condition]
    configHash: str
    serviceMonitors: int
    podMonitors: int
    rejectedMonitors: int


class PrometheusConfig(TypedDict, total=False):
    """reloader.dev/v1alpha1 PrometheusConfig."""

    apiVersion: str
    kind: str
    metadata: ObjectMeta
    spec: PrometheusConfigSpec
    status: PrometheusConfigStatus


class Namespace(TypedDict, total=False):
    """v1 Namespace (only metadata matters: its labels)."""

    apiVersion: str
    kind: str
    metadata: ObjectMeta


class Secret(TypedDict, total=False):
    """v1 Secret; ``data`` values are base64, ``stringData`` plain (as in manifests)."""

    apiVersion: str
    kind: str
    metadata: ObjectMeta
    type: str
    data: dict[str, str]
    stringData: dict[str, str]


class ConfigMap(TypedDict, total=False):
    """v1 ConfigMap; ``data`` values are plain text, ``binaryData`` base64."""

    apiVersion: str
    kind: str
    metadata: ObjectMeta
    data: dict[str, str]
    binaryData: dict[str, str]


class PrometheusRule(TypedDict, total=False):
    """monitoring.coreos.com/v1 PrometheusRule; spec.groups is read as Prometheus rule groups."""

    apiVersion: str
    kind: str
    metadata: ObjectMeta
    spec: dict[str, Any]


class Probe(TypedDict, total=False):
    """monitoring.coreos.com/v1 Probe (the supported subset is checked where it is read)."""

    apiVersion: str
    kind: str
    metadata: ObjectMeta
    spec: dict[str, Any]


# Any of the raw objects, when the kind is only known at run time.
AnyObject = dict[str, Any]


@dataclass(frozen=True, order=True)
class ObjectKey:
    """A namespaced object's identity: the work-queue key and the sort key for determinism."""

    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"

    @classmethod
    def of(cls, obj: Mapping[str, object]) -> ObjectKey:
        """The key of a raw object (missing fields become empty strings)."""
        meta: Any = obj.get("metadata")
        if not isinstance(meta, Mapping):
            meta = {}
        return cls(namespace=str(meta.get("namespace") or ""), name=str(meta.get("name") or ""))


def labels_of(obj: Mapping[str, object]) -> dict[str, str]:
    """metadata.labels, or ``{}``."""
    meta: Any = obj.get("metadata")
    labels = meta.get("labels") if isinstance(meta, Mapping) else None
    if not isinstance(labels, Mapping):
        return {}
    return {str(k): str(v) for k, v in labels.items()}
