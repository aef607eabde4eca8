"""Config generation: a PrometheusConfig plus the monitors it selects become prometheus.yaml.

Pure functions, no I/O. The scrape jobs follow prometheus-operator's for the supported subset (job
names, kubernetes_sd_configs restricted to namespaces, keep rules on the selector and port, the standard
target labels, jobLabel/targetLabels/podTargetLabels, user relabelings last) so that dashboards and
alerts written against prometheus-operator keep working.

Two kinds of bad input, handled differently, as prometheus-operator does:
- a malformed monitor is skipped and listed in ``Generated.rejected`` with a reason;
- a malformed PrometheusConfig raises ``InvalidConfig`` (the caller keeps the last good Secret).

Determinism matters: every reconcile compares bytes, and a spurious change would reload Prometheus.
Monitors are sorted by namespace/name, user maps by key, and mappings are written in a fixed order of
our choosing (prometheus-operator's: ``job_name`` first), never in input order.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import yaml

from config_operator import selectors
from config_operator.resources import (
    Namespace,
    ObjectKey,
    PodMonitor,
    PrometheusConfig,
    Secret,
    ServiceMonitor,
    labels_of,
)

SECRET_KEY = "prometheus.yaml.gz"
DEFAULT_SCRAPE_INTERVAL = "30s"
DEFAULT_EVALUATION_INTERVAL = "30s"

SPEC_FIELDS = frozenset(
    {
        "serviceMonitorSelector",
        "serviceMonitorNamespaceSelector",
        "podMonitorSelector",
        "podMonitorNamespaceSelector",
        "scrapeInterval",
        "scrapeTimeout",
        "evaluationInterval",
        "externalLabels",
        "ruleFiles",
        "alerting",
        "additionalScrapeConfigs",
        "secretName",
        "paused",
    }
)
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
RELABEL_FIELDS = frozenset(
    {"sourceLabels", "separator", "targetLabel", "regex", "modulus", "replacement", "action"}
)
# Prometheus 2.42's relabel actions (keepequal/dropequal arrived in 2.41).
RELABEL_ACTIONS = frozenset(
    {
        "replace",
        "keep",
        "drop",
        "hashmod",
        "labelmap",
        "labeldrop",
        "labelkeep",
        "lowercase",
        "uppercase",
        "keepequal",
        "dropequal",
    }
)
SCHEMES = frozenset({"http", "https"})

_DURATION = re.compile(r"^(?:(\d+)y)?(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?(?:(\d+)ms)?$")
_DURATION_UNITS_MS = (
    365 * 24 * 3600_000,
    7 * 24 * 3600_000,
    24 * 3600_000,
    3600_000,
    60_000,
    1000,
    1,
)
_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
# Prometheus accepts $1 / ${name} references in a replace rule's target_label.
_REPLACE_TARGET = re.compile(r"^(?:(?:[a-zA-Z_]|\$(?:\{\w+\}|\w+))+\w*)+$")
# Go's RE2 has no lookaround or backreferences; Python's re would accept them, Prometheus would not.
_NOT_RE2 = re.compile(r"\(\?<?[=!]|\\[1-9]")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


class InvalidConfig(ValueError):
    """The PrometheusConfig itself is malformed; the message is one line naming the field."""


class _Reject(ValueError):
    """A monitor is malformed; becomes a Rejected entry, never escapes this module."""


@dataclass(frozen=True)
class Rejected:
    """A selected monitor that was skipped, and why."""

    kind: str
    namespace: str
    name: str
    reason: str

    def __str__(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}: {self.reason}"


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


# --- public API -------------------------------------------------------------------------------------


def generate(
    pc: PrometheusConfig,
    service_monitors: Sequence[ServiceMonitor],
    pod_monitors: Sequence[PodMonitor],
    namespaces: Sequence[Namespace],
    secrets: Sequence[Secret],
) -> Generated:
    """The prometheus.yaml for ``pc``; raises InvalidConfig when ``pc`` itself is malformed.

    ``namespaces`` give the labels that namespace selectors match (a namespace not listed has no
    labels); ``secrets`` are those that ``spec.additionalScrapeConfigs`` may reference.
    """
    spec = _spec(pc)
    pc_key = ObjectKey.of(pc)
    ns_labels = {ObjectKey.of(ns).name: labels_of(ns) for ns in namespaces}
    global_interval = _duration_field(spec, "scrapeInterval", DEFAULT_SCRAPE_INTERVAL)

    config: dict[str, Any] = {"global": _global_block(spec, global_interval)}
    if spec.get("ruleFiles") is not None:
        config["rule_files"] = _rule_files(spec["ruleFiles"])
    alerting = _alerting(spec["alerting"]) if spec.get("alerting") is not None else None

    scrape_configs: list[dict[str, Any]] = []
    rejected: list[Rejected] = []
    counts = {"ServiceMonitor": 0, "PodMonitor": 0}
    groups: tuple[tuple[str, Sequence[Any], str, str], ...] = (
        ("ServiceMonitor", service_monitors, "serviceMonitorSelector", "serviceMonitorNamespaceSelector"),
        ("PodMonitor", pod_monitors, "podMonitorSelector", "podMonitorNamespaceSelector"),
    )
    for kind, monitors, sel_field, ns_sel_field in groups:
        selector = _selector_field(spec, sel_field)
        ns_selector = _selector_field(spec, ns_sel_field)
        for monitor in sorted(monitors, key=ObjectKey.of):
            key = ObjectKey.of(monitor)
            if not _selects(selector, ns_selector, pc_key.namespace, ns_labels, monitor):
                continue
            try:
                jobs = _monitor_jobs(kind, monitor, global_interval)
            except _Reject as exc:
                rejected.append(Rejected(kind, key.namespace, key.name, str(exc)))
                continue
            counts[kind] += 1
            scrape_configs.extend(jobs)

    scrape_configs.extend(_additional_scrape_configs(spec, pc_key.namespace, secrets))
    _check_unique_job_names(scrape_configs)
    config["scrape_configs"] = scrape_configs
    if alerting is not None:
        config["alerting"] = alerting
    return Generated(
        config=dump_yaml(config),
        service_monitors=counts["ServiceMonitor"],
        pod_monitors=counts["PodMonitor"],
        rejected=tuple(rejected),
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


def may_select(
    pc: PrometheusConfig,
    obj: ServiceMonitor | PodMonitor | Namespace | Mapping[str, Any],
    namespaces: Sequence[Namespace],
    *,
    kind: str | None = None,
) -> bool:
    """Could ``pc`` select ``obj`` (a ServiceMonitor, PodMonitor or Namespace)?

    Used to decide which PrometheusConfigs to enqueue when ``obj`` changes; errs on the side of True
    (a malformed ``pc`` answers True, so its reconcile reports the problem). List items carry no
    ``kind``, so pass ``kind=`` when the caller knows it; otherwise it is read from the object, then
    guessed from the spec.
    """
    kind = kind or _kind_of(obj)
    spec: Any = pc.get("spec") or {}
    if not isinstance(spec, Mapping):
        return True
    try:
        if kind == "Namespace":
            # A namespace's labels can move monitors in or out; only a nil namespace selector (own
            # namespace only) ignores them.
            return any(
                spec.get(f) is not None
                for f in ("serviceMonitorNamespaceSelector", "podMonitorNamespaceSelector")
            )
        prefix = "serviceMonitor" if kind == "ServiceMonitor" else "podMonitor"
        selector = _selector_field(spec, f"{prefix}Selector")
        ns_selector = _selector_field(spec, f"{prefix}NamespaceSelector")
    except InvalidConfig:
        return True
    ns_labels = {ObjectKey.of(ns).name: labels_of(ns) for ns in namespaces}
    return _selects(selector, ns_selector, ObjectKey.of(pc).namespace, ns_labels, obj)


def sanitize_label_name(name: str) -> str:
    """A Kubernetes label name as a Prometheus label-name suffix: every other character becomes ``_``."""
    return re.sub(r"[^a-zA-Z0-9_]", "_", name)


def parse_duration_ms(value: str) -> int:
    """A Prometheus duration (``30s``, ``1m30s``, ``500ms``) in milliseconds; ValueError if malformed."""
    if value == "0":  # Prometheus accepts a bare zero
        return 0
    match = _DURATION.match(value) if isinstance(value, str) else None
    if not value or match is None or not any(match.groups()):
        raise ValueError(f"not a valid duration: {value!r}")
    return sum(int(g) * unit for g, unit in zip(match.groups(), _DURATION_UNITS_MS, strict=True) if g)


def dump_yaml(data: Any) -> bytes:
    """YAML in the mappings' insertion order, with no aliases and no line wrapping."""
    text = yaml.dump(
        data,
        Dumper=_Dumper,
        sort_keys=False,
        default_flow_style=False,
        allow_unicode=True,
        width=1 << 30,
    )
    return text.encode()


