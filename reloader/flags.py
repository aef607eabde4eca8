"""The command line as data: every flag of ``config-reloader``, and a parser for the usual case.

``FLAGS`` is the one list of flags. ``reloader.command`` builds the click command from it, which
parses anything and prints help, versions and errors. Start-up cost decides the rest: click costs
about 50 ms of CPU to import, five seconds under prometheus-operator's 10m CPU limit, while an init
container or a sidecar's first reload waits. So ``parse`` reads the command lines that
prometheus-operator and the Thanos sidecar write (``--flag=value``, ``--flag value``, known flags,
valid values) without click, and gives up (None) on anything else, which then goes to click. Both give
the same values: tests/reloader/test_flags.py compares them.

What Go's reloader checks after parsing (``merge_aliases``, ``check_flags``) is shared by both paths.
"""

from __future__ import annotations

import os

from reloader.durations import parse_duration
from reloader.logline import FORMATS, LEVELS
from reloader.render import DEFAULT_MAX_DECOMPRESSED_BYTES

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from collections.abc import Set as AbstractSet
    from typing import Any, Final

PATH: Final = "path"
"""Normalised (``/etc/prometheus/rules/`` is ``/etc/prometheus/rules``); empty means unset."""
DURATION: Final = "duration"
STRING: Final = "string"
CHOICE: Final = "choice"
FLOAT: Final = "float"
POSITIVE_INT: Final = "positive-int"
SWITCH: Final = "switch"
"""A boolean flag that takes no value."""

RELOAD_METHODS: Final = ("http", "signal")
RELOAD_PATH: Final = "/-/reload"
RUNTIMEINFO_PATH: Final = "/api/v1/status/runtimeinfo"


class Flag:
    """One flag: its name, the parameter it sets, its kind, its default (as written) and its help."""

    __slots__ = ("choices", "default", "dest", "help", "kind", "multiple", "name", "show_default")

    def __init__(
        self,
        name: str,
        dest: str,
        kind: str = STRING,
        *,
        default: object = None,
        help: str | None = None,
        multiple: bool = False,
        choices: Sequence[str] = (),
        show_default: bool = False,
    ) -> None:
        self.name = name
        self.dest = dest
        self.kind = kind
        self.default = default
        self.help = help
        self.multiple = multiple
        self.choices = tuple(choices)
        self.show_default = show_default


def _alias_help(flag: str) -> str:
    return f"The Thanos sidecar's name for {flag}."


