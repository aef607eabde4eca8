"""HTTP client settings for the reload and runtimeinfo URLs, in Prometheus' own ``http_config`` format.

``--reload-http-client-file`` (Thanos: ``--prometheus.http-client-file``) names a YAML file such as::

    basic_auth: {username: reloader, password_file: /etc/reloader/password}
    tls_config: {ca_file: ca.crt, server_name: prometheus.local}

Keys: ``basic_auth`` (username or username_file, password or password_file), ``authorization`` (type,
credentials or credentials_file), ``bearer_token`` / ``bearer_token_file``, ``tls_config`` (ca_file,
cert_file, key_file, server_name, insecure_skip_verify, min_version, max_version), and the accepted
no-ops ``follow_redirects`` and ``enable_http2``. Relative paths are relative to the file, as in
Prometheus. The file and every file it names are re-read when they change (rotated certificates and
tokens need no restart).

With no client file, an https URL is not verified: that is what prometheus-config-reloader does, and
what prometheus-operator counts on when it points the reloader at a Prometheus with web TLS.

No message here ever holds a credential or file contents: only key names, paths and causes.
Imports neither aiohttp nor yaml at load time (ssl and yaml load only when a client file is given).
"""

from __future__ import annotations

import base64
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlsplit, urlunsplit

if TYPE_CHECKING:
    import ssl


class ClientConfigError(ValueError):
    """The client file or a file it names is unreadable or malformed; the message is one line."""


TLS_VERSIONS: Final = ("TLS10", "TLS11", "TLS12", "TLS13")
_TOP_KEYS: Final = frozenset(
    {
        "basic_auth",
        "authorization",
        "bearer_token",
        "bearer_token_file",
        "tls_config",
        "follow_redirects",
        "enable_http2",
    }
)
_UNSUPPORTED: Final = frozenset(
    {"oauth2", "proxy_url", "no_proxy", "proxy_from_environment", "proxy_connect_header"}
)
_BASIC_KEYS: Final = frozenset({"username", "username_file", "password", "password_file"})
_AUTHZ_KEYS: Final = frozenset({"type", "credentials", "credentials_file"})
_TLS_KEYS: Final = frozenset(
    {"ca_file", "cert_file", "key_file", "server_name", "insecure_skip_verify", "min_version", "max_version"}
)


@dataclass(frozen=True)
class TLSSettings:
    """``tls_config``: paths already resolved against the client file's directory."""

    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    server_name: str | None = None
    insecure_skip_verify: bool = False
    min_version: str | None = None
    max_version: str | None = None


@dataclass(frozen=True)
class ClientConfig:
    """A parsed client file. Inline secrets are kept out of repr, so they never reach a log line."""

    username: str | None = field(default=None, repr=False)
    username_file: Path | None = None
    password: str | None = field(default=None, repr=False)
    password_file: Path | None = None
    auth_type: str | None = None
    """The Authorization scheme (``Bearer`` for bearer_token); None when there is no authorization."""
    credentials: str | None = field(default=None, repr=False)
    credentials_file: Path | None = None
    basic_auth: bool = False
    tls: TLSSettings = field(default_factory=TLSSettings)

    def files(self) -> tuple[Path, ...]:
        """Every file this config names: a change to any of them means re-reading."""
        named = (
            self.username_file,
            self.password_file,
            self.credentials_file,
            self.tls.ca_file,
            self.tls.cert_file,
            self.tls.key_file,
        )
        return tuple(p for p in named if p is not None)


def _mapping(value: object, where: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ClientConfigError(f"{where}: not a mapping")
    return value


def _check_keys(doc: Mapping[str, Any], allowed: frozenset[str], where: str) -> None:
    for key in doc:
        if key in _UNSUPPORTED:
            raise ClientConfigError(f"{where}: {key} is not supported")
        if key not in allowed:
            raise ClientConfigError(f"{where}: unknown key {key!r}")


def _str(doc: Mapping[str, Any], key: str, where: str) -> str | None:
    value = doc.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str | int | float) or isinstance(value, bool):
        raise ClientConfigError(f"{where}.{key}: not a string")
    return str(value)


def _path(doc: Mapping[str, Any], key: str, where: str, base: Path) -> Path | None:
    value = _str(doc, key, where)
    return None if value is None else base / value


def _bool(doc: Mapping[str, Any], key: str, where: str) -> bool:
    value = doc.get(key, False)
    if not isinstance(value, bool):
        raise ClientConfigError(f"{where}.{key}: not true or false")
    return value


