"""watch_changes with real directories and both real backends: inotify (Linux, on the event loop) and
watchfiles (in a thread)."""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from reloader.watch import (
    JOIN_TIMEOUT_S,
    Backend,
    LoopBackend,
    WatchError,
    WatchfilesBackend,
    event_filter,
    watch_changes,
)
from reloader.watch_inotify import READ_BYTES, InotifyBackend, available
from tests.support.polling import eventually

pytestmark = pytest.mark.skipif(not available(), reason="inotify backend needs Linux and inotify_simple")

BackendFactory = Callable[[list[Path], list[Path]], Backend | LoopBackend]
BACKENDS: dict[str, BackendFactory] = {
    "inotify": lambda roots, rec: InotifyBackend(roots, lambda _p: True, recursive=rec, heartbeat_s=0.2),
    "watchfiles": lambda roots, rec: WatchfilesBackend(
        roots, lambda _p: True, recursive=rec, heartbeat_s=0.2
    ),
}


THREADS = {"inotify": 0, "watchfiles": 1}
"""Watcher threads each backend runs: inotify is read on the event loop."""


def watcher_threads() -> int:
    return sum(1 for t in threading.enumerate() if t.name == "config-reloader-watch")


def inotify_fds() -> int:
    """This process's open inotify descriptors."""
    fds = Path("/proc/self/fd")
    count = 0
    for fd in fds.iterdir():
        try:
            count += os.readlink(fd) == "anon_inode:inotify"
        except OSError:
            continue  # the descriptor of the iteration itself, already closed
    return count


class Recorder:
    """The callbacks of watch_changes; records what arrived and on which thread."""

    def __init__(self) -> None:
        self.ready = asyncio.Event()
        self.calls: list[str] = []
        self.events = 0
        self.beats = 0
        self.threads: set[int] = set()

    def on_ready(self) -> None:
        self.threads.add(threading.get_ident())
        self.calls.append("ready")
        self.ready.set()

    def on_events(self, count: int) -> None:
        self.threads.add(threading.get_ident())
        self.calls.append("events")
        self.events += count

    def beat(self) -> None:
        self.beats += 1


async def start(
    backend: Backend | LoopBackend, roots: list[Path], rec: Recorder, recursive: list[Path]
) -> asyncio.Task[None]:
    task = asyncio.create_task(
        watch_changes(
            roots,
            rec.on_events,
            keep=lambda _p: True,
            on_ready=rec.on_ready,
            beat=rec.beat,
            recursive=recursive,
            backend=backend,
        )
    )
    await asyncio.wait_for(rec.ready.wait(), 30)
    return task


@pytest.mark.parametrize("name", sorted(BACKENDS))
async def test_events_arrive_on_the_loop_after_ready_beats_go_on_and_cancel_stops_the_watch(
    tmp_path: Path, name: str
) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    before, fds_before = watcher_threads(), inotify_fds()
    rec = Recorder()
    task = await start(BACKENDS[name]([rules], [rules]), [rules], rec, [rules])
    assert watcher_threads() == before + THREADS[name]

    (rules / "a.rules.yaml").write_text("groups: []\n")
    await eventually(lambda: rec.events > 0, "an event for a.rules.yaml")
    assert rec.calls[0] == "ready"
    assert rec.threads == {threading.get_ident()}, "callbacks must run on the event loop's thread"
    beats = rec.beats
    await eventually(lambda: rec.beats >= beats + 3, "the thread to keep beating while idle")

    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 30)
    await eventually(lambda: watcher_threads() == before, "the watcher thread to end")
    await eventually(lambda: inotify_fds() == fds_before, "the inotify descriptor to be closed")