# libyaml's emitter is about three times faster and writes the same bytes (the golden tests hold both
# to the same files); the pure-Python one is the fallback where PyYAML was built without it.
_BaseDumper: type[yaml.SafeDumper] = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


class _Dumper(_BaseDumper):  # type: ignore[valid-type,misc]
    # A shared list (say, the same sourceLabels twice) must not turn into &id001 anchors.
    def ignore_aliases(self, data: Any) -> bool:
        return True


# --- the PrometheusConfig ---------------------------------------------------------------------------


def _spec(pc: PrometheusConfig) -> Mapping[str, Any]:
    if not isinstance(pc, Mapping):
        raise InvalidConfig("PrometheusConfig must be a mapping")
    key = ObjectKey.of(pc)
    if not key.name or not key.namespace:
        raise InvalidConfig("PrometheusConfig needs metadata.name and metadata.namespace")
    spec: Any = pc.get("spec")
    if spec is None:
        spec = {}
    if not isinstance(spec, Mapping):
        raise InvalidConfig("spec must be a mapping")
    unknown = sorted(set(spec) - SPEC_FIELDS)
    if unknown:
        raise InvalidConfig(f"spec has unknown field(s): {', '.join(unknown)}")
    name = spec.get("secretName")
    if name is not None and (not isinstance(name, str) or not _DNS_SUBDOMAIN.match(name)):
        raise InvalidConfig(f"spec.secretName {name!r} is not a valid Secret name")
    if spec.get("paused") is not None and not isinstance(spec["paused"], bool):
        raise InvalidConfig("spec.paused must be a boolean")
    return spec


