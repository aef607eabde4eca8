"""The ``config-reloader`` command line: the flags of prometheus-config-reloader, the Thanos sidecar's
reloader flags as aliases, and a few of our own.

Every flag accepts ``--flag=value``, exactly as prometheus-operator passes them. ``--watch-interval=0`` is
init mode: render once and exit, without importing a web server or an HTTP client. As with Go's
kingpin, a flag error is one line and exit code 2; logs go to stdout.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping, Sequence
from collections.abc import Set as AbstractSet
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

import click
from click.core import ParameterSource

from reloader import __version__
from reloader import log as logsetup

# The apply path only: init mode must not import asyncio, ssl or an HTTP client (see run_forever).
from reloader.apply import ApplyError, Options, StartupError, apply_config, build_env, log_applied
from reloader.durations import Duration
from reloader.render import DEFAULT_MAX_DECOMPRESSED_BYTES

log = logging.getLogger("reloader")

USAGE_EXIT: Final = 2
"""Go's kingpin exits 2 on a flag error, and prometheus-config-reloader on a bad web config."""


class NormPath(click.ParamType["Path | None"]):
    """A path, normalised (``/etc/prometheus/rules/`` is ``/etc/prometheus/rules``); empty means unset.

    The Thanos sidecar's own reloader compares event paths with the flag as written, so a trailing
    slash there means rule changes wait for the next tick. Normalising once here avoids that.
    """

    name = "path"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Path | None:
        if value is None or isinstance(value, Path):
            return value
        text = str(value)
        return Path(os.path.normpath(text)) if text else None


_PATH = NormPath()

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
RELOAD_PATH: Final = "/-/reload"
RUNTIMEINFO_PATH: Final = "/api/v1/status/runtimeinfo"


def url_under(base: str, path: str) -> str:
    """``http://localhost:9090`` + ``/-/reload``; a route prefix in ``base`` is kept."""
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
                raise click.UsageError(f"{alias_flag} is the Thanos name of {flag}: give only one of them")
            out[name] = value
    base = out.pop("prometheus_url")
    if "prometheus_url" in given:
        for name, flag in (("reload_url", "--reload-url"), ("runtimeinfo_url", "--runtimeinfo-url")):
            if name in given:
                raise click.UsageError(f"--prometheus.url sets {flag}: give only one of them")
        _check_url(base, "--prometheus.url")
        out["reload_url"] = url_under(base, RELOAD_PATH)
        out["runtimeinfo_url"] = url_under(base, RUNTIMEINFO_PATH)
    return out


