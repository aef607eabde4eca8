"""Values from Secrets and ConfigMaps: credentials written into the config, TLS material into files. No I/O.

As prometheus-operator does it:
- credentials (basicAuth, bearerTokenSecret, authorization.credentials, oauth2, proxyConnectHeader) are
  written into the job itself; the config lives in a Secret;
- TLS material (tlsConfig ``ca``, ``cert``, ``keySecret``) becomes files of the Secrets
  ``prometheus-<name>-tls-assets-<n>``, named ``0_<namespace>_<name>_<key>`` for a Secret's key and
  ``1_<namespace>_<name>_<key>`` for a ConfigMap's, which the Prometheus pod mounts at CERTS_DIR;
  ``tls_config`` points at those files;
- a Secret, ConfigMap or key that does not exist rejects the monitor, naming the object and the key
  (never a value).

Every function here appends its problems to ``problems`` and goes on, so a rejected monitor lists all
of its reasons at once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from config_operator.generate.lookup import Lookup, UnreadableValue
from config_operator.generate.versions import Gates

CERTS_DIR = "/etc/prometheus/certs"
# What one shard may hold: prometheus-operator keeps 50 kB of a Secret's 1 MiB for the object itself.
MAX_SECRET_DATA_BYTES = 1024 * 1024 - 50_000
TLS_VERSIONS = ("TLS10", "TLS11", "TLS12", "TLS13")
SAFE_TLS_FIELDS = frozenset(
    {"ca", "cert", "keySecret", "serverName", "insecureSkipVerify", "minVersion", "maxVersion"}
)
TLS_FIELDS = SAFE_TLS_FIELDS | {"caFile", "certFile", "keyFile"}
PROXY_FIELDS = frozenset({"proxyUrl", "noProxy", "proxyFromEnvironment", "proxyConnectHeader"})
OAUTH2_FIELDS = frozenset({"clientId", "clientSecret", "tokenUrl", "scopes", "endpointParams", "tlsConfig"})


def tls_assets_secret_name(pc_name: str, index: int) -> str:
    """The name of shard ``index`` of a PrometheusConfig's TLS assets."""
    return f"prometheus-{pc_name}-tls-assets-{index}"


def shard_tls_assets(files: Mapping[str, str]) -> list[dict[str, str]]:
    """The files split over Secrets as prometheus-operator splits them: by file name, a new shard when
    the next file would take the current one past MAX_SECRET_DATA_BYTES. Always at least one (empty)
    shard, so that the pod's volume always finds shard 0."""
    shards: list[dict[str, str]] = [{}]
    size = 0
    for name in sorted(files):
        item = len(name) + len(files[name].encode())
        if size + item > MAX_SECRET_DATA_BYTES and shards[-1]:
            shards.append({})
            size = 0
        shards[-1][name] = files[name]
        size += item
    return shards


