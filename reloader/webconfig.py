"""``--web-config-file``: Prometheus' web config (exporter-toolkit's format) for our /metrics server.

    tls_server_config:
      cert_file: tls.crt                 # both, or neither (plain HTTP)
      key_file: tls.key
      client_auth_type: RequireAndVerifyClientCert
      client_ca_file: ca.crt
      min_version: TLS12                 # the default; TLS10..TLS13
      max_version: TLS13
      cipher_suites: [TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256]   # Go's names; TLS 1.2 and lower
      curve_preferences: [X25519]
    http_server_config:
      headers: {X-Frame-Options: deny}
      http2: true
    basic_auth_users:
      admin: $2b$12$...                  # bcrypt

An unknown key is an error, as exporter-toolkit's strict parsing makes it. Relative paths are relative to
the web config file. Certificates are re-read when they change (see ``RotatingServerContext``).
Messages name keys and paths, never a hash or a key's contents. No aiohttp here; ssl, yaml and bcrypt
load only when a web config is given.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from reloader.httpclient import TLS_VERSIONS, fingerprint, yaml_error_line

if TYPE_CHECKING:
    import ssl

log = logging.getLogger("reloader")


class WebConfigError(ValueError):
    """The web-config file is unreadable or malformed; the message is one line."""


CLIENT_AUTH_TYPES: Final = (
    "NoClientCert",
    "RequestClientCert",
    "RequireAnyClientCert",
    "VerifyClientCertIfGiven",
    "RequireAndVerifyClientCert",
)
# Go's cipher suite names (crypto/tls) -> OpenSSL's. Only TLS 1.2 and lower are configurable, in Go
# as in OpenSSL; TLS 1.3 suites are always the secure defaults.
CIPHER_SUITES: Final = {
    "TLS_RSA_WITH_3DES_EDE_CBC_SHA": "DES-CBC3-SHA",
    "TLS_RSA_WITH_AES_128_CBC_SHA": "AES128-SHA",
    "TLS_RSA_WITH_AES_256_CBC_SHA": "AES256-SHA",
    "TLS_RSA_WITH_AES_128_CBC_SHA256": "AES128-SHA256",
    "TLS_RSA_WITH_AES_128_GCM_SHA256": "AES128-GCM-SHA256",
    "TLS_RSA_WITH_AES_256_GCM_SHA384": "AES256-GCM-SHA384",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA": "ECDHE-ECDSA-AES128-SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA": "ECDHE-ECDSA-AES256-SHA",
    "TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA": "ECDHE-RSA-DES-CBC3-SHA",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA": "ECDHE-RSA-AES128-SHA",
    "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA": "ECDHE-RSA-AES256-SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256": "ECDHE-ECDSA-AES128-SHA256",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256": "ECDHE-RSA-AES128-SHA256",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256": "ECDHE-RSA-AES128-GCM-SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256": "ECDHE-ECDSA-AES128-GCM-SHA256",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384": "ECDHE-RSA-AES256-GCM-SHA384",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384": "ECDHE-ECDSA-AES256-GCM-SHA384",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-RSA-CHACHA20-POLY1305",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-ECDSA-CHACHA20-POLY1305",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305": "ECDHE-RSA-CHACHA20-POLY1305",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305": "ECDHE-ECDSA-CHACHA20-POLY1305",
}
CURVES: Final = {
    "X25519": "X25519",
    "CurveP256": "prime256v1",
    "CurveP384": "secp384r1",
    "CurveP521": "secp521r1",
}
# exporter-toolkit accepts only these response headers.
HEADERS: Final = (
    "Strict-Transport-Security",
    "X-Content-Type-Options",
    "X-Frame-Options",
    "X-XSS-Protection",
    "Content-Security-Policy",
)
_TOP_KEYS: Final = frozenset({"tls_server_config", "http_server_config", "basic_auth_users"})
_TLS_KEYS: Final = frozenset(
    {
        "cert_file",
        "key_file",
        "client_auth_type",
        "client_ca_file",
        "min_version",
        "max_version",
        "cipher_suites",
        "curve_preferences",
        "prefer_server_cipher_suites",
    }
)
_HTTP_KEYS: Final = frozenset({"headers", "http2"})


@dataclass(frozen=True)
class TLSServerSettings:
    """``tls_server_config``, checked; paths resolved; ciphers and curves in OpenSSL's names."""

    cert_file: Path
    key_file: Path
    client_auth_type: str = "NoClientCert"
    client_ca_file: Path | None = None
    min_version: str = "TLS12"
    max_version: str = "TLS13"
    ciphers: tuple[str, ...] = ()
    curves: tuple[str, ...] = ()

    def files(self) -> tuple[Path, ...]:
        return (self.cert_file, self.key_file, *((self.client_ca_file,) if self.client_ca_file else ()))


