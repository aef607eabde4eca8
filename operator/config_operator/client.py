"""The client seam: the only module that imports kubernetes_asyncio.

Everything above this layer sees raw dicts (the TypedDicts of ``resources``), ``ApiError`` and
``WatchEvent``; nothing else of kubernetes_asyncio leaks out. Calls go out with ``_preload_content=False``
and the JSON is parsed here, so core objects (Namespaces, Secrets) come back as the same camelCase dicts
as custom objects, not as generated model classes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Final

import aiohttp
from kubernetes_asyncio import client as k8s
from kubernetes_asyncio import config as k8s_config
from kubernetes_asyncio import watch as k8s_watch
from kubernetes_asyncio.client.exceptions import ApiException
from kubernetes_asyncio.leaderelection import electionconfig, leaderelection
from kubernetes_asyncio.leaderelection.resourcelock.leaselock import LeaseLock

from config_operator import resources as r

log = logging.getLogger(__name__)

# A hung API server must not hold a reconcile forever; watches have their own inactivity timeout.
REQUEST_TIMEOUT_S: Final = 30.0
MERGE_PATCH: Final = "application/merge-patch+json"


@dataclass(frozen=True)
class Resource:
    """A kind the operator lists and watches."""

    kind: str
    group: str
    """"" for the core API group."""
    version: str
    plural: str
    namespaced: bool
    label_selector: str = ""
    """Only objects with these labels are listed and watched ("" for all)."""

    def __str__(self) -> str:
        return f"{self.plural}.{self.group}" if self.group else self.plural


PROMETHEUS_CONFIGS: Final = Resource(r.KIND, r.GROUP, r.VERSION, r.PLURAL, True)
SERVICE_MONITORS: Final = Resource(
    r.SERVICE_MONITOR_KIND, r.MONITORING_GROUP, r.MONITORING_VERSION, r.SERVICE_MONITOR_PLURAL, True
)
POD_MONITORS: Final = Resource(
    r.POD_MONITOR_KIND, r.MONITORING_GROUP, r.MONITORING_VERSION, r.POD_MONITOR_PLURAL, True
)
NAMESPACES: Final = Resource("Namespace", "", "v1", "namespaces", False)
PROMETHEUS_RULES: Final = Resource(
    r.PROMETHEUS_RULE_KIND, r.MONITORING_GROUP, r.MONITORING_VERSION, r.PROMETHEUS_RULE_PLURAL, True
)
PROBES: Final = Resource(r.PROBE_KIND, r.MONITORING_GROUP, r.MONITORING_VERSION, r.PROBE_PLURAL, True)
# Only the rule ConfigMaps the operator writes: a cluster's other ConfigMaps are none of its business.
RULE_CONFIGMAPS: Final = Resource(
    "ConfigMap",
    "",
    "v1",
    "configmaps",
    True,
    label_selector=f"{r.MANAGED_BY_LABEL}={r.MANAGED_BY_VALUE},{r.RULEFILES_LABEL}",
)
# Watched for the objects monitors reference, never cached whole (see references.py).
SECRETS: Final = Resource("Secret", "", "v1", "secrets", True)
CONFIGMAPS: Final = Resource("ConfigMap", "", "v1", "configmaps", True)


class ApiError(Exception):
    """A failed API call: ``status`` is the HTTP status, or 0 when no answer came (connection, timeout)."""

    def __init__(self, status: int, reason: str, message: str = "") -> None:
        self.status = status
        self.reason = reason
        self.message = message
        super().__init__(f"{status} {reason}: {message}" if message else f"{status} {reason}")

    @property
    def gone(self) -> bool:
        """410: the resourceVersion is too old; list again."""
        return self.status == 410

    @property
    def conflict(self) -> bool:
        """409: a stale resourceVersion on write, or the object already exists."""
        return self.status == 409

    @property
    def not_found(self) -> bool:
        """404."""
        return self.status == 404


def _status_error(status: int, body: bytes | str | None, fallback: str = "") -> ApiError:
    """An ApiError from an HTTP status and a (maybe) Kubernetes Status body."""
    reason, message = fallback or "Error", ""
    try:
        doc = json.loads(body or b"")
    except (ValueError, TypeError):
        doc = None
    if isinstance(doc, dict):
        reason = str(doc.get("reason") or reason)
        message = str(doc.get("message") or "")
    elif body:
        text = body.decode(errors="replace") if isinstance(body, bytes) else body
        message = text.strip().splitlines()[0][:200] if text.strip() else ""
    return ApiError(status, reason, message)


def _from_exception(exc: BaseException) -> ApiError:
    if isinstance(exc, ApiException):
        return _status_error(int(exc.status or 0), exc.body, str(exc.reason or ""))
    # aiohttp errors and timeouts: no answer from the server.
    return ApiError(0, exc.__class__.__name__, str(exc).splitlines()[0] if str(exc) else "")


@dataclass(frozen=True)
class Listed:
    """The result of a list: the items and the list's resourceVersion (where a watch starts)."""

    items: list[dict[str, Any]]
    resource_version: str


