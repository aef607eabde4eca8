"""ServiceMonitor and PodMonitor endpoints as scrape jobs, the way prometheus-operator writes them. No I/O.

Job names, kubernetes_sd_configs restricted to namespaces, keep rules on the selector and port, the
standard target labels, jobLabel/targetLabels/podTargetLabels, then the user's relabelings: dashboards
and alerts written against prometheus-operator keep working. A malformed monitor raises ``Reject``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from config_operator import selectors
from config_operator.generate.common import SCHEMES, Reject, parse_duration_ms, sanitize_label_name
from config_operator.generate.relabel import relabel_list
from config_operator.resources import ObjectKey

ENDPOINT_FIELDS = frozenset(
    {
        "port",
        "path",
        "interval",
        "scrapeTimeout",
        "scheme",
        "params",
        "honorLabels",
        "relabelings",
        "metricRelabelings",
    }
)
SERVICE_MONITOR_FIELDS = frozenset(
    {"selector", "namespaceSelector", "endpoints", "jobLabel", "targetLabels", "podTargetLabels"}
)
POD_MONITOR_FIELDS = frozenset(
    {"selector", "namespaceSelector", "podMetricsEndpoints", "jobLabel", "podTargetLabels"}
)


@dataclass(frozen=True)
class _Role:
    """What differs between ServiceMonitor and PodMonitor jobs."""

    kind: str
    job_prefix: str
    sd_role: str
    endpoints_field: str
    label_prefix: str
    port_label: str
    fields: frozenset[str]


_ROLES = {
    "ServiceMonitor": _Role(
        "ServiceMonitor",
        "serviceMonitor",
        "endpoints",
        "endpoints",
        "__meta_kubernetes_service_label",
        "__meta_kubernetes_endpoint_port_name",
        SERVICE_MONITOR_FIELDS,
    ),
    "PodMonitor": _Role(
        "PodMonitor",
        "podMonitor",
        "pod",
        "podMetricsEndpoints",
        "__meta_kubernetes_pod_label",
        "__meta_kubernetes_pod_container_port_name",
        POD_MONITOR_FIELDS,
    ),
}


def monitor_jobs(kind: str, monitor: Mapping[str, Any], global_interval: str) -> list[dict[str, Any]]:
    role = _ROLES[kind]
    spec = monitor.get("spec")
    if not isinstance(spec, Mapping):
        raise Reject("spec must be a mapping")
    unknown = sorted(set(spec) - role.fields)
    if unknown:
        raise Reject(f"unsupported field(s) in spec: {', '.join(unknown)}")
    selector = spec.get("selector")
    if selector is None:
        selector = {}
    try:
        selectors.validate(selector)
    except ValueError as exc:
        raise Reject(f"spec.selector: {exc}") from None
    key = ObjectKey.of(monitor)
    sd = _sd_config(role, spec.get("namespaceSelector"), key.namespace)
    job_label = _opt_label_name(spec, "jobLabel")
    target_labels = _label_list(spec, "targetLabels")
    pod_target_labels = _label_list(spec, "podTargetLabels")
    endpoints = spec.get(role.endpoints_field)
    if not isinstance(endpoints, list) or not endpoints:
        raise Reject(f"spec.{role.endpoints_field} must be a non-empty list")
    jobs = []
    for i, ep in enumerate(endpoints):
        where = f"spec.{role.endpoints_field}[{i}]"
        if not isinstance(ep, Mapping):
            raise Reject(f"{where} must be a mapping")
        try:
            job = _endpoint_job(role, key, i, ep, sd, global_interval)
            job["relabel_configs"] = [
                *_generated_relabelings(role, key, ep, selector, job_label, target_labels, pod_target_labels),
                *relabel_list(ep, "relabelings"),
            ]
            metric_relabelings = relabel_list(ep, "metricRelabelings")
            if metric_relabelings:
                job["metric_relabel_configs"] = metric_relabelings
        except Reject as exc:
            raise Reject(f"{where}: {exc}") from None
        jobs.append(job)
    return jobs


def _sd_config(role: _Role, ns_selector: Any, own_namespace: str) -> dict[str, Any]:
    sd: dict[str, Any] = {"role": role.sd_role}
    if ns_selector is None:
        ns_selector = {}
    if not isinstance(ns_selector, Mapping) or set(ns_selector) - {"any", "matchNames"}:
        raise Reject("spec.namespaceSelector may hold only 'any' and 'matchNames'")
    if ns_selector.get("any") is True:
        return sd
    names = ns_selector.get("matchNames")
    if names:
        if not isinstance(names, list) or not all(isinstance(n, str) and n for n in names):
            raise Reject("spec.namespaceSelector.matchNames must be a list of namespace names")
        sd["namespaces"] = {"names": list(names)}
    else:
        sd["namespaces"] = {"names": [own_namespace]}
    return sd


def _opt_label_name(spec: Mapping[str, Any], field: str) -> str | None:
    value = spec.get(field)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise Reject(f"spec.{field} must be a string")
    return value


def _label_list(spec: Mapping[str, Any], field: str) -> list[str]:
    value = spec.get(field) or []
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise Reject(f"spec.{field} must be a list of label names")
    return list(value)


def _endpoint_job(
    role: _Role,
    key: ObjectKey,
    index: int,
    ep: Mapping[str, Any],
    sd: dict[str, Any],
    global_interval: str,
) -> dict[str, Any]:
    unknown = sorted(set(ep) - ENDPOINT_FIELDS)
    if unknown:
        raise Reject(f"unsupported field(s): {', '.join(unknown)}")
    honor_labels = ep.get("honorLabels", False)
    if not isinstance(honor_labels, bool):
        raise Reject("honorLabels must be a boolean")
    job: dict[str, Any] = {
        "job_name": f"{role.job_prefix}/{key.namespace}/{key.name}/{index}",
        "honor_labels": honor_labels,
        "kubernetes_sd_configs": [dict(sd)],
    }
    interval = ep.get("interval")
    timeout = ep.get("scrapeTimeout")
    for field, value in (("interval", interval), ("scrapeTimeout", timeout)):
        if value is not None:
            try:
                parse_duration_ms(value)
            except ValueError as exc:
                raise Reject(f"{field}: {exc}") from None
    # prometheus-operator's check: the endpoint's timeout against its interval (or the global one).
    effective_interval = interval or global_interval
    if timeout is not None and parse_duration_ms(timeout) > parse_duration_ms(effective_interval):
        raise Reject(f"scrapeTimeout {timeout!r} is greater than the scrape interval {effective_interval!r}")
    if interval is not None:
        job["scrape_interval"] = interval
    if timeout is not None:
        job["scrape_timeout"] = timeout
    path = ep.get("path")
    if path is not None:
        if not isinstance(path, str) or not path.startswith("/"):
            raise Reject(f"path {path!r} must start with '/'")
        job["metrics_path"] = path
    params = ep.get("params")
    if params is not None:
        if not isinstance(params, Mapping) or not all(
            isinstance(k, str) and isinstance(v, list) and all(isinstance(x, str) for x in v)
            for k, v in params.items()
        ):
            raise Reject("params must map names to lists of strings")
        job["params"] = {k: list(params[k]) for k in sorted(params)}
    scheme = ep.get("scheme")
    if scheme is not None:
        if not isinstance(scheme, str) or scheme.lower() not in SCHEMES:
            raise Reject(f"unknown scheme {scheme!r} (want http or https)")
        job["scheme"] = scheme.lower()
    port = ep.get("port")
    if port is not None and (not isinstance(port, str) or not port):
        raise Reject("port must be a non-empty port name")
    return job


def _generated_relabelings(
    role: _Role,
    key: ObjectKey,
    ep: Mapping[str, Any],
    selector: Mapping[str, Any],
    job_label: str | None,
    target_labels: Sequence[str],
    pod_target_labels: Sequence[str],
) -> list[dict[str, Any]]:
    """prometheus-operator's relabelings for one endpoint, before the user's."""
    rules: list[dict[str, Any]] = [{"source_labels": ["job"], "target_label": "__tmp_prometheus_job_name"}]
    label, present = role.label_prefix, role.label_prefix.replace("_label", "_labelpresent")

    match_labels = selector.get("matchLabels") or {}
    for name in sorted(match_labels):
        s = sanitize_label_name(name)
        rules.append(
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
            rules.append(
                {
                    "action": "keep" if op == "In" else "drop",
                    "source_labels": [f"{label}_{s}", f"{present}_{s}"],
                    "regex": f"({'|'.join(req['values'])});true",
                }
            )
        else:
            rules.append(
                {
                    "action": "keep" if op == "Exists" else "drop",
                    "source_labels": [f"{present}_{s}"],
                    "regex": "true",
                }
            )

    port = ep.get("port")
    if port:
        rules.append({"action": "keep", "source_labels": [role.port_label], "regex": port})

    standard: tuple[tuple[str, str], ...]
    if role.kind == "ServiceMonitor":
        target = [
            "__meta_kubernetes_endpoint_address_target_kind",
            "__meta_kubernetes_endpoint_address_target_name",
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
    # Completed and failed pods keep their IPs in discovery for a while; never scrape them.
    rules.append(
        {"source_labels": ["__meta_kubernetes_pod_phase"], "regex": "(Failed|Succeeded)", "action": "drop"}
    )

    copied = [(f"__meta_kubernetes_service_label_{sanitize_label_name(n)}", n) for n in target_labels]
    copied += [(f"__meta_kubernetes_pod_label_{sanitize_label_name(n)}", n) for n in pod_target_labels]
    for src, name in copied:
        rules.append(
            {
                "source_labels": [src],
                "target_label": sanitize_label_name(name),
                "regex": "(.+)",
                "replacement": "${1}",
            }
        )

    if role.kind == "ServiceMonitor":
        rules.append(
            {
                "source_labels": ["__meta_kubernetes_service_name"],
                "target_label": "job",
                "replacement": "${1}",
            }
        )
    else:
        rules.append({"target_label": "job", "replacement": f"{key.namespace}/{key.name}"})
    if job_label:
        rules.append(
            {
                "source_labels": [f"{label}_{sanitize_label_name(job_label)}"],
                "target_label": "job",
                "regex": "(.+)",
                "replacement": "${1}",
            }
        )
    if port:
        rules.append({"target_label": "endpoint", "replacement": port})
    return rules
