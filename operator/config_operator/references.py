"""The Secrets and ConfigMaps that PrometheusConfigs depend on: which ones, and how their changes are seen.

Generation records every Secret and ConfigMap it asks the Lookup for (credentials, TLS material,
additionalScrapeConfigs). The reconciler fetches exactly those by name, and keeps the set per
PrometheusConfig in a ``ReferenceIndex``.

Changes are seen through a watch on all Secrets (and ConfigMaps) whose events are checked against the
index and then forgotten: nothing is cached, so the operator's memory does not grow with the number of
Secrets in the cluster, only with the number it references. The informer's list asks for one item (it
only needs the list's resourceVersion to start watching from); after a relist (a 410 Gone, events may
have been missed) every PrometheusConfig with references is queued again. No I/O here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from config_operator.client import Listed, Resource
from config_operator.generate import Reference
from config_operator.informer import Change, Store
from config_operator.resources import ObjectKey


class ReferenceIndex:
    """PrometheusConfig -> the Secrets and ConfigMaps its last generation read, and the reverse."""

    def __init__(self) -> None:
        self._by_config: dict[ObjectKey, frozenset[Reference]] = {}
        self._by_reference: dict[Reference, set[ObjectKey]] = {}

    def set(self, config: ObjectKey, references: Iterable[Reference]) -> None:
        """Replace what ``config`` references."""
        self.forget(config)
        refs = frozenset(references)
        if refs:
            self._by_config[config] = refs
        for ref in refs:
            self._by_reference.setdefault(ref, set()).add(config)

    def forget(self, config: ObjectKey) -> None:
        """``config`` is gone: drop its references."""
        for ref in self._by_config.pop(config, frozenset()):
            users = self._by_reference.get(ref)
            if users is not None:
                users.discard(config)
                if not users:
                    del self._by_reference[ref]

    def of(self, config: ObjectKey) -> frozenset[Reference]:
        """What ``config`` referenced last time."""
        return self._by_config.get(config, frozenset())

    def users(self, kind: str, namespace: str, name: str) -> list[ObjectKey]:
        """The PrometheusConfigs that reference this object, sorted."""
        return sorted(self._by_reference.get(Reference(kind, namespace, name), ()))

    def configs(self) -> list[ObjectKey]:
        """Every PrometheusConfig with at least one reference, sorted."""
        return sorted(self._by_config)

    def __len__(self) -> int:
        return len(self._by_reference)


class Unkept(Store):
    """A Store that keeps nothing: each change reaches the handlers, then is forgotten."""

    def upsert(self, obj: dict[str, Any]) -> Change | None:
        return Change("MODIFIED", None, obj)

    def delete(self, obj: dict[str, Any]) -> Change | None:
        return Change("DELETED", obj, None)

    def replace(self, items: Iterable[dict[str, Any]], namespace: str | None = None) -> list[Change]:
        return []


class FirstItemList:
    """The client, for an informer over an ``Unkept`` store: its lists ask for one item only (the
    resourceVersion is all the watch needs), and every list after the first calls ``on_relist``."""

    def __init__(self, kube: Any, on_relist: Callable[[], None]) -> None:
        self._kube = kube
        self._on_relist = on_relist
        self._listed = False

    async def list(self, resource: Resource, namespace: str | None = None) -> Listed:
        listed: Listed = await self._kube.list(resource, namespace, limit=1)
        if self._listed:
            self._on_relist()
        self._listed = True
        return Listed(items=[], resource_version=listed.resource_version)

    def watch(
        self, resource: Resource, namespace: str | None, resource_version: str, *, timeout_s: int
    ) -> Any:
        return self._kube.watch(resource, namespace, resource_version, timeout_s=timeout_s)
