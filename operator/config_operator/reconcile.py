"""Reconcile one PrometheusConfig: the Secret, the status, and the Events.

For a key (namespace, name), from the informers' caches:

- gone: nothing to do; the Secret goes with it, by its controller ownerReference (garbage collection);
- paused: skipped;
- otherwise ``generate()`` the config from the selected monitors, and write the Secret ``secret_name(pc)``
  only when its data (or our label and ownerReference) differ, so a resync with no change leaves its
  resourceVersion alone and Prometheus is not reloaded for nothing; a 409 is retried after a fresh read;
- the rule ConfigMaps of the selected PrometheusRules (``rulefiles``): written before the Secret, the
  stale ones deleted after it, so the config never points at rules that are not there yet;
- the status subresource says what happened (only patched when it differs: every patch is a watch event
  that queues the key again);
- Events: a Warning per rejected monitor, a Warning for a malformed PrometheusConfig (whose last good
  Secret stays), a Normal when the Secret changed. Warnings are posted when the set of problems changes,
  not on every resync.

The functions named ``desired_*`` and ``*_event`` are pure; ``Reconciler`` does the I/O.
"""

from __future__ import annotations

import base64
import copy
import logging
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

from config_operator import generate as g
from config_operator import rulefiles
from config_operator.client import ApiError
from config_operator.generate.rules import RuleFiles
from config_operator.informer import Store
from config_operator.metrics import OperatorMetrics
from config_operator.references import ReferenceIndex
from config_operator.resources import (
    API_VERSION,
    KIND,
    MANAGED_BY_LABEL,
    MANAGED_BY_VALUE,
    Condition,
    ConfigMap,
    ObjectKey,
    OwnerReference,
    PrometheusConfig,
    PrometheusConfigStatus,
    Secret,
)

log = logging.getLogger(__name__)

CONDITION = "Reconciled"
COMPONENT = "config-operator"
# A Secret write that keeps losing races (409) is handed back to the queue's backoff after this many.
WRITE_ATTEMPTS = 5
# The API server refuses a Secret whose data add up to more than 1 MiB (MaxSecretSize).
MAX_SECRET_BYTES = 1024 * 1024


class KubeWrites(Protocol):
    """The API calls a reconcile makes (``client.Kube`` has them)."""

    async def get_secret(self, namespace: str, name: str) -> Secret | None: ...
    async def get_configmap(self, namespace: str, name: str) -> ConfigMap | None: ...
    async def create_secret(self, namespace: str, body: Secret) -> Secret: ...
    async def replace_secret(self, namespace: str, name: str, body: Secret) -> Secret: ...
    async def patch_status(self, namespace: str, name: str, status: PrometheusConfigStatus) -> None: ...
    async def create_event(self, namespace: str, body: dict[str, Any]) -> None: ...
    async def create_config_map(self, namespace: str, body: ConfigMap) -> ConfigMap: ...
    async def replace_config_map(self, namespace: str, name: str, body: ConfigMap) -> ConfigMap: ...
    async def delete_config_map(self, namespace: str, name: str) -> None: ...


@dataclass(frozen=True)
class Caches:
    """The informers' stores that a reconcile reads."""

    prometheus_configs: Store
    service_monitors: Store
    pod_monitors: Store
    namespaces: Store
    prometheus_rules: Store = field(default_factory=Store)
    probes: Store = field(default_factory=Store)
    rule_config_maps: Store = field(default_factory=Store)
    """Only the rule ConfigMaps the operator wrote (a label selector)."""


class ConflictError(RuntimeError):
    """The Secret kept changing under us; the queue retries later."""


# --- pure helpers -------------------------------------------------------------------------------------


def owner_reference(pc: PrometheusConfig) -> OwnerReference:
    """The controller ownerReference pointing at ``pc``."""
    meta = pc.get("metadata") or {}
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "name": str(meta.get("name", "")),
        "uid": str(meta.get("uid", "")),
        "controller": True,
        "blockOwnerDeletion": True,
    }


def desired_secret(pc: PrometheusConfig, compressed: bytes, current: Secret | None) -> Secret | None:
    """The Secret to write for ``pc``, or None when ``current`` already is it.

    Other labels, annotations and non-controller owners on ``current`` are kept; its resourceVersion is
    carried over so that a concurrent change makes the write fail with 409 rather than be lost.
    """
    data = {g.SECRET_KEY: base64.b64encode(compressed).decode()}
    return desired_owned_secret(pc, g.secret_name(pc), data, current)


