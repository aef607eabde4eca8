"""``generate()``: a PrometheusConfig plus what it selects becomes prometheus.yaml. No I/O.

Two kinds of bad input, handled differently, as prometheus-operator does:
- a malformed monitor is skipped and listed in ``Generated.rejected`` with a reason;
- a malformed PrometheusConfig raises ``InvalidConfig`` (the caller keeps the last good Secret).

Determinism matters: every reconcile compares bytes, and a spurious change would reload Prometheus.
Monitors are sorted by namespace/name, user maps by key, and mappings are written in a fixed order of
our choosing (prometheus-operator's: ``job_name`` first), never in input order.
"""

from __future__ import annotations

import gzip
import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from config_operator.generate.additional import additional_scrape_configs
from config_operator.generate.alerting import alerting_section
from config_operator.generate.common import InvalidConfig, Reject, Rejected, dump_yaml
from config_operator.generate.endpoints import JobContext, monitor_jobs
from config_operator.generate.globals import global_block, rule_files
from config_operator.generate.lookup import Lookup, Reference
from config_operator.generate.scrape_classes import scrape_classes
from config_operator.generate.selection import selects
from config_operator.generate.spec import (
    DEFAULT_SCRAPE_INTERVAL,
    duration_field,
    selector_field,
    validate_spec,
)
from config_operator.generate.versions import spec_version
from config_operator.resources import (
    ConfigMap,
    Namespace,
    ObjectKey,
    PodMonitor,
    PrometheusConfig,
    Secret,
    ServiceMonitor,
    labels_of,
)


@dataclass(frozen=True)
class Generated:
    """The result of one generation."""

    config: bytes
    """prometheus.yaml, UTF-8."""
    service_monitors: int
    """ServiceMonitors selected and accepted."""
    pod_monitors: int
    """PodMonitors selected and accepted."""
    rejected: tuple[Rejected, ...]
    """Selected monitors that were skipped: ServiceMonitors, then PodMonitors, each by namespace/name."""
    references: frozenset[Reference] = frozenset()
    """Every Secret and ConfigMap generation asked for: what the reconciler must watch."""
    tls_assets: Mapping[str, str] = field(default_factory=dict)
    """TLS files of the accepted monitors, by file name: the tls-assets Secrets' data."""
    warnings: tuple[str, ...] = ()
    """What the version gates left out of accepted monitors, one line each."""


