"""The ``config-reloader`` command line: the flags of prometheus-config-reloader, the Thanos sidecar's
reloader flags as aliases, and a few of our own (``reloader.flags``).

Every flag accepts ``--flag=value``, exactly as prometheus-operator passes them. ``--watch-interval=0`` is
init mode: render once and exit. As with Go's kingpin, a flag error is one line and exit code 2; logs go
to stdout.

Start-up is paid for in wall time: under prometheus-operator's 10m CPU limit one millisecond of CPU is
100 ms. So the path to the first written config, and in the sidecar to the first reload, imports no
click (``reloader.command`` is for help and errors), no logging module, no asyncio, ssl or HTTP client:
the first apply, its log lines (``reloader.logline``) and a plain-http first reload
(``reloader.quickpost``) come before all of them.
"""

from __future__ import annotations

import os
import sys

from reloader import flags
from reloader.apply import ApplyError, Options, apply_config, build_env, log_applied, log_started
from reloader.logline import StartupLog

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence
    from typing import Any, Final

    from reloader.app import FirstReload
    from reloader.apply import Applied

USAGE_EXIT: Final = 2
"""Go's kingpin exits 2 on a flag error, and prometheus-config-reloader on a bad web config."""


def check_files(web_config_file: str | None, http_client_file: str | None) -> str | None:
    """Read the web config and the HTTP client file once: a problem is one line, else None."""
    if web_config_file is not None:
        from pathlib import Path

        from reloader.webconfig import WebConfigError, load_web_config

        try:
            load_web_config(Path(web_config_file))
        except WebConfigError as exc:
            return str(exc)
    if http_client_file is not None:
        from pathlib import Path

        from reloader.httpclient import ClientConfigError, load_client_config

        try:
            load_client_config(Path(http_client_file))
        except ClientConfigError as exc:
            return str(exc)
    return None


def cli(argv: Sequence[str] | None = None) -> int:
    """Run the command with ``argv`` (default: sys.argv[1:]) and return the exit code; never exits.

    A bad flag or value is one line on stdout and exit code 2, as prometheus-config-reloader prints
    kingpin's parse errors (to stdout, exit 2).
    """
    args = list(argv) if argv is not None else sys.argv[1:]
    parsed = flags.parse(args)
    if parsed is None:
        from reloader import command

        outcome = command.parse(args)
        if isinstance(outcome, int):
            return outcome
        parsed = outcome
    params, given = parsed
    try:
        params = flags.merge_aliases(params, given)
        flags.check_flags(params)
    except flags.FlagError as exc:
        print(f"config-reloader: error: {exc}", flush=True)
        return USAGE_EXIT
    return run(params)


def run(params: Mapping[str, Any]) -> int:
    """Init mode or the sidecar, with the flags parsed and checked."""
    # Logs go to stdout, as prometheus-config-reloader's do.
    log = StartupLog(params["log_format"], params["log_level"], sys.stdout)
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
        return run_once(opts, env, log)
    return run_sidecar(opts, env, log)


def run_once(opts: Options, env: Mapping[str, str], log: StartupLog) -> int:
    """Init mode: render and write once, no reload. 0 on success, 1 with one error line."""
    try:
        applied = apply_config(opts, env)
    except ApplyError as exc:
        log.error("render failed", extra={"err": str(exc)})
        return 1
    log_applied(applied, opts, log)
    log.info("rendered once (init mode), exiting", extra={"sha256": applied.sha256[:16]})
    return 0


class Terminated(Exception):
    """SIGTERM or SIGINT during the blocking first reload."""


class EarlySignals:
    """SIGTERM and SIGINT before the event loop has handlers of its own.

    They are noted, and the sidecar stops as soon as it can, with exit code 0 as it does later. Only
    the first reload, which may wait up to --reload-timeout for an answer, is interrupted.
    """

    def __init__(self) -> None:
        import signal

        self.received = False
        self.interrupting = False
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self._handle)

    def _handle(self, _signum: int, _frame: object) -> None:
        self.received = True
        if self.interrupting:
            raise Terminated


