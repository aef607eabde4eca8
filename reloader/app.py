"""The Reloader: the sidecar's loop around the apply path (``reloader.apply``).

Usage, as the CLI does it::

    reloader = Reloader(options, env)
    await reloader.run(stop_event)      # returns once stop_event is set

``run`` applies once before anything else; an error there is a ``StartupError`` (the CLI exits 1).
After that, errors are logged and counted and the loop goes on. The loop wakes on file events, on the
``--watch-interval`` ticker (some filesystem edge cases lose events, so a periodic re-read is the
safety net), or when a retry is due. A change always wins over a waiting retry.

Start-up order matters under prometheus-operator's 10m CPU limit, where 1 ms of CPU is 100 ms of wall
time: first apply, first reload (a plain http URL through ``reloader.quickpost``, by ``reloader.cli``
before the event loop exists), then the file watcher, and only then the heavy imports (aiohttp,
prometheus_client: about 250 ms of CPU) for the /metrics server, and for the reload client where the
kept-alive ``reloader.keepalive.Client`` cannot send (https, credentials, the signal method). Metric
updates made before that are replayed.

The watcher is supervised: it must beat every ``watch_heartbeat_s``; after ``HUNG_AFTER_BEATS`` missed
beats /healthz fails, and the watcher is replaced by a new one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
import time
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from reloader import write
from reloader.apply import (
    Applied,
    ApplyError,
    Options,
    StartupError,
    apply_config,
    build_env,
    log_applied,
    log_started,
)

if TYPE_CHECKING:
    import aiohttp

    from reloader.logline import Log
    from reloader.metrics import Metrics
    from reloader.serve import WebConfig

__all__ = [
    "Applied",
    "ApplyError",
    "Options",
    "ReloadFailed",
    "Reloader",
    "StartupError",
    "apply_config",
    "build_env",
    "log_applied",
]

INLINE_APPLY_S: Final = 0.005
"""An apply that took less CPU time than this last time runs on the event loop; a slower one in a thread."""
STALLED_APPLY_S: Final = 1.0
"""An apply that took this much wall time (waiting on a filesystem) counts as slow whatever its CPU."""
HUNG_AFTER_BEATS: Final = 3
"""A watcher whose last beat is older than this many heartbeats is hung."""

FirstReload = tuple[float, float, "str | None"]
"""A first reload sent before the loop started (``reloader.cli``): when (time.time() and
time.monotonic()), and its error, None for success."""
ReloadFn = Callable[[], Awaitable[None]]
"""One reload; raises ReloadFailed."""
WatchFn = Callable[["Reloader"], Coroutine[Any, Any, None]]
MetricOp = Callable[["Metrics"], object]


class ReloadFailed(RuntimeError):
    """A reload failed; the message is one line."""


class WatcherHung(RuntimeError):
    """The watcher stopped beating."""


class WatcherReturned(RuntimeError):
    """The watcher returned, which it never should."""


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
        log: Log | None = None,
    ) -> None:
        """``reload`` and ``watcher`` replace the real ones (tests); ``clock`` gives the success timestamp.

        ``log``: where the Reloader's own lines go; the CLI passes its ``StartupLog``, which writes the
        same lines as the logging module without building a record for each (a change logs two).
        """
        self.log: Log = log if log is not None else logging.getLogger("reloader")
        self.opts = opts
        self.env = dict(env)
        self._metrics = metrics
        self._pending_metrics: list[MetricOp] = []
        self._defer_metrics = metrics is None
        self._reload_override = reload
        self._watcher = watcher or _watch_files
        self._clock = clock
        self._changed = asyncio.Event()
        self._tick = asyncio.Event()
        self._watch_alive = False
        self._watch_started = asyncio.Event()
        self._last_beat = time.monotonic()
        self._ready = False
        self._started = False
        self.bound_port: int | None = None
        """The port /metrics is served on, once serving (useful with port 0)."""
        self._last_apply_s = 0.0 if _small_input(opts) else float("inf")
        """How long the last apply took; the first one runs on the loop only for a small input."""
        self._last_attempted_sha: str | None = None
        self._retry_at: float | None = None
        """monotonic time when the failed reload of _last_attempted_sha is retried; None: no failure"""
        watches = len(opts.watched_dirs) + (1 if opts.config_file else 0)
        self._count(lambda m: m.watches.set(watches))

    @property
    def metrics(self) -> Metrics:
        """The metrics; created (importing prometheus_client) on first use, with earlier updates replayed."""
        if self._metrics is None:
            from reloader.metrics import new_metrics

            self._metrics = new_metrics(self.opts.reload_method)
            for op in self._pending_metrics:
                op(self._metrics)
            self._pending_metrics.clear()
        return self._metrics

    def _count(self, op: MetricOp) -> None:
        if self._metrics is None and self._defer_metrics:
            self._pending_metrics.append(op)
        else:
            op(self.metrics)

    # Probes, asked by the HTTP server on every request.
    def healthy(self) -> bool:
        """True while the file watcher runs and its thread beats."""
        return self._watch_alive and self._beat_age_s() <= self._hung_after_s()

    def ready(self) -> bool:
        """True once the first apply and reload succeeded, and everything is started (the server too)."""
        return self._ready and self._started

    def notify(self, events: int = 1) -> None:
        """Something changed (file events or the ticker): apply after --delay-interval of quiet."""
        self._count(lambda m: m.watch_events.inc(events))
        self._changed.set()

    def beat(self) -> None:
        """The watcher is alive. Thread-safe (the watchfiles thread calls it): one float store."""
        self._last_beat = time.monotonic()

    def watching(self) -> None:
        """The watcher is in place: healthy from now on. Re-read once, for changes made before it was."""
        self.beat()
        self._watch_alive = True
        self._watch_started.set()
        self._changed.set()

    def _beat_age_s(self) -> float:
        return time.monotonic() - self._last_beat

    def _hung_after_s(self) -> float:
        return HUNG_AFTER_BEATS * self.opts.watch_heartbeat_s

    async def run(self, stop: asyncio.Event, first: tuple[Applied, FirstReload | None] | None = None) -> None:
        """Apply, then watch, re-apply and reload until ``stop`` is set. StartupError if the first apply fails.

        ``first``: the first apply, done and logged already, and the first reload if it was sent.
        """
        web_config = self._load_web_config()
        if first is None:
            try:
                applied = await self._apply(counted=False)
            except ApplyError as exc:
                raise StartupError(str(exc)) from exc
            log_started(self.opts, self.log)
            reloaded: FirstReload | None = None
        else:
            applied, reloaded = first
            self._count(lambda m: m.env_expansion_errors.set(applied.expansion.errors))
        tasks: list[asyncio.Task[None]] = []
        try:
            # The stack closes (client session, server) after the task group's tasks have ended.
            async with contextlib.AsyncExitStack() as stack, asyncio.TaskGroup() as tg:
                tasks.append(
                    tg.create_task(
                        self._main(applied, first is not None, reloaded, web_config, stack, tg, tasks),
                        name="apply-loop",
                    )
                )
                await stop.wait()
                for task in tasks:
                    task.cancel()
        except BaseExceptionGroup as group:
            # What _main raises while starting the server (a bad web config, a taken listen address)
            # is a start-up error: hand it over bare, as it would be without the task group.
            first_error = group.exceptions[0]
            if len(group.exceptions) == 1 and isinstance(first_error, StartupError | OSError):
                raise first_error from None
            raise
        self.log.info("stopped")

    async def _main(
        self,
        first: Applied,
        pre_applied: bool,
        reloaded: FirstReload | None,
        web_config: WebConfig | None,
        stack: contextlib.AsyncExitStack,
        tg: asyncio.TaskGroup,
        tasks: list[asyncio.Task[None]],
    ) -> None:
        lighten_aiohttp(self.opts)
        if pre_applied:
            # reloader.cli sent the first reload (or could not: https, credentials, a redirect).
            quick: ReloadFn | None = None
            reload_fn = await self._full_reload(stack)
            if reloaded is None:
                await self._try_reload(reload_fn, first.sha256)
            else:
                self._reload_done(first.sha256, *reloaded)
        else:
            quick = self._quick_reload()
            reload_fn = quick or await self._full_reload(stack)
            await self._try_reload(reload_fn, first.sha256)
        tasks.append(tg.create_task(self._watch_forever(), name="watch"))
        if quick is not None:
            reload_fn = await self._full_reload(stack)
        self._defer_metrics = False
        metrics = self.metrics  # created now, replaying the first apply's and reload's updates
        current = first
        # The watcher re-reads once it is in place. Do that before serving, so that /healthz answering
        # 200 means the watch and its catch-up apply are done.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self._hung_after_s()):
                await self._watch_started.wait()
            current = await self._step(current, reload_fn)
        if self.opts.listen_address is not None:
            self.bound_port = await stack.enter_async_context(self._serving(metrics, web_config))
        if self.opts.watch_interval_s > 0:
            tasks.append(tg.create_task(self._tick_forever(), name="ticker"))
        self._started = True
        release_startup_memory()
        while True:
            current = await self._step(current, reload_fn)

    def _load_web_config(self) -> WebConfig | None:
        """The web config, read before anything else: a bad one is a start-up error, not a late one.

        Only with --web-config-file: reading it imports the server (aiohttp) before the first reload.
        """
        if self.opts.web_config_file is None:
            return None
        from reloader.webconfig import WebConfigError, load_web_config

        try:
            return load_web_config(Path(self.opts.web_config_file))
        except WebConfigError as exc:
            raise StartupError(str(exc)) from exc

    def _serving(
        self, metrics: Metrics, web_config: WebConfig | None
    ) -> contextlib.AbstractAsyncContextManager[int]:
        from reloader.serve import serving

        assert self.opts.listen_address is not None
        return serving(self.opts.listen_address, metrics.registry, self.healthy, self.ready, web_config)

    def _quick_reload(self) -> ReloadFn | None:
        """The first reload without aiohttp, where that client can send it: see ``reloader.quickpost``."""
        from reloader import keepalive, quickpost

        opts = self.opts
        if (
            self._reload_override is not None
            or opts.reload_method != "http"
            or opts.http_client_file is not None  # credentials and TLS: the full client's job
            or not quickpost.applies(opts.reload_url)
        ):
            return None

        async def first() -> None:
            try:
                await keepalive.post(opts.reload_url, timeout_s=opts.reload_timeout_s)
            except quickpost.PostError as exc:
                raise ReloadFailed(str(exc)) from exc

        return first

    async def _full_reload(self, stack: contextlib.AsyncExitStack) -> ReloadFn:
        if self._reload_override is not None:
            return self._reload_override
        from reloader import keepalive, quickpost

        opts = self.opts
        if (
            opts.reload_method == "http"
            and opts.http_client_file is None
            and quickpost.applies(opts.reload_url)
        ):
            # A plain http URL: reloads over one kept-alive connection of our own client,
            # about a third of aiohttp's CPU per reload. A redirect hands the reload to aiohttp.
            client = keepalive.Client(opts.reload_url)
            stack.callback(client.close)
            return self._kept_alive_reload(client, stack)
        return self._real_reload(await self._client_session(stack))

    async def _client_session(self, stack: contextlib.AsyncExitStack) -> aiohttp.ClientSession:
        import aiohttp

        return await stack.enter_async_context(aiohttp.ClientSession())

    def _kept_alive_reload(self, client: Any, stack: contextlib.AsyncExitStack) -> ReloadFn:
        """Reloads through ``client`` (a ``keepalive.Client``); after a redirect, through aiohttp."""
        from reloader import quickpost

        timeout_s = self.opts.reload_timeout_s
        full: ReloadFn | None = None

        async def reload() -> None:
            nonlocal full
            if full is None:
                try:
                    await client.post(timeout_s=timeout_s)
                    return
                except quickpost.Redirected:
                    self.log.debug("reload URL redirects: reloading through aiohttp from now on")
                    full = self._real_reload(await self._client_session(stack))
                except quickpost.PostError as exc:
                    raise ReloadFailed(str(exc)) from exc
            await full()

        return reload

    def _real_reload(self, session: aiohttp.ClientSession) -> ReloadFn:
        from reloader import reload as reload_mod
        from reloader.httpclient import HTTPClient

        opts = self.opts
        client = HTTPClient(as_path(opts.http_client_file))

        async def reload() -> None:
            try:
                if opts.reload_method == "signal":
                    # The wait for runtimeinfo is bounded by the watch interval, as in Go, not by one
                    # request's timeout.
                    await reload_mod.reload_signal(
                        session,
                        opts.process_executable_name,
                        opts.runtimeinfo_url,
                        timeout_s=opts.reload_timeout_s,
                        wait_s=opts.watch_interval_s,
                        client=client,
                    )
                else:
                    await reload_mod.reload_http(
                        session, opts.reload_url, timeout_s=opts.reload_timeout_s, client=client
                    )
            except reload_mod.ReloadError as exc:
                raise ReloadFailed(str(exc)) from exc

        return reload

    async def _apply(self, *, counted: bool = True) -> Applied:
        # As in Go, reloader_config_apply_operations_total counts the applies that an event or the
        # ticker started; neither the one at startup nor a reload retry is one.
        if counted:
            self._count(lambda m: m.apply_operations.inc())
        try:
            if self._last_apply_s < INLINE_APPLY_S:
                # Quick last time: a hop to a worker thread would cost more CPU than the apply itself
                # (prometheus-operator's 10m limit is 1 ms per 100 ms).
                applied = self._timed_apply()
            else:
                # A 64 MiB config takes a while to render: keep the server and the watcher responsive.
                applied = await asyncio.to_thread(self._timed_apply)
        except ApplyError:
            if counted:
                self._count(lambda m: m.apply_operations_failed.inc())
            raise
        errors = applied.expansion.errors
        self._count(lambda m: m.env_expansion_errors.set(errors))
        log_applied(applied, self.opts, self.log)
        return applied

    def _timed_apply(self) -> Applied:
        """``apply_config``, noting how long it took: its CPU time, or the wall time if that is over a
        second (a stalled filesystem). CPU time, because under a CPU quota the wall time of even the
        smallest apply may be a throttled period, which would send every later apply to a thread."""
        wall, cpu = time.monotonic(), time.thread_time()
        try:
            return apply_config(self.opts, self.env)
        finally:
            wall, cpu = time.monotonic() - wall, time.thread_time() - cpu
            self._last_apply_s = wall if wall > STALLED_APPLY_S else cpu

    async def _try_reload(self, reload_fn: ReloadFn, sha: str) -> bool:
        try:
            await reload_fn()
        except ReloadFailed as exc:
            self._reload_done(sha, self._clock(), time.monotonic(), str(exc))
            self.log.error("reload failed", extra={"err": str(exc), "retry_in_s": self.opts.retry_interval_s})
            return False
        self._reload_done(sha, self._clock(), time.monotonic(), None)
        self.log.info("reloaded", extra={"method": self.opts.reload_method, "sha256": sha[:16]})
        return True

    def _reload_done(self, sha: str, at: float, at_monotonic: float, error: str | None) -> None:
        """Count one reload of ``sha`` that ended at ``at`` (wall clock), failed with ``error`` or not."""
        self._count(lambda m: m.reloads.inc())
        self._last_attempted_sha = sha
        if error is not None:
            self._retry_at = at_monotonic + self.opts.retry_interval_s
            self._count(lambda m: m.reloads_failed.inc())
            self._count(lambda m: m.last_reload_successful.set(0))
            return
        self._retry_at = None
        self._ready = True
        self._count(lambda m: m.last_reload_successful.set(1))
        self._count(lambda m: m.last_reload_success_timestamp_seconds.set(at))

    async def _step(self, current: Applied, reload_fn: ReloadFn) -> Applied:
        """One turn of the loop: wait for a change (or a due retry), apply, and reload when needed.

        A new hash is reloaded at once, even while a retry waits; the hash of a failed reload is
        retried only when the retry is due, whatever events come in between (the watcher's catch-up
        re-read, the ticker).
        """
        timeout_s = None if self._retry_at is None else max(0.0, self._retry_at - time.monotonic())
        changed = await self._wait_for_change(timeout_s)
        if changed:
            await self._debounce()
        try:
            current = await self._apply(counted=changed)
        except ApplyError as exc:
            # The output still holds the last good config, and `current` still describes it.
            self.log.error("apply failed", extra={"err": str(exc)})
            if not await self._wait_for_change(self.opts.retry_interval_s):
                self._changed.set()  # retry the apply
        due = self._retry_at is not None and time.monotonic() >= self._retry_at
        if current.sha256 != self._last_attempted_sha or due:
            await self._try_reload(reload_fn, current.sha256)
        return current

    async def _wait_for_change(self, timeout_s: float | None) -> bool:
        """True when a change arrived, False when ``timeout_s`` passed first."""
        if timeout_s is None:  # the usual wait: no timer to set up and cancel
            await self._changed.wait()
            return True
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
            self.log.debug("periodic re-read")
            self._tick.set()
            self._changed.set()

    async def _watch_forever(self) -> None:
        # The watcher is restarted after any error or hang; /healthz reports it as down in between.
        while True:
            try:
                await self._watch_once()
            except Exception as exc:
                self._watch_alive = False
                self._count(lambda m: m.watch_errors.inc())
                self.log.error(
                    "file watcher failed, restarting",
                    extra={
                        "err": f"{exc.__class__.__name__}: {exc}",
                        "retry_in_s": self.opts.retry_interval_s,
                    },
                )
            await asyncio.sleep(self.opts.retry_interval_s)

    async def _watch_once(self) -> None:
        """Run one watcher until it fails, returns, or stops beating (WatcherHung)."""
        self._watch_alive = False
        self.beat()
        task = asyncio.create_task(self._watcher(self), name="watcher")
        try:
            while True:
                done, _ = await asyncio.wait([task], timeout=self.opts.watch_heartbeat_s)
                if done:
                    task.result()
                    raise WatcherReturned("file watcher returned")
                if self._beat_age_s() > self._hung_after_s():
                    raise WatcherHung(f"no heartbeat for {self._beat_age_s():.1f}s")
        finally:
            self._watch_alive = False
            task.cancel()
            # Bounded: watch_changes gives up on a hung thread after a while.
            await asyncio.wait([task])
            if not task.cancelled():
                task.exception()  # retrieved: the error raised above is the one reported


def as_path(path: str | None) -> Path | None:
    return None if path is None else Path(path)


SMALL_INPUT_BYTES: Final = 256 * 1024


def _small_input(opts: Options) -> bool:
    """A config file small enough to render on the loop the first time (no worker thread at all)."""
    if opts.config_file is None or opts.watched_dirs:
        return False
    try:
        return os.stat(opts.config_file).st_size <= SMALL_INPUT_BYTES
    except OSError:
        return False  # the apply reports it


AIOHTTP_PURE_PYTHON: Final = "AIOHTTP_NO_EXTENSIONS"
"""aiohttp's documented switch to its pure-Python HTTP parser. Its compiled parser and websocket reader
map about 0.6 MiB more of an idle sidecar (budget: 36 MiB); for one small reload POST or /metrics scrape
at a time the pure-Python parser costs no measurable CPU (``make bench``, CPU per change). Set before
aiohttp loads; a value the user set is kept."""

NO_CA_BUNDLE: Final = {"SSL_CERT_FILE": os.devnull, "SSL_CERT_DIR": os.devnull}


def needs_system_ca_bundle(opts: Options) -> bool:
    """Whether any TLS this sidecar does might verify against the system's CA certificates."""
    urls = (opts.reload_url, opts.runtimeinfo_url if opts.reload_method == "signal" else "")
    return (
        any(u.lower().startswith("https:") for u in urls)
        or opts.web_config_file is not None
        or opts.http_client_file is not None
    )