@pytest.mark.parametrize("name", sorted(BACKENDS))
async def test_files_in_subdirectories_are_watched_also_ones_made_after_the_start(
    tmp_path: Path, name: str
) -> None:
    rules = tmp_path / "rules"
    (rules / "team-a").mkdir(parents=True)
    rec = Recorder()
    task = await start(BACKENDS[name]([rules], [rules]), [rules], rec, [rules])
    try:
        (rules / "team-a" / "a.yaml").write_text("groups: []\n")
        await eventually(lambda: rec.events > 0, "an event from an existing subdirectory")
        (rules / "team-b" / "nested").mkdir(parents=True)
        await eventually(lambda: rec.events > 1, "the new subdirectory")
        seen = rec.events
        await asyncio.sleep(0.3)  # the new directories are being watched once the rescan has run
        (rules / "team-b" / "nested" / "b.yaml").write_text("groups: []\n")
        await eventually(lambda: rec.events > seen, "an event from a subdirectory made after the start")
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_inotify_counts_a_written_file_once_and_ignores_an_unrelated_name(tmp_path: Path) -> None:
    config_dir = tmp_path / "config"
    config_dir.mkdir()
    keep = event_filter(config_dir / "prometheus.yaml", [], None, ".tmp-")
    rec = Recorder()
    backend = InotifyBackend([config_dir], keep, recursive=[], heartbeat_s=0.2)
    task = asyncio.create_task(
        watch_changes([config_dir], rec.on_events, keep=keep, on_ready=rec.on_ready, backend=backend)
    )
    await asyncio.wait_for(rec.ready.wait(), 30)
    try:
        (config_dir / "unrelated.log").write_text("noise\n")
        # Created, written in two parts, closed: one change, not one per system call.
        with (config_dir / "prometheus.yaml").open("w") as f:
            f.write("global: {}\n")
            f.flush()
            f.write("scrape_configs: []\n")
        await eventually(lambda: rec.events > 0, "the config's event")
        await asyncio.sleep(0.3)  # anything else the kernel had for us has arrived by now
        assert rec.events == 1
        link = config_dir / "..data_tmp"
        link.symlink_to("elsewhere")  # complete on arrival: counted at once
        await eventually(lambda: rec.events > 1, "the symlink's event")
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_inotify_counts_a_burst_longer_than_one_read(tmp_path: Path) -> None:
    config_dir = tmp_path / "config"
    config_dir.mkdir()
    rec = Recorder()
    task = await start(
        InotifyBackend([config_dir], lambda _p: True, recursive=[], heartbeat_s=0.2), [config_dir], rec, []
    )
    try:
        # Each close-after-write event holds its 200-byte name: together several reads' worth.
        names = [f"{i:04d}-" + "n" * 195 for i in range(600)]
        assert len(names) * (16 + 200) > READ_BYTES
        for name in names:
            (config_dir / name).write_bytes(b"x")
        await eventually(lambda: rec.events >= len(names), "every file's event")
        await asyncio.sleep(0.3)
        assert rec.events == len(names)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


@pytest.mark.parametrize("name", sorted(BACKENDS))
async def test_removing_a_watched_directory_is_an_error_naming_it(tmp_path: Path, name: str) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    before, fds_before = watcher_threads(), inotify_fds()
    rec = Recorder()
    task = await start(BACKENDS[name]([rules], []), [rules], rec, [])
    rules.rmdir()
    with pytest.raises(WatchError, match=f"watched directory {rules} was removed"):
        await asyncio.wait_for(task, 30)
    await eventually(lambda: watcher_threads() == before, "the watcher thread to end")
    await eventually(lambda: inotify_fds() == fds_before, "the inotify descriptor to be closed")


async def test_a_missing_directory_cannot_be_watched(tmp_path: Path) -> None:
    rec = Recorder()
    missing = tmp_path / "nope"
    with pytest.raises(FileNotFoundError, match=str(missing)):
        await asyncio.wait_for(
            watch_changes([missing], rec.on_events, keep=lambda _p: True, on_ready=rec.on_ready), 30
        )
    assert rec.calls == []


class HangingBackend:
    """Beats, then blocks its real thread on an event nobody sets until the test releases it."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.blocked = threading.Event()

    def run(
        self,
        stop: threading.Event,
        emit: Callable[[int], None],
        ready: Callable[[], None],
        beat: Callable[[], None],
    ) -> None:
        del stop, emit
        beat()
        ready()
        self.blocked.set()
        self.release.wait()  # stuck: no events, no exception, no beat
        os.sched_yield()


async def test_a_hung_thread_is_abandoned_when_cancelled_and_stops_beating(tmp_path: Path) -> None:
    rec = Recorder()
    backend = HangingBackend()
    task = await start(backend, [tmp_path], rec, [])
    try:
        await asyncio.to_thread(backend.blocked.wait, 30)
        beats = rec.beats
        await asyncio.sleep(0.3)
        assert rec.beats == beats
        task.cancel()
        # The thread does not stop; watch_changes gives up on it instead of waiting forever.
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(task, JOIN_TIMEOUT_S + 30)
        assert watcher_threads() >= 1
    finally:
        backend.release.set()
    await eventually(lambda: watcher_threads() == 0, "the released thread to end")