def run_sidecar(opts: Options, env: Mapping[str, str], log: StartupLog) -> int:
    """The sidecar: the first apply and a plain-http first reload here, then the loop (reloader.app).

    A first apply that fails is a start-up error (exit 1). A first reload that fails is retried by
    the loop, as any failed reload is.
    """
    signals = EarlySignals()
    try:
        first = apply_config(opts, env)
    except ApplyError as exc:
        log.error("cannot start", extra={"err": str(exc)})
        return 1
    log_applied(first, opts, log)
    log_started(opts, log)
    reloaded = None
    if not signals.received:
        signals.interrupting = True
        try:
            reloaded = first_reload(opts, first.sha256, log)
        except Terminated:
            pass
        finally:
            signals.interrupting = False
    if signals.received:
        log.info("stopped")
        return 0
    import asyncio  # sidecar mode only: init mode starts without an event loop

    from reloader import log as logsetup

    logsetup.setup(log.log_format, log.level, sys.stdout)
    # watchfiles logs every batch at info: one line per file event is noise, and a log file in a
    # watched directory would feed itself.
    logging_quiet("watchfiles")
    return asyncio.run(
        run_forever(opts, env, (first, reloaded), stopped=lambda: signals.received, reloader_log=log)
    )


def logging_quiet(name: str) -> None:
    import logging

    logging.getLogger(name).setLevel(logging.WARNING)


def first_reload(opts: Options, sha256: str, log: StartupLog) -> FirstReload | None:
    """POST the first reload at once where the minimal client can (plain http, no client file).

    None where it cannot: the loop sends it. Otherwise (the time it was sent, the error or None); the
    loop counts it in the metrics and retries a failure.
    """
    import time

    from reloader import quickpost

    if (
        opts.reload_method != "http"
        or opts.http_client_file is not None  # credentials and TLS: the full client's job
        or not quickpost.applies(opts.reload_url)
    ):
        return None
    try:
        quickpost.post_blocking(opts.reload_url, timeout_s=opts.reload_timeout_s)
    except quickpost.Redirected:
        return None  # the loop's client follows redirects
    except quickpost.PostError as exc:
        log.error("reload failed", extra={"err": str(exc), "retry_in_s": opts.retry_interval_s})
        return (time.time(), time.monotonic(), str(exc))
    log.info("reloaded", extra={"method": opts.reload_method, "sha256": sha256[:16]})
    return (time.time(), time.monotonic(), None)


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
    from reloader.app import as_path
    from reloader.httpclient import unverified_https

    url = opts.runtimeinfo_url if opts.reload_method == "signal" else opts.reload_url
    notes = []
    if opts.reload_method == "signal" and not url:
        notes.append(("--runtimeinfo-url is empty: SIGHUP is sent and not verified", ""))
    elif unverified_https(url, as_path(opts.http_client_file)):
        notes.append(
            (
                "https certificate of the target is not verified (as in prometheus-config-reloader); "
                "give --reload-http-client-file with a tls_config to verify it",
                url,
            )
        )
    return notes


async def run_forever(
    opts: Options,
    env: Mapping[str, str],
    first: tuple[Applied, FirstReload | None] | None = None,
    stopped: Callable[[], bool] = lambda: False,
    reloader_log: StartupLog | None = None,
) -> int:
    """Sidecar mode: run until SIGTERM or SIGINT (exit 0); a startup error is one line and exit 1.

    ``first``: the first apply, done already, and the first reload if it was sent (``run_sidecar``).
    ``stopped``: whether SIGTERM or SIGINT came before the loop's own handlers were in place.
    ``reloader_log``: the Reloader's own lines go there (the logging module's handler otherwise).
    """
    import asyncio
    import logging
    import signal

    skip_cpp_runtime()
    # Nothing here may import aiohttp before reloader.app has lightened it.
    from reloader.app import Reloader
    from reloader.apply import StartupError
    from reloader.httpclient import redact

    log = logging.getLogger("reloader")
    for message, url in startup_notes(opts):
        log.warning(message, extra={"url": redact(url)} if url else {})
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    # The handler only sets the event; run() cancels its own tasks and returns.
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    if stopped():  # a signal came while the loop was starting
        stop.set()
    try:
        await Reloader(opts, env, log=reloader_log).run(stop, first=first)
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


def main() -> None:
    """Console-script entry point."""
    sys.exit(cli())