FLAGS: Final = (
    Flag("--config-file", "config_file", PATH, help="Input file; gzip is detected by its magic bytes."),
    Flag(
        "--config-envsubst-file",
        "config_envsubst_file",
        PATH,
        help="Output file; with none, the input is only hashed.",
    ),
    Flag(
        "--watched-dir",
        "watched_dir",
        PATH,
        multiple=True,
        help="Directory whose changes trigger a reload (repeatable).",
    ),
    Flag(
        "--watch-interval",
        "watch_interval",
        DURATION,
        default="3m",
        show_default=True,
        help="Periodic re-read; 0 renders once and exits.",
    ),
    Flag(
        "--delay-interval",
        "delay_interval",
        DURATION,
        default="1s",
        show_default=True,
        help="Quiet time after the last event.",
    ),
    Flag(
        "--retry-interval",
        "retry_interval",
        DURATION,
        default="5s",
        show_default=True,
        help="Wait before retrying a failed reload.",
    ),
    Flag(
        "--reload-timeout",
        "reload_timeout",
        DURATION,
        default="30s",
        show_default=True,
        help="Limit for one reload.",
    ),
    Flag(
        "--reload-url",
        "reload_url",
        default="http://127.0.0.1:9090" + RELOAD_PATH,
        show_default=True,
        help="POSTed to by the http method.",
    ),
    Flag(
        "--reload-method",
        "reload_method",
        CHOICE,
        choices=RELOAD_METHODS,
        default="http",
        show_default=True,
        help="How to reload the target.",
    ),
    Flag(
        "--process-executable-name",
        "process_executable_name",
        default="prometheus",
        show_default=True,
        help="Process that gets SIGHUP (signal method).",
    ),
    Flag(
        "--runtimeinfo-url",
        "runtimeinfo_url",
        default="http://127.0.0.1:9090" + RUNTIMEINFO_PATH,
        show_default=True,
        help="Checked after SIGHUP to see that the reload took effect.",
    ),
    Flag(
        "--listen-address",
        "listen_address",
        help="Serve /metrics, /healthz, /readyz here, e.g. :8080; empty: none.",
    ),
    Flag(
        "--web-config-file",
        "web_config_file",
        PATH,
        help="TLS, client certificates, headers and basic auth for that server (Prometheus web config).",
    ),
    Flag("--log-format", "log_format", CHOICE, choices=FORMATS, default="logfmt", show_default=True),
    Flag("--log-level", "log_level", CHOICE, choices=tuple(LEVELS), default="info", show_default=True),
    Flag(
        "--statefulset-ordinal-from-envvar",
        "statefulset_ordinal_from_envvar",
        default="POD_NAME",
        show_default=True,
        help="STATEFULSET_ORDINAL_NUMBER is set from the trailing digits of this variable.",
    ),
    Flag(
        "--auto-gomemlimit-ratio",
        "auto_gomemlimit_ratio",
        FLOAT,
        default=0.9,
        show_default=True,
        help="Accepted and ignored.",
    ),
    Flag(
        "--reload-http-client-file",
        "reload_http_client_file",
        PATH,
        help="Prometheus-style http_config (basic auth, authorization, TLS) for the reload and runtimeinfo URLs.",
    ),
    Flag("--reloader.config-file", "thanos_config_file", PATH, help=_alias_help("--config-file")),
    Flag(
        "--reloader.config-envsubst-file",
        "thanos_config_envsubst_file",
        PATH,
        help=_alias_help("--config-envsubst-file"),
    ),
    Flag("--reloader.rule-dir", "thanos_rule_dir", PATH, multiple=True, help=_alias_help("--watched-dir")),
    Flag(
        "--reloader.watch-interval",
        "thanos_watch_interval",
        DURATION,
        help=_alias_help("--watch-interval"),
    ),
    Flag(
        "--reloader.retry-interval",
        "thanos_retry_interval",
        DURATION,
        help=_alias_help("--retry-interval"),
    ),
    Flag(
        "--reloader.method",
        "thanos_method",
        CHOICE,
        choices=RELOAD_METHODS,
        help=_alias_help("--reload-method"),
    ),
    Flag("--reloader.process-name", "thanos_process_name", help=_alias_help("--process-executable-name")),
    Flag(
        "--prometheus.url",
        "prometheus_url",
        help="Thanos sidecar: the target's base URL; gives --reload-url and --runtimeinfo-url.",
    ),
    Flag(
        "--prometheus.http-client-file",
        "thanos_http_client_file",
        PATH,
        help=_alias_help("--reload-http-client-file"),
    ),
    Flag(
        "--strict-env",
        "strict_env",
        SWITCH,
        default=False,
        help="An unset $(VAR) is an error, not left as is.",
    ),
    Flag(
        "--max-config-bytes",
        "max_config_bytes",
        POSITIVE_INT,
        default=DEFAULT_MAX_DECOMPRESSED_BYTES,
        show_default=True,
        help="Limit on the decompressed input (gzip bombs).",
    ),
)

# (alias, its flag, the option it stands for, that option's flag): the Thanos sidecar's reloader flags.
THANOS_ALIASES: Final = (
    ("thanos_config_file", "--reloader.config-file", "config_file", "--config-file"),
    (
        "thanos_config_envsubst_file",
        "--reloader.config-envsubst-file",
        "config_envsubst_file",
        "--config-envsubst-file",
    ),
    ("thanos_rule_dir", "--reloader.rule-dir", "watched_dir", "--watched-dir"),
    ("thanos_watch_interval", "--reloader.watch-interval", "watch_interval", "--watch-interval"),
    ("thanos_retry_interval", "--reloader.retry-interval", "retry_interval", "--retry-interval"),
    ("thanos_method", "--reloader.method", "reload_method", "--reload-method"),
    (
        "thanos_process_name",
        "--reloader.process-name",
        "process_executable_name",
        "--process-executable-name",
    ),
    (
        "thanos_http_client_file",
        "--prometheus.http-client-file",
        "reload_http_client_file",
        "--reload-http-client-file",
    ),
)


class FlagError(ValueError):
    """A usage error: one line, printed as ``config-reloader: error: ...``, exit code 2."""


def normpath(text: str) -> str | None:
    """Paths stay strings: importing pathlib costs about half a second at 10m CPU, in init mode."""
    return os.path.normpath(text) if text else None


def convert(flag: Flag, text: str) -> Any:
    """The value of ``text`` for ``flag``; ValueError when click would refuse it."""
    if flag.kind == PATH:
        return normpath(text)
    if flag.kind == DURATION:
        return parse_duration(text)
    if flag.kind == CHOICE:
        if text not in flag.choices:
            raise ValueError(f"{text!r} is not one of {', '.join(flag.choices)}")
        return text
    if flag.kind == FLOAT:
        return float(text)
    if flag.kind == POSITIVE_INT:
        number = int(text)
        if number < 1:
            raise ValueError(f"{number} is smaller than 1")
        return number
    return text


def default_value(flag: Flag) -> Any:
    if flag.multiple:
        return ()
    if flag.default is None or flag.kind == SWITCH:
        return flag.default
    return convert(flag, str(flag.default)) if isinstance(flag.default, str) else flag.default


