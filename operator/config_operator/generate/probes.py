"""Probe -> a ``probe/<namespace>/<name>`` scrape job, as prometheus-operator generates it. No I/O.

Prometheus scrapes the prober (a blackbox exporter, say) at ``prober.url`` + ``prober.path`` (default
``/probe``, as prometheus-operator's CRD defaults it), once per target, with the target in the
``target`` URL parameter (``__param_target``) and the module in ``module``:

- static targets: ``static_configs`` with the Probe's labels (and ``namespace``, unless given), then
  relabelings that move ``__address__`` into ``__param_target`` and ``instance`` and point
  ``__address__`` at the prober;
- ingress targets: ``kubernetes_sd_configs`` with the role ingress (in the Probe's namespaces), keep
  rules on the selected Ingresses' labels, ``__param_target`` built from the Ingress' scheme, address and
  path, and the ``namespace`` and ``ingress`` labels.

The Probe's own relabelings come last. A field outside the supported subset rejects the Probe with a
reason, as a malformed monitor is.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from config_operator import selectors
from config_operator.generate.common import (
    LABEL_NAME,
    SCHEMES,
    Reject,
    parse_duration_ms,
    sanitize_label_name,
)
from config_operator.generate.relabel import relabel_list

PROBE_FIELDS = frozenset(
    {"jobName", "prober", "module", "targets", "interval", "scrapeTimeout", "params", "metricRelabelings"}
)
PROBER_FIELDS = frozenset({"url", "scheme", "path", "proxyUrl"})
DEFAULT_PATH = "/probe"
# host or host:port, IPv6 in brackets with a port (prometheus-operator's validateProberURL).
_HOST = re.compile(
    r"^(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)*[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$"
)
_IPV4 = re.compile(r"^(?:\d{1,3}\.){3}\d{1,3}$")


def probe_jobs(probe: Mapping[str, Any], global_interval: str) -> list[dict[str, Any]]:
    """The one scrape job of ``probe``; Reject names what is malformed."""
    spec = probe.get("spec")
    if not isinstance(spec, Mapping):
        raise Reject("spec must be a mapping")
    unknown = sorted(set(spec) - PROBE_FIELDS)
    if unknown:
        raise Reject(f"unsupported field(s) in spec: {', '.join(map(str, unknown))}")
    meta: Any = probe.get("metadata") or {}
    namespace, name = str(meta.get("namespace") or ""), str(meta.get("name") or "")
    prober = spec.get("prober")
    if not isinstance(prober, Mapping):
        raise Reject("spec.prober with a url is required")
    unknown = sorted(set(prober) - PROBER_FIELDS)
    if unknown:
        raise Reject(f"unsupported field(s) in spec.prober: {', '.join(map(str, unknown))}")
    url = prober.get("url")
    if not isinstance(url, str) or not _valid_prober_url(url):
        raise Reject(
            f"{url!r} url specified in spec.prober is invalid, it should be of the format `hostname` or `hostname:port`"
        )

    job: dict[str, Any] = {"job_name": f"probe/{namespace}/{name}"}
    path = prober.get("path") or DEFAULT_PATH
    if not isinstance(path, str) or not path.startswith("/"):
        raise Reject(f"spec.prober.path {path!r} must start with '/'")
    job["metrics_path"] = path
    interval, timeout = spec.get("interval") or None, spec.get("scrapeTimeout") or None
    for field, value in (("interval", interval), ("scrapeTimeout", timeout)):
        if value is not None:
            try:
                parse_duration_ms(value)
            except ValueError as exc:
                raise Reject(f"spec.{field}: {exc}") from None
    effective = interval or global_interval
    if timeout is not None and parse_duration_ms(timeout) > parse_duration_ms(effective):
        raise Reject(f"scrapeTimeout {timeout!r} is greater than the scrape interval {effective!r}")
    if interval is not None:
        job["scrape_interval"] = interval
    if timeout is not None:
        job["scrape_timeout"] = timeout
    scheme = prober.get("scheme")
    if scheme is not None:
        if not isinstance(scheme, str) or scheme.lower() not in SCHEMES:
            raise Reject(f"spec.prober.scheme: unknown scheme {scheme!r} (want http or https)")
        job["scheme"] = scheme.lower()
    params = _params(spec)
    if params:
        job["params"] = params
    proxy = prober.get("proxyUrl")
    if proxy is not None:
        if not isinstance(proxy, str) or not re.match(r"^https?://", proxy):
            raise Reject("spec.prober.proxyUrl must be an http(s) URL")
        job["proxy_url"] = proxy

    relabelings: list[dict[str, Any]] = [
        {"source_labels": ["job"], "target_label": "__tmp_prometheus_job_name"}
    ]
    job_name = spec.get("jobName")
    if job_name:
        if not isinstance(job_name, str):
            raise Reject("spec.jobName must be a string")
        relabelings.append({"target_label": "job", "replacement": job_name})
    targets = spec.get("targets")
    if not isinstance(targets, Mapping) or (
        targets.get("staticConfig") is None and targets.get("ingress") is None
    ):
        raise Reject("at least one of .spec.targets.staticConfig and .spec.targets.ingress is required")
    unknown = sorted(set(targets) - {"staticConfig", "ingress"})
    if unknown:
        raise Reject(f"unsupported field(s) in spec.targets: {', '.join(map(str, unknown))}")
    # staticConfig wins when both are set, as the CRD documents.
    if targets.get("staticConfig") is not None:
        job["static_configs"] = [_static(targets["staticConfig"], namespace)]
        relabelings += [
            {"source_labels": ["__address__"], "target_label": "__param_target"},
            {"source_labels": ["__param_target"], "target_label": "instance"},
            {"target_label": "__address__", "replacement": url},
            *relabel_list(targets["staticConfig"], "relabelingConfigs"),
        ]
    else:
        ingress = targets["ingress"]
        sd, keep = _ingress(ingress, namespace)
        job["kubernetes_sd_configs"] = [sd]
        relabelings += [
            *keep,
            {
                "source_labels": [
                    "__meta_kubernetes_ingress_scheme",
                    "__address__",
                    "__meta_kubernetes_ingress_path",
                ],
                "separator": ";",
                "regex": "(.+);(.+);(.+)",
                "target_label": "__param_target",
                "replacement": "${1}://${2}${3}",
                "action": "replace",
            },
            {"source_labels": ["__meta_kubernetes_namespace"], "target_label": "namespace"},
            {"source_labels": ["__meta_kubernetes_ingress_name"], "target_label": "ingress"},
            {
                "source_labels": ["__address__"],
                "separator": ";",
                "regex": "(.*)",
                "target_label": "__tmp_ingress_address",
                "replacement": "$1",
                "action": "replace",
            },
            {"source_labels": ["__param_target"], "target_label": "instance"},
            {"target_label": "__address__", "replacement": url},
            *relabel_list(ingress, "relabelingConfigs"),
        ]
    job["relabel_configs"] = relabelings
    metric_relabelings = relabel_list(spec, "metricRelabelings")
    if metric_relabelings:
        job["metric_relabel_configs"] = metric_relabelings
    return [job]


def _valid_prober_url(url: str) -> bool:
    host, port = url, None
    if url.startswith("["):  # [IPv6]:port
        close = url.find("]")
        if close < 0 or not url[close + 1 :].startswith(":"):
            return False
        host, port = url[1:close], url[close + 2 :]
        return ":" in host and port.isdigit() and 0 < int(port) < 65536
    if url.count(":") == 1:
        host, port = url.split(":")
    if port is not None and not (port.isdigit() and 0 < int(port) < 65536):
        return False
    return bool(_IPV4.match(host) or _HOST.match(host))


def _params(spec: Mapping[str, Any]) -> dict[str, list[str]]:
    params: dict[str, list[str]] = {}
    module = spec.get("module")
    if module:
        if not isinstance(module, str):
            raise Reject("spec.module must be a string")
        params["module"] = [module]
    raw = spec.get("params") or []
    if not isinstance(raw, list):
        raise Reject("spec.params must be a list of {name, values}")
    for i, p in enumerate(raw):
        if (
            not isinstance(p, Mapping)
            or set(p) - {"name", "values"}
            or not isinstance(p.get("name"), str)
            or not p["name"]
            or not isinstance(p.get("values"), list)
            or not all(isinstance(v, str) for v in p["values"])
        ):
            raise Reject(f"spec.params[{i}] must be {{name, values: [strings]}}")
        if module and p["name"] == "module":
            continue  # spec.module wins, as in prometheus-operator
        params[p["name"]] = list(p["values"])
    return params


def _static(static: Any, namespace: str) -> dict[str, Any]:
    if not isinstance(static, Mapping) or set(static) - {"static", "labels", "relabelingConfigs"}:
        raise Reject("spec.targets.staticConfig may hold only static, labels and relabelingConfigs")
    targets = static.get("static") or []
    if not isinstance(targets, list) or not all(isinstance(t, str) and t for t in targets):
        raise Reject("spec.targets.staticConfig.static must be a list of targets")
    labels = static.get("labels") or {}
    if not isinstance(labels, Mapping):
        raise Reject("spec.targets.staticConfig.labels must be a mapping")
    for k, v in labels.items():
        if not isinstance(k, str) or not LABEL_NAME.match(k):
            raise Reject(f"spec.targets.staticConfig.labels: {k!r} is not a valid label name")
        if not isinstance(v, str):
            raise Reject(f"spec.targets.staticConfig.labels[{k}] must be a string")
    merged = {"namespace": namespace, **labels}
    return {"targets": list(targets), "labels": {k: merged[k] for k in sorted(merged)}}


def _ingress(ingress: Any, namespace: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    if not isinstance(ingress, Mapping) or set(ingress) - {
        "selector",
        "namespaceSelector",
        "relabelingConfigs",
    }:
        raise Reject("spec.targets.ingress may hold only selector, namespaceSelector and relabelingConfigs")
    selector = ingress.get("selector") or {}
    try:
        selectors.validate(selector)
    except ValueError as exc:
        raise Reject(f"spec.targets.ingress.selector: {exc}") from None
    ns_selector = ingress.get("namespaceSelector") or {}
    if not isinstance(ns_selector, Mapping) or set(ns_selector) - {"any", "matchNames"}:
        raise Reject("spec.targets.ingress.namespaceSelector may hold only 'any' and 'matchNames'")
    sd: dict[str, Any] = {"role": "ingress"}
    if ns_selector.get("any") is not True:
        names = ns_selector.get("matchNames") or [namespace]
        if not isinstance(names, list) or not all(isinstance(n, str) and n for n in names):
            raise Reject("spec.targets.ingress.namespaceSelector.matchNames must be a list of namespaces")
        sd["namespaces"] = {"names": list(names)}
    label, present = "__meta_kubernetes_ingress_label", "__meta_kubernetes_ingress_labelpresent"
    keep: list[dict[str, Any]] = []
    match_labels = selector.get("matchLabels") or {}
    for k in sorted(match_labels):
        s = sanitize_label_name(k)
        keep.append(
            {
                "action": "keep",
                "source_labels": [f"{label}_{s}", f"{present}_{s}"],
                "regex": f"({match_labels[k]});true",
            }
        )
    for req in selector.get("matchExpressions") or []:
        s, op = sanitize_label_name(req["key"]), req["operator"]
        if op in ("In", "NotIn"):
            keep.append(
                {
                    "action": "keep" if op == "In" else "drop",
                    "source_labels": [f"{label}_{s}", f"{present}_{s}"],
                    "regex": f"({'|'.join(req['values'])});true",
                }
            )
        else:
            keep.append(
                {
                    "action": "keep" if op == "Exists" else "drop",
                    "source_labels": [f"{present}_{s}"],
                    "regex": "true",
                }
            )
    return sd, keep
