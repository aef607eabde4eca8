"""ServiceMonitor and PodMonitor endpoints as scrape jobs, the way prometheus-operator 0.93 writes them. No I/O.

Each job's keys come in prometheus-operator's order, with its generated relabelings (keep rules on the
selector and port, the standard target labels, jobLabel/targetLabels/podTargetLabels), then the scrape
class's relabelings, then the user's: dashboards and alerts written against prometheus-operator keep
working. A field the PrometheusConfig's version does not accept is left out with a warning
(``versions``); values from Secrets and ConfigMaps come through the Lookup (``assets``).

A malformed monitor raises ``Reject`` listing every problem found, not only the first.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from config_operator import selectors
from config_operator.generate import assets
from config_operator.generate.common import SCHEMES, Reject, parse_duration_ms
from config_operator.generate.limits import MONITOR_LIMIT_FIELDS
from config_operator.generate.lookup import Lookup
from config_operator.generate.relabel import relabel_config
from config_operator.generate.scrape_classes import (
    SCRAPE_PROTOCOLS,
    ScrapeClass,
    ScrapeClasses,
    merge_authorization,
    merge_tls,
)
from config_operator.generate.targets import TargetLabels, generated_relabelings, monitor_rules
from config_operator.generate.versions import DEFAULT_VERSION, Gates, Version, parse_version
from config_operator.resources import ObjectKey

_ENDPOINT_COMMON = frozenset(
    {
        "port",
        "targetPort",
        "path",
        "scheme",
        "params",
        "interval",
        "scrapeTimeout",
        "honorLabels",
        "honorTimestamps",
        "trackTimestampsStaleness",
        "relabelings",
        "metricRelabelings",
        "tlsConfig",
        "bearerTokenSecret",
        "authorization",
        "basicAuth",
        "oauth2",
        *assets.PROXY_FIELDS,
        "followRedirects",
        "enableHttp2",
        "filterRunning",
    }
)
SERVICE_MONITOR_ENDPOINT_FIELDS = _ENDPOINT_COMMON | {"bearerTokenFile"}
# What _http_client reads of an endpoint.
_HTTP_CLIENT_FIELDS = frozenset(
    {"tlsConfig", "bearerTokenFile", "bearerTokenSecret", "basicAuth", "oauth2", "authorization"}
    | assets.PROXY_FIELDS
)
POD_METRICS_ENDPOINT_FIELDS = _ENDPOINT_COMMON | {"portNumber"}
ENDPOINT_FIELDS = _ENDPOINT_COMMON
"""The endpoint fields both kinds have."""
_SPEC_COMMON = frozenset(
    {
        "selector",
        "namespaceSelector",
        "jobLabel",
        "podTargetLabels",
        "scrapeClass",
        "attachMetadata",
        "scrapeProtocols",
        "fallbackScrapeProtocol",
        "nativeHistogramBucketLimit",
        "nativeHistogramMinBucketFactor",
        "scrapeClassicHistograms",
        "convertClassicHistogramsToNHCB",
        "scrapeNativeHistograms",
    }
)
# The limits are read by generate.limits, and applied by config after the jobs are built.
SERVICE_MONITOR_FIELDS = (
    _SPEC_COMMON | MONITOR_LIMIT_FIELDS | {"endpoints", "targetLabels", "serviceDiscoveryRole"}
)
POD_MONITOR_FIELDS = _SPEC_COMMON | MONITOR_LIMIT_FIELDS | {"podMetricsEndpoints"}
DISCOVERY_ROLES = {"Endpoints": "endpoints", "EndpointSlice": "endpointslice"}


@dataclass(frozen=True)
class JobContext:
    """What every monitor's jobs depend on, from the PrometheusConfig."""

    global_interval: str
    lookup: Lookup = field(default_factory=Lookup)
    version: Version = field(default_factory=lambda: parse_version(DEFAULT_VERSION))
    classes: ScrapeClasses = field(default_factory=ScrapeClasses)
    discovery_role: str = "Endpoints"
    """spec.serviceDiscoveryRole: Endpoints or EndpointSlice."""
    deny_file_access: bool = False
    """spec.arbitraryFSAccessThroughSMs.deny."""


@dataclass(frozen=True)
class MonitorJobs:
    """One accepted monitor's jobs, the TLS files they read, and what the version gates left out."""

    jobs: list[dict[str, Any]]
    tls_files: dict[str, str]
    warnings: list[str]


@dataclass(frozen=True)
class _Role:
    kind: str
    job_prefix: str
    endpoints_field: str
    label_prefix: str
    fields: frozenset[str]
    endpoint_fields: frozenset[str]
    attach_metadata_since: str


