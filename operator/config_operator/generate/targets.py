"""The relabelings prometheus-operator generates for an endpoint: which discovered targets a monitor
keeps (selector, port, running pods) and the labels they get (namespace, service, pod, container,
job, endpoint, targetLabels, podTargetLabels). No I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from config_operator.generate.common import sanitize_label_name
from config_operator.resources import ObjectKey


@dataclass(frozen=True)
class TargetLabels:
    """spec.jobLabel, targetLabels and podTargetLabels."""

    job: str | None
    target: list[str]
    pod_target: list[str]


@dataclass(frozen=True)
class MonitorRules:
    """The generated relabelings that depend on the monitor alone, built once for all its endpoints.

    Every endpoint's job holds the same rule objects, as every job holds its scrape class's: nothing
    modifies a rule once it is built."""

    selection: tuple[dict[str, Any], ...]
    """spec.selector as keep and drop rules."""
    copied: tuple[dict[str, Any], ...]
    """targetLabels and podTargetLabels."""
    job_label: dict[str, Any] | None
    """spec.jobLabel."""


def monitor_rules(kind: str, selector: Mapping[str, Any], labels: TargetLabels) -> MonitorRules:
    """The rules of ``generated_relabelings`` that every endpoint of one monitor shares."""
    service = kind == "ServiceMonitor"
    label = "__meta_kubernetes_service_label" if service else "__meta_kubernetes_pod_label"
    present = label.replace("_label", "_labelpresent")
    selection: list[dict[str, Any]] = []
    match_labels = selector.get("matchLabels") or {}
    for name in sorted(match_labels):
        s = sanitize_label_name(name)
        selection.append(
            {
                "action": "keep",
                "source_labels": [f"{label}_{s}", f"{present}_{s}"],
                "regex": f"({match_labels[name]});true",
            }
        )
    for req in selector.get("matchExpressions") or []:
        s = sanitize_label_name(req["key"])
        op = req["operator"]
        if op in ("In", "NotIn"):
            selection.append(
                {
                    "action": "keep" if op == "In" else "drop",
                    "source_labels": [f"{label}_{s}", f"{present}_{s}"],
                    "regex": f"({'|'.join(req['values'])});true",
                }
            )
        else:
            selection.append(
                {
                    "action": "keep" if op == "Exists" else "drop",
                    "source_labels": [f"{present}_{s}"],
                    "regex": "true",
                }
            )
    copied = [("__meta_kubernetes_service_label_", n) for n in labels.target]
    copied += [("__meta_kubernetes_pod_label_", n) for n in labels.pod_target]
    copied_rules = []
    for prefix, name in copied:
        s = sanitize_label_name(name)
        copied_rules.append(
            {"source_labels": [prefix + s], "target_label": s, "regex": "(.+)", "replacement": "${1}"}
        )
    job_label = None
    if labels.job:
        job_label = {
            "source_labels": [f"{label}_{sanitize_label_name(labels.job)}"],
            "target_label": "job",
            "regex": "(.+)",
            "replacement": "${1}",
        }
    return MonitorRules(tuple(selection), tuple(copied_rules), job_label)


def generated_relabelings(
    kind: str,
    role_name: str,
    key: ObjectKey,
    ep: Mapping[str, Any],
    shared: MonitorRules,
) -> list[dict[str, Any]]:
    """prometheus-operator's relabelings for one endpoint, before the scrape class's and the user's."""
    rules: list[dict[str, Any]] = [{"source_labels": ["job"], "target_label": "__tmp_prometheus_job_name"}]
    service = kind == "ServiceMonitor"
    running = ep.get("filterRunning") is not False
    # Completed and failed pods keep their IPs in discovery for a while; never scrape them.
    running_filter = {
        "action": "drop",
        "source_labels": ["__meta_kubernetes_pod_phase"],
        "regex": "(Failed|Succeeded)",
    }
    if running and not service:
        rules.append(running_filter)
    rules.extend(shared.selection)

    port, target_port, number = ep.get("port"), ep.get("targetPort"), ep.get("portNumber")
    slice_role = role_name == "endpointslice"
    if port:
        port_label = (
            (
                "__meta_kubernetes_endpointslice_port_name"
                if slice_role
                else "__meta_kubernetes_endpoint_port_name"
            )
            if service
            else "__meta_kubernetes_pod_container_port_name"
        )
        rules.append({"action": "keep", "source_labels": [port_label], "regex": port})
    elif number and not service:
        rules.append(
            {
                "action": "keep",
                "source_labels": ["__meta_kubernetes_pod_container_port_number"],
                "regex": number,
            }
        )
    elif isinstance(target_port, str) and target_port:
        rules.append(
            {
                "action": "keep",
                "source_labels": ["__meta_kubernetes_pod_container_port_name"],
                "regex": target_port,
            }
        )
    elif isinstance(target_port, int) and target_port:
        rules.append(
            {
                "action": "keep",
                "source_labels": ["__meta_kubernetes_pod_container_port_number"],
                "regex": target_port,
            }
        )

    standard: tuple[tuple[str, str], ...]
    if service:
        kind_label = "endpointslice" if slice_role else "endpoint"
        target = [
            f"__meta_kubernetes_{kind_label}_address_target_kind",
            f"__meta_kubernetes_{kind_label}_address_target_name",
        ]
        for target_kind, target_label in (("Node", "node"), ("Pod", "pod")):
            rules.append(
                {
                    "source_labels": list(target),
                    "separator": ";",
                    "regex": f"{target_kind};(.*)",
                    "replacement": "${1}",
                    "target_label": target_label,
                }
            )
        standard = (
            ("__meta_kubernetes_namespace", "namespace"),
            ("__meta_kubernetes_service_name", "service"),
            ("__meta_kubernetes_pod_name", "pod"),
            ("__meta_kubernetes_pod_container_name", "container"),
        )
    else:
        standard = (
            ("__meta_kubernetes_namespace", "namespace"),
            ("__meta_kubernetes_pod_container_name", "container"),
            ("__meta_kubernetes_pod_name", "pod"),
        )
    rules.extend({"source_labels": [src], "target_label": dst} for src, dst in standard)
    if running and service:
        rules.append(running_filter)

    rules.extend(shared.copied)

    if service:
        rules.append(
            {
                "source_labels": ["__meta_kubernetes_service_name"],
                "target_label": "job",
                "replacement": "${1}",
            }
        )
    else:
        rules.append({"target_label": "job", "replacement": f"{key.namespace}/{key.name}"})
    if shared.job_label is not None:
        rules.append(shared.job_label)
    if port:
        rules.append({"target_label": "endpoint", "replacement": port})
    elif target_port is not None and str(target_port):
        rules.append({"target_label": "endpoint", "replacement": str(target_port)})
    return rules