@dataclass
class Values:
    """What one monitor reads through the Lookup: its TLS files go to the tls-assets Secrets only if
    the whole monitor is accepted."""

    lookup: Lookup
    namespace: str
    files: dict[str, str] = field(default_factory=dict)

    def secret(self, ref: Any, where: str, problems: list[str]) -> str | None:
        """The value of a SecretKeySelector (``{name, key}``) in the monitor's namespace."""
        name_key = _selector(ref, where, problems)
        if name_key is None:
            return None
        name, key = name_key
        try:
            value = self.lookup.secret_value(self.namespace, name, key)
        except UnreadableValue as exc:
            problems.append(f"{where}: {exc}")
            return None
        if value is None:
            problems.append(f"{where}: {self._missing('Secret', name, key)}")
        return value

    def configmap(self, ref: Any, where: str, problems: list[str]) -> str | None:
        """The value of a ConfigMapKeySelector in the monitor's namespace."""
        name_key = _selector(ref, where, problems)
        if name_key is None:
            return None
        name, key = name_key
        try:
            value = self.lookup.configmap_value(self.namespace, name, key)
        except UnreadableValue as exc:
            problems.append(f"{where}: {exc}")
            return None
        if value is None:
            problems.append(f"{where}: {self._missing('ConfigMap', name, key)}")
        return value

    def secret_or_configmap(self, ref: Any, where: str, problems: list[str]) -> tuple[int, str, str] | None:
        """(0 for a Secret or 1 for a ConfigMap, object name and key, value) of a SecretOrConfigMap."""
        if not isinstance(ref, Mapping) or set(ref) - {"secret", "configMap"}:
            problems.append(f"{where}: must hold a 'secret' or a 'configMap' key selector")
            return None
        if ("secret" in ref) == ("configMap" in ref):
            problems.append(f"{where}: needs exactly one of secret and configMap")
            return None
        if "secret" in ref:
            value = self.secret(ref["secret"], f"{where}.secret", problems)
            kind, sel = 0, ref["secret"]
        else:
            value = self.configmap(ref["configMap"], f"{where}.configMap", problems)
            kind, sel = 1, ref["configMap"]
        if value is None:
            return None
        return kind, f"{sel['name']}_{sel['key']}", value

    def tls_file(self, ref: Any, where: str, problems: list[str], *, secret_only: bool = False) -> str | None:
        """The path under CERTS_DIR of a TLS file from a SecretOrConfigMap (or, secret_only, a Secret)."""
        found = (
            self._secret_file(ref, where, problems)
            if secret_only
            else self.secret_or_configmap(ref, where, problems)
        )
        if found is None:
            return None
        kind, name_key, value = found
        file_name = f"{kind}_{self.namespace}_{name_key}"
        self.files[file_name] = value
        return f"{CERTS_DIR}/{file_name}"

    def _secret_file(self, ref: Any, where: str, problems: list[str]) -> tuple[int, str, str] | None:
        value = self.secret(ref, where, problems)
        return None if value is None else (0, f"{ref['name']}_{ref['key']}", value)

    def _missing(self, kind: str, name: str, key: str) -> str:
        get = self.lookup.secret if kind == "Secret" else self.lookup.configmap
        if get(self.namespace, name) is None:
            return f"{kind} {self.namespace}/{name} not found (wanted key {key!r})"
        return f"{kind} {self.namespace}/{name} has no key {key!r}"


def _selector(ref: Any, where: str, problems: list[str]) -> tuple[str, str] | None:
    if (
        not isinstance(ref, Mapping)
        or set(ref) - {"name", "key", "optional"}
        or not isinstance(ref.get("name"), str)
        or not ref["name"]
        or not isinstance(ref.get("key"), str)
        or not ref["key"]
    ):
        problems.append(f"{where}: must be a key selector with a name and a key")
        return None
    return ref["name"], ref["key"]


# --- the http client settings that read Secrets -------------------------------------------------------


