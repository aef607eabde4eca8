"""Wiring: informers feed the caches and the queue, workers reconcile, leader election gates the workers.

::

    informers (PrometheusConfigs, ServiceMonitors, PodMonitors, PrometheusRules, Probes and the rule
               ConfigMaps per namespace; Namespaces)
        -> stores (read by reconcile)        -> handlers -> WorkQueue[ObjectKey]
    informers (Secrets, ConfigMaps; nothing cached) -> the PrometheusConfigs that read the changed one
    workers (only on the leader, only once every cache has synced) -> Reconciler -> Secret, status, Events
    resync: every PrometheusConfig again, every --resync-interval

Everything runs under one TaskGroup; cancelling ``Operator.run`` stops it all.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from config_operator import generate as g
from config_operator.client import (
    CONFIGMAPS,
    NAMESPACES,
    POD_MONITORS,
    PROBES,
    PROMETHEUS_CONFIGS,
    PROMETHEUS_RULES,
    RULE_CONFIGMAPS,
    SECRETS,
    SERVICE_MONITORS,
    Kube,
    Resource,
)
from config_operator.informer import Change, Informer, InformerSettings, Store
from config_operator.leader import LeaderSettings, lead
from config_operator.metrics import OperatorMetrics
from config_operator.queue import Backoff, WorkQueue, resync, work
from config_operator.reconcile import Caches, Reconciler
from config_operator.references import FirstItemList, Unkept
from config_operator.resources import RULEFILES_LABEL, ObjectKey, labels_of
from reloader.serve import serving

log = logging.getLogger(__name__)


def default_identity() -> str:
    """POD_NAME when set (the Downward API), else host name plus a random suffix, as client-go does."""
    return os.environ.get("POD_NAME") or f"{socket.gethostname()}_{uuid.uuid4().hex[:8]}"


@dataclass(frozen=True)
class Settings:
    """How one operator instance runs."""

    namespaces: tuple[str, ...] = ()
    """Namespaces to watch for PrometheusConfigs and monitors; empty means all."""
    listen_address: str | None = None
    """host:port for /metrics, /healthz, /readyz; None serves nothing."""
    resync_interval_s: float = 300.0
    """Every PrometheusConfig is reconciled again this often; 0 disables."""
    workers: int = 2
    """Concurrent reconciles (never two of the same key)."""
    leader: LeaderSettings | None = None
    """Leader election; None runs the workers unconditionally."""
    identity: str = field(default_factory=default_identity)
    """Who this instance is: in the Lease and in the Events it posts."""
    informer: InformerSettings = field(default_factory=InformerSettings)
    """List/watch timing."""
    backoff: Backoff = field(default_factory=lambda: Backoff(base_s=0.5, max_s=300.0))
    """Per-key backoff after a failed reconcile."""


class Operator:
    """One operator instance over a connected ``Kube``."""

    def __init__(self, kube: Kube, settings: Settings, metrics: OperatorMetrics | None = None) -> None:
        self.kube = kube
        self.settings = settings
        self.metrics = metrics or OperatorMetrics.create()
        self.caches = Caches(Store(), Store(), Store(), Store())
        self.queue: WorkQueue[ObjectKey] = WorkQueue(settings.backoff)
        self.metrics.queue_depth.set_function(lambda: self.queue.depth)
        self.reconciler = Reconciler(kube, self.caches, self.metrics, instance=settings.identity)
        self.leading = settings.leader is None
        """True while the workers may run (always, without leader election)."""
        self.informers = self._informers()
        self._running: list[asyncio.Task[None]] = []

    def _informers(self) -> list[Informer]:
        scopes: Iterable[str | None] = self.settings.namespaces or (None,)
        informers: list[Informer] = []

        def informer(resource: Resource, store: Store, namespace: str | None, handler: Any) -> Informer:
            def restarted(reason: str) -> None:
                self.metrics.watch_restarts.labels(str(resource), reason).inc()

            return Informer(
                self.kube,
                resource,
                store,
                namespace=namespace,
                handlers=[handler],
                settings=self.settings.informer,
                on_restart=restarted,
            )

        for namespace in scopes:
            informers.append(
                informer(
                    PROMETHEUS_CONFIGS, self.caches.prometheus_configs, namespace, self._on_prometheus_config
                )
            )
            informers.append(
                informer(
                    SERVICE_MONITORS,
                    self.caches.service_monitors,
                    namespace,
                    self._monitor_handler(SERVICE_MONITORS),
                )
            )
            informers.append(
                informer(
                    POD_MONITORS, self.caches.pod_monitors, namespace, self._monitor_handler(POD_MONITORS)
                )
            )
            informers.append(
                informer(
                    PROMETHEUS_RULES,
                    self.caches.prometheus_rules,
                    namespace,
                    self._monitor_handler(PROMETHEUS_RULES),
                )
            )
            informers.append(informer(PROBES, self.caches.probes, namespace, self._monitor_handler(PROBES)))
            informers.append(
                informer(RULE_CONFIGMAPS, self.caches.rule_config_maps, namespace, self._on_rule_config_map)
            )
        informers.append(informer(NAMESPACES, self.caches.namespaces, None, self._on_namespace))
        informers += self._reference_informers(scopes)
        return informers

    def _reference_informers(self, scopes: Iterable[str | None]) -> list[Informer]:
        """Secrets and ConfigMaps: watched, never cached; a change to one a PrometheusConfig read queues it."""
        informers = []
        for resource in (SECRETS, CONFIGMAPS):
            for namespace in scopes:

                def restarted(reason: str, resource: Resource = resource) -> None:
                    self.metrics.watch_restarts.labels(str(resource), reason).inc()

                informers.append(
                    Informer(
                        FirstItemList(self.kube, self._requeue_referencing),
                        resource,
                        Unkept(),
                        namespace=namespace,
                        handlers=[self._reference_handler(resource.kind)],
                        settings=self.settings.informer,
                        on_restart=restarted,
                    )
                )
        return informers

    def _reference_handler(self, kind: str) -> Any:
        def handler(change: Change) -> None:
            key = ObjectKey.of(change.object)
            for pc in self.reconciler.references.users(kind, key.namespace, key.name):
                self.queue.add(pc)

        return handler

    def _requeue_referencing(self) -> None:
        # A relist after 410 Gone: changes may have been missed.
        self.queue.add_all(self.reconciler.references.configs())

    # -- handlers: which keys a change queues -------------------------------------------------------

    def _on_prometheus_config(self, change: Change) -> None:
        if change.type == "MODIFIED" and change.old is not None and change.new is not None:
            old_meta, new_meta = change.old.get("metadata") or {}, change.new.get("metadata") or {}
            # Our own status patches come back as MODIFIED with the same spec: nothing to do.
            if (
                change.old.get("spec") == change.new.get("spec")
                and old_meta.get("generation") == new_meta.get("generation")
                and old_meta.get("uid") == new_meta.get("uid")
                and old_meta.get("deletionTimestamp") == new_meta.get("deletionTimestamp")
            ):
                return
        key = ObjectKey.of(change.object)
        if change.type == "DELETED":
            self.queue.forget(key)
        self.queue.add(key)

    def _monitor_handler(self, resource: Resource) -> Any:
        def handler(change: Change) -> None:
            self._enqueue_selecting(change, resource.kind)

        return handler

    def _on_rule_config_map(self, change: Change) -> None:
        # Someone else changed or deleted one of ours: its PrometheusConfig writes it again.
        owner = labels_of(change.object).get(RULEFILES_LABEL)
        if owner:
            self.queue.add(ObjectKey(ObjectKey.of(change.object).namespace, owner))

    def _on_namespace(self, change: Change) -> None:
        if (
            change.type == "MODIFIED"
            and change.old is not None
            and change.new is not None
            and labels_of(change.old) == labels_of(change.new)
        ):
            return
        self._enqueue_selecting(change, "Namespace")

    def _enqueue_selecting(self, change: Change, kind: str) -> None:
        objects = [o for o in (change.old, change.new) if o is not None]
        # A monitor's own namespace is the only one whose labels matter: look it up once here, rather
        # than have may_select index every namespace for every PrometheusConfig on every event.
        namespaces: Any = [
            ns
            for o in objects
            if (ns := self.caches.namespaces.get(ObjectKey("", ObjectKey.of(o).namespace))) is not None
        ]
        for pc in self.caches.prometheus_configs.objects():
            if any(g.may_select(pc, obj, namespaces, kind=kind) for obj in objects):  # type: ignore[arg-type]
                self.queue.add(ObjectKey.of(pc))

    # -- probes ---------------------------------------------------------------------------------------

    def healthy(self) -> bool:
        """Every informer (and the worker side) is still running."""
        return bool(self._running) and not any(task.done() for task in self._running)

    def ready(self) -> bool:
        """Every cache has been listed once."""
        return all(informer.synced.is_set() for informer in self.informers)

    # -- running --------------------------------------------------------------------------------------

    async def run(self) -> None:
        """Run until cancelled; serves the endpoints when a listen address is set."""
        if self.settings.listen_address is None:
            await self._run()
            return
        async with serving(self.settings.listen_address, self.metrics.registry, self.healthy, self.ready):
            await self._run()

    async def _run(self) -> None:
        log.info(
            "operator starting",
            extra={
                "namespaces": ",".join(self.settings.namespaces) or "*",
                "identity": self.settings.identity,
                "leader_election": self.settings.leader is not None,
            },
        )
        async with asyncio.TaskGroup() as tg:
            self._running = [tg.create_task(i.run(), name=f"informer {i}") for i in self.informers]
            if self.settings.leader is None:
                self._running.append(tg.create_task(self._work(), name="workers"))
            else:
                self._running.append(
                    tg.create_task(
                        lead(self.kube, self.settings.leader, self._work, on_change=self._lead_changed)
                    )
                )

    def _lead_changed(self, leading: bool) -> None:
        self.leading = leading

    async def _work(self) -> None:
        """The reconcile workers and the resync; only after every cache is synced (a partial cache would
        write a Secret missing jobs, and reload Prometheus with them)."""
        await asyncio.gather(*(informer.synced.wait() for informer in self.informers))
        self.metrics.leader.set(1)
        log.info(
            "caches synced, workers starting",
            extra={"prometheusconfigs": len(self.caches.prometheus_configs)},
        )
        try:
            self.queue.add_all(self.caches.prometheus_configs.keys())
            async with asyncio.TaskGroup() as tg:
                for i in range(self.settings.workers):
                    tg.create_task(
                        work(self.queue, self.reconciler.reconcile, on_error=self._failed), name=f"worker {i}"
                    )
                tg.create_task(
                    resync(self.queue, self.caches.prometheus_configs.keys, self.settings.resync_interval_s),
                    name="resync",
                )
        finally:
            self.metrics.leader.set(0)

    def _failed(self, key: ObjectKey, exc: Exception) -> None:
        log.warning(
            "reconcile failed, will retry",
            extra={
                "key": str(key),
                "err": str(exc) or exc.__class__.__name__,
                "failures": self.queue.failures(key),
            },
        )
