"""The reloader's metrics, with the names Thanos and prometheus-config-reloader use.

Existing alerts and dashboards (kube-prometheus's ConfigReloaderSidecarErrors reads
``reloader_last_reload_successful``) keep working. Each Reloader gets its own registry: there is no
global state, and tests can run several side by side.
"""

from __future__ import annotations

import platform
from dataclasses import dataclass

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
)

from reloader import __version__


@dataclass(frozen=True)
class Metrics:
    """Every metric of one Reloader, registered on ``registry``."""

    registry: CollectorRegistry
    reloads: Counter
    reloads_failed: Counter
    apply_operations: Counter
    apply_operations_failed: Counter
    watch_events: Counter
    watch_errors: Counter
    last_reload_successful: Gauge
    last_reload_success_timestamp_seconds: Gauge
    env_expansion_errors: Gauge
    watches: Gauge
    info: Gauge
    build_info: Gauge


def build_labels() -> dict[str, str]:
    """The labels of ``prometheus_config_reloader_build_info``, as Go's version collector names them.

    A wheel carries no git revision or branch, so those are empty (as in a Go build without ldflags);
    goversion holds the Python version, the runtime that plays Go's part here.
    """
    return {
        "version": __version__,
        "revision": "",
        "branch": "",
        "goversion": f"python{platform.python_version()}",
    }


def new_metrics(method: str) -> Metrics:
    """A fresh registry with the reloader metrics, ``reloader_info{method}`` set, and process_* metrics."""
    # Go's client exposes no ``_created`` series; dashboards and recording rules that sum by name
    # would see extra series otherwise. prometheus_client's switch is process-wide by design.
    disable_created_metrics()  # type: ignore[no-untyped-call]
    registry = CollectorRegistry(auto_describe=True)
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    # prometheus_client appends "_total" to counter names, so they are declared without it.
    metrics = Metrics(
        registry=registry,
        reloads=Counter("reloader_reloads", "Reloads triggered.", registry=registry),
        reloads_failed=Counter("reloader_reloads_failed", "Reloads that failed.", registry=registry),
        apply_operations=Counter(
            "reloader_config_apply_operations",
            "Config apply operations (render, write, hash).",
            registry=registry,
        ),
        apply_operations_failed=Counter(
            "reloader_config_apply_operations_failed",
            "Config apply operations that failed.",
            registry=registry,
        ),
        watch_events=Counter(
            "reloader_watch_events", "File events received from the watcher.", registry=registry
        ),
        watch_errors=Counter("reloader_watch_errors", "Errors of the file watcher.", registry=registry),
        last_reload_successful=Gauge(
            "reloader_last_reload_successful", "1 if the last reload succeeded, else 0.", registry=registry
        ),
        last_reload_success_timestamp_seconds=Gauge(
            "reloader_last_reload_success_timestamp_seconds",
            "Unix time of the last successful reload.",
            registry=registry,
        ),
        env_expansion_errors=Gauge(
            "reloader_config_environment_variable_expansion_errors",
            "Unset $(VAR) references in the last rendered config.",
            registry=registry,
        ),
        watches=Gauge("reloader_watches", "Number of watched files and directories.", registry=registry),
        info=Gauge("reloader_info", "Static information about the reloader.", ["method"], registry=registry),
        build_info=Gauge(
            "prometheus_config_reloader_build_info",
            "A metric with a constant '1' value labeled by version, revision, branch, and goversion.",
            list(build_labels()),
            registry=registry,
        ),
    )
    metrics.info.labels(method=method).set(1)
    metrics.build_info.labels(**build_labels()).set(1)
    return metrics
