"""``generate()``: a PrometheusConfig plus what it selects becomes prometheus.yaml. No I/O.

Two kinds of bad input, handled differently, as prometheus-operator does:
- a malformed monitor is skipped and listed in ``Generated.rejected`` with a reason;
- a malformed PrometheusConfig raises ``InvalidConfig`` (the caller keeps the last good Secret).

Determinism matters: every reconcile compares bytes, and a spurious change would reload Prometheus.
Monitors are sorted by namespace/name, user maps by key, and mappings are written in a fixed order of
our choosing (prometheus-operator's: ``job_name`` first), never in input order.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from config_operator.generate.additional import additional_scrape_configs
from config_operator.generate.alerting import alerting_section
from config_operator.generate.cache import Built, JobCache
from config_operator.generate.common import InvalidConfig, Rejected
from config_operator.generate.deflate import compress as compress_segments
from config_operator.generate.endpoints import JobContext, monitor_jobs
from config_operator.generate.gate import Gates, spec_version
from config_operator.generate.globals import global_block, rule_files, with_replica_labeldrop
from config_operator.generate.limits import Enforced, apply_job_limits, enforced_limits, job_limits
from config_operator.generate.lookup import Lookup, Reference
from config_operator.generate.probes import probe_jobs
from config_operator.generate.remote_write import remote_write_section
from config_operator.generate.rules import RuleFiles, select_rule_files
from config_operator.generate.scrape_classes import scrape_classes
from config_operator.generate.selection import selects
from config_operator.generate.sharding import shard_additional_job, shard_monitor_job, shards_of
from config_operator.generate.spec import (
    DEFAULT_SCRAPE_INTERVAL,
    duration_field,
    selector_field,
    validate_spec,
)
from config_operator.generate.tenancy import Tenancy, enforce_on_job, monitor_as_seen, tenancy_of
from config_operator.generate.versions import spec_version as target_version
from config_operator.resources import (
    ConfigMap,
    Namespace,
    ObjectKey,
    PodMonitor,
    Probe,
    PrometheusConfig,
    PrometheusRule,
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
    probes: int = 0
    """Probes selected and accepted (rejected ones are in ``rejected``, after the PodMonitors)."""
    rules: RuleFiles | None = None
    """The selected PrometheusRules' rule files and ConfigMaps; None when spec.ruleSelector is nil (no
    rule ConfigMaps at all: stale ones go)."""
    warnings: tuple[str, ...] = ()
    """Fields left out (the target version lacks them, or prometheus-operator ignores them), one line each."""
    tls_assets: Mapping[str, str] = field(default_factory=dict)
    """TLS files of the accepted monitors, by file name: the tls-assets Secrets' data."""