def _duration_field(spec: Mapping[str, Any], field: str, default: str) -> str:
    value = spec.get(field)
    if value is None:
        return default
    try:
        parse_duration_ms(value)
    except ValueError:
        raise InvalidConfig(f"spec.{field}: not a valid duration: {value!r}") from None
    return str(value)


def _selector_field(spec: Mapping[str, Any], field: str) -> Mapping[str, Any] | None:
    value = spec.get(field)
    if value is None:
        return None
    try:
        selectors.validate(value)
    except ValueError as exc:
        raise InvalidConfig(f"spec.{field}: {exc}") from None
    return value  # type: ignore[no-any-return]


def _global_block(spec: Mapping[str, Any], interval: str) -> dict[str, Any]:
    block: dict[str, Any] = {
        "evaluation_interval": _duration_field(spec, "evaluationInterval", DEFAULT_EVALUATION_INTERVAL),
        "scrape_interval": interval,
    }
    if spec.get("scrapeTimeout") is not None:
        timeout = _duration_field(spec, "scrapeTimeout", "")
        if parse_duration_ms(timeout) > parse_duration_ms(interval):
            raise InvalidConfig(
                f"spec.scrapeTimeout {timeout!r} is greater than spec.scrapeInterval {interval!r}"
            )
        block["scrape_timeout"] = timeout
    labels = spec.get("externalLabels")
    if labels is not None:
        if not isinstance(labels, Mapping):
            raise InvalidConfig("spec.externalLabels must be a mapping of label names to values")
        for k, v in labels.items():
            if not isinstance(k, str) or not _LABEL_NAME.match(k):
                raise InvalidConfig(f"spec.externalLabels: {k!r} is not a valid label name")
            if not isinstance(v, str):
                raise InvalidConfig(f"spec.externalLabels[{k}] must be a string")
        # $(VAR) values are left alone: the reloader expands them in each pod.
        block["external_labels"] = {k: labels[k] for k in sorted(labels)}
    return block


