"""Informers: a local cache of one kind, kept current by list + watch, and handlers called on each change.

The loop, per (resource, namespace):

1. list, replace the cache with the result (the difference is sent to the handlers, so objects that
   vanished while nobody watched get their DELETED), remember the list's resourceVersion;
2. watch from that resourceVersion with bookmarks; every event (bookmarks included) moves the
   resourceVersion forward, so a restarted watch resumes exactly where the last one stopped;
3. the watch ends (server timeout, dropped connection): watch again from the last resourceVersion;
4. 410 Gone (the resourceVersion was compacted away): back to 1, at once;
5. any other error: back to 2 after an exponential backoff (reset by the next event);
6. a watch silent longer than the inactivity timeout is abandoned and restarted from the last
   resourceVersion: a half-open TCP connection must not freeze the cache forever.

The ``Store`` does no I/O; the informer owns the writes, everybody else reads.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from config_operator.client import ApiError, Listed, Resource, WatchStream
from config_operator.queue import Backoff
from config_operator.resources import ObjectKey

log = logging.getLogger(__name__)

Obj = dict[str, Any]


@dataclass(frozen=True)
class Change:
    """A change to the cache: ``old`` is None for an addition, ``new`` is None for a deletion."""

    type: str
    """ADDED, MODIFIED or DELETED."""
    old: Obj | None
    new: Obj | None

    @property
    def object(self) -> Obj:
        """The object as it is now (or as it was, for a deletion)."""
        obj = self.new if self.new is not None else self.old
        assert obj is not None
        return obj


Handler = Callable[[Change], None]


def _rv(obj: Obj) -> str:
    return str((obj.get("metadata") or {}).get("resourceVersion") or "")


class Store:
    """Objects of one kind by ObjectKey (namespace is "" for cluster-scoped kinds)."""

    def __init__(self) -> None:
        self._items: dict[ObjectKey, Obj] = {}

    def get(self, key: ObjectKey) -> Obj | None:
        """The cached object, or None."""
        return self._items.get(key)

    def objects(self) -> list[Obj]:
        """Every object, sorted by key."""
        return [obj for _, obj in sorted(self._items.items())]

    def keys(self) -> list[ObjectKey]:
        """Every key, sorted."""
        return sorted(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def upsert(self, obj: Obj) -> Change | None:
        """Add or replace; None when the cache already holds this resourceVersion."""
        key = ObjectKey.of(obj)
        old = self._items.get(key)
        self._items[key] = obj
        if old is None:
            return Change("ADDED", None, obj)
        if _rv(old) == _rv(obj) and old == obj:
            return None
        return Change("MODIFIED", old, obj)

    def delete(self, obj: Obj) -> Change | None:
        """Remove; None when it was not cached."""
        old = self._items.pop(ObjectKey.of(obj), None)
        return Change("DELETED", old, None) if old is not None else None

    def replace(self, items: Iterable[Obj], namespace: str | None = None) -> list[Change]:
        """Make the cache (the part in ``namespace``, when given) equal to ``items``; return the diff."""
        fresh = {ObjectKey.of(obj): obj for obj in items}
        changes = [
            Change("DELETED", old, None)
            for key, old in sorted(self._items.items())
            if (namespace is None or key.namespace == namespace) and key not in fresh
        ]
        for change in changes:
            self._items.pop(ObjectKey.of(change.object))
        for _, obj in sorted(fresh.items()):
            upserted = self.upsert(obj)
            if upserted is not None:
                changes.append(upserted)
        return changes


class ListWatch(Protocol):
    """What an informer needs from the client (``client.Kube`` has it)."""

    async def list(self, resource: Resource, namespace: str | None = None) -> Listed: ...

    def watch(
        self, resource: Resource, namespace: str | None, resource_version: str, *, timeout_s: int
    ) -> Any: ...  # an async context manager yielding a WatchStream


@dataclass(frozen=True)
class InformerSettings:
    """Timing of list/watch."""

    watch_timeout_s: int = 300
    """Server-side timeoutSeconds of one watch; the informer then watches again from where it was."""
    inactivity_timeout_s: float = 120.0
    """A watch with no event (bookmarks count) for this long is restarted."""
    backoff: Backoff = field(default_factory=lambda: Backoff(base_s=0.5, max_s=30.0))
    """Delay before reconnecting after an error."""


class Informer:
    """List + watch one resource in one namespace (None: all) into a Store; see the module docstring."""

    def __init__(
        self,
        kube: ListWatch,
        resource: Resource,
        store: Store,
        *,
        namespace: str | None = None,
        handlers: Iterable[Handler] = (),
        settings: InformerSettings | None = None,
        on_restart: Callable[[str], None] | None = None,
    ) -> None:
        self.resource = resource
        self.namespace = namespace
        self.store = store
        self.synced = asyncio.Event()
        """Set once the first list is in the store."""
        self.resource_version = ""
        """Where the next watch starts; "" means list first."""
        self._kube = kube
        self._handlers = list(handlers)
        self._settings = settings or InformerSettings()
        self._on_restart = on_restart
        self._failures = 0

    def __str__(self) -> str:
        return f"{self.resource}@{self.namespace or '*'}"

    def _emit(self, change: Change | None) -> None:
        if change is None:
            return
        for handler in self._handlers:
            try:
                handler(change)
            except Exception:
                # A broken handler must not stop the cache from following the API.
                log.exception("informer handler failed", extra={"informer": str(self)})

    async def run(self) -> None:
        """Follow the API forever (until cancelled)."""
        while True:
            reason = await self._run_once()
            if self._on_restart is not None:
                self._on_restart(reason)
            if reason == "error" or reason == "closed_early":
                await asyncio.sleep(self._settings.backoff.delay_s(self._failures))

    async def _run_once(self) -> str:
        """List when needed, then watch until the stream ends; return why it ended."""
        try:
            if not self.resource_version:
                await self._list()
            return await self._watch()
        except ApiError as exc:
            if exc.gone:
                log.info(
                    "watch expired, listing again", extra={"informer": str(self), "rv": self.resource_version}
                )
                self.resource_version = ""
                return "expired"
            self._failures += 1
            log.warning(
                "list/watch failed, backing off",
                extra={
                    "informer": str(self),
                    "err": str(exc),
                    "retry_in_s": self._settings.backoff.delay_s(self._failures),
                },
            )
            return "error"
        except TimeoutError:
            log.warning(
                "watch silent too long, restarting",
                extra={"informer": str(self), "timeout_s": self._settings.inactivity_timeout_s},
            )
            return "inactive"

    async def _list(self) -> None:
        listed = await self._kube.list(self.resource, self.namespace)
        for change in self.store.replace(listed.items, self.namespace):
            self._emit(change)
        self.resource_version = listed.resource_version
        self._failures = 0
        self.synced.set()
        log.debug(
            "listed", extra={"informer": str(self), "items": len(listed.items), "rv": listed.resource_version}
        )

    async def _watch(self) -> str:
        events = 0
        started = asyncio.get_running_loop().time()
        stream: WatchStream
        async with self._kube.watch(
            self.resource, self.namespace, self.resource_version, timeout_s=self._settings.watch_timeout_s
        ) as stream:
            while True:
                async with asyncio.timeout(self._settings.inactivity_timeout_s):
                    event = await stream.next()
                if event is None:
                    break
                events += 1
                self._failures = 0
                if event.type == "BOOKMARK":
                    self.resource_version = event.resource_version or self.resource_version
                    continue
                if event.type == "DELETED":
                    self._emit(self.store.delete(event.object))
                elif event.type in ("ADDED", "MODIFIED"):
                    self._emit(self.store.upsert(event.object))
                else:
                    log.warning("unknown watch event type", extra={"informer": str(self), "type": event.type})
                self.resource_version = event.resource_version or self.resource_version
        # A stream that ends at once, with nothing in it, again and again, must not spin.
        if events == 0 and asyncio.get_running_loop().time() - started < 1.0:
            self._failures += 1
            return "closed_early"
        return "closed"
