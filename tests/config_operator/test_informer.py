"""The informer against the fake API server: list + watch, bookmarks, 410, dropped and silent watches."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest

from config_operator.client import SERVICE_MONITORS, Kube
from config_operator.informer import Change, Informer, InformerSettings, Store
from config_operator.queue import Backoff
from tests.config_operator.conftest import SMS, service_monitor
from tests.fakekube import FakeKube
from tests.support.polling import eventually


class Recorder:
    """Collects the informer's changes and restarts."""

    def __init__(self) -> None:
        self.changes: list[tuple[str, str]] = []
        self.restarts: list[str] = []

    def __call__(self, change: Change) -> None:
        self.changes.append((change.type, change.object["metadata"]["name"]))


@contextlib.asynccontextmanager
async def informing(
    kube: FakeKube, *, inactivity_timeout_s: float = 60.0, namespace: str | None = None
) -> AsyncIterator[tuple[Informer, Recorder]]:
    """A running ServiceMonitor informer, synced, with a Recorder as its handler."""
    recorder = Recorder()
    settings = InformerSettings(
        watch_timeout_s=60, inactivity_timeout_s=inactivity_timeout_s, backoff=Backoff(0.05, 0.5)
    )
    async with Kube.connect(host=kube.url) as client:
        informer = Informer(
            client,
            SERVICE_MONITORS,
            Store(),
            namespace=namespace,
            handlers=[recorder],
            settings=settings,
            on_restart=recorder.restarts.append,
        )
        async with asyncio.TaskGroup() as tg:
            task = tg.create_task(informer.run())
            try:
                await eventually(informer.synced.is_set, what="first list")
                await kube.wait_for_watches(1, resource=SMS)
                yield informer, recorder
            finally:
                task.cancel()


def names(store: Store) -> list[str]:
    return [obj["metadata"]["name"] for obj in store.objects()]


def count(kube: FakeKube, verb: str) -> int:
    return len([c for c in kube.calls if c.verb == verb and c.resource == "servicemonitors"])


def relabel(kube: FakeKube, name: str, value: str) -> None:
    sm: Any = kube.get(SMS, "default", name)
    sm["metadata"]["labels"] = {"v": value}
    kube.update(sm)


async def test_list_then_watch_feeds_the_store_and_the_handlers(kube: FakeKube) -> None:
    kube.create(service_monitor("before"))
    async with informing(kube) as (informer, seen):
        assert names(informer.store) == ["before"]
        assert seen.changes == [("ADDED", "before")]
        kube.create(service_monitor("after"))
        relabel(kube, "before", "2")
        kube.delete(SMS, "default", "after")
        await eventually(lambda: len(seen.changes) == 4, what="three watch events")
        assert seen.changes[1:] == [("ADDED", "after"), ("MODIFIED", "before"), ("DELETED", "after")]
        assert names(informer.store) == ["before"]
        assert informer.store.objects()[0]["metadata"]["labels"] == {"v": "2"}
    assert count(kube, "list") == 1


async def test_a_namespaced_informer_sees_only_its_namespace(kube: FakeKube) -> None:
    kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "other"}})
    kube.create(service_monitor("mine"))
    kube.create(service_monitor("theirs", "other"))
    async with informing(kube, namespace="default") as (informer, seen):
        kube.create(service_monitor("theirs-too", "other"))
        kube.create(service_monitor("mine-too"))
        await eventually(lambda: len(seen.changes) == 2, what="the second ADDED")
        assert names(informer.store) == ["mine", "mine-too"]
    assert {c.namespace for c in kube.calls if c.resource == "servicemonitors"} == {"default"}


async def test_bookmarks_move_the_resource_version(kube: FakeKube) -> None:
    kube.create(service_monitor("one"))
    async with informing(kube) as (informer, seen):
        start = int(informer.resource_version)
        # Objects of another kind move the global resourceVersion; only bookmarks tell this watch.
        for i in range(3):
            kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": f"ns-{i}"}})
        await eventually(
            lambda: int(informer.resource_version) >= kube.resource_version > start, what="a bookmark"
        )
        assert seen.changes == [("ADDED", "one")]


