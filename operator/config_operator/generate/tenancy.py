"""One Prometheus for many teams: what the PrometheusConfig imposes on every monitor's jobs. No I/O.

As prometheus-operator 0.93 does it:

- ``enforcedNamespaceLabel``: a last relabeling (and a last metric relabeling) sets that label to the
  monitor's own namespace, so no monitor can pass its metrics off as another namespace's; monitors
  listed in ``excludedFromEnforcement`` (by namespace, and name when given) are left alone;
- ``ignoreNamespaceSelectors``: a monitor discovers targets in its own namespace only, whatever its
  ``namespaceSelector`` says;
- ``overrideHonorLabels`` / ``overrideHonorTimestamps``: ``honor_labels`` and ``honor_timestamps`` are
  false in every job;
- ``podTargetLabels``: added to every monitor's own ``podTargetLabels``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from config_operator.generate.common import LABEL_NAME, InvalidConfig
from config_operator.resources import ObjectKey

TENANCY_FIELDS = frozenset(
    {
        "enforcedNamespaceLabel",
        "excludedFromEnforcement",
        "ignoreNamespaceSelectors",
        "overrideHonorLabels",
        "overrideHonorTimestamps",
        "podTargetLabels",
    }
)
GROUP = "monitoring.coreos.com"
# ObjectReference.resource values prometheus-operator accepts, and the kinds they stand for.
_RESOURCES = {
    "servicemonitors": "ServiceMonitor",
    "podmonitors": "PodMonitor",
    "probes": "Probe",
    "prometheusrules": "PrometheusRule",
    "scrapeconfigs": "ScrapeConfig",
}


@dataclass(frozen=True)
class Exclusion:
    """One excludedFromEnforcement entry; ``name`` None matches every object of the kind there."""

    kind: str
    namespace: str
    name: str | None

    def matches(self, kind: str, key: ObjectKey) -> bool:
        return self.kind == kind and self.namespace == key.namespace and self.name in (None, key.name)


@dataclass(frozen=True)
class Tenancy:
    """The tenancy fields of a PrometheusConfig, validated."""

    namespace_label: str | None = None
    excluded: tuple[Exclusion, ...] = ()
    ignore_namespace_selectors: bool = False
    override_honor_labels: bool = False
    override_honor_timestamps: bool = False
    pod_target_labels: tuple[str, ...] = ()

    def enforces_on(self, kind: str, key: ObjectKey) -> bool:
        """Whether the namespace label is enforced on this object."""
        return self.namespace_label is not None and not any(e.matches(kind, key) for e in self.excluded)


def tenancy_of(spec: Mapping[str, Any]) -> Tenancy:
    """The tenancy fields; InvalidConfig names a malformed one."""
    label = spec.get("enforcedNamespaceLabel")
    if label == "":
        label = None
    if label is not None and (not isinstance(label, str) or not LABEL_NAME.match(label)):
        raise InvalidConfig(f"spec.enforcedNamespaceLabel {label!r} is not a valid label name")
    flags = {}
    for field in ("ignoreNamespaceSelectors", "overrideHonorLabels", "overrideHonorTimestamps"):
        value = spec.get(field, False)
        if not isinstance(value, bool):
            raise InvalidConfig(f"spec.{field} must be a boolean")
        flags[field] = value
    pod_labels = spec.get("podTargetLabels") or []
    if not isinstance(pod_labels, list) or not all(isinstance(v, str) and v for v in pod_labels):
        raise InvalidConfig("spec.podTargetLabels must be a list of label names")
    return Tenancy(
        namespace_label=label,
        excluded=_exclusions(spec.get("excludedFromEnforcement")),
        ignore_namespace_selectors=flags["ignoreNamespaceSelectors"],
        override_honor_labels=flags["overrideHonorLabels"],
        override_honor_timestamps=flags["overrideHonorTimestamps"],
        pod_target_labels=tuple(pod_labels),
    )


def _exclusions(value: Any) -> tuple[Exclusion, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise InvalidConfig("spec.excludedFromEnforcement must be a list of object references")
    out = []
    for i, ref in enumerate(value):
        where = f"spec.excludedFromEnforcement[{i}]"
        if not isinstance(ref, Mapping) or set(ref) - {"group", "resource", "namespace", "name"}:
            raise InvalidConfig(f"{where} must hold only group, resource, namespace and name")
        group = ref.get("group") or GROUP
        if group != GROUP:
            raise InvalidConfig(f"{where}.group must be {GROUP}")
        kind = _RESOURCES.get(ref.get("resource"))  # type: ignore[arg-type]
        if kind is None:
            raise InvalidConfig(f"{where}.resource must be one of {', '.join(sorted(_RESOURCES))}")
        namespace, name = ref.get("namespace"), ref.get("name")
        if not isinstance(namespace, str) or not namespace:
            raise InvalidConfig(f"{where}.namespace is required")
        if name is not None and not isinstance(name, str):
            raise InvalidConfig(f"{where}.name must be a string")
        out.append(Exclusion(kind, namespace, name or None))
    return tuple(out)


def monitor_as_seen(monitor: Mapping[str, Any], tenancy: Tenancy) -> Mapping[str, Any]:
    """The monitor as its jobs should be generated from: the global podTargetLabels appended to its
    own, and no namespaceSelector when namespace selectors are ignored. The input is not modified."""
    spec = monitor.get("spec")
    if not isinstance(spec, Mapping) or not (tenancy.pod_target_labels or tenancy.ignore_namespace_selectors):
        return monitor
    changed = dict(spec)
    if tenancy.pod_target_labels:
        own = spec.get("podTargetLabels") or []
        if isinstance(own, list):  # anything else is rejected by the job generator, as it is
            changed["podTargetLabels"] = [*own, *tenancy.pod_target_labels]
    if tenancy.ignore_namespace_selectors:
        changed.pop("namespaceSelector", None)  # absent: the monitor's own namespace
    if changed == spec:
        return monitor
    return {**monitor, "spec": changed}


def enforce_on_job(job: dict[str, Any], kind: str, key: ObjectKey, tenancy: Tenancy) -> None:
    """The honor overrides and the enforced namespace label, on one finished job of a monitor."""
    if tenancy.override_honor_labels and "honor_labels" in job:
        job["honor_labels"] = False
    if tenancy.override_honor_timestamps:
        _put_after(job, "honor_labels", "honor_timestamps", False)
    if tenancy.enforces_on(kind, key):
        # Last, so that no relabeling of the monitor's can change it afterwards.
        rule = {"target_label": tenancy.namespace_label, "replacement": key.namespace}
        job["relabel_configs"] = [*job.get("relabel_configs", []), rule]
        job["metric_relabel_configs"] = [*job.get("metric_relabel_configs", []), dict(rule)]


def _put_after(job: dict[str, Any], after: str, key: str, value: Any) -> None:
    if key in job or after not in job:
        job[key] = value
        return
    out: dict[str, Any] = {}
    for k, v in job.items():
        out[k] = v
        if k == after:
            out[key] = value
    job.clear()
    job.update(out)
