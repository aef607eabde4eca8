"""The Reloader: apply (render, write, hash, decide) and the loop that drives it.

Usage, as the CLI does it::

    reloader = Reloader(options, env)
    await reloader.run(stop_event)      # returns once stop_event is set

``run`` applies once before anything else; an error there is a ``StartupError`` (the CLI exits 1).
After that, errors are logged and counted and the loop goes on. The loop wakes on file events, on the
``--watch-interval`` ticker (some filesystem edge cases lose events, so a periodic re-read is the
safety net), or when a retry is due. A change always wins over a waiting retry.

This module imports no web server and no HTTP client at import time: ``apply_config``, which init mode
uses, must start fast.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Final

from reloader import render, watch, write

if TYPE_CHECKING:
    import aiohttp

    from reloader.metrics import Metrics

log = logging.getLogger("reloader")

ORDINAL_VAR: Final = "STATEFULSET_ORDINAL_NUMBER"
_TRAILING_DIGITS: Final = re.compile(r"(\d+)$")


class StartupError(RuntimeError):
    """The first apply failed: the program cannot start. The message is one line."""


@dataclass(frozen=True)
class Options:
    """What the flags say; durations in seconds."""

    config_file: Path | None = None
    """Input; gzip is detected by its magic bytes."""
    output_file: Path | None = None
    """Rendered output; None means the input is only hashed."""
    watched_dirs: tuple[Path, ...] = ()
    """Directories whose files are part of the hash (rule files)."""
    watch_interval_s: float = 180.0
    """Period of the re-read ticker; 0 means init mode (the CLI renders once and exits)."""
    delay_interval_s: float = 1.0
    """Quiet time after the last event before applying."""
    retry_interval_s: float = 5.0
    """Wait before retrying a failed reload or apply."""
    reload_timeout_s: float = 30.0
    """Limit for one reload."""
    reload_url: str = "http://127.0.0.1:9090/-/reload"
    """POSTed to with the http method."""
    reload_method: str = "http"
    """``http`` or ``signal``."""
    process_executable_name: str = "prometheus"
    """Gets SIGHUP with the signal method."""
    runtimeinfo_url: str = "http://127.0.0.1:9090/api/v1/status/runtimeinfo"
    """Polled after SIGHUP to see the reload take effect."""
    listen_address: str | None = None
    """Serves /metrics, /healthz, /readyz; None means no server."""
    web_config_file: Path | None = None
    """TLS and basic auth for that server."""
    http_client_file: Path | None = None
    """Prometheus-style HTTP client config for the reload and runtimeinfo URLs."""
    strict_env: bool = False
    """An unset ``$(VAR)`` is an error instead of staying literally."""
    max_config_bytes: int = render.DEFAULT_MAX_DECOMPRESSED_BYTES
    """Bound on the decompressed input (gzip bombs)."""


def build_env(environ: Mapping[str, str], ordinal_from: str) -> dict[str, str]:
    """The variables ``$(NAME)`` may use: ``environ`` plus STATEFULSET_ORDINAL_NUMBER.

    The ordinal is the trailing digits of the variable named ``ordinal_from`` (POD_NAME ``prom-k8s-1``
    gives ``1``); when that variable is unset or has no trailing digits, it is the empty string, as
    prometheus-config-reloader always sets it.
    """
    env = dict(environ)
    match = _TRAILING_DIGITS.search(environ.get(ordinal_from, ""))
    env[ORDINAL_VAR] = match.group(1) if match else ""
    return env


@dataclass(frozen=True)
class Applied:
    """One successful apply."""

    sha256: str
    """Hash over the rendered config and every file of the watched directories."""
    output_changed: bool
    """The output file was rewritten (False when unchanged or when there is no output)."""
    config_bytes: int
    """Size of the rendered config (of the raw input when there is no output file)."""
    expansion: render.Expansion = field(default_factory=render.Expansion)
    """Unset variables seen while rendering."""


class ApplyError(RuntimeError):
    """An apply failed; the message is one line naming the path and the cause."""


def apply_config(opts: Options, env: Mapping[str, str]) -> Applied:
    """Render the input, write it atomically, and hash it with the watched directories.

    Blocking file I/O: the loop runs it in a thread. Raises ApplyError; the output is then untouched.
    """
    digest = hashlib.sha256()
    expansion = render.Expansion()
    changed = False
    size = 0
    try:
        if opts.config_file is not None:
            source = str(opts.config_file)
            chunks = write.read_chunks(opts.config_file)
            if opts.output_file is not None:
                rendered = render.render(
                    chunks,
                    env,
                    expansion,
                    source=source,
                    strict=opts.strict_env,
                    max_bytes=opts.max_config_bytes,
                )
                result = write.write_atomic(opts.output_file, rendered)
                digest.update(bytes.fromhex(result.sha256))
                changed, size = result.changed, result.size
            else:
                # No output: like the Go reloaders, the raw input is only hashed.
                for chunk in chunks:
                    digest.update(chunk)
                    size += len(chunk)
                if size == 0:
                    raise render.RenderError(f"{source}: input is empty")
        watch.hash_dirs(opts.watched_dirs, digest)
    except render.RenderError as exc:
        raise ApplyError(str(exc)) from exc
    except write.WriteError as exc:
        raise ApplyError(str(exc.strerror)) from exc
    except OSError as exc:
        where = exc.filename if exc.filename is not None else opts.config_file
        raise ApplyError(f"{where}: {exc.strerror or exc.__class__.__name__}") from exc
    return Applied(sha256=digest.hexdigest(), output_changed=changed, config_bytes=size, expansion=expansion)


def log_applied(applied: Applied, opts: Options) -> None:
    """One info line for a written config, and one warning per unset variable (names only, never values)."""
    if applied.output_changed:
        log.info(
            "config written",
            extra={
                "path": str(opts.output_file),
                "bytes": applied.config_bytes,
                "sha256": applied.sha256[:16],
            },
        )
    for name, count in sorted(applied.expansion.unset.items()):
        log.warning(
            "environment variable not set, left as is",
            extra={"var": name, "references": count, "path": str(opts.config_file)},
        )


ReloadFn = Callable[[], Awaitable[None]]
WatchFn = Callable[["Reloader"], Awaitable[None]]


class Reloader:
    """Applies the config and reloads the target on every change, until stopped."""

    def __init__(
        self,
        opts: Options,
        env: Mapping[str, str],
        *,
        metrics: Metrics | None = None,
        reload: ReloadFn | None = None,
        watcher: WatchFn | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """``reload`` and ``watcher`` replace the real ones (tests); ``clock`` gives the success timestamp."""
        from reloader.metrics import new_metrics

        self.opts = opts
        self.env = dict(env)
        self.metrics = metrics or new_metrics(opts.reload_method)
        self._reload_override = reload
        self._watcher = watcher or _watch_files
        self._clock = clock
        self._changed = asyncio.Event()
        self._tick = asyncio.Event()
        self._watch_alive = False
        self._ready = False
        self.bound_port: int | None = None
        """The port /metrics is served on, once serving (useful with port 0)."""
        self._last_reloaded_sha: str | None = None
        self._last_reload_failed = False
        self.metrics.watches.set(len(opts.watched_dirs) + (1 if opts.config_file else 0))

    # Probes, asked by the HTTP server on every request.
    def healthy(self) -> bool:
        """True while the file watcher runs."""
        return self._watch_alive

    def ready(self) -> bool:
        """True once the first apply and reload succeeded."""
        return self._ready

    def notify(self, events: int = 1) -> None:
        """Something changed (file events or the ticker): apply after --delay-interval of quiet."""
        self.metrics.watch_events.inc(events)
        self._changed.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Apply, then watch, re-apply and reload until ``stop`` is set. StartupError if the first apply fails."""
        try:
            first = await self._apply(counted=False)
        except ApplyError as exc:
            raise StartupError(str(exc)) from exc
        from reloader import __version__

        log.info(
            "started",
            extra={
                "version": __version__,
                "method": self.opts.reload_method,
                "config": str(self.opts.config_file),
                "output": str(self.opts.output_file),
                "watched_dirs": ",".join(str(d) for d in self.opts.watched_dirs),
            },
        )
        import aiohttp

        async with contextlib.AsyncExitStack() as stack:
            session = await stack.enter_async_context(aiohttp.ClientSession())
            reload_fn = self._reload_override or self._real_reload(session)
            if self.opts.listen_address is not None:
                self.bound_port = await stack.enter_async_context(self._serving())
            async with asyncio.TaskGroup() as tg:
                tasks = [
                    tg.create_task(self._watch_forever(), name="watch"),
                    tg.create_task(self._loop(first, reload_fn), name="apply-loop"),
                ]
                if self.opts.watch_interval_s > 0:
                    tasks.append(tg.create_task(self._tick_forever(), name="ticker"))
                await stop.wait()
                for task in tasks:
                    task.cancel()
        log.info("stopped")

    def _serving(self) -> contextlib.AbstractAsyncContextManager[int]:
        from reloader.serve import load_web_config, serving

        web_config = load_web_config(self.opts.web_config_file) if self.opts.web_config_file else None
        assert self.opts.listen_address is not None
        return serving(self.opts.listen_address, self.metrics.registry, self.healthy, self.ready, web_config)

    def _real_reload(self, session: aiohttp.ClientSession) -> ReloadFn:
        from reloader import reload as reload_mod
        from reloader.httpclient import HTTPClient

        opts = self.opts
        client = HTTPClient(opts.http_client_file)
        if opts.reload_method == "signal":
            # The wait for runtimeinfo is bounded by the watch interval, as in Go, not by one request's timeout.
            return lambda: reload_mod.reload_signal(
                session,
                opts.process_executable_name,
                opts.runtimeinfo_url,
                timeout_s=opts.reload_timeout_s,
                wait_s=opts.watch_interval_s,
                client=client,
            )
        return lambda: reload_mod.reload_http(
            session, opts.reload_url, timeout_s=opts.reload_timeout_s, client=client
        )

    async def _apply(self, *, counted: bool = True) -> Applied:
        # As in Go, reloader_config_apply_operations_total counts the applies that an event or the
        # ticker started; neither the one at startup nor a reload retry is one.
        if counted:
            self.metrics.apply_operations.inc()
        try:
            # A 64 MiB config takes a while to render: keep the server and the watcher responsive.
            applied = await asyncio.to_thread(apply_config, self.opts, self.env)
        except ApplyError:
            if counted:
                self.metrics.apply_operations_failed.inc()
            raise
        self.metrics.env_expansion_errors.set(applied.expansion.errors)
        log_applied(applied, self.opts)
        return applied

    async def _try_reload(self, reload_fn: ReloadFn, sha: str) -> bool:
        from reloader.reload import ReloadError

        self.metrics.reloads.inc()
        try:
            await reload_fn()
        except ReloadError as exc:
            self._last_reload_failed = True
            self.metrics.reloads_failed.inc()
            self.metrics.last_reload_successful.set(0)
            log.error("reload failed", extra={"err": str(exc), "retry_in_s": self.opts.retry_interval_s})
            return False
        self._last_reloaded_sha = sha
        self._last_reload_failed = False
        self._ready = True
        self.metrics.last_reload_successful.set(1)
        self.metrics.last_reload_success_timestamp_seconds.set(self._clock())
        log.info("reloaded", extra={"method": self.opts.reload_method, "sha256": sha[:16]})
        return True

    async def _loop(self, first: Applied, reload_fn: ReloadFn) -> None:
        current = first
        while True:
            retry = False
            if current.sha256 != self._last_reloaded_sha or self._last_reload_failed:
                retry = not await self._try_reload(reload_fn, current.sha256)
            changed = await self._wait_for_change(self.opts.retry_interval_s if retry else None)
            if changed:
                await self._debounce()
            try:
                current = await self._apply(counted=changed)
            except ApplyError as exc:
                # The output still holds the last good config, and `current` still describes it.
                log.error("apply failed", extra={"err": str(exc)})
                if not await self._wait_for_change(self.opts.retry_interval_s):
                    self._changed.set()  # retry the apply

    async def _wait_for_change(self, timeout_s: float | None) -> bool:
        """True when a change arrived, False when ``timeout_s`` passed first."""
        try:
            async with asyncio.timeout(timeout_s):
                await self._changed.wait()
        except TimeoutError:
            return False
        return True

    async def _debounce(self) -> None:
        # Trailing edge: apply only once no event came for a whole --delay-interval. A tick ends the
        # wait at once, so that a directory that never goes quiet is still applied every watch-interval.
        while True:
            self._changed.clear()
            if self._tick.is_set() or self.opts.delay_interval_s <= 0:
                break
            if not await self._wait_for_change(self.opts.delay_interval_s):
                break
        self._tick.clear()

    async def _tick_forever(self) -> None:
        while True:
            await asyncio.sleep(self.opts.watch_interval_s)
            log.debug("periodic re-read")
            self._tick.set()
            self._changed.set()

    async def _watch_forever(self) -> None:
        # The watcher is restarted after any error; /healthz reports it as down in between.
        while True:
            try:
                await self._watcher(self)
                raise watch.WatchError("file watcher returned")
            except Exception as exc:
                self._watch_alive = False
                self.metrics.watch_errors.inc()
                log.error(
                    "file watcher failed, restarting",
                    extra={
                        "err": f"{exc.__class__.__name__}: {exc}",
                        "retry_in_s": self.opts.retry_interval_s,
                    },
                )
            await asyncio.sleep(self.opts.retry_interval_s)

    def watching(self) -> None:
        """The watcher is in place: healthy from now on. Re-read once, for changes made before it was."""
        self._watch_alive = True
        self._changed.set()


async def _watch_files(reloader: Reloader) -> None:
    opts = reloader.opts
    roots = watch.watch_roots(opts.config_file, opts.watched_dirs)
    keep = watch.event_filter(opts.config_file, opts.watched_dirs, opts.output_file, write.TEMP_PREFIX)
    log.debug("watching", extra={"dirs": ",".join(str(r) for r in roots)})
    await watch.watch_changes(roots, reloader.notify, keep=keep, on_ready=reloader.watching)