def _check_url(url: str, flag: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise click.UsageError(f"{flag}: {url!r} is not an http or https URL")


def check_flags(params: Mapping[str, Any]) -> None:
    """What Go checks after parsing; each problem is a UsageError (one line, exit 2)."""
    if params["config_file"] is None and not params["watched_dir"]:
        raise click.UsageError("nothing to watch: give --config-file and/or --watched-dir")
    if params["reload_method"] == "http":
        _check_url(params["reload_url"], "--reload-url")
    elif params["runtimeinfo_url"]:
        _check_url(params["runtimeinfo_url"], "--runtimeinfo-url")
    ratio = params["auto_gomemlimit_ratio"]
    if not 0.0 < ratio <= 1.0:
        raise click.UsageError("--auto-gomemlimit-ratio must be greater than 0 and at most 1")
    address = params["listen_address"]
    if address:
        _host, sep, port = address.rpartition(":")
        if not sep or not port.isdigit():
            raise click.UsageError(f"--listen-address: {address!r} is not host:port")


def check_files(web_config_file: Path | None, http_client_file: Path | None) -> str | None:
    """Read the web config and the HTTP client file once: a problem is one line, else None."""
    if web_config_file is not None:
        from reloader.webconfig import WebConfigError, load_web_config

        try:
            load_web_config(web_config_file)
        except WebConfigError as exc:
            return str(exc)
    if http_client_file is not None:
        from reloader.httpclient import ClientConfigError, load_client_config

        try:
            load_client_config(http_client_file)
        except ClientConfigError as exc:
            return str(exc)
    return None


def _print_short_version(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if value and not ctx.resilient_parsing:
        click.echo(__version__)
        ctx.exit(0)


def _alias_help(flag: str) -> str:
    return f"The Thanos sidecar's name for {flag}."


@click.command(
    name="config-reloader",
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110},
)
@click.version_option(__version__, "--version", prog_name="config-reloader", message="%(prog)s %(version)s")
@click.option(
    "--short-version",
    is_flag=True,
    expose_value=False,
    is_eager=True,
    callback=_print_short_version,
    help="Print the version number alone and exit.",
)
@click.option("--config-file", type=_PATH, help="Input file; gzip is detected by its magic bytes.")
@click.option("--config-envsubst-file", type=_PATH, help="Output file; with none, the input is only hashed.")
@click.option(
    "--watched-dir", type=_PATH, multiple=True, help="Directory whose changes trigger a reload (repeatable)."
)
@click.option(
    "--watch-interval",
    type=Duration(),
    default="3m",
    show_default=True,
    help="Periodic re-read; 0 renders once and exits.",
)
@click.option(
    "--delay-interval",
    type=Duration(),
    default="1s",
    show_default=True,
    help="Quiet time after the last event.",
)
@click.option(
    "--retry-interval",
    type=Duration(),
    default="5s",
    show_default=True,
    help="Wait before retrying a failed reload.",
)
@click.option(
    "--reload-timeout", type=Duration(), default="30s", show_default=True, help="Limit for one reload."
)
@click.option(
    "--reload-url",
    default="http://127.0.0.1:9090/-/reload",
    show_default=True,
    help="POSTed to by the http method.",
)
@click.option(
    "--reload-method",
    type=click.Choice(["http", "signal"]),
    default="http",
    show_default=True,
    help="How to reload the target.",
)
@click.option(
    "--process-executable-name",
    default="prometheus",
    show_default=True,
    help="Process that gets SIGHUP (signal method).",
)
@click.option(
    "--runtimeinfo-url",
    default="http://127.0.0.1:9090/api/v1/status/runtimeinfo",
    show_default=True,
    help="Checked after SIGHUP to see that the reload took effect.",
)
@click.option(
    "--listen-address", default=None, help="Serve /metrics, /healthz, /readyz here, e.g. :8080; empty: none."
)
@click.option(
    "--web-config-file",
    type=_PATH,
    default=None,
    help="TLS, client certificates, headers and basic auth for that server (Prometheus web config).",
)
@click.option("--log-format", type=click.Choice(list(logsetup.FORMATS)), default="logfmt", show_default=True)
@click.option("--log-level", type=click.Choice(list(logsetup.LEVELS)), default="info", show_default=True)
@click.option(
    "--statefulset-ordinal-from-envvar",
    default="POD_NAME",
    show_default=True,
    help="STATEFULSET_ORDINAL_NUMBER is set from the trailing digits of this variable.",
)
@click.option(
    "--auto-gomemlimit-ratio", type=float, default=0.9, show_default=True, help="Accepted and ignored."
)
@click.option(
    "--reload-http-client-file",
    type=_PATH,
    default=None,
    help="Prometheus-style http_config (basic auth, authorization, TLS) for the reload and runtimeinfo URLs.",
)
@click.option("--reloader.config-file", "thanos_config_file", type=_PATH, help=_alias_help("--config-file"))
@click.option(
    "--reloader.config-envsubst-file",
    "thanos_config_envsubst_file",
    type=_PATH,
    help=_alias_help("--config-envsubst-file"),
)
@click.option(
    "--reloader.rule-dir", "thanos_rule_dir", type=_PATH, multiple=True, help=_alias_help("--watched-dir")
)
@click.option(
    "--reloader.watch-interval",
    "thanos_watch_interval",
    type=Duration(),
    help=_alias_help("--watch-interval"),
)
@click.option(
    "--reloader.retry-interval",
    "thanos_retry_interval",
    type=Duration(),
    help=_alias_help("--retry-interval"),
)
@click.option(
    "--reloader.method",
    "thanos_method",
    type=click.Choice(["http", "signal"]),
    help=_alias_help("--reload-method"),
)
@click.option("--reloader.process-name", "thanos_process_name", help=_alias_help("--process-executable-name"))
@click.option(
    "--prometheus.url",
    "prometheus_url",
    help="Thanos sidecar: the target's base URL; gives --reload-url and --runtimeinfo-url.",
)
@click.option(
    "--prometheus.http-client-file",
    "thanos_http_client_file",
    type=_PATH,
    help=_alias_help("--reload-http-client-file"),
)
@click.option(
    "--strict-env", is_flag=True, default=False, help="An unset $(VAR) is an error, not left as is."
)
@click.option(
    "--max-config-bytes",
    type=click.IntRange(min=1),
    default=DEFAULT_MAX_DECOMPRESSED_BYTES,
    show_default=True,
    help="Limit on the decompressed input (gzip bombs).",
)
def command(**params: Any) -> int:
    """Render a config (gzip, $(VAR) placeholders), write it atomically, and reload the target."""
    ctx = click.get_current_context()
    given = {name for name in params if ctx.get_parameter_source(name) is ParameterSource.COMMANDLINE}
    params = merge_aliases(params, given)
    params["watched_dir"] = tuple(d for d in params["watched_dir"] if d is not None)
    params["listen_address"] = params["listen_address"] or None  # empty: no server, as in Go
    check_flags(params)
    # Logs go to stdout, as prometheus-config-reloader's do.
    logsetup.setup(params["log_format"], params["log_level"], sys.stdout)
    # watchfiles logs every batch at info: one line per file event is noise, and a log file in a
    # watched directory would feed itself.
    logging.getLogger("watchfiles").setLevel(logging.WARNING)
    problem = check_files(params["web_config_file"], params["reload_http_client_file"])
    if problem is not None:
        log.error("invalid configuration file", extra={"err": problem})
        return USAGE_EXIT
    opts = Options(
        config_file=params["config_file"],
        output_file=params["config_envsubst_file"],
        watched_dirs=params["watched_dir"],
        watch_interval_s=params["watch_interval"],
        delay_interval_s=params["delay_interval"],
        retry_interval_s=params["retry_interval"],
        reload_timeout_s=params["reload_timeout"],
        reload_url=params["reload_url"],
        reload_method=params["reload_method"],
        process_executable_name=params["process_executable_name"],
        runtimeinfo_url=params["runtimeinfo_url"],
        listen_address=params["listen_address"],
        web_config_file=params["web_config_file"],
        http_client_file=params["reload_http_client_file"],
        strict_env=params["strict_env"],
        max_config_bytes=params["max_config_bytes"],
    )
    env = build_env(os.environ, params["statefulset_ordinal_from_envvar"])
    if opts.watch_interval_s == 0:
        return run_once(opts, env)
    import asyncio  # sidecar mode only: init mode starts without an event loop

    return asyncio.run(run_forever(opts, env))


def run_once(opts: Options, env: Mapping[str, str]) -> int:
    """Init mode: render and write once, no reload. 0 on success, 1 with one error line."""
    try:
        applied = apply_config(opts, env)
    except ApplyError as exc:
        log.error("render failed", extra={"err": str(exc)})
        return 1
    log_applied(applied, opts)
    log.info("rendered once (init mode), exiting", extra={"sha256": applied.sha256[:16]})
    return 0


FROZENLIST_PURE_PYTHON: Final = "FROZENLIST_NO_EXTENSIONS"


def skip_cpp_runtime() -> None:
    """Have frozenlist, which aiohttp imports, use its pure-Python FrozenList; call before aiohttp loads.

    frozenlist's compiled FrozenList is C++, and loading it maps the whole C++ runtime (libstdc++,
    libgcc_s): about 1 MiB of resident memory in an idle sidecar whose budget is 40 MiB. aiohttp only
    uses FrozenList for its signal and middleware lists, built once at startup, so the pure-Python
    class (same API, same behaviour) costs nothing that matters. frozenlist documents this variable.
    A value the user set is kept. The environment for ``$(VAR)`` is built before this runs, so a
    config never sees the variable unless the user set it.
    """
    os.environ.setdefault(FROZENLIST_PURE_PYTHON, "1")


def startup_notes(opts: Options) -> list[tuple[str, str]]:
    """(message, URL) warnings worth one line at start: reloads that nothing verifies."""
    from reloader.httpclient import unverified_https

    url = opts.runtimeinfo_url if opts.reload_method == "signal" else opts.reload_url
    notes = []
    if opts.reload_method == "signal" and not url:
        notes.append(("--runtimeinfo-url is empty: SIGHUP is sent and not verified", ""))
    elif unverified_https(url, opts.http_client_file):
        notes.append(
            (
                "https certificate of the target is not verified (as in prometheus-config-reloader); "
                "give --reload-http-client-file with a tls_config to verify it",
                url,
            )
        )
    return notes


async def run_forever(opts: Options, env: Mapping[str, str]) -> int:
    """Sidecar mode: run until SIGTERM or SIGINT (exit 0); a startup error is one line and exit 1."""
    import asyncio
    import signal

    skip_cpp_runtime()
    # Nothing here may import aiohttp: the first reload goes out before it (reloader.app).
    from reloader.app import Reloader
    from reloader.httpclient import redact

    for message, url in startup_notes(opts):
        log.warning(message, extra={"url": redact(url)} if url else {})
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    # The handler only sets the event; run() cancels its own tasks and returns.
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        await Reloader(opts, env).run(stop)
    except StartupError as exc:
        log.error("cannot start", extra={"err": str(exc)})
        return 1
    except OSError as exc:  # e.g. the listen address is taken
        log.error("cannot start", extra={"err": f"{exc.__class__.__name__}: {exc}"})
        return 1
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
    return 0


def cli(argv: Sequence[str] | None = None) -> int:
    """Run the command with ``argv`` (default: sys.argv[1:]) and return the exit code; never exits.

    A bad flag or value is one line on stdout and exit code 2, as prometheus-config-reloader prints
    kingpin's parse errors (to stdout, exit 2).
    """
    try:
        result = command.main(
            args=list(argv) if argv is not None else sys.argv[1:],
            prog_name="config-reloader",
            standalone_mode=False,
        )
    except click.ClickException as exc:
        click.echo(f"config-reloader: error: {exc.format_message()}")
        return USAGE_EXIT
    except click.Abort:
        return 1
    return result if isinstance(result, int) else 0


def main() -> None:
    """Console-script entry point."""
    sys.exit(cli())