def _version(doc: Mapping[str, Any], key: str, where: str) -> str | None:
    value = _str(doc, key, where)
    if value is not None and value not in TLS_VERSIONS:
        raise ClientConfigError(f"{where}.{key}: {value!r} is not one of {', '.join(TLS_VERSIONS)}")
    return value


def parse_client_config(doc: object, source: str, base: Path) -> ClientConfig:
    """The checked config of a parsed YAML document; ``base`` resolves relative paths. No I/O.

    Raises ClientConfigError naming ``source`` and the key, with the rules of Prometheus' own
    validation: one way to authenticate, and a secret given inline or by file, never both.
    """
    top = _mapping(doc, source)
    _check_keys(top, _TOP_KEYS, source)
    for key in ("follow_redirects", "enable_http2"):
        _bool(top, key, source)
    methods = [k for k in ("basic_auth", "authorization", "bearer_token", "bearer_token_file") if top.get(k)]
    if len(methods) > 1:
        raise ClientConfigError(f"{source}: at most one of {' and '.join(methods)} may be set")
    settings: dict[str, Any] = {}
    if top.get("basic_auth"):
        where = f"{source}: basic_auth"
        basic = _mapping(top["basic_auth"], where)
        _check_keys(basic, _BASIC_KEYS, where)
        settings.update(
            basic_auth=True,
            username=_str(basic, "username", where),
            username_file=_path(basic, "username_file", where, base),
            password=_str(basic, "password", where),
            password_file=_path(basic, "password_file", where, base),
        )
        if settings["username"] is not None and settings["username_file"] is not None:
            raise ClientConfigError(f"{where}: at most one of username and username_file may be set")
        if settings["password"] is not None and settings["password_file"] is not None:
            raise ClientConfigError(f"{where}: at most one of password and password_file may be set")
    elif top.get("authorization"):
        where = f"{source}: authorization"
        authz = _mapping(top["authorization"], where)
        _check_keys(authz, _AUTHZ_KEYS, where)
        auth_type = _str(authz, "type", where) or "Bearer"
        if auth_type.lower() == "basic":
            raise ClientConfigError(f"{where}: type Basic is not allowed, use basic_auth instead")
        settings.update(
            auth_type=auth_type,
            credentials=_str(authz, "credentials", where),
            credentials_file=_path(authz, "credentials_file", where, base),
        )
        if settings["credentials"] is not None and settings["credentials_file"] is not None:
            raise ClientConfigError(f"{where}: at most one of credentials and credentials_file may be set")
    elif top.get("bearer_token"):
        settings.update(auth_type="Bearer", credentials=_str(top, "bearer_token", source))
    elif top.get("bearer_token_file"):
        settings.update(auth_type="Bearer", credentials_file=_path(top, "bearer_token_file", source, base))
    where = f"{source}: tls_config"
    tls_doc = _mapping(top.get("tls_config"), where)
    _check_keys(tls_doc, _TLS_KEYS, where)
    tls = TLSSettings(
        ca_file=_path(tls_doc, "ca_file", where, base),
        cert_file=_path(tls_doc, "cert_file", where, base),
        key_file=_path(tls_doc, "key_file", where, base),
        server_name=_str(tls_doc, "server_name", where),
        insecure_skip_verify=_bool(tls_doc, "insecure_skip_verify", where),
        min_version=_version(tls_doc, "min_version", where),
        max_version=_version(tls_doc, "max_version", where),
    )
    if (tls.cert_file is None) != (tls.key_file is None):
        raise ClientConfigError(f"{where}: cert_file and key_file must be given together")
    return ClientConfig(tls=tls, **settings)


def yaml_error_line(exc: Exception) -> str:
    """A YAML error as one line, without the snippet of the document that PyYAML adds (it may hold a
    secret): the problem and its position only."""
    problem = getattr(exc, "problem", None) or exc.__class__.__name__
    mark = getattr(exc, "problem_mark", None)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    return f"YAML: {problem}{where}"


