"""The operator's metrics, in a registry of their own per instance (tests run several in one process)."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector


@dataclass(frozen=True)
class OperatorMetrics:
    """Every metric the operator exports; ``create()`` registers them in a fresh registry."""

    registry: CollectorRegistry
    reconciles: Counter
    """config_operator_reconciles_total: reconciles run (successful or not)."""
    reconcile_errors: Counter
    """config_operator_reconcile_errors_total{reason}: failed reconciles (api: retried; invalid: bad spec)."""
    reconcile_duration: Histogram
    """config_operator_reconcile_duration_seconds."""
    secret_writes: Counter
    """config_operator_secret_writes_total{operation}: Secrets created or updated."""
    queue_depth: Gauge
    """config_operator_workqueue_depth: keys waiting for a worker."""
    watch_restarts: Counter
    """config_operator_watch_restarts_total{resource,reason}: closed, expired, inactive, error."""
    leader: Gauge
    """config_operator_leader: 1 while this instance runs the reconcile workers."""

    @classmethod
    def create(cls, *, process_metrics: bool = True) -> OperatorMetrics:
        """A new registry with every metric (and the process_* ones unless told otherwise)."""
        registry = CollectorRegistry()
        if process_metrics:
            ProcessCollector(registry=registry)
            PlatformCollector(registry=registry)
        return cls(
            registry=registry,
            reconciles=Counter(
                "config_operator_reconciles", "Reconciles of PrometheusConfigs.", registry=registry
            ),
            reconcile_errors=Counter(
                "config_operator_reconcile_errors",
                "Failed reconciles: api (retried with backoff) or invalid (the PrometheusConfig is malformed).",
                ["reason"],
                registry=registry,
            ),
            reconcile_duration=Histogram(
                "config_operator_reconcile_duration_seconds",
                "Time to reconcile one PrometheusConfig.",
                buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
                registry=registry,
            ),
            secret_writes=Counter(
                "config_operator_secret_writes",
                "Config Secrets written, by operation (create, update).",
                ["operation"],
                registry=registry,
            ),
            queue_depth=Gauge(
                "config_operator_workqueue_depth", "Keys waiting in the work queue.", registry=registry
            ),
            watch_restarts=Counter(
                "config_operator_watch_restarts",
                "Watches started again, by resource and reason (closed, closed_early, expired, inactive, error).",
                ["resource", "reason"],
                registry=registry,
            ),
            leader=Gauge(
                "config_operator_leader",
                "1 while this instance runs the reconcile workers.",
                registry=registry,
            ),
        )
