"""The ``alerting`` section: where Prometheus sends alerts, and how alerts are relabelled. No I/O.

``spec.alerting.alertmanagers[]`` takes two shapes, and anything else is an ``InvalidConfig`` (a False
condition; the last good Secret stays), never a config Prometheus would refuse:

- config-operator's own: ``static`` host:port targets (with scheme, pathPrefix, apiVersion, timeout);
- a Prometheus resource's (kube-prometheus writes it): ``namespace``, ``name`` and ``port`` of a
  Service, found as prometheus-operator finds it: ``kubernetes_sd_configs`` with the role endpoints
  (endpointslice with ``spec.serviceDiscoveryRole: EndpointSlice``) in that namespace, a keep rule on the
  Service name and one on the port (its name, or a container port number), then the entry's own
  relabelings. Credentials come from Secret keys in the PrometheusConfig's namespace, through the
  Lookup, and go into the config inline, as prometheus-operator does.

``spec.additionalAlertManagerConfigs`` and ``spec.additionalAlertRelabelConfigs`` name Secret keys
holding Prometheus-format lists, appended after the generated entries.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import yaml

from config_operator.generate.common import SCHEMES, InvalidConfig, parse_duration_ms
from config_operator.generate.lookup import Lookup, UnreadableValue
from config_operator.generate.relabel import relabel_config

STATIC_FIELDS = frozenset({"static", "scheme", "pathPrefix", "apiVersion", "timeout"})
SERVICE_FIELDS = frozenset(
    {
        "namespace",
        "name",
        "port",
        "scheme",
        "pathPrefix",
        "apiVersion",
        "timeout",
        "enableHttp2",
        "tlsConfig",
        "bearerTokenFile",
        "basicAuth",
        "authorization",
        "relabelings",
        "alertRelabelings",
    }
)
# Paths to files the Prometheus pod has; TLS material from Secrets needs the TLS assets (not here).
TLS_FIELDS = {
    "caFile": "ca_file",
    "certFile": "cert_file",
    "keyFile": "key_file",
    "serverName": "server_name",
    "insecureSkipVerify": "insecure_skip_verify",
}
ROLES = {"Endpoints": "endpoints", "EndpointSlice": "endpointslice"}
_PORT_LABEL = {
    "endpoints": "__meta_kubernetes_endpoint_port_name",
    "endpointslice": "__meta_kubernetes_endpointslice_port_name",
}


def secret_names(spec: Mapping[str, Any]) -> set[str]:
    """The Secrets (in the PrometheusConfig's namespace) the alerting fields reference: the reconciler
    fetches them for the Lookup. Malformed references are skipped here and reported by generation."""
    names = set()
    for field in ("additionalAlertRelabelConfigs", "additionalAlertManagerConfigs"):
        ref = spec.get(field)
        if isinstance(ref, Mapping) and isinstance(ref.get("name"), str):
            names.add(ref["name"])
    alerting = spec.get("alerting")
    entries = alerting.get("alertmanagers") if isinstance(alerting, Mapping) else None
    for entry in entries if isinstance(entries, list) else []:
        if not isinstance(entry, Mapping):
            continue
        basic = entry.get("basicAuth")
        refs = [basic.get("username"), basic.get("password")] if isinstance(basic, Mapping) else []
        auth = entry.get("authorization")
        refs += [auth.get("credentials")] if isinstance(auth, Mapping) else []
        names |= {r["name"] for r in refs if isinstance(r, Mapping) and isinstance(r.get("name"), str)}
    return names


def alerting_section(spec: Mapping[str, Any], namespace: str, lookup: Lookup) -> dict[str, Any] | None:
    """The ``alerting`` section for the spec of a PrometheusConfig in ``namespace``; None when there is none."""
    value = spec.get("alerting")
    extra_managers = _secret_list(spec, "additionalAlertManagerConfigs", namespace, lookup)
    extra_relabels = _secret_list(spec, "additionalAlertRelabelConfigs", namespace, lookup)
    if value is None and extra_managers is None and extra_relabels is None:
        return None
    if value is None:
        value = {}
    if not isinstance(value, Mapping) or set(value) - {"alertmanagers"}:
        raise InvalidConfig("spec.alerting must be a mapping with only 'alertmanagers'")
    entries = value.get("alertmanagers") or []
    if not isinstance(entries, list):
        raise InvalidConfig("spec.alerting.alertmanagers must be a list")
    role = ROLES.get(spec.get("serviceDiscoveryRole") or "Endpoints")
    if role is None:
        raise InvalidConfig("spec.serviceDiscoveryRole must be Endpoints or EndpointSlice")
    managers = []
    for i, entry in enumerate(entries):
        where = f"spec.alerting.alertmanagers[{i}]"
        if not isinstance(entry, Mapping):
            raise InvalidConfig(f"{where} must be a mapping")
        if "static" in entry:
            managers.append(_static(where, entry))
        elif "name" in entry:
            managers.append(_service(where, entry, namespace, role, lookup))
        else:
            raise InvalidConfig(
                f"{where}: neither 'static' targets nor a Service ('name', 'port'); a Prometheus "
                "alertmanager_config goes in spec.additionalAlertManagerConfigs"
            )
    section: dict[str, Any] = {}
    if extra_relabels:
        section["alert_relabel_configs"] = extra_relabels
    section["alertmanagers"] = managers + (extra_managers or [])
    return section


def _static(where: str, entry: Mapping[str, Any]) -> dict[str, Any]:
    extra = sorted(set(entry) - STATIC_FIELDS)
    if extra:
        raise InvalidConfig(f"{where}: unknown field(s) next to 'static': {', '.join(extra)}")
    targets = entry["static"]
    if not isinstance(targets, list) or not all(isinstance(t, str) and t for t in targets):
        raise InvalidConfig(f"{where}.static must be a list of host:port strings")
    am = _common(where, entry)
    am.update(_api_version(where, entry))
    am["static_configs"] = [{"targets": list(targets)}]
    return am


def _service(where: str, entry: Mapping[str, Any], own_ns: str, role: str, lookup: Lookup) -> dict[str, Any]:
    extra = sorted(set(entry) - SERVICE_FIELDS)
    if extra:
        raise InvalidConfig(f"{where}: unknown field(s) for a Service alertmanager: {', '.join(extra)}")
    name, ns, port = entry.get("name"), entry.get("namespace") or own_ns, entry.get("port")
    if not isinstance(name, str) or not name:
        raise InvalidConfig(f"{where}.name must be the Service's name")
    if not isinstance(ns, str):
        raise InvalidConfig(f"{where}.namespace must be a namespace name")
    if isinstance(port, bool) or not isinstance(port, (str, int)) or port in ("", 0):
        raise InvalidConfig(f"{where}.port must be the Service port's name or a container port number")
    am = _common(where, entry)
    http2 = entry.get("enableHttp2")
    if http2 is not None:
        if not isinstance(http2, bool):
            raise InvalidConfig(f"{where}.enableHttp2 must be a boolean")
        am["enable_http2"] = http2
    if entry.get("tlsConfig") is not None:
        am["tls_config"] = _tls(where, entry["tlsConfig"])
    am["kubernetes_sd_configs"] = [{"role": role, "namespaces": {"names": [ns]}}]
    am.update(_auth(where, entry, own_ns, lookup))
    am.update(_api_version(where, entry))
    if isinstance(port, str):
        port_rule = {"action": "keep", "source_labels": [_PORT_LABEL[role]], "regex": port}
    else:
        port_rule = {
            "action": "keep",
            "source_labels": ["__meta_kubernetes_pod_container_port_number"],
            "regex": str(port),
        }
    am["relabel_configs"] = [
        {"action": "keep", "source_labels": ["__meta_kubernetes_service_name"], "regex": name},
        port_rule,
        *_relabelings(f"{where}.relabelings", entry.get("relabelings")),
    ]
    if entry.get("alertRelabelings"):
        # Per-alertmanager alert_relabel_configs arrived in Prometheus 2.51; 2.42 would refuse the config.
        raise InvalidConfig(f"{where}.alertRelabelings needs Prometheus >= 2.51")
    return am


def _common(where: str, entry: Mapping[str, Any]) -> dict[str, Any]:
    am: dict[str, Any] = {}
    scheme = entry.get("scheme")
    if scheme is not None:
        if not isinstance(scheme, str) or scheme.lower() not in SCHEMES:
            raise InvalidConfig(f"{where}.scheme: unknown scheme {scheme!r}")
        am["scheme"] = scheme.lower()
    prefix = entry.get("pathPrefix")
    if prefix is not None:
        if not isinstance(prefix, str):
            raise InvalidConfig(f"{where}.pathPrefix must be a string")
        am["path_prefix"] = prefix
    timeout = entry.get("timeout")
    if timeout is not None:
        try:
            parse_duration_ms(timeout)
        except ValueError as exc:
            raise InvalidConfig(f"{where}.timeout: {exc}") from None
        am["timeout"] = timeout
    return am


def _api_version(where: str, entry: Mapping[str, Any]) -> dict[str, Any]:
    version = entry.get("apiVersion")
    if version is None:
        return {}
    if not isinstance(version, str) or version.lower() not in ("v1", "v2"):
        raise InvalidConfig(f"{where}.apiVersion must be v1 or v2")
    return {"api_version": version.lower()}


def _tls(where: str, tls: Any) -> dict[str, Any]:
    if not isinstance(tls, Mapping):
        raise InvalidConfig(f"{where}.tlsConfig must be a mapping")
    unknown = sorted(set(tls) - set(TLS_FIELDS))
    if unknown:
        raise InvalidConfig(
            f"{where}.tlsConfig: {', '.join(unknown)} not supported here; use caFile, certFile and keyFile "
            "with files mounted in the Prometheus pod"
        )
    out: dict[str, Any] = {}
    for field, key in TLS_FIELDS.items():
        if field not in tls:
            continue
        value = tls[field]
        if field == "insecureSkipVerify" and not isinstance(value, bool):
            raise InvalidConfig(f"{where}.tlsConfig.insecureSkipVerify must be a boolean")
        if field != "insecureSkipVerify" and (not isinstance(value, str) or not value):
            raise InvalidConfig(f"{where}.tlsConfig.{field} must be a non-empty string")
        out[key] = value
    if ("cert_file" in out) != ("key_file" in out):
        raise InvalidConfig(f"{where}.tlsConfig: certFile and keyFile go together")
    return out


def _auth(where: str, entry: Mapping[str, Any], namespace: str, lookup: Lookup) -> dict[str, Any]:
    given = [f for f in ("bearerTokenFile", "basicAuth", "authorization") if entry.get(f) is not None]
    if len(given) > 1:
        raise InvalidConfig(f"{where}: {' and '.join(given)} can't be set at the same time")
    if entry.get("bearerTokenFile") is not None:
        path = entry["bearerTokenFile"]
        if not isinstance(path, str) or not path:
            raise InvalidConfig(f"{where}.bearerTokenFile must be a path")
        return {"bearer_token_file": path}
    basic = entry.get("basicAuth")
    if basic is not None:
        if not isinstance(basic, Mapping) or set(basic) - {"username", "password"}:
            raise InvalidConfig(f"{where}.basicAuth takes username and password (Secret keys)")
        return {
            "basic_auth": {
                "username": _secret_key(
                    f"{where}.basicAuth.username", basic.get("username"), namespace, lookup
                ),
                "password": _secret_key(
                    f"{where}.basicAuth.password", basic.get("password"), namespace, lookup
                ),
            }
        }
    auth = entry.get("authorization")
    if auth is not None:
        if not isinstance(auth, Mapping) or set(auth) - {"type", "credentials"}:
            raise InvalidConfig(f"{where}.authorization takes type and credentials (a Secret key)")
        kind = auth.get("type") or "Bearer"
        if not isinstance(kind, str) or kind.lower() == "basic":
            raise InvalidConfig(
                f"{where}.authorization.type must be a scheme other than Basic (use basicAuth)"
            )
        credentials = _secret_key(
            f"{where}.authorization.credentials", auth.get("credentials"), namespace, lookup
        )
        return {"authorization": {"type": kind, "credentials": credentials}}
    return {}


def _secret_key(where: str, ref: Any, namespace: str, lookup: Lookup) -> str:
    if (
        not isinstance(ref, Mapping)
        or not isinstance(ref.get("name"), str)
        or not isinstance(ref.get("key"), str)
    ):
        raise InvalidConfig(f"{where} needs 'name' and 'key' of a Secret")
    try:
        value = lookup.secret_value(namespace, ref["name"], ref["key"])
    except UnreadableValue as exc:
        raise InvalidConfig(f"{where}: {exc}") from None
    if value is None:
        # Names the Secret and the key, never a value.
        raise InvalidConfig(f"{where}: Secret {namespace}/{ref['name']} or its key {ref['key']!r} not found")
    return value


def _relabelings(where: str, value: Any) -> list[dict[str, Any]]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise InvalidConfig(f"{where} must be a list")
    out = []
    for i, rc in enumerate(value):
        try:
            out.append(relabel_config(rc))
        except ValueError as exc:
            raise InvalidConfig(f"{where}[{i}]: {exc}") from None
    return out


def _secret_list(spec: Mapping[str, Any], field: str, namespace: str, lookup: Lookup) -> list[Any] | None:
    """The YAML list of mappings in the Secret key ``spec.<field>`` names; None when the field is unset."""
    ref = spec.get(field)
    if ref is None:
        return None
    where = f"spec.{field}"
    if (
        not isinstance(ref, Mapping)
        or not isinstance(ref.get("name"), str)
        or not isinstance(ref.get("key"), str)
    ):
        raise InvalidConfig(f"{where} needs 'name' and 'key' of a Secret")
    name, key = ref["name"], ref["key"]
    try:
        raw = lookup.secret_value(namespace, name, key)
    except UnreadableValue as exc:
        raise InvalidConfig(f"{where}: {exc}") from None
    if raw is None:
        raise InvalidConfig(f"{where}: Secret {namespace}/{name} or its key {key!r} not found")
    try:
        parsed = yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark is not None else ""
        raise InvalidConfig(f"{where}: Secret {namespace}/{name} key {key!r}: not valid YAML{at}") from None
    if parsed is None:
        return []
    if not isinstance(parsed, list) or not all(isinstance(item, dict) for item in parsed):
        raise InvalidConfig(
            f"{where}: Secret {namespace}/{name} key {key!r}: must be a YAML list of mappings"
        )
    return _keys_as_strings(parsed)


def _keys_as_strings(items: Iterable[dict[Any, Any]]) -> list[dict[str, Any]]:
    return [{str(k): v for k, v in item.items()} for item in items]