def desired_owned_secret(
    pc: PrometheusConfig, name: str, data: dict[str, str], current: Secret | None
) -> Secret | None:
    """A Secret ``name`` owned by ``pc`` holding ``data`` (base64 values), or None when ``current`` is it."""
    key = ObjectKey.of(pc)
    ours = owner_reference(pc)
    if current is None:
        return {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {
                "name": name,
                "namespace": key.namespace,
                "labels": {MANAGED_BY_LABEL: MANAGED_BY_VALUE},
                "ownerReferences": [ours],
            },
            "type": "Opaque",
            "data": data,
        }
    meta = current.get("metadata") or {}
    labels = dict(meta.get("labels") or {})
    owners = list(meta.get("ownerReferences") or [])
    if (
        (current.get("data") or {}) == data
        and labels.get(MANAGED_BY_LABEL) == MANAGED_BY_VALUE
        and ours in owners
    ):
        return None
    labels[MANAGED_BY_LABEL] = MANAGED_BY_VALUE
    # Only one controller may own an object: ours replaces any other.
    owners = [o for o in owners if not o.get("controller") and o.get("uid") != ours["uid"]] + [ours]
    updated: Secret = copy.deepcopy(current)
    updated.setdefault("metadata", {}).update({"labels": labels, "ownerReferences": owners})
    updated["data"] = data
    updated.pop("stringData", None)
    return updated


def desired_status(
    pc: PrometheusConfig,
    *,
    ok: bool,
    reason: str,
    message: str,
    now: str,
    generated: g.Generated | None = None,
) -> PrometheusConfigStatus:
    """The status after a reconcile; a failure keeps the last good hash and counts.

    lastTransitionTime moves only when the condition's status flips.
    """
    current: Any = pc.get("status") or {}
    generation = (pc.get("metadata") or {}).get("generation")
    old = next(
        (c for c in current.get("conditions") or [] if isinstance(c, dict) and c.get("type") == CONDITION),
        None,
    )
    flag: Literal["True", "False"] = "True" if ok else "False"
    condition: Condition = {"type": CONDITION, "status": flag, "reason": reason, "message": message}
    condition["lastTransitionTime"] = (
        str(old["lastTransitionTime"])
        if old and old.get("status") == flag and old.get("lastTransitionTime")
        else now
    )
    status: PrometheusConfigStatus = {}
    if generation is not None:
        status["observedGeneration"] = int(generation)
        condition["observedGeneration"] = int(generation)
    status["conditions"] = [condition]
    if generated is not None:
        status["configHash"] = g.config_hash(generated.config)
        status["serviceMonitors"] = generated.service_monitors
        status["podMonitors"] = generated.pod_monitors
        status["rejectedMonitors"] = len(generated.rejected)
    else:
        for name in ("configHash", "serviceMonitors", "podMonitors", "rejectedMonitors"):
            if name in current:
                status[name] = current[name]
    return status


def event(
    pc: PrometheusConfig, *, type_: str, reason: str, message: str, now: str, instance: str, name_suffix: str
) -> dict[str, Any]:
    """A core v1 Event about ``pc``."""
    meta = pc.get("metadata") or {}
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": f"{meta.get('name', '')}.{name_suffix}", "namespace": meta.get("namespace", "")},
        "involvedObject": {
            "apiVersion": API_VERSION,
            "kind": KIND,
            "name": meta.get("name", ""),
            "namespace": meta.get("namespace", ""),
            "uid": meta.get("uid", ""),
            "resourceVersion": meta.get("resourceVersion", ""),
        },
        "type": type_,
        "reason": reason,
        # The API server rejects an Event message over 1 KiB.
        "message": message[:1024],
        "source": {"component": COMPONENT, "host": instance},
        "reportingComponent": COMPONENT,
        "reportingInstance": instance,
        "firstTimestamp": now,
        "lastTimestamp": now,
        "count": 1,
    }


def rejected_message(rejected: g.Rejected) -> str:
    """The Event message for a skipped monitor: it names the monitor and the reason."""
    return f"{rejected.kind} {rejected.namespace}/{rejected.name} skipped: {rejected.reason}"


def _utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- the I/O ------------------------------------------------------------------------------------------


@dataclass
class _Reported:
    """What was last reported for a key, so a resync does not post the same Warnings again."""

    rejected: frozenset[g.Rejected] = frozenset()
    warnings: tuple[str, ...] = ()
    rejected_rules: frozenset[g.Rejected] = frozenset()
    invalid: str | None = None
    status: PrometheusConfigStatus | None = None
    """The status we last patched: the cache may not have seen that patch yet."""