def generate(
    pc: PrometheusConfig,
    service_monitors: Sequence[ServiceMonitor],
    pod_monitors: Sequence[PodMonitor],
    namespaces: Sequence[Namespace],
    secrets: Sequence[Secret],
    *,
    configmaps: Sequence[ConfigMap] = (),
    lookup: Lookup | None = None,
) -> Generated:
    """The prometheus.yaml for ``pc``; raises InvalidConfig when ``pc`` itself is malformed.

    ``namespaces`` give the labels that namespace selectors match (a namespace not listed has no
    labels); ``secrets`` and ``configmaps`` are those that the spec and the monitors may reference,
    read only through one ``Lookup``.
    """
    # A caller's own Lookup (instead of secrets and configmaps) keeps what was asked for even when
    # the PrometheusConfig turns out invalid: the reconciler fetches those and tries again.
    lookup = lookup if lookup is not None else Lookup(secrets, configmaps)
    spec = validate_spec(pc)
    pc_key = ObjectKey.of(pc)
    ns_labels = {ObjectKey.of(ns).name: labels_of(ns) for ns in namespaces}
    global_interval = duration_field(spec, "scrapeInterval", DEFAULT_SCRAPE_INTERVAL)

    config: dict[str, Any] = {"global": global_block(spec, global_interval)}
    if spec.get("ruleFiles") is not None:
        config["rule_files"] = rule_files(spec["ruleFiles"])
    alerting = alerting_section(spec["alerting"]) if spec.get("alerting") is not None else None

    job_context = JobContext(
        global_interval,
        lookup,
        spec_version(spec),
        scrape_classes(spec),
        _discovery_role(spec),
        _deny_file_access(spec),
    )
    scrape_configs: list[dict[str, Any]] = []
    rejected: list[Rejected] = []
    tls_assets: dict[str, str] = {}
    warnings: list[str] = []
    counts = {"ServiceMonitor": 0, "PodMonitor": 0}
    groups: tuple[tuple[str, Sequence[Any], str, str], ...] = (
        ("ServiceMonitor", service_monitors, "serviceMonitorSelector", "serviceMonitorNamespaceSelector"),
        ("PodMonitor", pod_monitors, "podMonitorSelector", "podMonitorNamespaceSelector"),
    )
    for kind, monitors, sel_field, ns_sel_field in groups:
        selector = selector_field(spec, sel_field)
        ns_selector = selector_field(spec, ns_sel_field)
        for monitor in sorted(monitors, key=ObjectKey.of):
            key = ObjectKey.of(monitor)
            if not selects(selector, ns_selector, pc_key.namespace, ns_labels, monitor):
                continue
            try:
                jobs = monitor_jobs(kind, monitor, job_context)
            except Reject as exc:
                rejected.append(Rejected(kind, key.namespace, key.name, str(exc)))
                continue
            counts[kind] += 1
            scrape_configs.extend(jobs.jobs)
            tls_assets.update(jobs.tls_files)
            warnings.extend(f"{kind} {key}: {w}" for w in jobs.warnings)

    scrape_configs.extend(additional_scrape_configs(spec, pc_key.namespace, lookup))
    _check_unique_job_names(scrape_configs)
    config["scrape_configs"] = scrape_configs
    if alerting is not None:
        config["alerting"] = alerting
    return Generated(
        config=dump_yaml(config),
        service_monitors=counts["ServiceMonitor"],
        pod_monitors=counts["PodMonitor"],
        rejected=tuple(rejected),
        references=lookup.references,
        tls_assets=tls_assets,
        warnings=tuple(warnings),
    )


def compress(config: bytes) -> bytes:
    """gzip with mtime 0 and no file name, so the same config always gives the same bytes."""
    return gzip.compress(config, compresslevel=9, mtime=0)


def config_hash(config: bytes) -> str:
    """sha256 hex of the (uncompressed) config."""
    return hashlib.sha256(config).hexdigest()


def secret_name(pc: PrometheusConfig) -> str:
    """spec.secretName, or ``prometheus-<name>``."""
    spec: Any = pc.get("spec") or {}
    name = spec.get("secretName") if isinstance(spec, Mapping) else None
    if isinstance(name, str) and name:
        return name
    return f"prometheus-{ObjectKey.of(pc).name}"


def _discovery_role(spec: Mapping[str, Any]) -> str:
    role = spec.get("serviceDiscoveryRole")
    if role is None:
        return "Endpoints"
    if role not in ("Endpoints", "EndpointSlice"):
        raise InvalidConfig(f"spec.serviceDiscoveryRole: {role!r} is not Endpoints or EndpointSlice")
    return str(role)


def _deny_file_access(spec: Mapping[str, Any]) -> bool:
    value = spec.get("arbitraryFSAccessThroughSMs")
    if value is None:
        return False
    if (
        not isinstance(value, Mapping)
        or set(value) - {"deny"}
        or not isinstance(value.get("deny", False), bool)
    ):
        raise InvalidConfig("spec.arbitraryFSAccessThroughSMs may hold only deny (a boolean)")
    return bool(value.get("deny", False))


def _check_unique_job_names(jobs: Iterable[Mapping[str, Any]]) -> None:
    seen: set[str] = set()
    for job in jobs:
        name = job["job_name"]
        if name in seen:
            raise InvalidConfig(f"duplicate job_name {name!r} (check spec.additionalScrapeConfigs)")
        seen.add(name)
