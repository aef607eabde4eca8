"""The operator's benchmark inputs: many ServiceMonitors across many namespaces, deterministic.

Each monitor looks like a real application's: a two-label selector, two endpoints (metrics and a
sidecar's), intervals, a path, a relabeling and a metric relabeling, so a job is about the size that
kube-prometheus' monitors give.
"""

from __future__ import annotations

from typing import Any

import yaml

PC_NAMESPACE = "monitoring"
PC_NAME = "main"


def namespaces(count: int) -> list[dict[str, Any]]:
    """``count`` application namespaces plus the PrometheusConfig's own."""
    names = [PC_NAMESPACE, *(f"team-{i:03d}" for i in range(count))]
    return [
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": n, "labels": {"kubernetes.io/metadata.name": n, "monitoring": "on"}},
        }
        for n in names
    ]


def prometheus_config() -> dict[str, Any]:
    """Selects every ServiceMonitor labelled for it, in every namespace labelled monitoring=on."""
    return {
        "apiVersion": "reloader.dev/v1alpha1",
        "kind": "PrometheusConfig",
        "metadata": {"name": PC_NAME, "namespace": PC_NAMESPACE, "uid": "pc-uid", "generation": 1},
        "spec": {
            "serviceMonitorSelector": {"matchLabels": {"release": "main"}},
            "serviceMonitorNamespaceSelector": {"matchLabels": {"monitoring": "on"}},
            "scrapeInterval": "30s",
            "externalLabels": {"cluster": "bench", "replica": "$(POD_NAME)"},
        },
    }


def service_monitor(index: int, namespace_count: int, *, revision: int = 0) -> dict[str, Any]:
    """The ``index``-th monitor; ``revision`` changes its content (a user edit) deterministically."""
    ns = f"team-{index % namespace_count:03d}"
    app = f"app-{index:05d}"
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "ServiceMonitor",
        "metadata": {
            "name": app,
            "namespace": ns,
            "labels": {"release": "main", "team": ns},
        },
        "spec": {
            "selector": {"matchLabels": {"app.kubernetes.io/name": app, "app.kubernetes.io/part-of": ns}},
            "jobLabel": "app.kubernetes.io/name",
            "targetLabels": ["app.kubernetes.io/version"],
            "endpoints": [
                {
                    "port": "http-metrics",
                    "path": "/metrics",
                    "interval": f"{15 + revision}s",
                    "scrapeTimeout": "10s",
                    "relabelings": [
                        {
                            "sourceLabels": ["__meta_kubernetes_pod_node_name"],
                            "targetLabel": "node",
                            "action": "replace",
                        }
                    ],
                    "metricRelabelings": [
                        {
                            "sourceLabels": ["__name__"],
                            "regex": "go_gc_.*|go_memstats_.*",
                            "action": "drop",
                        }
                    ],
                },
                {
                    "port": "sidecar-metrics",
                    "path": "/stats/prometheus",
                    "interval": "30s",
                    "honorLabels": True,
                },
            ],
        },
    }


def service_monitors(count: int, namespace_count: int) -> list[dict[str, Any]]:
    return [service_monitor(i, namespace_count) for i in range(count)]


def manifest(monitor_count: int, namespace_count: int) -> str:
    """Everything as one multi-document YAML file, as ``config-operator render`` reads it."""
    docs = [
        prometheus_config(),
        *namespaces(namespace_count),
        *service_monitors(monitor_count, namespace_count),
    ]
    dumper: Any = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    return yaml.dump_all(docs, Dumper=dumper, sort_keys=False)
