"""The work queue: keys to reconcile, deduplicated, never worked on twice at once, with per-key backoff.

The rules, the same as client-go's rate-limited work queue:

- ``add(key)`` queues a key once: adding a key that is already waiting does nothing.
- A key handed out by ``get()`` is *processing* until ``done(key)``. Adding it meanwhile marks it dirty,
  and ``done`` queues it again, so the change that arrived during the work is not lost and two workers
  never hold the same key.
- ``done(key, failed=True)`` queues the key again after an exponential per-key delay; the delay goes back
  to the base after a success.

The queue does no I/O and starts no tasks; ``get()`` waits on an event. The clock is passed in so that
tests can step it.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Hashable, Iterable
from dataclasses import dataclass
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff: base_s, 2*base_s, 4*base_s, ... capped at max_s."""

    base_s: float = 0.5
    """The delay after the first failure."""
    max_s: float = 300.0
    """The longest delay, however many failures in a row."""

    def delay_s(self, failures: int) -> float:
        """The delay after ``failures`` failures in a row (1 = the first failure)."""
        if failures <= 0:
            return 0.0
        # min() on the exponent keeps 2**n from growing without bound on a key that always fails.
        return float(min(self.max_s, self.base_s * 2 ** min(failures - 1, 64)))


class WorkQueue(Generic[K]):
    """Deduplicating work queue with per-key exponential backoff; see the module docstring."""

    def __init__(self, backoff: Backoff | None = None, clock: Callable[[], float] | None = None) -> None:
        self._backoff = backoff or Backoff()
        self._clock = clock
        self._ready: deque[K] = deque()
        self._queued: set[K] = set()
        self._processing: set[K] = set()
        self._dirty: set[K] = set()
        self._failures: dict[K, int] = {}
        # (due time, tie-breaker, key); the counter keeps keys that are not orderable out of comparisons.
        self._delayed: list[tuple[float, int, K]] = []
        self._seq = itertools.count()
        self._wakeup = asyncio.Event()

    def _now(self) -> float:
        return self._clock() if self._clock else asyncio.get_running_loop().time()

    @property
    def depth(self) -> int:
        """Keys waiting to be handed out now (not the delayed ones, not the ones being processed)."""
        return len(self._ready)

    @property
    def delayed(self) -> int:
        """Keys waiting for their backoff delay to pass."""
        return len(self._delayed)

    @property
    def processing(self) -> int:
        """Keys handed out by ``get()`` and not yet ``done()``."""
        return len(self._processing)

    def failures(self, key: K) -> int:
        """Failures in a row for ``key`` (0 after a success)."""
        return self._failures.get(key, 0)

    def add(self, key: K) -> None:
        """Queue ``key`` now, unless it is already waiting; a key being processed is queued after."""
        if key in self._processing:
            self._dirty.add(key)
            return
        if key in self._queued:
            return
        self._queued.add(key)
        self._ready.append(key)
        self._wakeup.set()

    def add_all(self, keys: Iterable[K]) -> None:
        """``add`` each key."""
        for key in keys:
            self.add(key)

    def add_after(self, key: K, delay_s: float) -> None:
        """Queue ``key`` once ``delay_s`` has passed (an ``add`` before then queues it at once)."""
        if delay_s <= 0:
            self.add(key)
            return
        heapq.heappush(self._delayed, (self._now() + delay_s, next(self._seq), key))
        self._wakeup.set()

    def _promote_due(self) -> float | None:
        """Move the delayed keys that are due to the ready queue; return the wait until the next one."""
        now = self._now()
        while self._delayed and self._delayed[0][0] <= now:
            _, _, key = heapq.heappop(self._delayed)
            self.add(key)
        return self._delayed[0][0] - now if self._delayed else None

    async def get(self) -> K:
        """Wait for a key and mark it processing; the caller must call ``done(key)``."""
        while True:
            wait_s = self._promote_due()
            if self._ready:
                key = self._ready.popleft()
                self._queued.discard(key)
                self._processing.add(key)
                return key
            self._wakeup.clear()
            try:
                async with asyncio.timeout(wait_s):
                    await self._wakeup.wait()
            except TimeoutError:
                pass  # a delayed key is due

    def done(self, key: K, *, failed: bool = False) -> None:
        """Finish processing ``key``; on failure, queue it again after its backoff delay."""
        self._processing.discard(key)
        if failed:
            self._failures[key] = self._failures.get(key, 0) + 1
            self.add_after(key, self._backoff.delay_s(self._failures[key]))
        else:
            self._failures.pop(key, None)
        if key in self._dirty:
            self._dirty.discard(key)
            self.add(key)

    def forget(self, key: K) -> None:
        """Drop the failure count of ``key`` (its object is gone)."""
        self._failures.pop(key, None)


async def work(
    queue: WorkQueue[K],
    process: Callable[[K], Awaitable[None]],
    *,
    on_error: Callable[[K, Exception], None] | None = None,
) -> None:
    """A worker: take keys forever; an exception from ``process`` means backoff for that key.

    Cancelling the worker during ``process`` still releases the key, so a new leader's worker can take it.
    """
    while True:
        key = await queue.get()
        try:
            await process(key)
        except asyncio.CancelledError:
            queue.done(key)
            raise
        except Exception as exc:
            queue.done(key, failed=True)
            if on_error is not None:
                on_error(key, exc)
        else:
            queue.done(key)


async def resync(
    queue: WorkQueue[K],
    keys: Callable[[], Iterable[K]],
    interval_s: float,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> None:
    """Every ``interval_s``, queue every key that ``keys()`` gives (catches anything a watch missed)."""
    if interval_s <= 0:
        await asyncio.Event().wait()  # resync disabled: idle until cancelled
    while True:
        await sleep(interval_s)
        batch = list(keys())
        queue.add_all(batch)
        log.debug("resync", extra={"keys": len(batch)})