def tls_config(
    tls: Mapping[str, Any],
    values: Values,
    gates: Gates,
    where: str,
    problems: list[str],
    *,
    files: bool,
) -> dict[str, Any]:
    """tls_config from a (merged) tlsConfig, in prometheus-operator's key order; ``files`` allows the
    *File fields (a ServiceMonitor's TLSConfig; a PodMonitor's SafeTLSConfig has none)."""
    allowed = TLS_FIELDS if files else SAFE_TLS_FIELDS
    unknown = sorted(set(tls) - allowed)
    if unknown:
        problems.append(f"{where}: unsupported field(s): {', '.join(unknown)}")
    for a, b in (("caFile", "ca"), ("certFile", "cert"), ("keyFile", "keySecret")):
        if tls.get(a) and tls.get(b):
            problems.append(f"{where}: cannot set both {a} and {b}")
    has_cert, has_key = (
        bool(tls.get("cert") or tls.get("certFile")),
        bool(tls.get("keySecret") or tls.get("keyFile")),
    )
    if has_cert != has_key:
        problems.append(f"{where}: a client certificate and its key go together")
    out: dict[str, Any] = {}
    skip = tls.get("insecureSkipVerify")
    if skip is not None:
        if not isinstance(skip, bool):
            problems.append(f"{where}.insecureSkipVerify must be a boolean")
        out["insecure_skip_verify"] = skip
    for field_name, key in (("ca", "ca_file"), ("cert", "cert_file"), ("keySecret", "key_file")):
        if tls.get(field_name):
            path = values.tls_file(
                tls[field_name], f"{where}.{field_name}", problems, secret_only=field_name == "keySecret"
            )
            if path is not None:
                out[key] = path
    server_name = tls.get("serverName")
    if server_name is not None and not isinstance(server_name, str):
        problems.append(f"{where}.serverName must be a string")
    elif server_name:
        out["server_name"] = server_name
    versions = []
    for field_name, key, minimum in (
        ("minVersion", "min_version", "2.35.0"),
        ("maxVersion", "max_version", "2.41.0"),
    ):
        value = tls.get(field_name)
        if value is None:
            continue
        if value not in TLS_VERSIONS:
            problems.append(f"{where}.{field_name}: {value!r} is not one of {', '.join(TLS_VERSIONS)}")
            continue
        versions.append(value)
        if gates.allows(minimum, f"{where}.{field_name}"):
            out[key] = value
    if len(versions) == 2 and versions[1] < versions[0]:
        problems.append(f"{where}: maxVersion is lower than minVersion")
    for field_name, key in (("caFile", "ca_file"), ("certFile", "cert_file"), ("keyFile", "key_file")):
        value = tls.get(field_name)
        if value is None or value == "":
            continue
        if not isinstance(value, str):
            problems.append(f"{where}.{field_name} must be a string")
        else:
            out[key] = value
    return out


def proxy_settings(
    settings: Mapping[str, Any],
    values: Values,
    gates: Gates,
    where: str,
    problems: list[str],
    *,
    minimum: str = "",
) -> dict[str, Any]:
    """proxy_url, no_proxy, proxy_from_environment, proxy_connect_header; ``minimum`` gates them all
    (oauth2's proxy needs 2.43), otherwise only the last three need 2.43."""
    out: dict[str, Any] = {}
    url, no_proxy = settings.get("proxyUrl"), settings.get("noProxy")
    from_env, headers = settings.get("proxyFromEnvironment"), settings.get("proxyConnectHeader")
    prefix = f"{where}." if where else ""
    if url is not None and (
        not isinstance(url, str) or not url.startswith(("http://", "https://", "socks5://"))
    ):
        problems.append(f"{prefix}proxyUrl {url!r} must be an http, https or socks5 URL")
    if url and from_env:
        problems.append(f"{prefix}proxyUrl and proxyFromEnvironment cannot both be set")
    if no_proxy and not url:
        problems.append(f"{prefix}noProxy needs proxyUrl")
    if headers and not (url or from_env):
        problems.append(f"{prefix}proxyConnectHeader needs proxyUrl or proxyFromEnvironment")
    for name, value in (("noProxy", no_proxy), ("proxyFromEnvironment", from_env)):
        if value is not None and not isinstance(value, bool if name == "proxyFromEnvironment" else str):
            problems.append(f"{prefix}{name} has the wrong type")
    header_values: dict[str, list[str]] = {}
    if headers is not None:
        if not isinstance(headers, Mapping) or not all(isinstance(v, list) for v in headers.values()):
            problems.append(
                f"{prefix}proxyConnectHeader must map header names to lists of Secret key selectors"
            )
        else:
            for name in sorted(headers):
                got = [
                    values.secret(ref, f"{prefix}proxyConnectHeader[{name}][{i}]", problems)
                    for i, ref in enumerate(headers[name])
                ]
                header_values[name] = [v for v in got if v is not None]
    for name, key, value, needs in (
        ("proxyUrl", "proxy_url", url, minimum),
        ("noProxy", "no_proxy", no_proxy, minimum or "2.43.0"),
        ("proxyFromEnvironment", "proxy_from_environment", from_env, minimum or "2.43.0"),
        (
            "proxyConnectHeader",
            "proxy_connect_header",
            header_values if headers is not None else None,
            minimum or "2.43.0",
        ),
    ):
        if value is not None and (not needs or gates.allows(needs, f"{prefix}{name}")):
            out[key] = value
    return out