_ROLES = {
    "ServiceMonitor": _Role(
        "ServiceMonitor",
        "serviceMonitor",
        "endpoints",
        "__meta_kubernetes_service_label",
        SERVICE_MONITOR_FIELDS,
        SERVICE_MONITOR_ENDPOINT_FIELDS,
        "2.37.0",
    ),
    "PodMonitor": _Role(
        "PodMonitor",
        "podMonitor",
        "podMetricsEndpoints",
        "__meta_kubernetes_pod_label",
        POD_MONITOR_FIELDS,
        POD_METRICS_ENDPOINT_FIELDS,
        "2.35.0",
    ),
}


def monitor_jobs(
    kind: str, monitor: Mapping[str, Any], ctx: JobContext, lookup: Lookup | None = None
) -> MonitorJobs:
    """The jobs of one monitor; Reject lists every problem, separated by "; ". Secrets and ConfigMaps
    are read through ``lookup`` (the job cache's recording one), else through ``ctx.lookup``."""
    role = _ROLES[kind]
    problems: list[str] = []
    spec = monitor.get("spec")
    if not isinstance(spec, Mapping):
        raise Reject("spec must be a mapping")
    if not role.fields.issuperset(spec):
        unknown = sorted(set(spec) - role.fields)
        problems.append(f"unsupported field(s) in spec: {', '.join(unknown)}")
    key = ObjectKey.of(monitor)
    gates = Gates(ctx.version)
    values = assets.Values(ctx.lookup if lookup is None else lookup, key.namespace)
    cls = ctx.classes.resolve(spec.get("scrapeClass"))
    if cls is None:
        problems.append(
            f"spec.scrapeClass: scrape class {spec.get('scrapeClass')!r} is not in the PrometheusConfig's scrapeClasses"
        )
        cls = ScrapeClass()
    selector = spec.get("selector")
    if selector is None:
        selector = {}
    try:
        selectors.validate(selector)
    except ValueError as exc:
        problems.append(f"spec.selector: {exc}")
        selector = {}
    role_name = _discovery_role(role, spec, ctx, problems)
    sd = _sd_config(role_name, spec, cls, key.namespace, role, gates, problems)
    labels = TargetLabels(
        job=_opt_label_name(spec, "jobLabel", problems),
        target=_label_list(spec, "targetLabels", problems),
        pod_target=_label_list(spec, "podTargetLabels", problems),
    )
    shared = monitor_rules(role.kind, selector, labels)
    tail = _spec_tail(spec, cls, gates, problems)
    endpoints = spec.get(role.endpoints_field)
    if not isinstance(endpoints, list) or not endpoints:
        problems.append(f"spec.{role.endpoints_field} must be a non-empty list")
        endpoints = []
    jobs = []
    for i, ep in enumerate(endpoints):
        where = f"spec.{role.endpoints_field}[{i}]"
        if not isinstance(ep, Mapping):
            problems.append(f"{where} must be a mapping")
            continue
        ep_problems: list[str] = []
        warned = len(gates.warnings)
        job = _endpoint_job(role, key, i, ep, sd, ctx, cls, values, gates, ep_problems)
        job["relabel_configs"] = [
            *generated_relabelings(role.kind, role_name, key, ep, shared),
            *cls.relabelings,
            *_relabelings(ep, "relabelings", ep_problems),
        ]
        job.update(tail)
        metric_relabelings = [*cls.metric_relabelings, *_relabelings(ep, "metricRelabelings", ep_problems)]
        if metric_relabelings:
            job["metric_relabel_configs"] = metric_relabelings
        problems.extend(f"{where}: {p}" for p in ep_problems)
        gates.warnings[warned:] = [f"{where}.{w}" for w in gates.warnings[warned:]]
        jobs.append(job)
    if problems:
        raise Reject("; ".join(problems))
    return MonitorJobs(jobs, values.files, gates.warnings)


def _discovery_role(role: _Role, spec: Mapping[str, Any], ctx: JobContext, problems: list[str]) -> str:
    if role.kind == "PodMonitor":
        return "pod"
    wanted = spec.get("serviceDiscoveryRole") or ctx.discovery_role
    if not isinstance(wanted, str) or wanted not in DISCOVERY_ROLES:
        problems.append(f"spec.serviceDiscoveryRole: {wanted!r} is not Endpoints or EndpointSlice")
        return "endpoints"
    # EndpointSlice discovery arrived in Prometheus 2.21; older ones get Endpoints, as from prometheus-operator.
    if wanted == "EndpointSlice" and not Gates(ctx.version).at_least("2.21.0"):
        return "endpoints"
    return DISCOVERY_ROLES[wanted]


