"""Watching: file events on directories, and the hash of every file in the watched directories.

We watch the parent directory of the config file, never the file itself: in a Kubernetes volume the
visible name is a symlink into ``..data``, and an update swaps ``..data`` with one rename, so a watch on
the file (or its inode) would miss the second update. Directories are watched without recursion, like
the Go reloaders do.

watchfiles groups events on its own (``debounce``, 1600 ms by default, and ``step``, 50 ms): both are
set to a few milliseconds here, so that ``--delay-interval`` in the caller is the only delay.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import hashlib
import os
import threading
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Final

WATCHFILES_STEP_MS: Final = 5
"""How often watchfiles checks for events; bounds change-to-trigger latency at --delay-interval=0."""
WATCHFILES_DEBOUNCE_MS: Final = 5
WATCHFILES_TIMEOUT_MS: Final = 250
"""watchfiles wakes up at least this often; its first wake-up tells us the watch is in place."""


class WatchError(OSError):
    """The watch on a directory broke (for example, the directory was removed)."""


def hash_dirs(dirs: Iterable[Path], digest: hashlib._Hash, chunk_bytes: int = 64 * 1024) -> int:
    """Feed every regular file of each directory (not recursive) into ``digest``; returns the file count.

    Symlinks are followed. Directories are skipped, which is what makes each file of a Kubernetes volume
    count once: ``..data`` and ``..<timestamp>`` are directories, and only the visible names are files.
    Names are hashed too, so a rename is a change. OSError (a missing directory) propagates.
    """
    count = 0
    for directory in dirs:
        digest.update(os.fsencode(directory) + b"\0")
        with os.scandir(directory) as it:
            entries = sorted(it, key=lambda e: e.name)
        for entry in entries:
            try:
                if not entry.is_file():  # follows symlinks; a dangling one is not a file
                    continue
                with open(entry.path, "rb") as f:
                    digest.update(os.fsencode(entry.name) + b"\0")
                    while chunk := f.read(chunk_bytes):
                        digest.update(chunk)
                digest.update(b"\0")
            except FileNotFoundError:
                continue  # removed between listing and reading: the next event triggers again
            count += 1
    return count


def watch_roots(config_file: Path | None, watched_dirs: Sequence[Path]) -> list[Path]:
    """The directories to watch: the config file's parent and each watched dir, without duplicates."""
    roots: list[Path] = []
    candidates = ([config_file.absolute().parent] if config_file else []) + [
        d.absolute() for d in watched_dirs
    ]
    for path in candidates:
        if path not in roots:
            roots.append(path)
    return roots


def event_filter(
    config_file: Path | None,
    watched_dirs: Sequence[Path],
    output_file: Path | None,
    temp_prefix: str,
) -> Callable[[object, str], bool]:
    """A watchfiles filter: which events may trigger an apply.

    In a watched dir, every event counts except our own writes. In the config file's directory, only
    the config file's name and Kubernetes' ``..data``/``..<timestamp>`` entries count: that directory
    may hold anything (a log file, the output), and our own output must never trigger an apply, or
    every write would trigger another one.
    """
    output = str(output_file.absolute()) if output_file else None
    watched = {str(d.absolute()) for d in watched_dirs}
    roots = {str(r) for r in watch_roots(config_file, watched_dirs)}
    config_name = config_file.name if config_file else None

    def keep(_change: object, path: str) -> bool:
        name = os.path.basename(path)
        if path == output or name.startswith(temp_prefix):
            return False
        if path in roots or os.path.dirname(path) in watched:
            return True  # a root itself: its removal must reach watch_changes
        return name == config_name or name.startswith("..")

    return keep


async def watch_changes(
    roots: Sequence[Path],
    on_events: Callable[[int], None],
    *,
    keep: Callable[[object, str], bool],
    on_ready: Callable[[], None],
) -> None:
    """Call ``on_events(n)`` for every batch of n events until cancelled.

    ``on_ready`` is called once the directories are really being watched (the first wake-up of
    watchfiles proves it): whatever changed before that moment was not seen as an event, so the caller
    re-reads everything then. Raises FileNotFoundError when a directory does not exist, WatchError when
    a watched directory itself is deleted, and whatever watchfiles raises when it cannot watch.

    Both callbacks run on the event loop. The watching itself is watchfiles' synchronous ``watch`` in
    one worker thread, for as long as this coroutine runs. Its ``awatch`` does the same through anyio,
    which loads anyio's asyncio backend: about 1.3 MiB of resident memory in an idle sidecar, for no
    gain here. Cancelling sets the stop event, which watchfiles checks every ``WATCHFILES_STEP_MS``, and
    waits for the thread to return.
    """
    from watchfiles import Change, watch  # the init mode never watches: keep its imports light

    for root in roots:
        # With ignore_permission_denied, watchfiles skips a missing path without a word: the watch
        # would look alive and see nothing.
        if not root.is_dir():
            raise FileNotFoundError(errno.ENOENT, "watched directory does not exist", str(root))
    loop = asyncio.get_running_loop()
    stop = threading.Event()
    # A generator: nothing is watched until the worker thread first iterates it.
    batches = watch(
        *roots,
        watch_filter=keep,
        debounce=WATCHFILES_DEBOUNCE_MS,
        step=WATCHFILES_STEP_MS,
        stop_event=stop,
        rust_timeout=WATCHFILES_TIMEOUT_MS,
        yield_on_timeout=True,
        recursive=False,
        ignore_permission_denied=True,
    )
    removed = {(Change.deleted, str(r)) for r in roots}

    def drain() -> None:
        # The worker thread. closing(): the Rust watcher and its thread end here, not whenever the
        # generator happens to be collected.
        with contextlib.closing(batches):
            for i, changes in enumerate(batches):
                if i == 0:
                    loop.call_soon_threadsafe(on_ready)
                if gone := changes & removed:
                    raise WatchError(f"watched directory {next(iter(gone))[1]} was removed")
                if changes:
                    loop.call_soon_threadsafe(on_events, len(changes))

    watching = loop.run_in_executor(None, drain)
    try:
        # shield: a cancellation must not abandon the thread, but stop it (below).
        await asyncio.shield(watching)
    finally:
        stop.set()
        await asyncio.wait([watching])
    raise WatchError("file watcher stopped")
