"""The work queue: dedup, one worker per key, per-key backoff, resync. Pure asyncio, a stepped clock."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest

from config_operator.queue import Backoff, WorkQueue, resync, work
from tests.support.polling import eventually


class Clock:
    """A clock the test steps by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(
    ("failures", "want_s"),
    [(0, 0.0), (1, 0.5), (2, 1.0), (3, 2.0), (4, 4.0), (10, 256.0), (11, 300.0), (500, 300.0)],
)
def test_backoff_doubles_up_to_the_cap(failures: int, want_s: float) -> None:
    assert Backoff(base_s=0.5, max_s=300.0).delay_s(failures) == want_s


async def test_a_waiting_key_is_queued_once() -> None:
    queue: WorkQueue[str] = WorkQueue()
    queue.add_all(["a", "b", "a", "a", "b"])
    assert queue.depth == 2
    assert [await queue.get(), await queue.get()] == ["a", "b"]
    assert queue.depth == 0


async def test_a_key_added_while_processing_waits_until_done() -> None:
    queue: WorkQueue[str] = WorkQueue()
    queue.add("a")
    assert await queue.get() == "a"
    queue.add("a")
    queue.add("a")
    # Not handed out a second time while the first worker holds it.
    assert queue.depth == 0
    queue.done("a")
    assert queue.depth == 1
    assert await queue.get() == "a"
    queue.done("a")
    assert queue.depth == 0


async def test_failure_delays_the_key_and_success_resets_the_backoff() -> None:
    clock = Clock()
    queue: WorkQueue[str] = WorkQueue(Backoff(base_s=1.0, max_s=60.0), clock=clock)
    queue.add("a")
    assert await queue.get() == "a"
    for failures in (1, 2, 3):
        queue.done("a", failed=True)
        assert queue.failures("a") == failures
        assert (queue.depth, queue.delayed) == (0, 1)
        clock.now += Backoff(1.0, 60.0).delay_s(failures) - 0.01
        async with asyncio.TaskGroup() as tg:
            getter = tg.create_task(queue.get())
            await asyncio.sleep(0)
            assert not getter.done(), "the key came back before its backoff delay"
            clock.now += 0.02
            queue.add_after("wake", 0)  # wake the getter so it looks at the clock again
        # "a" is held again (processing) after this; the loop fails it once more.
        assert {getter.result(), await queue.get()} == {"a", "wake"}
        queue.done("wake")
    queue.done("a")
    assert queue.failures("a") == 0
    queue.add("a")
    assert await queue.get() == "a"
    queue.done("a", failed=True)
    assert queue.delayed == 1
    clock.now += 1.0  # the first delay again: the success reset the count
    assert await queue.get() == "a"


async def test_an_add_during_backoff_queues_the_key_at_once() -> None:
    clock = Clock()
    queue: WorkQueue[str] = WorkQueue(Backoff(base_s=100.0), clock=clock)
    queue.add("a")
    await queue.get()
    queue.done("a", failed=True)
    queue.add("a")  # a new event for the key: do not sit out the backoff
    assert queue.depth == 1
    assert await queue.get() == "a"
    queue.done("a")
    clock.now += 200.0
    # The old delayed entry fires, and is just one more add.
    assert await queue.get() == "a"
    queue.done("a")
    assert (queue.depth, queue.delayed) == (0, 0)


async def test_workers_never_hold_one_key_twice_and_redo_a_key_changed_meanwhile() -> None:
    queue: WorkQueue[str] = WorkQueue()
    running: Counter[str] = Counter()
    most: Counter[str] = Counter()
    processed: Counter[str] = Counter()
    release = asyncio.Event()

    async def process(key: str) -> None:
        running[key] += 1
        most[key] = max(most[key], running[key])
        await release.wait()
        running[key] -= 1
        processed[key] += 1

    async with asyncio.TaskGroup() as tg:
        workers = [tg.create_task(work(queue, process)) for _ in range(4)]
        queue.add_all(["a", "b"])
        await eventually(lambda: running["a"] and running["b"], what="a and b processing")
        queue.add_all(["a", "a", "b"])  # changes that arrive while a and b are processed
        for _ in range(10):
            await asyncio.sleep(0)
        assert running == Counter(a=1, b=1)
        release.set()
        await eventually(lambda: processed["a"] >= 2 and processed["b"] >= 2, what="a and b done twice")
        for worker in workers:
            worker.cancel()
    assert most == Counter(a=1, b=1)
    assert processed == Counter(a=2, b=2)


async def test_a_failing_process_is_retried_with_backoff_and_reported() -> None:
    queue: WorkQueue[str] = WorkQueue(Backoff(base_s=0.01, max_s=0.02))
    attempts: list[str] = []
    errors: list[tuple[str, str]] = []

    async def process(key: str) -> None:
        attempts.append(key)
        if len(attempts) < 3:
            raise RuntimeError(f"boom {len(attempts)}")

    async with asyncio.TaskGroup() as tg:
        worker = tg.create_task(work(queue, process, on_error=lambda k, e: errors.append((k, str(e)))))
        queue.add("a")
        await eventually(lambda: len(attempts) >= 3, what="three attempts")
        worker.cancel()
    assert attempts == ["a", "a", "a"]
    assert errors == [("a", "boom 1"), ("a", "boom 2")]
    assert queue.failures("a") == 0


async def test_cancelling_a_worker_releases_its_key() -> None:
    queue: WorkQueue[str] = WorkQueue()
    started = asyncio.Event()

    async def process(key: str) -> None:
        started.set()
        await asyncio.Event().wait()

    async with asyncio.TaskGroup() as tg:
        worker = tg.create_task(work(queue, process))
        queue.add("a")
        await started.wait()
        worker.cancel()
    queue.add("a")
    assert await queue.get() == "a"


async def test_resync_queues_every_key_each_interval() -> None:
    queue: WorkQueue[str] = WorkQueue()
    ticks: asyncio.Queue[None] = asyncio.Queue()
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        await ticks.get()

    async with asyncio.TaskGroup() as tg:
        task = tg.create_task(resync(queue, lambda: ["x", "y"], 30.0, sleep=sleep))
        await asyncio.sleep(0)
        assert queue.depth == 0
        ticks.put_nowait(None)
        await eventually(lambda: queue.depth == 2, what="the resync's keys")
        assert [await queue.get(), await queue.get()] == ["x", "y"]
        task.cancel()
    assert slept[0] == 30.0