def _sd_config(
    role_name: str,
    spec: Mapping[str, Any],
    cls: ScrapeClass,
    own_namespace: str,
    role: _Role,
    gates: Gates,
    problems: list[str],
) -> dict[str, Any]:
    sd: dict[str, Any] = {"role": role_name}
    ns_selector = spec.get("namespaceSelector")
    if ns_selector is None:
        ns_selector = {}
    if not isinstance(ns_selector, Mapping) or set(ns_selector) - {"any", "matchNames"}:
        problems.append("spec.namespaceSelector may hold only 'any' and 'matchNames'")
        ns_selector = {}
    names = ns_selector.get("matchNames")
    if ns_selector.get("any") is True:
        pass
    elif names:
        if not isinstance(names, list) or not all(isinstance(n, str) and n for n in names):
            problems.append("spec.namespaceSelector.matchNames must be a list of namespace names")
        else:
            sd["namespaces"] = {"names": list(names)}
    else:
        sd["namespaces"] = {"names": [own_namespace]}
    attach = spec.get("attachMetadata")
    if attach is None:
        attach = cls.attach_metadata
    if attach is not None:
        if (
            not isinstance(attach, Mapping)
            or set(attach) - {"node"}
            or not isinstance(attach.get("node", False), bool)
        ):
            problems.append("spec.attachMetadata may hold only node (a boolean)")
        elif gates.allows(role.attach_metadata_since, "spec.attachMetadata"):
            sd["attach_metadata"] = {"node": bool(attach.get("node", False))}
    return sd


def _opt_label_name(spec: Mapping[str, Any], name: str, problems: list[str]) -> str | None:
    value = spec.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        problems.append(f"spec.{name} must be a string")
        return None
    return value


def _label_list(spec: Mapping[str, Any], name: str, problems: list[str]) -> list[str]:
    value = spec.get(name) or []
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        problems.append(f"spec.{name} must be a list of label names")
        return []
    return list(value)


def _relabelings(ep: Mapping[str, Any], name: str, problems: list[str]) -> list[dict[str, Any]]:
    value = ep.get(name)
    if value is None:
        return []
    if not isinstance(value, list):
        problems.append(f"{name} must be a list")
        return []
    out = []
    for i, rc in enumerate(value):
        try:
            out.append(relabel_config(rc))
        except ValueError as exc:
            problems.append(f"{name}[{i}]: {exc}")
    return out


def _bool(ep: Mapping[str, Any], name: str, problems: list[str]) -> bool | None:
    value = ep.get(name)
    if value is not None and not isinstance(value, bool):
        problems.append(f"{name} must be a boolean")
        return None
    return value


def _spec_tail(
    spec: Mapping[str, Any], cls: ScrapeClass, gates: Gates, problems: list[str]
) -> dict[str, Any]:
    """The keys after relabel_configs that come from the monitor's spec: native histograms, protocols."""
    out: dict[str, Any] = {}
    for name in ("scrapeNativeHistograms", "scrapeClassicHistograms", "convertClassicHistogramsToNHCB"):
        _bool(spec, name, problems)
    if spec.get("scrapeNativeHistograms") is not None and gates.allows(
        "3.8.0", "spec.scrapeNativeHistograms"
    ):
        out["scrape_native_histograms"] = spec["scrapeNativeHistograms"]
    limit = spec.get("nativeHistogramBucketLimit")
    if limit is not None:
        if not isinstance(limit, int) or isinstance(limit, bool) or limit < 0:
            problems.append("spec.nativeHistogramBucketLimit must be a non-negative integer")
        elif gates.allows("2.45.0", "spec.nativeHistogramBucketLimit"):
            out["native_histogram_bucket_limit"] = limit
    factor = spec.get("nativeHistogramMinBucketFactor")
    if factor is not None:
        try:
            number = float(factor)
        except (TypeError, ValueError):
            problems.append(f"spec.nativeHistogramMinBucketFactor: {factor!r} is not a number")
        else:
            if gates.allows("2.50.0", "spec.nativeHistogramMinBucketFactor"):
                out["native_histogram_min_bucket_factor"] = number
    classic = spec.get("scrapeClassicHistograms")
    if classic is not None:
        if gates.version.major >= 3:
            out["always_scrape_classic_histograms"] = classic
        elif gates.allows("2.45.0", "spec.scrapeClassicHistograms"):
            out["scrape_classic_histograms"] = classic
    nhcb = spec.get("convertClassicHistogramsToNHCB")
    if nhcb is not None and gates.allows("3.0.0", "spec.convertClassicHistogramsToNHCB"):
        out["convert_classic_histograms_to_nhcb"] = nhcb
    protocols = spec.get("scrapeProtocols")
    if protocols:
        if not isinstance(protocols, list) or not all(p in SCRAPE_PROTOCOLS for p in protocols):
            problems.append(f"spec.scrapeProtocols: each must be one of {', '.join(SCRAPE_PROTOCOLS)}")
        else:
            kept = [
                p
                for p in protocols
                if p != "PrometheusText1.0.0"
                or gates.allows("3.0.0-rc.0", "spec.scrapeProtocols PrometheusText1.0.0")
            ]
            if gates.allows("2.49.0", "spec.scrapeProtocols"):
                out["scrape_protocols"] = kept
    fallback = spec.get("fallbackScrapeProtocol") or cls.fallback_scrape_protocol
    if fallback is not None:
        if fallback not in SCRAPE_PROTOCOLS:
            problems.append(f"spec.fallbackScrapeProtocol: {fallback!r} is not a scrape protocol")
        elif gates.allows("3.0.0", "spec.fallbackScrapeProtocol"):
            out["fallback_scrape_protocol"] = fallback
    return out