def generate(
    pc: PrometheusConfig,
    service_monitors: Sequence[ServiceMonitor],
    pod_monitors: Sequence[PodMonitor],
    namespaces: Sequence[Namespace],
    secrets: Sequence[Secret],
    *,
    configmaps: Sequence[ConfigMap] = (),
    prometheus_rules: Sequence[PrometheusRule] = (),
    probes: Sequence[Probe] = (),
    cache: JobCache | None = None,
    lookup: Lookup | None = None,
) -> Generated:
    """The prometheus.yaml for ``pc``; raises InvalidConfig when ``pc`` itself is malformed.

    ``namespaces`` give the labels that namespace selectors match (a namespace not listed has no
    labels); ``secrets`` and ``configmaps`` are those that the spec and the monitors may reference,
    read only through one ``Lookup``. ``cache`` (one per PrometheusConfig, kept by the caller) keeps
    each monitor's serialized jobs for the next call; the bytes are the same with or without it.
    """
    # A caller's own Lookup (instead of secrets and configmaps) keeps what was asked for even when
    # the PrometheusConfig turns out invalid: the reconciler fetches those and tries again.
    lookup = lookup if lookup is not None else Lookup(secrets, configmaps)
    spec = validate_spec(pc)
    gates = Gates(spec_version(spec))
    pc_key = ObjectKey.of(pc)
    ns_labels = {ObjectKey.of(ns).name: labels_of(ns) for ns in namespaces}
    global_interval = duration_field(spec, "scrapeInterval", DEFAULT_SCRAPE_INTERVAL)
    shards = shards_of(spec)
    tenancy = tenancy_of(spec)
    limits = enforced_limits(spec)

    config: dict[str, Any] = {"global": global_block(spec, global_interval, pc_key, gates)}
    if spec.get("ruleFiles") is not None:
        config["rule_files"] = rule_files(spec["ruleFiles"])
    rules = _rules(spec, pc_key, prometheus_rules, ns_labels)
    if rules is not None:
        config["rule_files"] = [*config.get("rule_files", []), *rules.rule_files]
    alerting = alerting_section(spec, pc_key.namespace, lookup)

    job_context = JobContext(
        global_interval,
        lookup,
        target_version(spec),
        scrape_classes(spec),
        _discovery_role(spec),
        _deny_file_access(spec),
    )
    jobs_cache = JobCache() if cache is None else cache
    # Everything of the PrometheusConfig the job builders read is in the spec: it keys every cached
    # job. A spec change rebuilds them all (rare); a monitor change rebuilds its own (the hot path).
    context = json.dumps(spec, sort_keys=True, default=str)
    fragments: list[bytes] = []
    job_names: list[str] = []
    rejected: list[Rejected] = []
    tls_assets: dict[str, str] = {}
    counts = {"ServiceMonitor": 0, "PodMonitor": 0, "Probe": 0}
    groups: tuple[tuple[str, Sequence[Any], str, str], ...] = (
        ("ServiceMonitor", service_monitors, "serviceMonitorSelector", "serviceMonitorNamespaceSelector"),
        ("PodMonitor", pod_monitors, "podMonitorSelector", "podMonitorNamespaceSelector"),
        ("Probe", probes, "probeSelector", "probeNamespaceSelector"),
    )
    plan = _JobPlan(job_context, tenancy, limits, shards, gates.version)
    for kind, monitors, sel_field, ns_sel_field in groups:
        selector = selector_field(spec, sel_field)
        ns_selector = selector_field(spec, ns_sel_field)
        # Everything selects() reads besides the monitor and its namespace's labels.
        selection = repr((selector, ns_selector, pc_key.namespace))
        for identity, monitor in sorted(((_identity(m), m) for m in monitors), key=_first):
            decide = partial(
                selects, selector, ns_selector, pc_key.namespace, ns_labels, monitor, checked=True
            )
            labels = ns_labels.get(identity[0], _NO_LABELS)
            if not jobs_cache.selected(kind, identity, monitor, selection, labels, decide):
                continue
            build = partial(plan.build, kind, monitor, ObjectKey(*identity))
            fragment = jobs_cache.fragment(kind, identity, monitor, context, lookup, build)
            for warning in fragment.warnings:
                gates.warn(warning)
            if fragment.rejected is not None:
                rejected.append(Rejected(kind, *identity, fragment.rejected))
                continue
            counts[kind] += 1
            fragments.append(fragment.yaml)
            job_names.extend(fragment.job_names)
            tls_assets.update(fragment.tls_files)

    additional = [
        shard_additional_job(job, shards) for job in additional_scrape_configs(spec, pc_key.namespace, lookup)
    ]
    _check_unique_job_names(({"job_name": n} for n in job_names), additional)
    if additional:
        fragments.append(jobs_cache.emitter.dump(additional))
    config["scrape_configs"] = _FRAGMENTS
    if alerting is not None:
        config["alerting"] = with_replica_labeldrop(alerting, spec)
    remote_write = remote_write_section(spec, pc_key.namespace, lookup, gates)
    if remote_write:
        config["remote_write"] = remote_write
    jobs_cache.sweep()
    return Generated(
        config=_assemble(config, fragments, jobs_cache),
        service_monitors=counts["ServiceMonitor"],
        pod_monitors=counts["PodMonitor"],
        rejected=tuple(rejected),
        references=lookup.references,
        probes=counts["Probe"],
        rules=rules,
        warnings=tuple(gates.warnings),
        tls_assets=tls_assets,
    )


