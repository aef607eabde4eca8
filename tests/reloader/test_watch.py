"""watch_changes with real directories and the real watchfiles watcher (inotify, its Rust thread)."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest

from reloader.watch import WatchError, event_filter, watch_changes
from tests.support.polling import eventually


def rust_watcher_threads() -> int:
    """Live threads of watchfiles' Rust watcher in this process (Linux names them notify-rs...)."""
    count = 0
    for task in Path("/proc/self/task").iterdir():
        try:
            if (task / "comm").read_text().startswith("notify-rs"):
                count += 1
        except FileNotFoundError:
            continue  # the thread ended while we listed
    return count


class Recorder:
    """The two callbacks of watch_changes; records what arrived and on which thread."""

    def __init__(self) -> None:
        self.ready = asyncio.Event()
        self.calls: list[str] = []
        self.events = 0
        self.threads: set[int] = set()

    def on_ready(self) -> None:
        self.threads.add(threading.get_ident())
        self.calls.append("ready")
        self.ready.set()

    def on_events(self, count: int) -> None:
        self.threads.add(threading.get_ident())
        self.calls.append("events")
        self.events += count


async def test_events_arrive_on_the_loop_after_ready_and_cancel_stops_the_watcher(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    before = rust_watcher_threads()
    rec = Recorder()
    keep = event_filter(None, [rules], None, ".tmp-")
    task = asyncio.create_task(watch_changes([rules], rec.on_events, keep=keep, on_ready=rec.on_ready))
    await asyncio.wait_for(rec.ready.wait(), 30)
    assert rust_watcher_threads() == before + 1

    (rules / "a.rules.yaml").write_text("groups: []\n")
    await eventually(lambda: rec.events > 0, "an event for a.rules.yaml")
    assert rec.calls[0] == "ready"
    assert rec.threads == {threading.get_ident()}, "callbacks must run on the event loop's thread"

    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 30)
    # The Rust watcher is closed when watching ends, not left to the garbage collector.
    await eventually(lambda: rust_watcher_threads() == before, "the Rust watcher thread to end")


async def test_removing_a_watched_directory_is_an_error_naming_it(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    before = rust_watcher_threads()
    rec = Recorder()
    keep = event_filter(None, [rules], None, ".tmp-")
    task = asyncio.create_task(watch_changes([rules], rec.on_events, keep=keep, on_ready=rec.on_ready))
    await asyncio.wait_for(rec.ready.wait(), 30)
    rules.rmdir()
    with pytest.raises(WatchError, match=f"watched directory {rules} was removed"):
        await asyncio.wait_for(task, 30)
    await eventually(lambda: rust_watcher_threads() == before, "the Rust watcher thread to end")


async def test_a_missing_directory_cannot_be_watched(tmp_path: Path) -> None:
    rec = Recorder()
    missing = tmp_path / "nope"
    with pytest.raises(FileNotFoundError, match=str(missing)):
        await asyncio.wait_for(
            watch_changes([missing], rec.on_events, keep=lambda _c, _p: True, on_ready=rec.on_ready), 30
        )
    assert rec.calls == []