def _endpoint_job(
    role: _Role,
    key: ObjectKey,
    index: int,
    ep: Mapping[str, Any],
    sd: dict[str, Any],
    ctx: JobContext,
    cls: ScrapeClass,
    values: assets.Values,
    gates: Gates,
    problems: list[str],
) -> dict[str, Any]:
    if not role.endpoint_fields.issuperset(ep):
        unknown = sorted(set(ep) - role.endpoint_fields)
        problems.append(f"unsupported field(s): {', '.join(unknown)}")
    job: dict[str, Any] = {
        "job_name": f"{role.job_prefix}/{key.namespace}/{key.name}/{index}",
        "honor_labels": bool(_bool(ep, "honorLabels", problems)),
    }
    honor_timestamps = _bool(ep, "honorTimestamps", problems)
    if honor_timestamps is not None and gates.allows("2.9.0", "honorTimestamps"):
        job["honor_timestamps"] = honor_timestamps
    track = _bool(ep, "trackTimestampsStaleness", problems)
    if track is not None and gates.allows("2.48.0", "trackTimestampsStaleness"):
        job["track_timestamps_staleness"] = track
    job["kubernetes_sd_configs"] = [dict(sd)]
    _timing(ep, ctx.global_interval, job, problems)
    path = ep.get("path")
    if path is not None:
        if not isinstance(path, str) or not path.startswith("/"):
            problems.append(f"path {path!r} must start with '/'")
        else:
            job["metrics_path"] = path
    params = ep.get("params")
    if params is not None:
        if not isinstance(params, Mapping) or not all(
            isinstance(k, str) and isinstance(v, list) and all(isinstance(x, str) for x in v)
            for k, v in params.items()
        ):
            problems.append("params must map names to lists of strings")
        else:
            job["params"] = {k: list(params[k]) for k in sorted(params)}
    scheme = ep.get("scheme")
    if scheme is not None:
        if not isinstance(scheme, str) or scheme.lower() not in SCHEMES:
            problems.append(f"unknown scheme {scheme!r} (want http or https)")
        else:
            job["scheme"] = scheme.lower()
    for name, out_key, since in (
        ("followRedirects", "follow_redirects", "2.26.0"),
        ("enableHttp2", "enable_http2", "2.35.0"),
    ):
        value = _bool(ep, name, problems)
        if value is not None and gates.allows(since, name):
            job[out_key] = value
    _http_client(role, ep, ctx, cls, values, gates, job, problems)
    _ports(role, ep, problems)
    return job


def _timing(ep: Mapping[str, Any], global_interval: str, job: dict[str, Any], problems: list[str]) -> None:
    interval, timeout = ep.get("interval"), ep.get("scrapeTimeout")
    valid = True
    parsed: dict[str, int] = {}
    for name, value in (("interval", interval), ("scrapeTimeout", timeout)):
        if value is not None:
            try:
                parsed[name] = parse_duration_ms(value)
            except ValueError as exc:
                problems.append(f"{name}: {exc}")
                valid = False
    # prometheus-operator's check: the endpoint's timeout against its interval (or the global one).
    effective = interval or global_interval
    if valid and timeout is not None:
        limit = parsed["interval"] if interval else parse_duration_ms(effective)
        if parsed["scrapeTimeout"] > limit:
            problems.append(f"scrapeTimeout {timeout!r} is greater than the scrape interval {effective!r}")
    if valid and interval is not None:
        job["scrape_interval"] = interval
    if valid and timeout is not None:
        job["scrape_timeout"] = timeout