@dataclass(frozen=True)
class _JobPlan:
    """How a monitor's jobs are built: from the monitor and these spec-derived settings alone."""

    context: JobContext
    tenancy: Tenancy
    limits: Enforced
    shards: int
    version: tuple[int, int, int]

    def build(self, kind: str, monitor: Mapping[str, Any], key: ObjectKey, lookup: Lookup) -> Built:
        """The finished jobs; Secrets and ConfigMaps only through ``lookup`` (the cache records them)."""
        gates = Gates(self.version)  # this monitor's warnings only: a cached fragment replays them
        seen = monitor_as_seen(monitor, self.tenancy)
        tls_files: Mapping[str, str] = {}
        if kind == "Probe":
            jobs = probe_jobs(monitor, self.context.global_interval)
        else:
            built = monitor_jobs(kind, seen, self.context, lookup)
            jobs, tls_files = built.jobs, built.tls_files
            for warning in built.warnings:
                gates.warn(f"{kind} {key}: {warning}")
        # A Probe carries no limits of its own here, but the enforced ones still apply.
        own_limits = job_limits(seen.get("spec") or {}, self.limits, gates, f"{kind} {key}")
        for job in jobs:
            # What the PrometheusConfig imposes, in prometheus-operator's order: the namespace label
            # after the monitor's relabelings, the limits, and sharding last of all.
            enforce_on_job(job, kind, key, self.tenancy)
            apply_job_limits(job, own_limits)
            shard_monitor_job(job, self.shards, "__param_target" if kind == "Probe" else "__address__")
        return Built(jobs, tls_files, tuple(gates.warnings))


def _first(pair: tuple[tuple[str, str], Any]) -> tuple[str, str]:
    return pair[0]


def _identity(obj: Mapping[str, Any]) -> tuple[str, str]:
    """ObjectKey.of's (namespace, name), as a tuple: sorting 5,000 of them stays in C."""
    meta = obj.get("metadata")
    if not isinstance(meta, Mapping):
        meta = {}
    return (str(meta.get("namespace") or ""), str(meta.get("name") or ""))


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


def _rules(
    spec: Mapping[str, Any],
    pc_key: ObjectKey,
    prometheus_rules: Sequence[PrometheusRule],
    ns_labels: Mapping[str, Mapping[str, str]],
) -> RuleFiles | None:
    selector = selector_field(spec, "ruleSelector")
    ns_selector = selector_field(spec, "ruleNamespaceSelector")
    if selector is None:  # as prometheus-operator: no rule files at all, not even empty ones
        return None
    return select_rule_files(
        pc_key.namespace, pc_key.name, selector, ns_selector, prometheus_rules, ns_labels
    )


def compress(config: bytes) -> bytes:
    """gzip with mtime 0 and no file name, in segments that a change compresses again one by one
    (``deflate``): the same config always gives the same bytes, as ``JobCache.compress`` does."""
    return compress_segments(config)


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


def _check_unique_job_names(
    generated: Iterable[Mapping[str, Any]], additional: Iterable[Mapping[str, Any]]
) -> None:
    # Only generated names are quoted: a name from the Secret is its content, and the message goes
    # into an Event and the status, which more people can read than the Secret.
    seen: dict[str, int | None] = {}
    for job in generated:
        name = job["job_name"]
        if name in seen:
            raise InvalidConfig(f"duplicate job_name {name!r}")
        seen[name] = None
    for i, job in enumerate(additional):
        name = job["job_name"]
        if name in seen:
            first = seen[name]
            if first is None:
                raise InvalidConfig(f"duplicate job_name {name!r} (check spec.additionalScrapeConfigs)")
            raise InvalidConfig(
                f"spec.additionalScrapeConfigs: scrape config {i} has the job_name of scrape config {first}"
            )
        seen[name] = i