def load_client_config(path: Path) -> ClientConfig:
    """Read and check a client file (not the files it names). Raises ClientConfigError."""
    import yaml  # only with a client file

    source = f"http client file {path}"
    try:
        doc = yaml.load(path.read_bytes(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except OSError as exc:
        raise ClientConfigError(f"{source}: {exc.strerror or exc.__class__.__name__}") from exc
    except yaml.YAMLError as exc:
        raise ClientConfigError(f"{source}: {yaml_error_line(exc)}") from exc
    return parse_client_config(doc, source, path.parent)


@dataclass(frozen=True)
class RequestSettings:
    """What one request needs: aiohttp's ``ssl`` and ``server_hostname`` arguments, and headers."""

    ssl: ssl.SSLContext | bool = False
    """False: no certificate verification (prometheus-config-reloader's behaviour with no client file)."""
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    server_hostname: str | None = None


def authorization_header(config: ClientConfig, read: Any) -> dict[str, str]:
    """The Authorization header of ``config``; ``read(path) -> str`` reads a secret file."""
    if config.basic_auth:
        user = config.username if config.username_file is None else read(config.username_file)
        password = config.password if config.password_file is None else read(config.password_file)
        token = base64.b64encode(f"{user or ''}:{password or ''}".encode()).decode()
        return {"Authorization": f"Basic {token}"}
    if config.auth_type is not None:
        credentials = config.credentials if config.credentials_file is None else read(config.credentials_file)
        return {"Authorization": f"{config.auth_type} {credentials or ''}"}
    return {}


def _tls_version(name: str) -> ssl.TLSVersion:
    import ssl

    return {
        "TLS10": ssl.TLSVersion.TLSv1,
        "TLS11": ssl.TLSVersion.TLSv1_1,
        "TLS12": ssl.TLSVersion.TLSv1_2,
        "TLS13": ssl.TLSVersion.TLSv1_3,
    }[name]


def client_ssl_context(tls: TLSSettings) -> ssl.SSLContext:
    """A verifying client context (system CAs unless ca_file), or a non-verifying one when asked."""
    import ssl

    ctx = ssl.create_default_context(cafile=str(tls.ca_file) if tls.ca_file else None)
    if tls.insecure_skip_verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if tls.cert_file is not None and tls.key_file is not None:
        ctx.load_cert_chain(tls.cert_file, tls.key_file)
    if tls.min_version:
        ctx.minimum_version = _tls_version(tls.min_version)
    if tls.max_version:
        ctx.maximum_version = _tls_version(tls.max_version)
    return ctx


def _read_secret(path: Path) -> str:
    # Prometheus trims the surrounding whitespace of secret files (the newline an editor adds).
    return path.read_text().strip()


Fingerprint = tuple[tuple[str, int, int, int], ...]


def fingerprint(paths: tuple[Path, ...]) -> Fingerprint | None:
    """(path, inode, size, mtime) of each file, following symlinks (a Kubernetes ``..data`` swap
    changes the inode); None when one cannot be read, so that the next call tries again."""
    out = []
    for path in paths:
        try:
            st = os.stat(path)
        except OSError:
            return None
        out.append((str(path), st.st_ino, st.st_size, st.st_mtime_ns))
    return tuple(out)


class HTTPClient:
    """The request settings of one client file, rebuilt whenever that file or a file it names changes.

    With no file: no headers, and no certificate verification (as prometheus-config-reloader).
    """

    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        self._config: ClientConfig | None = None
        self._seen: Fingerprint | None = None
        self._settings = RequestSettings()

    def settings(self) -> RequestSettings:
        """Current settings; raises ClientConfigError (one line, no secret) when a file is bad."""
        if self.path is None:
            return self._settings
        named = self._config.files() if self._config is not None else ()
        current = fingerprint((self.path, *named))
        if current is not None and current == self._seen:
            return self._settings
        import ssl

        self._seen = None
        config = load_client_config(self.path)
        source = f"http client file {self.path}"
        try:
            headers = authorization_header(config, _read_secret)
            ctx = client_ssl_context(config.tls)
        except ssl.SSLError as exc:  # a bad certificate or key; OpenSSL's reason names no secret
            raise ClientConfigError(f"{source}: tls_config: {exc.reason or exc}") from exc
        except OSError as exc:
            # ssl's errors carry no file name: name the first file that cannot be read.
            name = exc.filename or next((p for p in config.files() if not os.access(p, os.R_OK)), "a file")
            raise ClientConfigError(f"{source}: {name}: {exc.strerror or exc}") from exc
        except UnicodeDecodeError as exc:
            raise ClientConfigError(f"{source}: a secret file is not valid UTF-8") from exc
        self._config = config
        self._settings = RequestSettings(ssl=ctx, headers=headers, server_hostname=config.tls.server_name)
        self._seen = fingerprint((self.path, *config.files()))
        return self._settings


def unverified_https(url: str, client_file: Path | None) -> bool:
    """True when ``url`` is https and no client file says how to verify it: worth one warning."""
    return client_file is None and urlsplit(url).scheme == "https"


def redact(url: str) -> str:
    """The URL for a log line: a password in it (``http://user:pass@host``) becomes ``xxxxx``."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{parts.username}:xxxxx@{host}"))