def lighten_aiohttp(opts: Options) -> None:
    """Before aiohttp loads: its pure-Python parser, and no CA bundle where there is no TLS at all.

    Only the process's own start-up can do this: once aiohttp is imported (as in a test process), it
    is too late and nothing is changed.
    """
    if "aiohttp" in sys.modules:
        return
    os.environ.setdefault(AIOHTTP_PURE_PYTHON, "1")
    skip_system_ca_bundle(opts)


def skip_system_ca_bundle(opts: Options) -> None:
    """With no TLS at all, keep OpenSSL from loading the system's CA bundle.

    aiohttp builds its default client SSL contexts when it is imported, and each loads the whole bundle:
    about 2 MiB of resident memory (the idle budget is 36 MiB) and 25 ms of CPU (2.5 s at 10m), for
    connections that are all plain http here. Values the user set are kept. The environment for
    ``$(VAR)`` was taken before, so a config never sees these.
    """
    if not needs_system_ca_bundle(opts):
        for name, value in NO_CA_BUNDLE.items():
            os.environ.setdefault(name, value)


def release_startup_memory() -> None:
    """After start-up: collect once, then freeze what is left out of the collector's sight.

    Everything alive now (imported modules, the app) lives until exit; with ``gc.freeze`` the full
    collections that later changes trigger no longer walk those ~100k objects each time, which is most
    of a change's worst-case CPU. Then glibc's malloc_trim hands freed heap pages back (not on musl).
    """
    import ctypes
    import gc

    gc.collect()
    gc.freeze()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).malloc_trim(0)


async def _watch_files(reloader: Reloader) -> None:
    from reloader import watch

    opts = reloader.opts
    config_file, output_file = as_path(opts.config_file), as_path(opts.output_file)
    watched_dirs = [Path(d) for d in opts.watched_dirs]
    roots = watch.watch_roots(config_file, watched_dirs)
    keep = watch.event_filter(config_file, watched_dirs, output_file, write.TEMP_PREFIX)
    reloader.log.debug("watching", extra={"dirs": ",".join(str(r) for r in roots)})
    await watch.watch_changes(
        roots,
        reloader.notify,
        keep=keep,
        on_ready=reloader.watching,
        beat=reloader.beat,
        recursive=[d.absolute() for d in watched_dirs],
        heartbeat_s=opts.watch_heartbeat_s,
    )
