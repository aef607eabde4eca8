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
from dataclasses import dataclass
from functools import partial
from typing import Any

from config_operator.generate.additional import additional_scrape_configs
from config_operator.generate.alerting import alerting_section
from config_operator.generate.cache import Build, JobCache
from config_operator.generate.common import InvalidConfig, Rejected
from config_operator.generate.endpoints import monitor_jobs
from config_operator.generate.globals import global_block, rule_files
from config_operator.generate.lookup import Lookup, Reference
from config_operator.generate.selection import selects
from config_operator.generate.spec import (
    DEFAULT_SCRAPE_INTERVAL,
    duration_field,
    selector_field,
    validate_spec,
)
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


def generate(
    pc: PrometheusConfig,
    service_monitors: Sequence[ServiceMonitor],
    pod_monitors: Sequence[PodMonitor],
    namespaces: Sequence[Namespace],
    secrets: Sequence[Secret],
    *,
    configmaps: Sequence[ConfigMap] = (),
    cache: JobCache | None = None,
) -> Generated:
    """The prometheus.yaml for ``pc``; raises InvalidConfig when ``pc`` itself is malformed.

    ``namespaces`` give the labels that namespace selectors match (a namespace not listed has no
    labels); ``secrets`` and ``configmaps`` are those that the spec and the monitors may reference,
    read only through one ``Lookup``. ``cache`` (one per PrometheusConfig, kept by the caller) keeps
    each monitor's serialized jobs for the next call; the bytes are the same with or without it.
    """
    lookup = Lookup(secrets, configmaps)
    spec = validate_spec(pc)
    pc_key = ObjectKey.of(pc)
    ns_labels = {ObjectKey.of(ns).name: labels_of(ns) for ns in namespaces}
    global_interval = duration_field(spec, "scrapeInterval", DEFAULT_SCRAPE_INTERVAL)
    jobs_cache = JobCache() if cache is None else cache
    # Everything of the PrometheusConfig that monitor_jobs reads: part of each cached job's key.
    context = (global_interval,)

    config: dict[str, Any] = {"global": global_block(spec, global_interval)}
    if spec.get("ruleFiles") is not None:
        config["rule_files"] = rule_files(spec["ruleFiles"])
    alerting = alerting_section(spec["alerting"]) if spec.get("alerting") is not None else None

    fragments: list[bytes] = []
    job_names: list[str] = []
    rejected: list[Rejected] = []
    counts = {"ServiceMonitor": 0, "PodMonitor": 0}
    groups: tuple[tuple[str, Sequence[Any], str, str], ...] = (
        ("ServiceMonitor", service_monitors, "serviceMonitorSelector", "serviceMonitorNamespaceSelector"),
        ("PodMonitor", pod_monitors, "podMonitorSelector", "podMonitorNamespaceSelector"),
    )
    for kind, monitors, sel_field, ns_sel_field in groups:
        selector = selector_field(spec, sel_field)
        ns_selector = selector_field(spec, ns_sel_field)
        # Everything selects() reads besides the monitor and its namespace's labels.
        selection = repr((selector, ns_selector, pc_key.namespace))
        for identity, monitor in sorted(((_identity(m), m) for m in monitors), key=_first):
            decide = partial(selects, selector, ns_selector, pc_key.namespace, ns_labels, monitor)
            labels = ns_labels.get(identity[0], _NO_LABELS)
            if not jobs_cache.selected(kind, identity, monitor, selection, labels, decide):
                continue
            build = _builder(kind, monitor, context)
            fragment = jobs_cache.fragment(kind, identity, monitor, context, lookup, build)
            if fragment.rejected is not None:
                rejected.append(Rejected(kind, *identity, fragment.rejected))
                continue
            counts[kind] += 1
            fragments.append(fragment.yaml)
            job_names.extend(fragment.job_names)

    for job in additional_scrape_configs(spec, pc_key.namespace, lookup):
        fragments.append(jobs_cache.emitter.dump([job]))
        job_names.append(job["job_name"])
    _check_unique_job_names(job_names)
    config["scrape_configs"] = _FRAGMENTS
    if alerting is not None:
        config["alerting"] = alerting
    jobs_cache.sweep()
    return Generated(
        config=_assemble(config, fragments, jobs_cache),
        service_monitors=counts["ServiceMonitor"],
        pod_monitors=counts["PodMonitor"],
        rejected=tuple(rejected),
        references=lookup.references,
    )


def _first(pair: tuple[tuple[str, str], Any]) -> tuple[str, str]:
    return pair[0]


def _identity(obj: Mapping[str, Any]) -> tuple[str, str]:
    """ObjectKey.of's (namespace, name), as a tuple: sorting 5,000 of them stays in C."""
    meta = obj.get("metadata")
    if not isinstance(meta, Mapping):
        meta = {}
    return (str(meta.get("namespace") or ""), str(meta.get("name") or ""))


def _builder(kind: str, monitor: Mapping[str, Any], context: tuple[str]) -> Build:
    """How to build the monitor's jobs, from the monitor and ``context`` alone.

    A job builder must read nothing of the PrometheusConfig that is not in ``context`` (or a cached
    job would outlive a change to it), and Secrets and ConfigMaps only through the ``lookup`` it is
    given (which records their versions for the cache); it raises Reject for a malformed monitor.
    """
    (global_interval,) = context

    def build(lookup: Lookup) -> list[dict[str, Any]]:
        return monitor_jobs(kind, monitor, global_interval)

    return build


_NO_LABELS: Mapping[str, str] = {}
# Stands for the scrape jobs in ``config`` until _assemble writes their fragments there.
_FRAGMENTS: Any = object()


def _assemble(config: Mapping[str, Any], fragments: Sequence[bytes], cache: JobCache) -> bytes:
    """``dump_yaml(config)``, with the serialized jobs put in place of ``_FRAGMENTS``.

    A top-level block mapping is its entries one after the other, and a top-level block sequence is
    written at the same indentation as one under a top-level key: so the pieces join into the bytes
    that dumping the whole would give.
    """
    parts: list[bytes] = []
    for key, value in config.items():
        if value is _FRAGMENTS:
            parts.append(f"{key}:\n".encode() if fragments else f"{key}: []\n".encode())
            parts.extend(fragments)
        else:
            parts.append(cache.emitter.dump({key: value}))
    return b"".join(parts)


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


def _check_unique_job_names(names: Iterable[str]) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise InvalidConfig(f"duplicate job_name {name!r} (check spec.additionalScrapeConfigs)")
        seen.add(name)