def _rule_files(value: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise InvalidConfig("spec.ruleFiles must be a list of non-empty strings")
    return list(value)


def _alerting(value: Any) -> dict[str, Any]:
    if not isinstance(value, Mapping) or set(value) - {"alertmanagers"}:
        raise InvalidConfig("spec.alerting must be a mapping with only 'alertmanagers'")
    entries = value.get("alertmanagers") or []
    if not isinstance(entries, list):
        raise InvalidConfig("spec.alerting.alertmanagers must be a list")
    out = []
    for i, entry in enumerate(entries):
        where = f"spec.alerting.alertmanagers[{i}]"
        if not isinstance(entry, Mapping):
            raise InvalidConfig(f"{where} must be a mapping")
        if "static" not in entry:
            # Anything else is a Prometheus alertmanager_config, passed through as given.
            out.append(_sorted_deep(entry))
            continue
        extra = sorted(set(entry) - {"static", "scheme", "pathPrefix", "apiVersion", "timeout"})
        if extra:
            raise InvalidConfig(f"{where}: unknown field(s) next to 'static': {', '.join(extra)}")
        targets = entry["static"]
        if not isinstance(targets, list) or not all(isinstance(t, str) and t for t in targets):
            raise InvalidConfig(f"{where}.static must be a list of host:port strings")
        am: dict[str, Any] = {}
        if entry.get("pathPrefix") is not None:
            am["path_prefix"] = str(entry["pathPrefix"])
        if entry.get("scheme") is not None:
            scheme = str(entry["scheme"]).lower()
            if scheme not in SCHEMES:
                raise InvalidConfig(f"{where}.scheme: unknown scheme {entry['scheme']!r}")
            am["scheme"] = scheme
        if entry.get("timeout") is not None:
            try:
                parse_duration_ms(entry["timeout"])
            except ValueError as exc:
                raise InvalidConfig(f"{where}.timeout: {exc}") from None
            am["timeout"] = entry["timeout"]
        if entry.get("apiVersion") is not None:
            if entry["apiVersion"] not in ("v1", "v2"):
                raise InvalidConfig(f"{where}.apiVersion must be v1 or v2")
            am["api_version"] = entry["apiVersion"]
        am["static_configs"] = [{"targets": list(targets)}]
        out.append(am)
    return {"alertmanagers": out}


def _additional_scrape_configs(
    spec: Mapping[str, Any], namespace: str, secrets: Sequence[Secret]
) -> list[dict[str, Any]]:
    ref = spec.get("additionalScrapeConfigs")
    if ref is None:
        return []
    if (
        not isinstance(ref, Mapping)
        or not isinstance(ref.get("name"), str)
        or not isinstance(ref.get("key"), str)
    ):
        raise InvalidConfig("spec.additionalScrapeConfigs needs 'name' and 'key' of a Secret")
    name, key = ref["name"], ref["key"]
    where = f"spec.additionalScrapeConfigs: Secret {namespace}/{name}"
    secret = next((s for s in secrets if ObjectKey.of(s) == ObjectKey(namespace, name)), None)
    if secret is None:
        raise InvalidConfig(f"{where} not found")
    raw = _secret_value(secret, key)
    if raw is None:
        raise InvalidConfig(f"{where} has no key {key!r}")
    try:
        parsed = yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark is not None else ""
        raise InvalidConfig(f"{where} key {key!r}: not valid YAML{at}") from None
    if parsed is None:
        return []
    if not isinstance(parsed, list) or not all(
        isinstance(j, dict) and isinstance(j.get("job_name"), str) for j in parsed
    ):
        raise InvalidConfig(f"{where} key {key!r}: must be a list of scrape configs, each with a job_name")
    return parsed


def _secret_value(secret: Secret, key: str) -> str | None:
    # stringData wins, as the API server merges it over data on write.
    string_data = secret.get("stringData") or {}
    if key in string_data:
        return str(string_data[key])
    data = secret.get("data") or {}
    if key not in data:
        return None
    try:
        return base64.b64decode(data[key], validate=True).decode()
    except (binascii.Error, UnicodeDecodeError, TypeError):
        raise InvalidConfig(
            f"Secret {ObjectKey.of(secret)} key {key!r} is not base64-encoded UTF-8"
        ) from None


def _check_unique_job_names(jobs: Iterable[Mapping[str, Any]]) -> None:
    seen: set[str] = set()
    for job in jobs:
        name = job["job_name"]
        if name in seen:
            raise InvalidConfig(f"duplicate job_name {name!r} (check spec.additionalScrapeConfigs)")
        seen.add(name)


def _sorted_deep(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _sorted_deep(value[k]) for k in sorted(value, key=str)}
    if isinstance(value, list):
        return [_sorted_deep(v) for v in value]
    return value


# --- selection --------------------------------------------------------------------------------------


def _kind_of(obj: Mapping[str, Any]) -> str:
    kind = obj.get("kind")
    if isinstance(kind, str) and kind:
        return kind
    # Namespaces have a spec too ({finalizers: [...]}); the endpoints lists tell monitors apart.
    spec = obj.get("spec")
    if isinstance(spec, Mapping) and "podMetricsEndpoints" in spec:
        return "PodMonitor"
    if isinstance(spec, Mapping) and "endpoints" in spec:
        return "ServiceMonitor"
    return "Namespace"


def _selects(
    selector: Mapping[str, Any] | None,
    ns_selector: Mapping[str, Any] | None,
    own_namespace: str,
    ns_labels: Mapping[str, Mapping[str, str]],
    monitor: Mapping[str, Any],
) -> bool:
    # A nil monitor selector selects nothing (prometheus-operator); a nil namespace selector means
    # the PrometheusConfig's own namespace.
    if selector is None:
        return False
    key = ObjectKey.of(monitor)
    if ns_selector is None:
        if key.namespace != own_namespace:
            return False
    elif not selectors.matches(ns_selector, ns_labels.get(key.namespace, {})):
        return False
    return selectors.matches(selector, labels_of(monitor))


# --- monitors ---------------------------------------------------------------------------------------


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


def _monitor_jobs(kind: str, monitor: Mapping[str, Any], global_interval: str) -> list[dict[str, Any]]:
    role = _ROLES[kind]
    spec = monitor.get("spec")
    if not isinstance(spec, Mapping):
        raise _Reject("spec must be a mapping")
    unknown = sorted(set(spec) - role.fields)
    if unknown:
        raise _Reject(f"unsupported field(s) in spec: {', '.join(unknown)}")
    selector = spec.get("selector")
    if selector is None:
        selector = {}
    try:
        selectors.validate(selector)
    except ValueError as exc:
        raise _Reject(f"spec.selector: {exc}") from None
    key = ObjectKey.of(monitor)
    sd = _sd_config(role, spec.get("namespaceSelector"), key.namespace)
    job_label = _opt_label_name(spec, "jobLabel")
    target_labels = _label_list(spec, "targetLabels")
    pod_target_labels = _label_list(spec, "podTargetLabels")
    endpoints = spec.get(role.endpoints_field)
    if not isinstance(endpoints, list) or not endpoints:
        raise _Reject(f"spec.{role.endpoints_field} must be a non-empty list")
    jobs = []
    for i, ep in enumerate(endpoints):
        where = f"spec.{role.endpoints_field}[{i}]"
        if not isinstance(ep, Mapping):
            raise _Reject(f"{where} must be a mapping")
        try:
            job = _endpoint_job(role, key, i, ep, sd, global_interval)
            job["relabel_configs"] = [
                *_generated_relabelings(role, key, ep, selector, job_label, target_labels, pod_target_labels),
                *_relabel_list(ep, "relabelings"),
            ]
            metric_relabelings = _relabel_list(ep, "metricRelabelings")
            if metric_relabelings:
                job["metric_relabel_configs"] = metric_relabelings
        except _Reject as exc:
            raise _Reject(f"{where}: {exc}") from None
        jobs.append(job)
    return jobs


def _sd_config(role: _Role, ns_selector: Any, own_namespace: str) -> dict[str, Any]:
    sd: dict[str, Any] = {"role": role.sd_role}
    if ns_selector is None:
        ns_selector = {}
    if not isinstance(ns_selector, Mapping) or set(ns_selector) - {"any", "matchNames"}:
        raise _Reject("spec.namespaceSelector may hold only 'any' and 'matchNames'")
    if ns_selector.get("any") is True:
        return sd
    names = ns_selector.get("matchNames")
    if names:
        if not isinstance(names, list) or not all(isinstance(n, str) and n for n in names):
            raise _Reject("spec.namespaceSelector.matchNames must be a list of namespace names")
        sd["namespaces"] = {"names": list(names)}
    else:
        sd["namespaces"] = {"names": [own_namespace]}
    return sd


def _opt_label_name(spec: Mapping[str, Any], field: str) -> str | None:
    value = spec.get(field)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise _Reject(f"spec.{field} must be a string")
    return value


def _label_list(spec: Mapping[str, Any], field: str) -> list[str]:
    value = spec.get(field) or []
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise _Reject(f"spec.{field} must be a list of label names")
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
        raise _Reject(f"unsupported field(s): {', '.join(unknown)}")
    honor_labels = ep.get("honorLabels", False)
    if not isinstance(honor_labels, bool):
        raise _Reject("honorLabels must be a boolean")
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
                raise _Reject(f"{field}: {exc}") from None
    # prometheus-operator's check: the endpoint's timeout against its interval (or the global one).
    effective_interval = interval or global_interval
    if timeout is not None and parse_duration_ms(timeout) > parse_duration_ms(effective_interval):
        raise _Reject(f"scrapeTimeout {timeout!r} is greater than the scrape interval {effective_interval!r}")
    if interval is not None:
        job["scrape_interval"] = interval
    if timeout is not None:
        job["scrape_timeout"] = timeout
    path = ep.get("path")
    if path is not None:
        if not isinstance(path, str) or not path.startswith("/"):
            raise _Reject(f"path {path!r} must start with '/'")
        job["metrics_path"] = path
    params = ep.get("params")
    if params is not None:
        if not isinstance(params, Mapping) or not all(
            isinstance(k, str) and isinstance(v, list) and all(isinstance(x, str) for x in v)
            for k, v in params.items()
        ):
            raise _Reject("params must map names to lists of strings")
        job["params"] = {k: list(params[k]) for k in sorted(params)}
    scheme = ep.get("scheme")
    if scheme is not None:
        if not isinstance(scheme, str) or scheme.lower() not in SCHEMES:
            raise _Reject(f"unknown scheme {scheme!r} (want http or https)")
        job["scheme"] = scheme.lower()
    port = ep.get("port")
    if port is not None and (not isinstance(port, str) or not port):
        raise _Reject("port must be a non-empty port name")
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


def _relabel_list(ep: Mapping[str, Any], field: str) -> list[dict[str, Any]]:
    value = ep.get(field)
    if value is None:
        return []
    if not isinstance(value, list):
        raise _Reject(f"{field} must be a list")
    out = []
    for i, rc in enumerate(value):
        try:
            out.append(relabel_config(rc))
        except ValueError as exc:
            raise _Reject(f"{field}[{i}]: {exc}") from None
    return out


def relabel_config(rc: Any) -> dict[str, Any]:
    """A prometheus-operator RelabelConfig (camelCase) as Prometheus YAML, validated as Prometheus 2.42
    would; ValueError names the problem."""
    if not isinstance(rc, Mapping):
        raise ValueError("must be a mapping")
    unknown = sorted(set(rc) - RELABEL_FIELDS)
    if unknown:
        raise ValueError(f"unknown field(s): {', '.join(unknown)}")
    action = rc.get("action") or "replace"
    if not isinstance(action, str) or action.lower() not in RELABEL_ACTIONS:
        raise ValueError(f"unknown relabel action {action!r}")
    action = action.lower()
    source = rc.get("sourceLabels")
    if source is not None and (
        not isinstance(source, list) or not all(isinstance(s, str) and _LABEL_NAME.match(s) for s in source)
    ):
        raise ValueError(f"sourceLabels {source!r} must be a list of label names")
    regex = rc.get("regex")
    if regex is not None:
        if not isinstance(regex, str):
            raise ValueError("regex must be a string")
        _check_regex(regex)
    target = rc.get("targetLabel")
    modulus = rc.get("modulus")
    separator = rc.get("separator")
    replacement = rc.get("replacement")
    for field, v in (("targetLabel", target), ("separator", separator), ("replacement", replacement)):
        if v is not None and not isinstance(v, str):
            raise ValueError(f"{field} must be a string")
    if modulus is not None and (not isinstance(modulus, int) or isinstance(modulus, bool) or modulus < 0):
        raise ValueError("modulus must be a non-negative integer")
    if action in ("replace", "hashmod", "lowercase", "uppercase", "keepequal", "dropequal") and not target:
        raise ValueError(f"relabel action {action} needs a targetLabel")
    if target:
        pattern = _REPLACE_TARGET if action == "replace" else _LABEL_NAME
        if not pattern.match(target):
            raise ValueError(f"{target!r} is not a valid target label for action {action}")
    if action == "hashmod" and not modulus:
        raise ValueError("relabel action hashmod needs a modulus greater than 0")
    if action in ("labeldrop", "labelkeep", "keepequal", "dropequal"):
        extra = [
            f
            for f, v in (("modulus", modulus), ("separator", separator), ("replacement", replacement))
            if v is not None
        ]
        if action in ("labeldrop", "labelkeep"):
            extra += [f for f, v in (("sourceLabels", source), ("targetLabel", target)) if v]
        else:
            extra += ["regex"] if regex is not None else []
        if extra:
            raise ValueError(f"relabel action {action} takes no {', '.join(extra)}")

    out: dict[str, Any] = {}
    if source:
        out["source_labels"] = list(source)
    if separator is not None:
        out["separator"] = separator
    if target:
        out["target_label"] = target
    if regex is not None:
        out["regex"] = regex
    if modulus:
        out["modulus"] = modulus
    if replacement is not None:
        out["replacement"] = replacement
    out["action"] = action
    return out


def _check_regex(regex: str) -> None:
    if _NOT_RE2.search(regex):
        raise ValueError(f"regex {regex!r} uses lookaround or backreferences, which Prometheus (RE2) rejects")
    try:
        re.compile(regex)
    except re.error as exc:
        raise ValueError(f"invalid regex {regex!r}: {exc}") from None
