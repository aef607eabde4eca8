"""``spec.remoteWrite``: where Prometheus sends its samples, as prometheus-operator 0.93 writes it. No I/O.

Credentials from Secrets (basicAuth, authorization.credentials, oauth2's clientId and clientSecret) are
read through the Lookup, in the PrometheusConfig's namespace, and written inline into the config, as
prometheus-operator does: the config Secret is as sensitive as the Secrets it draws on. A missing
Secret or key makes the PrometheusConfig invalid (the last good config stays), and so does anything
Prometheus would refuse, such as two authentication methods at once.

TLS material from Secrets or ConfigMaps (``tlsConfig.ca``, ``cert``, ``keySecret``) needs the
tls-assets Secrets, which this module does not write yet: it is refused with a clear message, and the
file fields (``caFile``, ``certFile``, ``keyFile``) work.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from config_operator.generate.common import InvalidConfig, parse_duration_ms
from config_operator.generate.gate import Gates
from config_operator.generate.lookup import Lookup, UnreadableValue
from config_operator.generate.relabel import relabel_config

FIELDS = frozenset(
    {
        "url",
        "name",
        "remoteTimeout",
        "headers",
        "writeRelabelConfigs",
        "sendExemplars",
        "queueConfig",
        "metadataConfig",
        "basicAuth",
        "authorization",
        "bearerTokenFile",
        "oauth2",
        "tlsConfig",
    }
)
QUEUE_FIELDS = frozenset(
    {
        "capacity",
        "minShards",
        "maxShards",
        "maxSamplesPerSend",
        "batchSendDeadline",
        "maxRetries",
        "minBackoff",
        "maxBackoff",
        "retryOnRateLimit",
        "sampleAgeLimit",
    }
)
TLS_FILE_FIELDS = frozenset(
    {"caFile", "certFile", "keyFile", "serverName", "insecureSkipVerify", "minVersion", "maxVersion"}
)
TLS_SECRET_FIELDS = frozenset({"ca", "cert", "keySecret"})
TLS_VERSIONS = frozenset({"TLS10", "TLS11", "TLS12", "TLS13"})
# Headers Prometheus sets itself and refuses in remote_write.headers (compared case-insensitively).
RESERVED_HEADERS = frozenset(
    h.lower()
    for h in (
        "Authorization",
        "Host",
        "Content-Encoding",
        "Content-Length",
        "Content-Type",
        "User-Agent",
        "Connection",
        "Keep-Alive",
        "Proxy-Authenticate",
        "Proxy-Authorization",
        "Www-Authenticate",
        "Accept-Encoding",
        "X-Prometheus-Remote-Write-Version",
        "X-Prometheus-Remote-Read-Version",
        "X-Prometheus-Scrape-Timeout-Seconds",
        "Te",
        "Trailer",
        "Transfer-Encoding",
        "Upgrade",
    )
)


class _Entry:
    """One remoteWrite entry being turned into Prometheus YAML: where it is, and how to read Secrets."""

    def __init__(self, index: int, namespace: str, lookup: Lookup, gates: Gates) -> None:
        self.where = f"spec.remoteWrite[{index}]"
        self.namespace = namespace
        self.lookup = lookup
        self.gates = gates

    def fail(self, field: str, problem: str) -> InvalidConfig:
        return InvalidConfig(f"{self.where}.{field}: {problem}")

    def mapping(self, value: Any, field: str, allowed: frozenset[str]) -> Mapping[str, Any]:
        if not isinstance(value, Mapping):
            raise self.fail(field, "must be a mapping")
        unknown = sorted(set(value) - allowed)
        if unknown:
            raise self.fail(field, f"unsupported field(s): {', '.join(unknown)}")
        return value

    def duration(self, value: Any, field: str) -> str:
        try:
            parse_duration_ms(value)
        except ValueError as exc:
            raise self.fail(field, str(exc)) from None
        return str(value)

    def count(self, value: Any, field: str) -> int:
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise self.fail(field, f"must be a non-negative integer, not {value!r}")
        return value

    def flag(self, value: Any, field: str) -> bool:
        if not isinstance(value, bool):
            raise self.fail(field, "must be a boolean")
        return value

    def text(self, value: Any, field: str) -> str:
        if not isinstance(value, str) or not value:
            raise self.fail(field, "must be a non-empty string")
        return value

    def secret(self, selector: Any, field: str) -> str:
        """The value a SecretKeySelector ({name, key, optional}) points at; never shown in errors."""
        selector = self.mapping(selector, field, frozenset({"name", "key", "optional"}))
        name, key = selector.get("name"), selector.get("key")
        if not isinstance(name, str) or not name or not isinstance(key, str) or not key:
            raise self.fail(field, "needs the name and key of a Secret")
        try:
            value = self.lookup.secret_value(self.namespace, name, key)
        except UnreadableValue as exc:
            raise self.fail(field, str(exc)) from None
        if value is None:
            if selector.get("optional") is True:
                return ""
            found = self.lookup.secret(self.namespace, name) is not None
            problem = f"has no key {key!r}" if found else "not found"
            raise self.fail(field, f"Secret {self.namespace}/{name} {problem}")
        return value

    def secret_or_configmap(self, value: Any, field: str) -> str:
        value = self.mapping(value, field, frozenset({"secret", "configMap"}))
        if len(value) != 1:
            raise self.fail(field, "needs exactly one of secret and configMap")
        if "secret" in value:
            return self.secret(value["secret"], f"{field}.secret")
        ref = self.mapping(value["configMap"], f"{field}.configMap", frozenset({"name", "key", "optional"}))
        name, key = ref.get("name"), ref.get("key")
        if not isinstance(name, str) or not name or not isinstance(key, str) or not key:
            raise self.fail(f"{field}.configMap", "needs the name and key of a ConfigMap")
        try:
            found = self.lookup.configmap_value(self.namespace, name, key)
        except UnreadableValue as exc:
            raise self.fail(field, str(exc)) from None
        if found is None:
            if ref.get("optional") is True:
                return ""
            raise self.fail(f"{field}.configMap", f"ConfigMap {self.namespace}/{name} has no key {key!r}")
        return found


def remote_write_section(
    spec: Mapping[str, Any], namespace: str, lookup: Lookup, gates: Gates
) -> list[dict[str, Any]]:
    """The remote_write list (empty without spec.remoteWrite); InvalidConfig names what is wrong."""
    value = spec.get("remoteWrite")
    if value is None:
        return []
    if not isinstance(value, list):
        raise InvalidConfig("spec.remoteWrite must be a list")
    out = [_remote_write(_Entry(i, namespace, lookup, gates), rw) for i, rw in enumerate(value)]
    names = [rw["name"] for rw in out if "name" in rw]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise InvalidConfig(f"spec.remoteWrite: the name {duplicates[0]!r} is used twice")
    return out


def _remote_write(e: _Entry, rw: Any) -> dict[str, Any]:
    if not isinstance(rw, Mapping):
        raise InvalidConfig(f"{e.where} must be a mapping")
    unknown = sorted(set(rw) - FIELDS)
    if unknown:
        raise InvalidConfig(f"{e.where}: unsupported field(s): {', '.join(unknown)}")
    auth = [f for f in ("basicAuth", "oauth2", "authorization") if rw.get(f) is not None]
    if len(auth) > 1:
        raise InvalidConfig(
            f"{e.where}: {' and '.join(auth)} can't be set at the same time, at most one of them"
        )
    if rw.get("bearerTokenFile") is not None and auth:
        # Prometheus refuses a bearer token file next to any other authentication.
        raise InvalidConfig(f"{e.where}: bearerTokenFile can't be set together with {auth[0]}")

    # prometheus-operator's key order.
    out: dict[str, Any] = {"url": _url(e, rw.get("url"))}
    if rw.get("remoteTimeout") is not None:
        out["remote_timeout"] = e.duration(rw["remoteTimeout"], "remoteTimeout")
    headers = _headers(e, rw.get("headers"))
    if headers and e.gates.allows("2.15.0", f"{e.where}.headers"):
        out["headers"] = headers
    if rw.get("name") is not None:
        name = e.text(rw["name"], "name")
        if e.gates.allows("2.15.0", f"{e.where}.name"):
            out["name"] = name
    if rw.get("sendExemplars") is not None:
        send = e.flag(rw["sendExemplars"], "sendExemplars")
        if e.gates.allows("2.27.0", f"{e.where}.sendExemplars"):
            out["send_exemplars"] = send
    relabelings = rw.get("writeRelabelConfigs")
    if relabelings is not None:
        if not isinstance(relabelings, list):
            raise e.fail("writeRelabelConfigs", "must be a list")
        rules = []
        for i, rc in enumerate(relabelings):
            try:
                rules.append(relabel_config(rc))
            except ValueError as exc:
                raise e.fail(f"writeRelabelConfigs[{i}]", str(exc)) from None
        if rules:
            out["write_relabel_configs"] = rules
    if rw.get("basicAuth") is not None:
        basic = e.mapping(rw["basicAuth"], "basicAuth", frozenset({"username", "password"}))
        out["basic_auth"] = {
            "username": e.secret(basic.get("username"), "basicAuth.username"),
            "password": e.secret(basic.get("password"), "basicAuth.password"),
        }
    if rw.get("bearerTokenFile") is not None:
        out["bearer_token_file"] = e.text(rw["bearerTokenFile"], "bearerTokenFile")
    if rw.get("oauth2") is not None:
        oauth2 = _oauth2(e, rw["oauth2"])
        if e.gates.allows("2.27.0", f"{e.where}.oauth2"):
            out["oauth2"] = oauth2
    if rw.get("tlsConfig") is not None:
        out["tls_config"] = _tls(e, rw["tlsConfig"])
    if rw.get("authorization") is not None:
        authorization = _authorization(e, rw["authorization"])
        if e.gates.allows("2.26.0", f"{e.where}.authorization"):
            out["authorization"] = authorization
    if rw.get("queueConfig") is not None:
        out["queue_config"] = _queue(e, rw["queueConfig"])
    if rw.get("metadataConfig") is not None:
        metadata = _metadata(e, rw["metadataConfig"])
        if e.gates.allows("2.23.0", f"{e.where}.metadataConfig"):
            out["metadata_config"] = metadata
    return out


def _url(e: _Entry, value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise InvalidConfig(f"{e.where}.url is required")
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        # Not quoted back: a URL may carry credentials (https://user:password@host/).
        raise e.fail("url", "is not an http or https URL with a host")
    return value


def _headers(e: _Entry, value: Any) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise e.fail("headers", "must map header names to strings")
    reserved = sorted(k for k in value if k.lower() in RESERVED_HEADERS)
    if reserved:
        raise e.fail("headers", f"{reserved[0]!r} is a header Prometheus sets itself")
    return {k: value[k] for k in sorted(value)}


def _authorization(e: _Entry, value: Any) -> dict[str, Any]:
    value = e.mapping(value, "authorization", frozenset({"type", "credentials", "credentialsFile"}))
    kind = value.get("type") or "Bearer"
    if not isinstance(kind, str):
        raise e.fail("authorization.type", "must be a string")
    kind = kind.strip()
    if kind.lower() == "basic":
        raise e.fail("authorization.type", "cannot be Basic: use basicAuth")
    if value.get("credentials") is not None and value.get("credentialsFile") is not None:
        raise e.fail("authorization", "credentials and credentialsFile can't be set at the same time")
    out: dict[str, Any] = {"type": kind}
    if value.get("credentials") is not None:
        out["credentials"] = e.secret(value["credentials"], "authorization.credentials")
    if value.get("credentialsFile") is not None:
        out["credentials_file"] = e.text(value["credentialsFile"], "authorization.credentialsFile")
    return out


def _oauth2(e: _Entry, value: Any) -> dict[str, Any]:
    value = e.mapping(
        value, "oauth2", frozenset({"clientId", "clientSecret", "tokenUrl", "scopes", "endpointParams"})
    )
    for field in ("clientId", "clientSecret", "tokenUrl"):
        if value.get(field) is None:
            raise e.fail(f"oauth2.{field}", "is required")
    out: dict[str, Any] = {
        "client_id": e.secret_or_configmap(value["clientId"], "oauth2.clientId"),
        "client_secret": e.secret(value["clientSecret"], "oauth2.clientSecret"),
        "token_url": e.text(value["tokenUrl"], "oauth2.tokenUrl"),
    }
    scopes = value.get("scopes")
    if scopes:
        if not isinstance(scopes, list) or not all(isinstance(s, str) for s in scopes):
            raise e.fail("oauth2.scopes", "must be a list of strings")
        out["scopes"] = list(scopes)
    params = value.get("endpointParams")
    if params:
        if not isinstance(params, Mapping) or not all(isinstance(v, str) for v in params.values()):
            raise e.fail("oauth2.endpointParams", "must map names to strings")
        out["endpoint_params"] = {str(k): params[k] for k in sorted(params)}
    return out


def _tls(e: _Entry, value: Any) -> dict[str, Any]:
    from_secrets = sorted(TLS_SECRET_FIELDS & set(value)) if isinstance(value, Mapping) else []
    if from_secrets:
        raise e.fail(
            f"tlsConfig.{from_secrets[0]}",
            "TLS material from Secrets or ConfigMaps is not supported in remoteWrite yet; "
            "mount it in the Prometheus pod and use caFile, certFile and keyFile",
        )
    value = e.mapping(value, "tlsConfig", TLS_FILE_FIELDS)
    if (value.get("certFile") is None) != (value.get("keyFile") is None):
        raise e.fail("tlsConfig", "certFile and keyFile go together: a client certificate needs its key")
    out: dict[str, Any] = {}
    if value.get("insecureSkipVerify") is not None:
        out["insecure_skip_verify"] = e.flag(value["insecureSkipVerify"], "tlsConfig.insecureSkipVerify")
    if value.get("serverName"):
        out["server_name"] = e.text(value["serverName"], "tlsConfig.serverName")
    for field, key, minimum in (
        ("minVersion", "min_version", "2.35.0"),
        ("maxVersion", "max_version", "2.41.0"),
    ):
        if value.get(field) is not None:
            if value[field] not in TLS_VERSIONS:
                raise e.fail(f"tlsConfig.{field}", f"must be one of {', '.join(sorted(TLS_VERSIONS))}")
            if e.gates.allows(minimum, f"{e.where}.tlsConfig.{field}"):
                out[key] = value[field]
    for field, key in (("caFile", "ca_file"), ("certFile", "cert_file"), ("keyFile", "key_file")):
        if value.get(field) is not None:
            out[key] = e.text(value[field], f"tlsConfig.{field}")
    return out


def _queue(e: _Entry, value: Any) -> dict[str, Any]:
    value = e.mapping(value, "queueConfig", QUEUE_FIELDS)
    out: dict[str, Any] = {}
    for field, key in (("capacity", "capacity"), ("minShards", "min_shards"), ("maxShards", "max_shards")):
        if value.get(field):
            out[key] = e.count(value[field], f"queueConfig.{field}")
    if value.get("maxSamplesPerSend"):
        out["max_samples_per_send"] = e.count(value["maxSamplesPerSend"], "queueConfig.maxSamplesPerSend")
    if value.get("batchSendDeadline") is not None:
        out["batch_send_deadline"] = e.duration(value["batchSendDeadline"], "queueConfig.batchSendDeadline")
    if value.get("maxRetries"):
        retries = e.count(value["maxRetries"], "queueConfig.maxRetries")
        if e.gates.allows_below("2.11.0", f"{e.where}.queueConfig.maxRetries"):
            out["max_retries"] = retries
    for field, key in (("minBackoff", "min_backoff"), ("maxBackoff", "max_backoff")):
        if value.get(field) is not None:
            out[key] = e.duration(value[field], f"queueConfig.{field}")
    retry = value.get("retryOnRateLimit")
    if (
        retry is not None
        and e.flag(retry, "queueConfig.retryOnRateLimit")
        and e.gates.allows("2.26.0", f"{e.where}.queueConfig.retryOnRateLimit")
    ):
        out["retry_on_http_429"] = True
    if value.get("sampleAgeLimit") is not None:
        age = e.duration(value["sampleAgeLimit"], "queueConfig.sampleAgeLimit")
        if e.gates.allows("2.50.0", f"{e.where}.queueConfig.sampleAgeLimit"):
            out["sample_age_limit"] = age
    return out


def _metadata(e: _Entry, value: Any) -> dict[str, Any]:
    value = e.mapping(value, "metadataConfig", frozenset({"send", "sendInterval", "maxSamplesPerSend"}))
    out: dict[str, Any] = {"send": e.flag(value.get("send", False), "metadataConfig.send")}
    if value.get("sendInterval"):
        out["send_interval"] = e.duration(value["sendInterval"], "metadataConfig.sendInterval")
    if value.get("maxSamplesPerSend") is not None:
        most = e.count(value["maxSamplesPerSend"], "metadataConfig.maxSamplesPerSend")
        if e.gates.allows("2.29.0", f"{e.where}.metadataConfig.maxSamplesPerSend"):
            out["max_samples_per_send"] = most
    return out