@dataclass
class Reconciler:
    """Reconciles keys against the caches; ``reconcile`` raises on errors the queue should retry."""

    kube: KubeWrites
    caches: Caches
    metrics: OperatorMetrics
    instance: str = COMPONENT
    """Who posts the Events (reportingInstance): the pod name or the leader-election identity."""
    now: Callable[[], str] = _utc_now
    max_secret_bytes: int = MAX_SECRET_BYTES
    """A gzipped config over this is not written (the Secret keeps the last one that fit)."""
    references: ReferenceIndex = field(default_factory=ReferenceIndex)
    """The Secrets and ConfigMaps each PrometheusConfig read (the app watches them)."""
    _reported: dict[ObjectKey, _Reported] = field(default_factory=dict, init=False, repr=False)
    # Each PrometheusConfig's serialized jobs, so that one changed monitor re-renders one monitor.
    _job_caches: dict[ObjectKey, g.JobCache] = field(default_factory=dict, init=False, repr=False)

    async def reconcile(self, key: ObjectKey) -> None:
        """Bring the Secret and status of ``key`` in line with the caches."""
        started = time.perf_counter()
        self.metrics.reconciles.inc()
        try:
            await self._reconcile(key)
        except Exception:
            self.metrics.reconcile_errors.labels("api").inc()
            raise
        finally:
            self.metrics.reconcile_duration.observe(time.perf_counter() - started)

    async def _reconcile(self, key: ObjectKey) -> None:
        pc: PrometheusConfig | None = self.caches.prometheus_configs.get(key)  # type: ignore[assignment]
        if pc is None or (pc.get("metadata") or {}).get("deletionTimestamp"):
            self._reported.pop(key, None)
            self._job_caches.pop(key, None)
            self.references.forget(key)
            return
        spec: Any = pc.get("spec") or {}
        if isinstance(spec, dict) and spec.get("paused") is True:
            log.debug("paused, skipped", extra={"key": str(key)})
            return
        jobs = self._job_caches.setdefault(key, g.JobCache())
        try:
            generated = await self._generate(key, pc, jobs)
        except g.InvalidConfig as exc:
            await self._invalid(key, pc, str(exc))
            return
        await self._report_rejected(key, pc, generated.rejected)
        await self._report_rejected_rules(key, pc, generated.rules)
        # Before anything is written: a config too large for its Secret changes nothing in the cluster.
        compressed = jobs.compress(generated.config)
        if len(compressed) > self.max_secret_bytes:
            await self._too_large(key, pc, len(compressed))
            return
        # Rule ConfigMaps first and stale ones last, so the config never points at missing rules.
        rule_plan = rulefiles.plan(
            key,
            owner_reference(pc),
            generated.rules,
            rulefiles.owned(key, self.caches.rule_config_maps.objects()),
        )
        writer = rulefiles.Writer(self.kube)
        for name in await writer.write(key.namespace, rule_plan):
            log.info("rule configmap written", extra={"key": str(key), "configmap": name})
        self._report_warnings(key, generated.warnings)
        # The TLS files first: a config pointing at files the pod cannot have yet would fail its scrapes.
        await self._write_tls_assets(pc, generated.tls_assets)
        operation = await self._write_secret(pc, compressed)
        for name in await writer.delete(key.namespace, rule_plan):
            log.info("stale rule configmap deleted", extra={"key": str(key), "configmap": name})
        if operation:
            self.metrics.secret_writes.labels(operation).inc()
            name, digest = g.secret_name(pc), g.config_hash(generated.config)[:12]
            log.info(
                "config secret written",
                extra={
                    "key": str(key),
                    "secret": name,
                    "operation": operation,
                    "hash": digest,
                },
            )
            await self._event(
                pc,
                "Normal",
                "ConfigUpdated",
                f"Secret {name} {operation}d: {generated.service_monitors} ServiceMonitors, "
                f"{generated.pod_monitors} PodMonitors, config hash {digest}",
            )
        message = (
            f"{generated.service_monitors} ServiceMonitors, {generated.pod_monitors} PodMonitors selected"
        )
        if generated.probes:
            message += f", {generated.probes} Probes"
        if generated.rejected:
            message += f", {len(generated.rejected)} rejected"
        if generated.rules is not None:
            message += (
                f"; {len(generated.rules.files)} PrometheusRules in "
                f"{len(generated.rules.config_maps)} ConfigMaps"
            )
            if generated.rules.rejected:
                message += f", {len(generated.rules.rejected)} rejected"
        await self._set_status(
            key,
            pc,
            desired_status(
                pc, ok=True, reason="Reconciled", message=message, now=self.now(), generated=generated
            ),
        )
        self._reported.setdefault(key, _Reported()).invalid = None

    async def _generate(self, key: ObjectKey, pc: PrometheusConfig, jobs: g.JobCache) -> g.Generated:
        """generate() with the Secrets and ConfigMaps it reads, fetched by name (never a cluster-wide cache).

        What generation reads depends only on the specs, so it ends: each pass fetches what the last
        one asked for and did not have. The last pass's references are what the app watches for this
        key, also when the PrometheusConfig is invalid (a missing Secret may yet appear).
        """
        fetched: dict[g.Reference, Any] = {}
        wanted = set(self.references.of(key))
        while True:
            for ref in sorted(wanted - fetched.keys()):
                get = self.kube.get_secret if ref.kind == "Secret" else self.kube.get_configmap
                fetched[ref] = await get(ref.namespace, ref.name)
            lookup = g.Lookup(
                [o for r, o in fetched.items() if o is not None and r.kind == "Secret"],
                [o for r, o in fetched.items() if o is not None and r.kind == "ConfigMap"],
            )
            try:
                generated = g.generate(
                    pc,
                    self.caches.service_monitors.objects(),  # type: ignore[arg-type]
                    self.caches.pod_monitors.objects(),  # type: ignore[arg-type]
                    self.caches.namespaces.objects(),  # type: ignore[arg-type]
                    [],
                    lookup=lookup,
                    prometheus_rules=self.caches.prometheus_rules.objects(),  # type: ignore[arg-type]
                    probes=self.caches.probes.objects(),  # type: ignore[arg-type]
                    cache=jobs,
                )
            except g.InvalidConfig:
                if lookup.references <= fetched.keys():
                    self.references.set(key, lookup.references)
                    raise
                wanted = set(lookup.references)
                continue
            if generated.references <= fetched.keys():
                self.references.set(key, generated.references)
                return generated
            wanted = set(generated.references)

    def _report_warnings(self, key: ObjectKey, warnings: Sequence[str]) -> None:
        """What the version gates left out: logged when it changes (no Event: the config is fine)."""
        reported = self._reported.setdefault(key, _Reported())
        if tuple(warnings) != reported.warnings:
            for warning in warnings:
                log.warning("field left out", extra={"key": str(key), "err": warning})
        reported.warnings = tuple(warnings)

    async def _write_tls_assets(self, pc: PrometheusConfig, files: dict[str, str] | Any) -> None:
        """The shards prometheus-<name>-tls-assets-<n>; a shard no longer needed is emptied (the API
        server's garbage collection removes them all with the PrometheusConfig)."""
        namespace, name = ObjectKey.of(pc).namespace, ObjectKey.of(pc).name
        shards = g.shard_tls_assets(dict(files))
        index = 0
        while True:
            secret_name = g.tls_assets_secret_name(name, index)
            if index >= len(shards):
                current = await self.kube.get_secret(namespace, secret_name)
                if current is None:
                    return
                shard: dict[str, str] = {}
            else:
                shard = shards[index]
            await self._write_owned(pc, secret_name, shard)
            index += 1

    async def _write_owned(self, pc: PrometheusConfig, name: str, files: dict[str, str]) -> str | None:
        data = {k: base64.b64encode(v.encode()).decode() for k, v in sorted(files.items())}
        return await self._write(pc, name, lambda current: desired_owned_secret(pc, name, data, current))

    async def _invalid(self, key: ObjectKey, pc: PrometheusConfig, message: str) -> None:
        """A malformed PrometheusConfig: Reconciled=False and a Warning; the last good Secret stays."""
        self.metrics.reconcile_errors.labels("invalid").inc()
        log.warning(
            "invalid PrometheusConfig, secret left as it was", extra={"key": str(key), "err": message}
        )
        reported = self._reported.setdefault(key, _Reported())
        if reported.invalid != message:
            await self._event(pc, "Warning", "InvalidConfig", message)
            reported.invalid = message
        await self._set_status(
            key, pc, desired_status(pc, ok=False, reason="InvalidConfig", message=message, now=self.now())
        )

    async def _too_large(self, key: ObjectKey, pc: PrometheusConfig, size: int) -> None:
        """The gzipped config would not fit in a Secret: Reconciled=False, a Warning, no write, no retry."""
        message = (
            f"the gzipped config is {size} bytes, over the Secret limit of {self.max_secret_bytes} bytes;"
            " the Secret keeps the last config that fit (select fewer monitors, or shard)"
        )
        self.metrics.reconcile_errors.labels("too_large").inc()
        log.warning("config too large, secret left as it was", extra={"key": str(key), "bytes": size})
        reported = self._reported.setdefault(key, _Reported())
        if reported.invalid != message:
            await self._event(pc, "Warning", "ConfigTooLarge", message)
            reported.invalid = message
        await self._set_status(
            key, pc, desired_status(pc, ok=False, reason="ConfigTooLarge", message=message, now=self.now())
        )

    async def _report_rejected(
        self, key: ObjectKey, pc: PrometheusConfig, rejected: Sequence[g.Rejected]
    ) -> None:
        reported = self._reported.setdefault(key, _Reported())
        for item in rejected:
            if item not in reported.rejected:
                log.warning(
                    "monitor rejected",
                    extra={
                        "key": str(key),
                        "monitor": f"{item.kind} {item.namespace}/{item.name}",
                        "err": item.reason,
                    },
                )
                await self._event(pc, "Warning", "MonitorRejected", rejected_message(item))
        reported.rejected = frozenset(rejected)

    async def _report_rejected_rules(
        self, key: ObjectKey, pc: PrometheusConfig, rules: RuleFiles | None
    ) -> None:
        """A Warning (InvalidConfiguration) on each newly rejected PrometheusRule, as prometheus-operator."""
        reported = self._reported.setdefault(key, _Reported())
        rejected = rules.rejected if rules is not None else ()
        for item in rejected:
            if item in reported.rejected_rules:
                continue
            log.warning(
                "prometheusrule rejected",
                extra={"key": str(key), "rule": f"{item.namespace}/{item.name}", "err": item.reason},
            )
            cached = self.caches.prometheus_rules.get(ObjectKey(item.namespace, item.name)) or {}
            uid = str((cached.get("metadata") or {}).get("uid", ""))
            body = rulefiles.rejected_rule_event(item, uid, self._event_body(pc, "Warning", "", ""))
            await self._post_event(item.namespace, body, rulefiles.INVALID_CONFIGURATION)
        reported.rejected_rules = frozenset(rejected)

    async def _write_secret(self, pc: PrometheusConfig, compressed: bytes) -> str | None:
        """Create or update the Secret; return "create", "update", or None when it was already right."""
        return await self._write(
            pc, g.secret_name(pc), lambda current: desired_secret(pc, compressed, current)
        )

    async def _write(
        self, pc: PrometheusConfig, name: str, desired: Callable[[Secret | None], Secret | None]
    ) -> str | None:
        namespace = ObjectKey.of(pc).namespace
        for _ in range(WRITE_ATTEMPTS):
            current = await self.kube.get_secret(namespace, name)
            body = desired(current)
            if body is None:
                return None
            try:
                if current is None:
                    await self.kube.create_secret(namespace, body)
                    return "create"
                await self.kube.replace_secret(namespace, name, body)
                return "update"
            except ApiError as exc:
                if not exc.conflict:
                    raise
                # Someone else wrote it (or created it) since our read: read again and redo.
                log.info("secret changed under us, retrying", extra={"secret": f"{namespace}/{name}"})
        raise ConflictError(f"Secret {namespace}/{name}: still conflicting after {WRITE_ATTEMPTS} attempts")

    async def _set_status(self, key: ObjectKey, pc: PrometheusConfig, status: PrometheusConfigStatus) -> None:
        reported = self._reported.setdefault(key, _Reported())
        # A cached status equal to the desired one proves nothing while our last patch differs from it:
        # that patch's watch event may still be on its way, and status-only events queue nothing, so a
        # skip here would leave the status stale until the next resync.
        if (pc.get("status") or {}) == status and reported.status in (None, status):
            return
        try:
            await self.kube.patch_status(key.namespace, key.name, status)
        except ApiError as exc:
            if exc.not_found:  # deleted meanwhile
                return
            raise
        reported.status = status

    def _event_body(self, pc: PrometheusConfig, type_: str, reason: str, message: str) -> dict[str, Any]:
        return event(
            pc,
            type_=type_,
            reason=reason,
            message=message,
            now=self.now(),
            instance=self.instance,
            name_suffix=uuid.uuid4().hex[:16],
        )

    async def _event(self, pc: PrometheusConfig, type_: str, reason: str, message: str) -> None:
        """Post an Event about ``pc``."""
        await self._post_event(
            ObjectKey.of(pc).namespace, self._event_body(pc, type_, reason, message), reason
        )

    async def _post_event(self, namespace: str, body: dict[str, Any], reason: str) -> None:
        """Best effort, as client-go's recorder: a failure is logged, not retried."""
        try:
            await self.kube.create_event(namespace, body)
        except ApiError as exc:
            log.warning(
                "could not post event",
                extra={"namespace": namespace, "reason": reason, "err": str(exc)},
            )