@dataclass(frozen=True)
class WebConfig:
    """TLS, response headers and basic auth for the server."""

    tls: TLSServerSettings | None = None
    """None serves plain HTTP."""
    headers: Mapping[str, str] = field(default_factory=dict)
    """Added to every response."""
    http2: bool = True
    """Accepted for compatibility; aiohttp serves HTTP/1.1 only."""
    basic_auth_users: Mapping[str, bytes] = field(default_factory=dict, repr=False)
    """user name -> bcrypt hash; empty disables basic auth."""


def _mapping(value: object, where: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise WebConfigError(f"{where}: not a mapping")
    for key in value:
        if not isinstance(key, str):
            raise WebConfigError(f"{where}: a key is not a string")
    return value


def _keys(doc: Mapping[str, Any], allowed: frozenset[str], where: str) -> None:
    unknown = sorted(set(doc) - allowed)
    if unknown:
        raise WebConfigError(f"{where}: unknown key {unknown[0]!r}")


def _str(doc: Mapping[str, Any], key: str, where: str) -> str | None:
    value = doc.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise WebConfigError(f"{where}.{key}: not a string")
    return value


def _names(doc: Mapping[str, Any], key: str, where: str, table: Mapping[str, str]) -> tuple[str, ...]:
    value = doc.get(key) or []
    if not isinstance(value, list):
        raise WebConfigError(f"{where}.{key}: not a list")
    out = []
    for name in value:
        if name not in table:
            raise WebConfigError(f"{where}.{key}: unknown name {name!r}")
        out.append(table[name])
    return tuple(out)


def _tls(doc: Mapping[str, Any], where: str, base: Path) -> TLSServerSettings | None:
    _keys(doc, _TLS_KEYS, where)
    cert, key = _str(doc, "cert_file", where), _str(doc, "key_file", where)
    auth = _str(doc, "client_auth_type", where) or "NoClientCert"
    ca = _str(doc, "client_ca_file", where)
    if cert is None and key is None:
        if ca or doc.get("client_auth_type"):
            raise WebConfigError(f"{where}: client certificates need cert_file and key_file")
        return None  # exporter-toolkit serves plain HTTP then
    if cert is None or key is None:
        raise WebConfigError(f"{where}: missing {'cert_file' if cert is None else 'key_file'}")
    if auth not in CLIENT_AUTH_TYPES:
        raise WebConfigError(
            f"{where}.client_auth_type: {auth!r} is not one of {', '.join(CLIENT_AUTH_TYPES)}"
        )
    if auth == "RequireAnyClientCert":
        # Python's ssl cannot require a certificate without verifying it against a CA.
        raise WebConfigError(
            f"{where}.client_auth_type: RequireAnyClientCert is not supported; "
            "use RequireAndVerifyClientCert with client_ca_file"
        )
    if ca and auth == "NoClientCert":
        raise WebConfigError(f"{where}: client_ca_file is set but client_auth_type is NoClientCert")
    if auth in ("VerifyClientCertIfGiven", "RequireAndVerifyClientCert") and not ca:
        raise WebConfigError(f"{where}: client_auth_type {auth} needs client_ca_file")
    versions = {}
    for name, default in (("min_version", "TLS12"), ("max_version", "TLS13")):
        value = _str(doc, name, where) or default
        if value not in TLS_VERSIONS:
            raise WebConfigError(f"{where}.{name}: {value!r} is not one of {', '.join(TLS_VERSIONS)}")
        versions[name] = value
    if TLS_VERSIONS.index(versions["min_version"]) > TLS_VERSIONS.index(versions["max_version"]):
        raise WebConfigError(f"{where}: min_version is above max_version")
    if not isinstance(doc.get("prefer_server_cipher_suites", True), bool):
        raise WebConfigError(f"{where}.prefer_server_cipher_suites: not true or false")
    return TLSServerSettings(
        cert_file=base / cert,
        key_file=base / key,
        client_auth_type=auth,
        client_ca_file=base / ca if ca else None,
        ciphers=_names(doc, "cipher_suites", where, CIPHER_SUITES),
        curves=_names(doc, "curve_preferences", where, CURVES),
        **versions,
    )


def parse_web_config(doc: object, source: str, base: Path) -> WebConfig:
    """The checked web config of a parsed YAML document; ``base`` resolves relative paths. No I/O."""
    if doc is None:
        return WebConfig()
    top = _mapping(doc, source)
    _keys(top, _TOP_KEYS, source)
    tls = _tls(
        _mapping(top.get("tls_server_config"), f"{source}: tls_server_config"),
        f"{source}: tls_server_config",
        base,
    )
    where = f"{source}: http_server_config"
    http = _mapping(top.get("http_server_config"), where)
    _keys(http, _HTTP_KEYS, where)
    http2 = http.get("http2", True)
    if not isinstance(http2, bool):
        raise WebConfigError(f"{where}.http2: not true or false")
    headers = _mapping(http.get("headers"), f"{where}.headers")
    canonical = {h.lower(): h for h in HEADERS}
    checked: dict[str, str] = {}
    for name, value in headers.items():
        if name.lower() not in canonical:
            raise WebConfigError(f"{where}.headers: {name!r} is not one of {', '.join(HEADERS)}")
        if not isinstance(value, str):
            raise WebConfigError(f"{where}.headers.{name}: not a string")
        checked[canonical[name.lower()]] = value
    users: dict[str, bytes] = {}
    for user, hashed in _mapping(top.get("basic_auth_users"), f"{source}: basic_auth_users").items():
        if not isinstance(hashed, str) or not hashed.startswith(("$2a$", "$2b$", "$2y$")):
            raise WebConfigError(f"{source}: basic_auth_users: the entry of {user!r} is not a bcrypt hash")
        users[user] = hashed.encode()
    return WebConfig(tls=tls, headers=checked, http2=http2, basic_auth_users=users)


def _tls_version(name: str) -> ssl.TLSVersion:
    import ssl

    return {
        "TLS10": ssl.TLSVersion.TLSv1,
        "TLS11": ssl.TLSVersion.TLSv1_1,
        "TLS12": ssl.TLSVersion.TLSv1_2,
        "TLS13": ssl.TLSVersion.TLSv1_3,
    }[name]


def server_ssl_context(tls: TLSServerSettings) -> ssl.SSLContext:
    """A server context from the files as they are now. Raises OSError or ssl.SSLError."""
    import ssl

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = _tls_version(tls.min_version)
    ctx.maximum_version = _tls_version(tls.max_version)
    ctx.load_cert_chain(tls.cert_file, tls.key_file)
    if tls.ciphers:
        ctx.set_ciphers(":".join(tls.ciphers))
    if tls.curves:
        # Python 3.11's ssl can set one curve only: the first preference is the one offered.
        ctx.set_ecdh_curve(tls.curves[0])
    if tls.client_ca_file is not None:
        ctx.load_verify_locations(tls.client_ca_file)
    ctx.verify_mode = {
        "VerifyClientCertIfGiven": ssl.CERT_OPTIONAL,
        "RequireAndVerifyClientCert": ssl.CERT_REQUIRED,
    }.get(tls.client_auth_type, ssl.CERT_NONE)  # RequestClientCert asks but never checks: no access rule
    return ctx


def _context_or_error(tls: TLSServerSettings, source: str) -> ssl.SSLContext:
    import ssl

    try:
        return server_ssl_context(tls)
    except ssl.SSLError as exc:
        raise WebConfigError(f"{source}: tls_server_config: {exc.reason or exc}") from exc
    except OSError as exc:
        # ssl's errors carry no file name: name the first file that cannot be read.
        name = exc.filename or next((p for p in tls.files() if not os.access(p, os.R_OK)), "a file")
        raise WebConfigError(f"{source}: tls_server_config: {name}: {exc.strerror or exc}") from exc


def load_web_config(path: str | Path) -> WebConfig:
    """Read and check a web config file, and load its certificates once to prove they work.

    Raises WebConfigError with one line naming the path and the cause.
    """
    import yaml  # only with --web-config-file: about 1.5 MiB of resident memory otherwise spent for nothing

    path = Path(path)
    source = f"web config {path}"
    try:
        doc = yaml.load(path.read_bytes(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except OSError as exc:
        raise WebConfigError(f"{source}: {exc.strerror or exc.__class__.__name__}") from exc
    except yaml.YAMLError as exc:
        raise WebConfigError(f"{source}: {yaml_error_line(exc)}") from exc
    config = parse_web_config(doc, source, path.parent)
    if config.tls is not None:
        _context_or_error(config.tls, source)
    return config


def rotating_context(tls: TLSServerSettings, source: str) -> ssl.SSLContext:
    """A server context that re-reads the certificate, key and client CA when they change on disk.

    asyncio asks the server's context for one ``wrap_bio`` per new connection; this one hands that to a
    context built from the files as they are now (a stat of each, per connection). So after a
    cert-manager rotation the next connection gets the new certificate, and connections already open
    keep theirs. Files that do not load (a rotation half done) keep the previous context, with one
    warning per state of the files.
    """
    import ssl

    class RotatingServerContext(ssl.SSLContext):
        current: ssl.SSLContext
        seen: Any
        warned: Any

        def wrap_bio(self, *args: Any, **kwargs: Any) -> ssl.SSLObject:
            self.refresh()
            return self.current.wrap_bio(*args, **kwargs)

        def refresh(self) -> None:
            now = fingerprint(tls.files())
            if now is None or now == self.seen or now == self.warned:
                return
            try:
                self.current = server_ssl_context(tls)
            except (OSError, ssl.SSLError) as exc:
                self.warned = now
                reason = (
                    getattr(exc, "reason", None) or getattr(exc, "strerror", None) or exc.__class__.__name__
                )
                log.warning(
                    "certificate files do not load, serving the previous ones",
                    extra={"source": source, "err": str(reason)},
                )
                return
            self.seen = now
            log.info("certificate files re-read", extra={"source": source})

    outer = RotatingServerContext(ssl.PROTOCOL_TLS_SERVER)
    outer.current = _context_or_error(tls, source)
    outer.seen = fingerprint(tls.files())
    outer.warned = None
    return outer