def basic_auth(auth: Any, values: Values, where: str, problems: list[str]) -> dict[str, Any] | None:
    """basic_auth with the username and password read from Secrets."""
    if not isinstance(auth, Mapping) or set(auth) - {"username", "password"}:
        problems.append(f"{where}: may hold only username and password")
        return None
    username = values.secret(auth.get("username"), f"{where}.username", problems)
    password = values.secret(auth.get("password"), f"{where}.password", problems)
    if username is None or password is None:
        return None
    return {"username": username, "password": password}


def authorization(auth: Mapping[str, Any], values: Values, where: str, problems: list[str]) -> dict[str, Any]:
    """authorization: type (Bearer when empty), credentials from a Secret, credentials_file (from a
    scrape class only)."""
    unknown = sorted(set(auth) - {"type", "credentials", "credentialsFile"})
    if unknown:
        problems.append(f"{where}: unsupported field(s): {', '.join(unknown)}")
    kind = auth.get("type") or "Bearer"
    if not isinstance(kind, str):
        problems.append(f"{where}.type must be a string")
        kind = "Bearer"
    if kind.strip().lower() == "basic":
        problems.append(f'{where}.type cannot be "Basic": use basicAuth')
    out: dict[str, Any] = {"type": kind.strip()}
    if auth.get("credentials") is not None:
        credentials = values.secret(auth["credentials"], f"{where}.credentials", problems)
        if credentials is not None:
            out["credentials"] = credentials
    if auth.get("credentialsFile"):
        out["credentials_file"] = auth["credentialsFile"]
    return out


def oauth2(auth: Any, values: Values, gates: Gates, where: str, problems: list[str]) -> dict[str, Any] | None:
    """oauth2 with the client ID (Secret or ConfigMap) and secret; its proxy and TLS need 2.43."""
    if not isinstance(auth, Mapping):
        problems.append(f"{where} must be a mapping")
        return None
    unknown = sorted(set(auth) - OAUTH2_FIELDS - PROXY_FIELDS)
    if unknown:
        problems.append(f"{where}: unsupported field(s): {', '.join(unknown)}")
    client_id = values.secret_or_configmap(auth.get("clientId"), f"{where}.clientId", problems)
    client_secret = values.secret(auth.get("clientSecret"), f"{where}.clientSecret", problems)
    token_url = auth.get("tokenUrl")
    if not isinstance(token_url, str) or not token_url:
        problems.append(f"{where}.tokenUrl must be a non-empty URL")
    out: dict[str, Any] = {
        "client_id": client_id[2] if client_id else None,
        "client_secret": client_secret,
        "token_url": token_url,
    }
    scopes = auth.get("scopes")
    if scopes:
        if not isinstance(scopes, list) or not all(isinstance(s, str) for s in scopes):
            problems.append(f"{where}.scopes must be a list of strings")
        out["scopes"] = scopes
    params = auth.get("endpointParams")
    if params:
        if not isinstance(params, Mapping) or not all(isinstance(v, str) for v in params.values()):
            problems.append(f"{where}.endpointParams must map names to strings")
        else:
            out["endpoint_params"] = {k: params[k] for k in sorted(params)}
    out |= proxy_settings(auth, values, gates, where, problems, minimum="2.43.0")
    tls = auth.get("tlsConfig")
    if tls is not None:
        if not isinstance(tls, Mapping):
            problems.append(f"{where}.tlsConfig must be a mapping")
        else:
            rendered = tls_config(tls, values, gates, f"{where}.tlsConfig", problems, files=False)
            if gates.allows("2.43.0", f"{where}.tlsConfig"):
                out["tls_config"] = rendered
    return out