_BY_NAME: Final = {flag.name: flag for flag in FLAGS}


def parse(argv: Sequence[str]) -> tuple[dict[str, Any], frozenset[str]] | None:
    """(values by parameter, the parameters given) for a plain command line; None for anything else.

    Plain: every token is ``--known-flag=value``, ``--known-flag value`` (a value that does not start
    with ``-``) or a switch, and every value is valid. Help, versions, unknown flags, bad values and
    positional arguments are click's to report.
    """
    values: dict[str, Any] = {}
    given: set[str] = set()
    multi: dict[str, list[Any]] = {}
    i = 0
    while i < len(argv):
        token = argv[i]
        i += 1
        name, eq, text = token.partition("=")
        flag = _BY_NAME.get(name)
        if flag is None:
            return None
        if flag.kind == SWITCH:
            if eq:
                return None
            values[flag.dest] = True
        else:
            if not eq:
                if i >= len(argv) or argv[i].startswith("-"):
                    return None
                text = argv[i]
                i += 1
            try:
                value = convert(flag, text)
            except ValueError:
                return None
            if flag.multiple:
                multi.setdefault(flag.dest, []).append(value)
            else:
                values[flag.dest] = value
        given.add(flag.dest)
    for flag in FLAGS:
        if flag.multiple:
            values[flag.dest] = tuple(multi.get(flag.dest, ()))
        elif flag.dest not in values:
            values[flag.dest] = default_value(flag)
    return values, frozenset(given)


def url_under(base: str, path: str) -> str:
    """``http://localhost:9090`` + ``/-/reload``; a route prefix in ``base`` is kept."""
    from urllib.parse import urlsplit

    parts = urlsplit(base)
    return parts._replace(path=parts.path.rstrip("/") + path).geturl()


def merge_aliases(params: Mapping[str, Any], given: AbstractSet[str]) -> dict[str, Any]:
    """Fold the Thanos flags into ours. ``given`` names the parameters set on the command line.

    A flag and its alias together is an error, even with equal values: one of them is a leftover.
    ``--prometheus.url`` gives both the reload URL and the runtimeinfo URL.
    """
    out = dict(params)
    for alias, alias_flag, name, flag in THANOS_ALIASES:
        value = out.pop(alias)
        if alias in given:
            if name in given:
                raise FlagError(f"{alias_flag} is the Thanos name of {flag}: give only one of them")
            out[name] = value
    base = out.pop("prometheus_url")
    if "prometheus_url" in given:
        for name, flag in (("reload_url", "--reload-url"), ("runtimeinfo_url", "--runtimeinfo-url")):
            if name in given:
                raise FlagError(f"--prometheus.url sets {flag}: give only one of them")
        check_url(base, "--prometheus.url")
        out["reload_url"] = url_under(base, RELOAD_PATH)
        out["runtimeinfo_url"] = url_under(base, RUNTIMEINFO_PATH)
    out["watched_dir"] = tuple(d for d in out["watched_dir"] if d is not None)
    out["listen_address"] = out["listen_address"] or None  # empty: no server, as in Go
    return out


def plainly_http(url: str) -> bool:
    """True for ``http://host...`` or ``https://host...`` in plain ASCII: a URL that urlsplit too reads
    as http(s) with a host. Anything else is left to urlsplit (which imports re: 1 s at 10m CPU)."""
    scheme, sep, rest = url.partition("://")
    host = rest.split("/", 1)[0].split("?", 1)[0].split("#", 1)[0]
    return (
        bool(sep and host)
        and scheme in ("http", "https")
        and url.isascii()
        and url.isprintable()
        and not any(c in url for c in " []")  # brackets: IPv6 hosts, urlsplit checks them
    )


def check_url(url: str, flag: str) -> None:
    if plainly_http(url):
        return
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise FlagError(f"{flag}: {url!r} is not an http or https URL")


def check_flags(params: Mapping[str, Any]) -> None:
    """What Go checks after parsing; each problem is a FlagError (one line, exit 2)."""
    if params["config_file"] is None and not params["watched_dir"]:
        raise FlagError("nothing to watch: give --config-file and/or --watched-dir")
    if params["reload_method"] == "http":
        check_url(params["reload_url"], "--reload-url")
    elif params["runtimeinfo_url"]:
        check_url(params["runtimeinfo_url"], "--runtimeinfo-url")
    ratio = params["auto_gomemlimit_ratio"]
    if not 0.0 < ratio <= 1.0:
        raise FlagError("--auto-gomemlimit-ratio must be greater than 0 and at most 1")
    address = params["listen_address"]
    if address:
        _host, sep, port = address.rpartition(":")
        if not sep or not port.isdigit():
            raise FlagError(f"--listen-address: {address!r} is not host:port")
