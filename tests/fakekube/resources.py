"""The resource types the fake API server serves. Adding one is one line in RESOURCES."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ResourceType:
    """One API resource: where it lives and how it behaves."""

    group: str
    """API group; "" for the core group (served under /api/v1)."""
    version: str
    plural: str
    kind: str
    namespaced: bool = True
    status_subresource: bool = False
    """With it, the main endpoint ignores .status and only /status changes it."""
    custom: bool = False
    """Served from a CRD: strategic merge patch is refused (415), as the real API server does."""

    @property
    def api_version(self) -> str:
        """The apiVersion field of its objects: "v1" or "group/version"."""
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def ref(self) -> str:
        """kubectl-style name: "secrets", "leases.coordination.k8s.io"."""
        return f"{self.plural}.{self.group}" if self.group else self.plural


RESOURCES: tuple[ResourceType, ...] = (
    ResourceType("", "v1", "namespaces", "Namespace", namespaced=False, status_subresource=True),
    ResourceType("", "v1", "secrets", "Secret"),
    ResourceType("", "v1", "configmaps", "ConfigMap"),
    ResourceType("", "v1", "events", "Event"),
    ResourceType("", "v1", "services", "Service", status_subresource=True),
    ResourceType("", "v1", "endpoints", "Endpoints"),
    ResourceType("", "v1", "pods", "Pod", status_subresource=True),
    ResourceType("events.k8s.io", "v1", "events", "Event"),
    ResourceType("coordination.k8s.io", "v1", "leases", "Lease"),
    ResourceType(
        "reloader.dev",
        "v1alpha1",
        "prometheusconfigs",
        "PrometheusConfig",
        status_subresource=True,
        custom=True,
    ),
    ResourceType("monitoring.coreos.com", "v1", "servicemonitors", "ServiceMonitor", custom=True),
    ResourceType("monitoring.coreos.com", "v1", "podmonitors", "PodMonitor", custom=True),
    ResourceType("monitoring.coreos.com", "v1", "prometheusrules", "PrometheusRule", custom=True),
    ResourceType("monitoring.coreos.com", "v1", "probes", "Probe", custom=True),
)


def by_ref(ref: str) -> ResourceType:
    """Look a resource up by its kubectl-style name ("secrets", "prometheusconfigs.reloader.dev")."""
    for resource in RESOURCES:
        if resource.ref == ref:
            return resource
    raise KeyError(f"unknown resource {ref!r}; known: {', '.join(r.ref for r in RESOURCES)}")


def by_path(group: str, version: str, plural: str) -> ResourceType | None:
    """Look a resource up by the parts of its URL."""
    for resource in RESOURCES:
        if (resource.group, resource.version, resource.plural) == (group, version, plural):
            return resource
    return None


def by_kind(api_version: str, kind: str) -> ResourceType:
    """Look a resource up by an object's apiVersion and kind."""
    for resource in RESOURCES:
        if (resource.api_version, resource.kind) == (api_version, kind):
            return resource
    raise KeyError(f"unknown apiVersion/kind {api_version}/{kind}")
