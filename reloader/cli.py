"""The ``config-reloader`` command line: the flags of prometheus-config-reloader, plus a few of our own.

Every flag accepts ``--flag=value``, exactly as prometheus-operator passes them. ``--watch-interval=0`` is
init mode: render once and exit, without importing a web server or an HTTP client.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Final

import click

from reloader import __version__
from reloader import log as logsetup

# The apply path only: init mode must not import asyncio, ssl or an HTTP client (see run_forever).
from reloader.apply import ApplyError, Options, StartupError, apply_config, build_env, log_applied
from reloader.durations import Duration
from reloader.render import DEFAULT_MAX_DECOMPRESSED_BYTES

log = logging.getLogger("reloader")

_PATH = click.Path(dir_okay=True, path_type=Path)


@click.command(
    name="config-reloader",
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110},
)
@click.version_option(__version__, "--version", prog_name="config-reloader", message="%(prog)s %(version)s")
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
@click.option("--listen-address", default=None, help="Serve /metrics, /healthz, /readyz here, e.g. :8080.")
@click.option(
    "--web-config-file",
    type=_PATH,
    default=None,
    help="TLS and basic auth for that server (Prometheus web-config).",
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
    "--strict-env", is_flag=True, default=False, help="An unset $(VAR) is an error, not left as is."
)
@click.option(
    "--max-config-bytes",
    type=click.IntRange(min=1),
    default=DEFAULT_MAX_DECOMPRESSED_BYTES,
    show_default=True,
    help="Limit on the decompressed input (gzip bombs).",
)
def command(
    config_file: Path | None,
    config_envsubst_file: Path | None,
    watched_dir: tuple[Path, ...],
    watch_interval: float,
    delay_interval: float,
    retry_interval: float,
    reload_timeout: float,
    reload_url: str,
    reload_method: str,
    process_executable_name: str,
    runtimeinfo_url: str,
    listen_address: str | None,
    web_config_file: Path | None,
    log_format: str,
    log_level: str,
    statefulset_ordinal_from_envvar: str,
    auto_gomemlimit_ratio: float,
    strict_env: bool,
    max_config_bytes: int,
) -> int:
    """Render a config (gzip, $(VAR) placeholders), write it atomically, and reload the target."""
    del auto_gomemlimit_ratio  # a Go runtime setting: nothing to do in Python
    if config_file is None and not watched_dir:
        raise click.UsageError("nothing to watch: give --config-file and/or --watched-dir")
    logsetup.setup(log_format, log_level)
    # watchfiles logs every batch at info: one line per file event is noise, and a log file in a
    # watched directory would feed itself.
    logging.getLogger("watchfiles").setLevel(logging.WARNING)
    opts = Options(
        config_file=config_file,
        output_file=config_envsubst_file,
        watched_dirs=watched_dir,
        watch_interval_s=watch_interval,
        delay_interval_s=delay_interval,
        retry_interval_s=retry_interval,
        reload_timeout_s=reload_timeout,
        reload_url=reload_url,
        reload_method=reload_method,
        process_executable_name=process_executable_name,
        runtimeinfo_url=runtimeinfo_url,
        listen_address=listen_address,
        web_config_file=web_config_file,
        strict_env=strict_env,
        max_config_bytes=max_config_bytes,
    )
    env = build_env(os.environ, statefulset_ordinal_from_envvar)
    if watch_interval == 0:
        return run_once(opts, env)
    import asyncio

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


async def run_forever(opts: Options, env: Mapping[str, str]) -> int:
    """Sidecar mode: run until SIGTERM or SIGINT (exit 0); a startup error is one line and exit 1."""
    skip_cpp_runtime()
    import asyncio

    from reloader.app import Reloader

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

    A bad flag or value is one line on stderr and exit code 1, like every other startup error and like
    prometheus-config-reloader (kingpin exits 1 on a parse error).
    """
    try:
        result = command.main(
            args=list(argv) if argv is not None else sys.argv[1:],
            prog_name="config-reloader",
            standalone_mode=False,
        )
    except click.ClickException as exc:
        click.echo(f"config-reloader: error: {exc.format_message()}", err=True)
        return 1
    except click.Abort:
        return 1
    return result if isinstance(result, int) else 0


def main() -> None:
    """Console-script entry point."""
    sys.exit(cli())