async def test_a_dropped_watch_resumes_without_missing_an_event(kube: FakeKube) -> None:
    kube.create(service_monitor("a"))
    kube.create(service_monitor("b"))
    async with informing(kube) as (informer, seen):
        # The watch drops, and the next two attempts fail: the API is "down" while objects change.
        kube.fail_next(2, verb="watch", resource="servicemonitors")
        kube.drop_watches()
        relabel(kube, "a", "1")
        kube.delete(SMS, "default", "b")
        kube.create(service_monitor("c"))
        relabel(kube, "a", "2")
        await eventually(lambda: len(seen.changes) == 6, what="every change made while the watch was down")
        assert seen.changes[2:] == [("MODIFIED", "a"), ("DELETED", "b"), ("ADDED", "c"), ("MODIFIED", "a")]
        assert names(informer.store) == ["a", "c"]
        # closed_early when the stream ended before its first bookmark: the same restart, with a backoff.
        assert seen.restarts[0] in ("closed", "closed_early")
        assert seen.restarts[1:] == ["error", "error"]
    # It resumed from its resourceVersion: no second list.
    assert count(kube, "list") == 1
    assert count(kube, "watch") >= 4


async def test_410_gone_leads_to_a_fresh_list_whose_diff_reports_what_vanished(kube: FakeKube) -> None:
    kube.create(service_monitor("stays"))
    kube.create(service_monitor("goes"))
    async with informing(kube) as (informer, seen):
        # Keep the watch down (500s) while things change and history is compacted away.
        kube.fail_next(1000, verb="watch", resource="servicemonitors")
        kube.drop_watches()
        await eventually(lambda: "error" in seen.restarts, what="a failed re-watch")
        kube.delete(SMS, "default", "goes")
        kube.create(service_monitor("new"))
        relabel(kube, "stays", "x")
        kube.compact()
        kube.clear_faults()
        await eventually(lambda: len(seen.changes) == 5, what="the relist's diff")
        assert sorted(seen.changes[2:]) == [("ADDED", "new"), ("DELETED", "goes"), ("MODIFIED", "stays")]
        assert names(informer.store) == ["new", "stays"]
        assert "expired" in seen.restarts
    assert count(kube, "list") == 2


async def test_an_expired_watch_event_leads_to_a_fresh_list(kube: FakeKube) -> None:
    kube.create(service_monitor("one"))
    async with informing(kube) as (informer, seen):
        assert kube.expire_watches() == 1
        await eventually(lambda: count(kube, "list") == 2, what="a second list")
        assert "expired" in seen.restarts
        kube.create(service_monitor("two"))
        await eventually(lambda: ("ADDED", "two") in seen.changes, what="the watch after the relist")
        # The relist found nothing new: no spurious events for "one".
        assert seen.changes == [("ADDED", "one"), ("ADDED", "two")]
        assert names(informer.store) == ["one", "two"]


async def test_list_errors_back_off_until_the_first_list_works(kube: FakeKube) -> None:
    kube.create(service_monitor("one"))
    kube.fail_next(3, verb="list", resource="servicemonitors")
    async with informing(kube) as (informer, seen):
        assert names(informer.store) == ["one"]
        assert seen.restarts[:3] == ["error", "error", "error"]
    assert count(kube, "list") == 4


async def test_a_silent_watch_is_restarted_after_the_inactivity_timeout(kube: FakeKube) -> None:
    kube.bookmark_interval_s = 0.2
    kube.create(service_monitor("one"))
    async with informing(kube, inactivity_timeout_s=1.0) as (informer, seen):
        assert kube.hang_watches() == 1  # open, but no events and no bookmarks any more
        kube.create(service_monitor("two"))
        await eventually(
            lambda: ("ADDED", "two") in seen.changes, what="the event the silent watch held back"
        )
        assert "inactive" in seen.restarts
        assert names(informer.store) == ["one", "two"]
    assert count(kube, "list") == 1


@pytest.mark.parametrize("namespace", [None, "default"])
async def test_store_replace_diffs_only_its_scope(namespace: str | None) -> None:
    store = Store()
    store.upsert({"metadata": {"namespace": "default", "name": "a", "resourceVersion": "1"}})
    store.upsert({"metadata": {"namespace": "other", "name": "b", "resourceVersion": "2"}})
    changes = store.replace(
        [{"metadata": {"namespace": "default", "name": "c", "resourceVersion": "3"}}], namespace
    )
    kinds = sorted((c.type, c.object["metadata"]["name"]) for c in changes)
    if namespace is None:
        assert kinds == [("ADDED", "c"), ("DELETED", "a"), ("DELETED", "b")]
        assert list(map(str, store.keys())) == ["default/c"]
    else:
        assert kinds == [("ADDED", "c"), ("DELETED", "a")]
        assert list(map(str, store.keys())) == ["default/c", "other/b"]