@dataclass(frozen=True)
class WatchEvent:
    """One watch event: ADDED, MODIFIED, DELETED or BOOKMARK, and the raw object."""

    type: str
    object: dict[str, Any]

    @property
    def resource_version(self) -> str | None:
        """metadata.resourceVersion of the object (for a BOOKMARK, the only field that matters)."""
        rv = (self.object.get("metadata") or {}).get("resourceVersion")
        return str(rv) if rv else None


class WatchStream:
    """An open watch; ``next()`` gives the next event, or None when the server ended the stream."""

    def __init__(self, events: Any) -> None:
        self._events = events

    async def next(self) -> WatchEvent | None:
        """Wait for the next event; raises ApiError (status 410 for an expired resourceVersion)."""
        try:
            event = await self._events.__anext__()
        except StopAsyncIteration:
            return None
        except (ApiException, aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise _from_exception(exc) from exc
        if isinstance(event, str):
            # A body that is not a watch event (a plain-text 500 page, say).
            raise _status_error(500, event, "InvalidWatchEvent")
        raw = event.get("raw_object")
        if not isinstance(raw, dict) or not isinstance(event.get("type"), str):
            raise ApiError(500, "InvalidWatchEvent", "event without a type or an object")
        return WatchEvent(type=str(event["type"]), object=raw)


class _ReportingLeaseLock(LeaseLock):
    """A LeaseLock that reports when each successful write of the Lease was sent.

    The library bounds neither its requests nor the time since the last renewal that succeeded, so
    a renewal that hangs keeps it leading past the Lease's expiry; leader.py stops the workers on
    this report instead.
    """

    def __init__(self, *args: Any, on_renewed: Callable[[float], None]) -> None:
        super().__init__(*args)
        self._on_renewed = on_renewed

    async def create(self, name: str, namespace: str, election_record: Any) -> bool:
        sent_at = asyncio.get_running_loop().time()
        created = bool(await super().create(name, namespace, election_record))
        if created:
            self._on_renewed(sent_at)
        return created

    async def update(self, name: str, namespace: str, updated_record: Any) -> bool:
        sent_at = asyncio.get_running_loop().time()
        updated = bool(await super().update(name, namespace, updated_record))
        if updated:
            self._on_renewed(sent_at)
        return updated


class Kube:
    """The operator's view of the API server; raises ApiError for every failure."""

    def __init__(self, api: k8s.ApiClient) -> None:
        self._api = api
        self._custom = k8s.CustomObjectsApi(api)
        self._core = k8s.CoreV1Api(api)

    @classmethod
    @contextlib.asynccontextmanager
    async def connect(
        cls,
        *,
        kubeconfig: str | None = None,
        context: str | None = None,
        host: str | None = None,
        user_agent: str | None = None,
    ) -> AsyncIterator[Kube]:
        """Connect with ``host`` (no auth, for tests), ``kubeconfig``, or else in-cluster config.

        Without either, the in-cluster service account is tried first, then $KUBECONFIG or
        ~/.kube/config; a ConfigError names what was tried.
        """
        configuration = await load_configuration(kubeconfig=kubeconfig, context=context, host=host)
        api = k8s.ApiClient(configuration)
        if user_agent:
            api.user_agent = user_agent
        try:
            yield cls(api)
        finally:
            await api.close()

    async def _call(self, method: Callable[..., Awaitable[Any]], *args: Any, **kwargs: Any) -> Any:
        """Call a generated API method and return its JSON body, or raise ApiError."""
        kwargs.setdefault("_request_timeout", REQUEST_TIMEOUT_S)
        try:
            resp = await method(*args, _preload_content=False, **kwargs)
            try:
                body = await resp.read()
            finally:
                resp.release()
        except (ApiException, aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise _from_exception(exc) from exc
        if not 200 <= resp.status < 300:
            raise _status_error(resp.status, body, str(resp.reason or ""))
        try:
            return json.loads(body) if body else {}
        except ValueError as exc:
            raise ApiError(resp.status, "InvalidJSON", "the response body is not JSON") from exc

    def _list_method(
        self, resource: Resource, namespace: str | None
    ) -> tuple[Callable[..., Any], tuple[Any, ...]]:
        if resource == NAMESPACES:
            return self._core.list_namespace, ()
        if resource.plural in ("secrets", "configmaps") and not resource.group:
            kind = "secret" if resource.plural == "secrets" else "config_map"
            if namespace is None:
                return getattr(self._core, f"list_{kind}_for_all_namespaces"), ()
            return getattr(self._core, f"list_namespaced_{kind}"), (namespace,)
        if namespace is None:
            return self._custom.list_cluster_custom_object, (
                resource.group,
                resource.version,
                resource.plural,
            )
        return self._custom.list_namespaced_custom_object, (
            resource.group,
            resource.version,
            namespace,
            resource.plural,
        )

    async def list(
        self, resource: Resource, namespace: str | None = None, *, limit: int | None = None
    ) -> Listed:
        """List ``resource`` in ``namespace`` (None: all namespaces); ``limit`` gives only the first page."""
        method, args = self._list_method(resource, namespace)
        doc = await self._call(method, *args, **_selecting(resource), **({"limit": limit} if limit else {}))
        items = [dict(item) for item in doc.get("items") or [] if isinstance(item, dict)]
        return Listed(
            items=items, resource_version=str((doc.get("metadata") or {}).get("resourceVersion") or "")
        )

    @contextlib.asynccontextmanager
    async def watch(
        self,
        resource: Resource,
        namespace: str | None,
        resource_version: str,
        *,
        timeout_s: int,
    ) -> AsyncIterator[WatchStream]:
        """Watch from ``resource_version``, with bookmarks; the server ends the stream after ``timeout_s``.

        kubernetes_asyncio's Watch reconnects by itself unless timeout_seconds is given; it is always
        given here, so the informer alone decides about restarts, relists and backoff.
        """
        method, args = self._list_method(resource, namespace)
        # "object": keep the raw dicts; no model classes.
        watcher = k8s_watch.Watch(return_type="object")
        events = watcher.stream(
            method,
            *args,
            resource_version=resource_version,
            allow_watch_bookmarks=True,
            timeout_seconds=timeout_s,
            **_selecting(resource),
        )
        try:
            yield WatchStream(events)
        finally:
            await watcher.close()

    async def get_secret(self, namespace: str, name: str) -> r.Secret | None:
        """The Secret, or None when it does not exist."""
        try:
            secret: r.Secret = await self._call(self._core.read_namespaced_secret, name, namespace)
        except ApiError as exc:
            if exc.not_found:
                return None
            raise
        return secret

    async def get_configmap(self, namespace: str, name: str) -> r.ConfigMap | None:
        """The ConfigMap, or None when it does not exist."""
        try:
            configmap: r.ConfigMap = await self._call(self._core.read_namespaced_config_map, name, namespace)
        except ApiError as exc:
            if exc.not_found:
                return None
            raise
        return configmap

    async def create_secret(self, namespace: str, body: r.Secret) -> r.Secret:
        """Create a Secret (409 when it already exists)."""
        created: r.Secret = await self._call(self._core.create_namespaced_secret, namespace, body)
        return created

    async def replace_secret(self, namespace: str, name: str, body: r.Secret) -> r.Secret:
        """Replace a Secret; body.metadata.resourceVersion makes a stale write fail with 409."""
        replaced: r.Secret = await self._call(self._core.replace_namespaced_secret, name, namespace, body)
        return replaced

    async def create_config_map(self, namespace: str, body: r.ConfigMap) -> r.ConfigMap:
        """Create a ConfigMap (409 when it already exists)."""
        created: r.ConfigMap = await self._call(self._core.create_namespaced_config_map, namespace, body)
        return created

    async def replace_config_map(self, namespace: str, name: str, body: r.ConfigMap) -> r.ConfigMap:
        """Replace a ConfigMap; body.metadata.resourceVersion makes a stale write fail with 409."""
        replaced: r.ConfigMap = await self._call(
            self._core.replace_namespaced_config_map, name, namespace, body
        )
        return replaced

    async def delete_config_map(self, namespace: str, name: str) -> None:
        """Delete a ConfigMap (404 when it is already gone)."""
        await self._call(self._core.delete_namespaced_config_map, name, namespace)

    async def patch_status(self, namespace: str, name: str, status: r.PrometheusConfigStatus) -> None:
        """Merge-patch the status subresource of a PrometheusConfig."""
        await self._call(
            self._custom.patch_namespaced_custom_object_status,
            r.GROUP,
            r.VERSION,
            namespace,
            r.PLURAL,
            name,
            {"status": status},
            _content_type=MERGE_PATCH,
        )

    async def create_event(self, namespace: str, body: dict[str, Any]) -> None:
        """Create a core v1 Event."""
        await self._call(self._core.create_namespaced_event, namespace, body)

    def elector(
        self,
        *,
        lease_name: str,
        lease_namespace: str,
        identity: str,
        lease_duration_s: float,
        renew_deadline_s: float,
        retry_period_s: float,
        on_started: Callable[[], Coroutine[Any, Any, None]],
        on_stopped: Callable[[], Coroutine[Any, Any, None]],
        on_renewed: Callable[[float], None] = lambda sent_at: None,
    ) -> Callable[[], Coroutine[Any, Any, None]]:
        """One campaign of kubernetes_asyncio's leader election on a Lease.

        The returned coroutine function waits to acquire the Lease, runs ``on_started`` as a task while
        renewing, and returns (after cancelling that task and calling ``on_stopped``) once renewal fails.
        ``on_renewed(sent_at)`` is called after each write of the Lease that succeeded, with the event
        loop's time when it was sent.
        """
        lock = _ReportingLeaseLock(lease_name, lease_namespace, identity, self._api, on_renewed=on_renewed)
        election = leaderelection.LeaderElection(
            electionconfig.Config(
                lock,
                # The library writes str(lease_duration) into the Lease and reads it back with int().
                lease_duration=math.ceil(lease_duration_s),
                renew_deadline=renew_deadline_s,
                retry_period=retry_period_s,
                onstarted_leading=on_started,
                onstopped_leading=on_stopped,
            )
        )
        return election.run


def _selecting(resource: Resource) -> dict[str, str]:
    return {"label_selector": resource.label_selector} if resource.label_selector else {}


class ConfigError(ValueError):
    """No usable connection settings (kubeconfig unreadable, not in a cluster)."""


def _check_readable(path: str) -> None:
    """The library only logs a missing file and then fails obscurely: say it plainly instead."""
    try:
        with open(path, "rb"):
            pass
    except OSError as exc:
        raise ConfigError(f"kubeconfig {path}: {exc.strerror or exc}") from exc


def _default_kubeconfig() -> str:
    """$KUBECONFIG's first entry or ~/.kube/config; ConfigError when it does not exist."""
    path = os.environ.get("KUBECONFIG", "").split(os.pathsep)[0] or os.path.expanduser("~/.kube/config")
    if not os.path.exists(path):
        raise ConfigError(f"not running in a cluster, and no kubeconfig: pass --kubeconfig (tried {path})")
    return path


async def load_configuration(
    *, kubeconfig: str | None = None, context: str | None = None, host: str | None = None
) -> k8s.Configuration:
    """A client Configuration from ``host``, ``kubeconfig``, in-cluster, or the default kubeconfig."""
    configuration = k8s.Configuration()
    if host:
        configuration.host = host
        return configuration
    if kubeconfig:
        _check_readable(kubeconfig)
        try:
            await k8s_config.load_kube_config(
                config_file=kubeconfig,
                context=context,
                client_configuration=configuration,
                persist_config=False,
            )
        except Exception as exc:  # YAML, schema, auth plugins: all mean "this kubeconfig does not work"
            text = str(exc).strip()
            detail = text.splitlines()[0].strip("'\"") if text else repr(exc)
            raise ConfigError(f"kubeconfig {kubeconfig}: {detail}") from exc
        return configuration
    try:
        k8s_config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
        return configuration
    except k8s_config.ConfigException:
        pass
    return await load_configuration(kubeconfig=_default_kubeconfig(), context=context)