def _http_client(
    role: _Role,
    ep: Mapping[str, Any],
    ctx: JobContext,
    cls: ScrapeClass,
    values: assets.Values,
    gates: Gates,
    job: dict[str, Any],
    problems: list[str],
) -> None:
    """TLS, credentials and proxy, in prometheus-operator's order for the kind."""
    if cls.tls is None and cls.authorization is None and _HTTP_CLIENT_FIELDS.isdisjoint(ep):
        return  # most endpoints: nothing to write, nothing to check
    service = role.kind == "ServiceMonitor"
    tls = merge_tls(ep.get("tlsConfig"), cls, safe=not service)
    if ctx.deny_file_access and service:
        if ep.get("bearerTokenFile"):
            problems.append(
                "bearerTokenFile reads a file of the Prometheus pod, which spec.arbitraryFSAccessThroughSMs.deny forbids"
            )
        own_tls = ep.get("tlsConfig")
        if isinstance(own_tls, Mapping) and any(own_tls.get(f) for f in ("caFile", "certFile", "keyFile")):
            problems.append(
                "tlsConfig reads files of the Prometheus pod, which spec.arbitraryFSAccessThroughSMs.deny forbids"
            )
    parts: dict[str, Any] = {}
    if tls is not None:
        if not isinstance(tls, Mapping):
            problems.append("tlsConfig must be a mapping")
        else:
            files = service or bool(cls.tls)  # a class's files reach PodMonitors too
            parts["tls_config"] = assets.tls_config(tls, values, gates, "tlsConfig", problems, files=files)
    token_file = ep.get("bearerTokenFile")
    if token_file:
        if not isinstance(token_file, str):
            problems.append("bearerTokenFile must be a string")
        else:
            parts["bearer_token_file"] = token_file
    token = ep.get("bearerTokenSecret")
    if isinstance(token, Mapping) and token.get("name"):
        value = values.secret(token, "bearerTokenSecret", problems)
        if value is not None:
            parts["bearer_token"] = value
    if ep.get("basicAuth") is not None:
        basic = assets.basic_auth(ep["basicAuth"], values, "basicAuth", problems)
        if basic is not None:
            parts["basic_auth"] = basic
    if ep.get("oauth2") is not None:
        oauth = assets.oauth2(ep["oauth2"], values, gates, "oauth2", problems)
        if oauth is not None and gates.allows("2.27.0", "oauth2"):
            parts["oauth2"] = oauth
    parts["proxy"] = assets.proxy_settings(ep, values, gates, "", problems)
    auth = merge_authorization(ep.get("authorization"), cls)
    if auth is not None:
        if not isinstance(auth, Mapping):
            problems.append("authorization must be a mapping")
        else:
            rendered = assets.authorization(auth, values, "authorization", problems)
            if gates.allows("2.26.0", "authorization"):
                parts["authorization"] = rendered
    methods: list[str] = [m for m in ("basic_auth", "oauth2", "authorization") if m in parts]
    if "bearer_token" in parts or "bearer_token_file" in parts:
        methods.append("bearer token")
    if "bearer_token" in parts and "bearer_token_file" in parts:
        problems.append("bearerTokenFile and bearerTokenSecret cannot both be set")
    if len(methods) > 1:
        # Prometheus refuses a job with two of them; the scrape class's authorization counts too.
        problems.append(
            f"at most one of basicAuth, oauth2, authorization and a bearer token (found {', '.join(methods)})"
        )
    order = (
        ("proxy", "oauth2", "tls_config", "bearer_token_file", "bearer_token", "basic_auth", "authorization")
        if service
        else ("tls_config", "bearer_token", "basic_auth", "oauth2", "proxy", "authorization")
    )
    for name in order:
        if name == "proxy":
            job.update(parts["proxy"])
        elif name in parts:
            job[name] = parts[name]


def _ports(role: _Role, ep: Mapping[str, Any], problems: list[str]) -> None:
    port = ep.get("port")
    if port is not None and (not isinstance(port, str) or not port):
        problems.append("port must be a non-empty port name")
    number = ep.get("portNumber")
    if number is not None and (
        not isinstance(number, int) or isinstance(number, bool) or not 0 < number < 65536
    ):
        problems.append("portNumber must be a port number (1-65535)")
    target = ep.get("targetPort")
    if target is not None and (isinstance(target, bool) or not isinstance(target, int | str) or target == ""):
        problems.append("targetPort must be a port name or number")
