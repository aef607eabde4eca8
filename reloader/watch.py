"""Watching: file events on the watched directories, handed to the event loop by a backend.

We watch the parent directory of the config file, never the file itself: in a Kubernetes volume the
visible name is a symlink into ``..data``, and an update swaps ``..data`` with one rename, so a watch on
the file (or its inode) would miss the second update. Watched directories are watched recursively.

Backends:
- inotify on Linux (``reloader.watch_inotify``), read on the event loop itself: an idle sidecar uses
  no CPU, and a change costs no thread wake-up. It calls ``beat`` from the loop.
- watchfiles elsewhere, in a daemon thread of our own. watchfiles' Rust loop wakes every ``step``
  under the GIL (at 5 ms that is about 10 millicores, prometheus-operator's whole CPU limit for the
  sidecar), so it is only the fallback. The thread calls ``beat`` at least every ``heartbeat_s``; one
  that stops beating is hung (a stuck file system call, a dead watcher library thread): the caller
  sees it through the beat's age, and stops waiting for it. It is not the loop's executor, so a hung
  one never blocks the process from exiting.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Final, Protocol, runtime_checkable

from reloader.tree import watch_roots
from reloader.watch_inotify import WatchError

__all__ = ["Backend", "LoopBackend", "WatchError", "event_filter", "watch_changes", "watch_roots"]

WATCHFILES_STEP_MS: Final = 5
"""How often watchfiles checks for events; bounds change-to-trigger latency at --delay-interval=0."""
WATCHFILES_DEBOUNCE_MS: Final = 5
JOIN_TIMEOUT_S: Final = 0.5
"""How long a cancelled watch waits for its thread; a hung thread is abandoned after that."""

Keep = Callable[[str], bool]
"""path -> whether an event on it may trigger an apply."""


class Backend(Protocol):
    """A watcher that blocks in its own thread until ``stop`` is set (or raises)."""

    def run(
        self,
        stop: threading.Event,
        emit: Callable[[int], None],
        ready: Callable[[], None],
        beat: Callable[[], None],
    ) -> None:
        """Call ``ready`` once the directories are watched, ``emit(n)`` per batch of n relevant events,
        and ``beat`` at least every heartbeat; return soon after ``stop`` is set."""


@runtime_checkable
class LoopBackend(Protocol):
    """A watcher that runs on the event loop until cancelled (or raises)."""

    async def run_on_loop(
        self, emit: Callable[[int], None], ready: Callable[[], None], beat: Callable[[], None]
    ) -> None:
        """Call ``ready`` once the directories are watched, ``emit(n)`` per batch of n relevant events,
        and ``beat`` at least every heartbeat, all on the loop."""


def event_filter(
    config_file: Path | None,
    watched_dirs: Sequence[Path],
    output_file: Path | None,
    temp_prefix: str,
) -> Keep:
    """Which event paths may trigger an apply.

    Below a watched dir (at any depth), every event counts except our own writes. In the config file's
    directory, only the config file's name and Kubernetes' ``..data``/``..<timestamp>`` entries count:
    that directory may hold anything (a log file, the output), and our own output must never trigger an
    apply, or every write would trigger another one.
    """
    output = os.fspath(output_file.absolute()) if output_file else None
    watched = tuple(os.fspath(d.absolute()) for d in watched_dirs)
    roots = {os.fspath(r) for r in watch_roots(config_file, watched_dirs)}
    config_name = config_file.name if config_file else None

    def keep(path: str) -> bool:
        name = os.path.basename(path)
        if path == output or name.startswith(temp_prefix):
            return False
        if path in roots:
            return True  # a root itself: its removal must reach the watcher
        if any(path.startswith(d + os.sep) for d in watched):
            return True
        return name == config_name or name.startswith("..")

    return keep


def default_backend(
    roots: Sequence[Path], keep: Keep, recursive: Sequence[Path], heartbeat_s: float
) -> Backend | LoopBackend:
    """inotify where the kernel has it, else watchfiles."""
    from reloader import watch_inotify

    if watch_inotify.available():
        return watch_inotify.InotifyBackend(roots, keep, recursive=recursive, heartbeat_s=heartbeat_s)
    return WatchfilesBackend(roots, keep, recursive=recursive, heartbeat_s=heartbeat_s)


async def watch_changes(
    roots: Sequence[Path],
    on_events: Callable[[int], None],
    *,
    keep: Keep,
    on_ready: Callable[[], None],
    beat: Callable[[], None] = lambda: None,
    recursive: Sequence[Path] = (),
    heartbeat_s: float = 5.0,
    backend: Backend | LoopBackend | None = None,
) -> None:
    """Call ``on_events(n)`` for every batch of n relevant events until cancelled.

    ``on_ready`` is called once the directories are really being watched: whatever changed before that
    moment was not seen as an event, so the caller re-reads everything then. ``recursive`` names the
    roots whose subdirectories are watched too. ``beat`` is called at least every ``heartbeat_s``
    while the watcher is alive (from a thread backend's thread). Raises FileNotFoundError when a
    directory does not exist, WatchError when a watched directory itself is removed, and whatever the
    backend raises.

    ``on_events`` and ``on_ready`` run on the event loop. Cancelling a thread backend stops its thread
    and waits for it up to ``JOIN_TIMEOUT_S``; a hung thread is left behind, and whatever it reports
    later is dropped.
    """
    for root in roots:
        if not root.is_dir():
            raise FileNotFoundError(errno.ENOENT, "watched directory does not exist", str(root))
    if backend is None:
        backend = default_backend(roots, keep, recursive, heartbeat_s)
    if isinstance(backend, LoopBackend):
        await backend.run_on_loop(on_events, on_ready, beat)
        raise WatchError("file watcher stopped")
    loop = asyncio.get_running_loop()
    stop = threading.Event()
    done: asyncio.Future[None] = loop.create_future()

    def call(fn: Callable[..., None], *args: object) -> None:
        if not stop.is_set():
            with contextlib.suppress(RuntimeError):  # the loop is closed: we are shutting down
                loop.call_soon_threadsafe(fn, *args)

    def finish(exc: BaseException | None) -> None:
        if done.done():
            return
        if exc is None:
            done.set_result(None)
        else:
            done.set_exception(exc)

    def thread_main() -> None:
        exc: BaseException | None = None
        try:
            backend.run(stop, lambda n: call(on_events, n), lambda: call(on_ready), beat)
        except BaseException as e:  # handed to the loop, which raises it in the caller
            exc = e
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(finish, exc)

    thread = threading.Thread(target=thread_main, name="config-reloader-watch", daemon=True)
    thread.start()
    try:
        # shield: a cancellation must not abandon the thread, but stop it (below).
        await asyncio.shield(done)
    finally:
        stop.set()
        await asyncio.wait([done], timeout=JOIN_TIMEOUT_S)
        if done.done() and not done.cancelled():
            done.exception()  # retrieved, so asyncio does not log it as never retrieved
    raise WatchError("file watcher stopped")


class WatchfilesBackend:
    """watchfiles' synchronous ``watch`` (its Rust thread does the watching, we drain it).

    Its ``awatch`` does the same through anyio, which loads anyio's asyncio backend: about 1.3 MiB of
    resident memory for no gain. ``rust_timeout`` gives the wake-up that proves the watch is in place
    and drives the heartbeat; ``stop_event`` is checked every ``WATCHFILES_STEP_MS``.
    """

    def __init__(self, roots: Sequence[Path], keep: Keep, *, recursive: Sequence[Path], heartbeat_s: float):
        self.roots = list(roots)
        self.keep = keep
        self.recursive = bool(recursive)
        self.timeout_ms = max(1, int(heartbeat_s * 1000))

    def run(
        self,
        stop: threading.Event,
        emit: Callable[[int], None],
        ready: Callable[[], None],
        beat: Callable[[], None],
    ) -> None:
        from watchfiles import Change, watch

        batches = watch(
            *self.roots,
            watch_filter=lambda _change, path: self.keep(path),
            debounce=WATCHFILES_DEBOUNCE_MS,
            step=WATCHFILES_STEP_MS,
            stop_event=stop,
            rust_timeout=self.timeout_ms,
            yield_on_timeout=True,
            # One watcher for all roots: recursive when a watched dir is, so the config file's
            # directory may report more, which the filter drops.
            recursive=self.recursive,
            ignore_permission_denied=True,
        )
        removed = {(Change.deleted, os.fspath(r)) for r in self.roots}
        # closing(): the Rust watcher and its thread end here, not whenever the generator is collected.
        with contextlib.closing(batches):
            for i, changes in enumerate(batches):
                beat()
                if i == 0:
                    ready()
                if gone := changes & removed:
                    raise WatchError(f"watched directory {next(iter(gone))[1]} was removed")
                if changes:
                    emit(len(changes))
