"""The fake Kubernetes API server: the HTTP layer over Store, injectable faults and the call log."""

from __future__ import annotations

import asyncio
import base64
import binascii
import builtins
import contextlib
import json
import logging
import os
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import yaml
from aiohttp import web

from . import pruning
from . import resources as res
from .resources import RESOURCES, ResourceType
from .selectors import SelectorError, parse_field_selector, parse_label_selector
from .store import ApiError, Control, Obj, PatchType, Store, Watcher, WatchFilter, expired

access_log = logging.getLogger("tests.fakekube.access")

DEFAULT_BOOKMARK_INTERVAL_S = 1.0
_PATCH_TYPES: dict[str, PatchType] = {
    "application/merge-patch+json": "merge",
    "application/strategic-merge-patch+json": "strategic",
    "application/json-patch+json": "json",
}
# The reason an injected fault's Status carries, by code.
_REASONS = {
    400: "BadRequest",
    403: "Forbidden",
    404: "NotFound",
    409: "Conflict",
    410: "Expired",
    422: "Invalid",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
    504: "Timeout",
}
# How often an idle watch checks that its client is still connected.
_WATCH_TICK_S = 0.5


class ApiCall(NamedTuple):
    """One API request in RBAC terms; compares equal to a plain 5-tuple."""

    verb: str
    """get, list, watch, create, update, patch or delete."""
    api_group: str
    """"" for the core group."""
    resource: str
    """The plural, e.g. "secrets"."""
    subresource: str
    """"status" or ""."""
    namespace: str
    """"" for cluster-wide requests; for namespaces themselves, the namespace's name (as RBAC sees it)."""


class Write(NamedTuple):
    """One successful write through the HTTP API, and who made it."""

    identity: str
    """Who sent it: see ``identity_of``."""
    verb: str
    """create, update, patch or delete."""
    resource: str
    """kubectl-style ref, e.g. "secrets" or "leases.coordination.k8s.io"."""
    subresource: str
    namespace: str
    name: str
    object: Obj
    """The object as stored after the write (for a delete, as it was last)."""
    at_s: float
    """The event loop's clock when the write was served."""


ANONYMOUS = "system:anonymous"


def identity_of(headers: Any) -> str:
    """Who a request comes from: its bearer token, else its User-Agent, else system:anonymous.

    There is no authentication here; the token is only a name, so a test can give each operator
    replica its own (a kubeconfig with ``token: replica-0``) and tell their requests apart.
    """
    auth = str(headers.get("Authorization", ""))
    scheme, _, token = auth.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return str(headers.get("User-Agent", "")) or ANONYMOUS


@dataclass
class Fault:
    """An injected fault: requests that match get a delay, or fail with a Status of that code."""

    verb: str | None
    resource: str | None
    path: re.Pattern[str] | None
    code: int | None
    """None: only the delay applies."""
    delay_s: float
    remaining: int | None
    """How many more requests it applies to; None for no limit."""
    identity: str | None = None
    """Only requests from this caller (see ``identity_of``); None for everybody."""

    def matches(self, call: ApiCall, path: str, identity: str = ANONYMOUS) -> bool:
        """Whether this request is one the fault is aimed at."""
        if self.remaining is not None and self.remaining <= 0:
            return False
        if self.identity is not None and identity != self.identity:
            return False
        if self.verb is not None and call.verb != self.verb:
            return False
        if self.resource is not None and self.resource not in (call.resource, _ref(call)):
            return False
        return self.path is None or self.path.search(path) is not None


def _ref(call: ApiCall) -> str:
    return f"{call.resource}.{call.api_group}" if call.api_group else call.resource


@dataclass(frozen=True)
class _Target:
    resource: ResourceType
    namespace: str
    """"" for all namespaces or a cluster-scoped resource."""
    name: str
    subresource: str


def kubeconfig(url: str, *, namespace: str = "default") -> str:
    """A kubeconfig (YAML) for this server: plain http, no auth."""
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "fakekube", "cluster": {"server": url}}],
        "users": [{"name": "fakekube", "user": {}}],
        "contexts": [
            {
                "name": "fakekube",
                "context": {"cluster": "fakekube", "user": "fakekube", "namespace": namespace},
            }
        ],
        "current-context": "fakekube",
    }
    return yaml.safe_dump(doc, sort_keys=False)


class FakeKube:
    """An in-process Kubernetes API server on aiohttp; see the package docstring for the API."""

    def __init__(
        self,
        *,
        bookmark_interval_s: float = DEFAULT_BOOKMARK_INTERVAL_S,
        history_limit: int = 10_000,
    ) -> None:
        self.store = Store(history_limit=history_limit)
        self.bookmark_interval_s = bookmark_interval_s
        """Seconds between BOOKMARK events on watches that allow them; settable at any time."""
        self._calls: list[ApiCall] = []
        self._callers: list[str] = []  # identity_of() of each entry of _calls
        self._writes: list[Write] = []
        self._faults: list[Fault] = []
        self._hang_next_watches = 0
        self._runner: web.AppRunner | None = None
        self._url = ""
        self._closing = False
        self._watches_changed = asyncio.Condition()

    # -- lifecycle --------------------------------------------------------------------------------------

    @classmethod
    @contextlib.asynccontextmanager
    async def running(
        cls,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        bookmark_interval_s: float = DEFAULT_BOOKMARK_INTERVAL_S,
        history_limit: int = 10_000,
    ) -> AsyncIterator[FakeKube]:
        """Serve until the block exits, then close every watch and the listener."""
        kube = cls(bookmark_interval_s=bookmark_interval_s, history_limit=history_limit)
        await kube.start(host=host, port=port)
        try:
            yield kube
        finally:
            await kube.stop()

    async def start(self, *, host: str = "127.0.0.1", port: int = 0) -> None:
        """Listen on host:port (0 picks a free port); see url."""
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        # Open watches are closed by stop() first, so a short grace period is enough.
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=2.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        bound_host, bound_port = self._runner.addresses[0][:2]
        self._url = f"http://{bound_host}:{bound_port}"
        self._closing = False

    async def stop(self) -> None:
        """Close every open watch, then the listener."""
        self._closing = True
        self.store.signal_watchers("close")
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def url(self) -> str:
        """http://127.0.0.1:PORT, for kubernetes_asyncio's Configuration(host=...)."""
        if not self._url:
            raise RuntimeError("FakeKube is not running")
        return self._url

    def kubeconfig(self, *, namespace: str = "default") -> str:
        """A kubeconfig (YAML text) pointing at this server."""
        return kubeconfig(self.url, namespace=namespace)

    def write_kubeconfig(self, path: str | Path, *, namespace: str = "default") -> Path:
        """Write kubeconfig() to path and return it."""
        target = Path(path)
        # Written whole and renamed, so whoever polls for the file never reads half of it.
        partial = target.with_name(f".{target.name}.tmp")
        partial.write_text(self.kubeconfig(namespace=namespace))
        os.replace(partial, target)
        return target

    # -- objects from Python (same semantics and watch events as the HTTP API; not in the call log) -----

    @property
    def resource_version(self) -> int:
        """The latest resourceVersion handed out."""
        return self.store.resource_version

    def create(self, obj: Obj) -> Obj:
        """Create an object; its apiVersion and kind pick the resource, metadata.namespace the namespace."""
        resource = res.by_kind(obj.get("apiVersion", ""), obj.get("kind", ""))
        return self.store.create(resource, obj.get("metadata", {}).get("namespace", ""), obj)

    def get(self, ref: str, namespace: str, name: str) -> Obj:
        """One object by kubectl-style resource name ("secrets", "prometheusconfigs.reloader.dev")."""
        return self.store.get(res.by_ref(ref), namespace, name)

    def find(self, ref: str, namespace: str, name: str) -> Obj | None:
        """Like get, but None when the object does not exist."""
        try:
            return self.get(ref, namespace, name)
        except ApiError as exc:
            if exc.code == 404:
                return None
            raise

    def list(self, ref: str, namespace: str | None = None, *, label_selector: str = "") -> list[Obj]:
        """Objects sorted by namespace and name; namespace None lists across all namespaces."""
        selection = WatchFilter(res.by_ref(ref), namespace, parse_label_selector(label_selector))
        return self.store.list(selection)[0]

    def update(self, obj: Obj) -> Obj:
        """Replace an object (409 if its metadata.resourceVersion is set and stale); .status is kept."""
        resource, namespace, name = self._identify(obj)
        return self.store.update(resource, namespace, name, obj)

    def update_status(self, obj: Obj) -> Obj:
        """Replace only .status, as PUT .../status does."""
        resource, namespace, name = self._identify(obj)
        return self.store.update(resource, namespace, name, obj, subresource="status")

    def apply(self, obj: Obj) -> Obj:
        """Create the object, or replace it unconditionally if it exists (a test convenience)."""
        resource, namespace, name = self._identify(obj)
        try:
            current = self.store.get(resource, namespace, name)
        except ApiError as exc:
            if exc.code != 404:
                raise
            return self.store.create(resource, namespace, obj)
        body = {**obj, "metadata": {**obj.get("metadata", {}), "resourceVersion": None}}
        updated = self.store.update(resource, namespace, name, body)
        if resource.status_subresource and "status" in obj and obj["status"] != current.get("status"):
            updated = self.store.update(
                resource, namespace, name, {**obj, "metadata": {}}, subresource="status"
            )
        return updated

    def patch(
        self, ref: str, namespace: str, name: str, patch: Any, *, patch_type: PatchType = "merge"
    ) -> Obj:
        """Patch an object: "merge", "strategic" (served as merge) or "json" (RFC 6902)."""
        return self.store.patch(res.by_ref(ref), namespace, name, patch_type, patch)

    def delete(self, ref: str, namespace: str, name: str) -> Obj:
        """Delete an object (and, as the garbage collector would, objects it owns alone)."""
        return self.store.delete(res.by_ref(ref), namespace, name)

    def install_crd(self, crd: Obj) -> None:
        """Prune (and default) later writes of the CRD's resource against its schema, as a real API
        server does; objects already stored are left alone, as there."""
        for (group, version, plural), schema in pruning.crd_schemas(crd).items():
            resource = res.by_path(group, version, plural)
            if resource is None:
                raise KeyError(f"the fake server does not serve {plural}.{group}/{version}")
            self.store.schemas[resource] = dict(schema)

    def _identify(self, obj: Obj) -> tuple[ResourceType, str, str]:
        resource = res.by_kind(obj.get("apiVersion", ""), obj.get("kind", ""))
        meta = obj.get("metadata", {})
        return resource, meta.get("namespace", "") if resource.namespaced else "", meta.get("name", "")

    # -- faults -----------------------------------------------------------------------------------------

    def fail_next(
        self,
        count: int = 1,
        *,
        verb: str | None = None,
        resource: str | None = None,
        path: str | None = None,
        code: int = 500,
        identity: str | None = None,
    ) -> Fault:
        """Fail the next `count` requests that match (RBAC verb, resource plural or ref, path regex).

        The Status carries the usual reason for the code (409 Conflict, 503 ServiceUnavailable, ...);
        a watch failed with 410 gets the real server's form: 200 and one ERROR event.
        """
        fault = Fault(verb, resource, re.compile(path) if path else None, code, 0.0, count, identity)
        self._faults.append(fault)
        return fault

    def add_latency(
        self,
        delay_s: float,
        *,
        verb: str | None = None,
        resource: str | None = None,
        path: str | None = None,
        count: int | None = None,
        identity: str | None = None,
    ) -> Fault:
        """Delay matching requests by delay_s before they are served (all of them unless count)."""
        fault = Fault(verb, resource, re.compile(path) if path else None, None, delay_s, count, identity)
        self._faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        """Remove every injected failure and delay, and stop hanging new watches."""
        self._faults.clear()
        self._hang_next_watches = 0

    def drop_watches(self) -> int:
        """Close every open watch stream, as an API server restart or a proxy timeout does."""
        return self.store.signal_watchers("close")

    def expire_watches(self) -> int:
        """Compact history, then end each open watch with an ERROR event (410 Expired)."""
        self.store.compact()
        return self.store.signal_watchers("expire")

    def hang_watches(self, *, next_watches: int = 0) -> int:
        """Silence the open watches (no events, no bookmarks, stream kept open) and the next N new ones.

        Returns how many open watches were silenced. Events they miss stay in history, so a client
        that gives up and re-watches from its last resourceVersion gets them.
        """
        self._hang_next_watches += next_watches
        return self.store.signal_watchers("hang")

    def compact(self) -> None:
        """Forget history: watches and Exact lists from an older resourceVersion get 410 Gone."""
        self.store.compact()

    # -- the call log -----------------------------------------------------------------------------------

    @property
    def calls(self) -> builtins.list[ApiCall]:
        """Every resource request received so far, in order (discovery requests are not included)."""
        return builtins.list(self._calls)

    def clear_calls(self) -> None:
        """Empty the call log and the write log."""
        self._calls.clear()
        self._callers.clear()
        self._writes.clear()

    # -- who called: identities and writes ---------------------------------------------------------------

    @property
    def identities(self) -> builtins.list[str]:
        """Every identity (see ``identity_of``) seen in the call log, in order of first appearance."""
        return builtins.list(dict.fromkeys(self._callers))

    def calls_by(self, identity: str) -> builtins.list[ApiCall]:
        """The calls (as in ``calls``) made by one identity."""
        return [call for call, who in zip(self._calls, self._callers, strict=True) if who == identity]

    @property
    def writes(self) -> builtins.list[Write]:
        """Every successful create, update, patch and delete over HTTP, in the order served."""
        return builtins.list(self._writes)

    @property
    def open_watches(self) -> int:
        """How many watch streams are open now (hung ones included)."""
        return len(self.store.watchers)

    async def wait_for_watches(
        self, count: int, *, resource: str | None = None, timeout_s: float = 30.0
    ) -> None:
        """Wait until at least `count` watches are open (on one resource, by ref, if given)."""

        def enough() -> bool:
            watchers = self.store.watchers
            if resource is not None:
                wanted = res.by_ref(resource)
                watchers = frozenset(w for w in watchers if w.filter.resource == wanted)
            return len(watchers) >= count

        async with asyncio.timeout(timeout_s), self._watches_changed:
            await self._watches_changed.wait_for(enough)

    async def _notify_watches_changed(self) -> None:
        async with self._watches_changed:
            self._watches_changed.notify_all()

    # -- HTTP -------------------------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        try:
            discovery = _discovery(request.path)
            if discovery is not None:
                if request.method != "GET":
                    raise _method_not_allowed(request.method)
                return web.json_response(discovery)
            target = _parse_path(request.path)
            call = _to_call(request, target)
            self._calls.append(call)
            self._callers.append(identity_of(request.headers))
            # Spent faults go, so a long test does not keep matching against them.
            self._faults = [f for f in self._faults if f.remaining is None or f.remaining > 0]
            caller = self._callers[-1]
            for fault in builtins.list(self._faults):
                if fault.matches(call, request.path, caller):
                    if fault.remaining is not None:
                        fault.remaining -= 1
                    if fault.delay_s:
                        await asyncio.sleep(fault.delay_s)
                    if fault.code is not None:
                        error = ApiError(
                            fault.code,
                            _REASONS.get(fault.code, "InternalError"),
                            f"injected fault for {call.verb} {request.path}",
                        )
                        if call.verb == "watch" and fault.code == 410:
                            return await _error_stream(request, error)
                        raise error
            if call.verb == "watch":
                access_log.info("watch", extra={"path": request.path, "query": request.query_string})
                return await self._watch(request, target)
            response = await self._serve(request, target, call.verb)
        except ApiError as exc:
            response = web.json_response(exc.status(), status=exc.code)
        access_log.info(
            "api call",
            extra={"method": request.method, "path": request.path, "status": response.status},
        )
        return response

    def _record_write(self, request: web.Request, target: _Target, verb: str, obj: Obj) -> Obj:
        meta = obj.get("metadata") or {}
        self._writes.append(
            Write(
                identity_of(request.headers),
                verb,
                target.resource.ref,
                target.subresource,
                str(meta.get("namespace") or target.namespace),
                str(meta.get("name") or target.name),
                obj,
                asyncio.get_running_loop().time(),
            )
        )
        return obj

    async def _serve(self, request: web.Request, target: _Target, verb: str) -> web.StreamResponse:
        store, resource = self.store, target.resource
        if verb == "get":
            return web.json_response(store.get(resource, target.namespace, target.name))
        if verb == "list":
            return web.json_response(self._list(request, target))
        if verb == "create":
            if target.subresource:
                raise _method_not_allowed(request.method)
            created = store.create(resource, target.namespace, await _json_body(request))
            return web.json_response(self._record_write(request, target, verb, created), status=201)
        if verb == "update":
            body = await _json_body(request)
            updated = store.update(
                resource, target.namespace, target.name, body, subresource=target.subresource
            )
            return web.json_response(self._record_write(request, target, verb, updated))
        if verb == "patch":
            content_type = request.content_type
            patch_type = _PATCH_TYPES.get(content_type)
            if patch_type is None:
                raise ApiError(
                    415,
                    "UnsupportedMediaType",
                    f"the body of the request was in an unknown format: {content_type}",
                )
            body = await _json_body(request)
            patched = store.patch(
                resource, target.namespace, target.name, patch_type, body, subresource=target.subresource
            )
            return web.json_response(self._record_write(request, target, verb, patched))
        if verb == "delete":
            if target.subresource:
                raise _method_not_allowed(request.method)
            options = await _json_body(request) if request.can_read_body else {}
            preconditions = options.get("preconditions") if isinstance(options, dict) else None
            deleted = store.delete(resource, target.namespace, target.name, preconditions=preconditions)
            self._record_write(request, target, "delete", deleted)
            details = {"name": target.name, "kind": resource.plural, "uid": deleted["metadata"]["uid"]}
            if resource.group:
                details["group"] = resource.group
            return web.json_response(
                {
                    "kind": "Status",
                    "apiVersion": "v1",
                    "metadata": {},
                    "status": "Success",
                    "details": details,
                }
            )
        raise _method_not_allowed(request.method)

    def _list(self, request: web.Request, target: _Target) -> Obj:
        query = request.query
        selection = _selection(request, target)
        resource_version = query.get("resourceVersion")
        match = query.get("resourceVersionMatch")
        start_after: tuple[str, str] | None = None
        if query.get("continue"):
            resource_version, start_after = _decode_continue(query["continue"])
            match = "Exact"
        items, at = self.store.list(
            selection, resource_version=resource_version, resource_version_match=match
        )
        if start_after is not None:
            items = [i for i in items if _key(i) > start_after]
        meta: Obj = {"resourceVersion": str(at)}
        limit = _int_param(query, "limit")
        if limit and len(items) > limit:
            meta["continue"] = _encode_continue(at, _key(items[limit - 1]))
            meta["remainingItemCount"] = len(items) - limit
            items = items[:limit]
        if not target.resource.custom:
            # The real server leaves kind and apiVersion out of built-in list items (not out of CRs').
            for item in items:
                item.pop("kind", None)
                item.pop("apiVersion", None)
        return {
            "kind": f"{target.resource.kind}List",
            "apiVersion": target.resource.api_version,
            "metadata": meta,
            "items": items,
        }

    async def _watch(self, request: web.Request, target: _Target) -> web.StreamResponse:
        selection = _selection(request, target)
        query = request.query
        timeout_s = _int_param(query, "timeoutSeconds")
        bookmarks = query.get("allowWatchBookmarks", "").lower() in ("true", "1")
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        try:
            watcher, initial = self.store.watch(selection, query.get("resourceVersion"))
        except ApiError as exc:
            if exc.code != 410:
                raise
            return await _error_stream(request, exc)
        await self._notify_watches_changed()
        hung = self._hang_next_watches > 0
        if hung:
            self._hang_next_watches -= 1
        try:
            await response.prepare(request)
            if not hung:
                for event in initial:
                    await _write_event(response, event)
            async with asyncio.timeout(timeout_s if timeout_s and not hung else None) as deadline:
                await self._pump(request, response, watcher, deadline, bookmarks=bookmarks, hung=hung)
            await response.write_eof()
        except (TimeoutError, ConnectionError):
            pass  # the client's timeoutSeconds ran out, or the client went away
        finally:
            self.store.unwatch(watcher)
            await self._notify_watches_changed()
        return response

    async def _pump(
        self,
        request: web.Request,
        response: web.StreamResponse,
        watcher: Watcher,
        deadline: asyncio.Timeout,
        *,
        bookmarks: bool,
        hung: bool,
    ) -> None:
        loop = asyncio.get_running_loop()
        next_bookmark = loop.time() + self.bookmark_interval_s
        while not self._closing:
            transport = request.transport
            if transport is None or transport.is_closing():
                return
            wait_s = _WATCH_TICK_S
            if bookmarks and not hung:
                wait_s = max(0.0, min(wait_s, next_bookmark - loop.time()))
            item: Obj | Control | None = None
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait_s):
                    item = await watcher.queue.get()
            if item is None:
                # Only sent with an empty queue, so every event up to this version went out first. The
                # queue is checked again here: an event can arrive between the wait's timeout and now,
                # and a bookmark past it would let a client that reconnects skip it.
                if bookmarks and not hung and loop.time() >= next_bookmark and watcher.queue.empty():
                    await _write_event(
                        response, _bookmark(watcher.filter.resource, self.store.resource_version)
                    )
                    next_bookmark = loop.time() + self.bookmark_interval_s
                continue
            if item == "close":
                return
            if item == "expire":
                status = expired(watcher.after, self.store.earliest_resource_version).status()
                await _write_event(response, {"type": "ERROR", "object": status})
                return
            if item == "hang":
                # A dead connection does not end at timeoutSeconds either.
                hung = True
                deadline.reschedule(None)
                continue
            if not hung and isinstance(item, dict):
                await _write_event(response, item)
                watcher.after = int(item["object"]["metadata"]["resourceVersion"])


async def _error_stream(request: web.Request, error: ApiError) -> web.StreamResponse:
    """A watch that fails as the real server fails it: 200, one ERROR event holding the Status, the end."""
    response = web.StreamResponse(headers={"Content-Type": "application/json"})
    await response.prepare(request)
    await _write_event(response, {"type": "ERROR", "object": error.status()})
    await response.write_eof()
    return response


async def _write_event(response: web.StreamResponse, event: Obj) -> None:
    await response.write(json.dumps(event, separators=(",", ":")).encode() + b"\n")


def _bookmark(resource: ResourceType, resource_version: int) -> Obj:
    return {
        "type": "BOOKMARK",
        "object": {
            "kind": resource.kind,
            "apiVersion": resource.api_version,
            "metadata": {"resourceVersion": str(resource_version)},
        },
    }


def _key(obj: Obj) -> tuple[str, str]:
    meta = obj["metadata"]
    return meta.get("namespace", ""), meta["name"]


def _encode_continue(resource_version: int, after: tuple[str, str]) -> str:
    raw = json.dumps({"rv": resource_version, "start": list(after)}).encode()
    return base64.urlsafe_b64encode(raw).decode()


def _decode_continue(token: str) -> tuple[str, tuple[str, str]]:
    try:
        doc = json.loads(base64.urlsafe_b64decode(token.encode()))
        return str(int(doc["rv"])), (str(doc["start"][0]), str(doc["start"][1]))
    except (ValueError, KeyError, IndexError, TypeError, binascii.Error):
        raise ApiError(400, "BadRequest", "continue key is not valid") from None


def _int_param(query: Any, name: str) -> int:
    raw = query.get(name)
    if raw in (None, ""):
        return 0
    try:
        return int(raw)
    except ValueError:
        raise ApiError(400, "BadRequest", f"invalid {name} {raw!r}") from None


def _selection(request: web.Request, target: _Target) -> WatchFilter:
    try:
        labels = parse_label_selector(request.query.get("labelSelector", ""))
        fields = parse_field_selector(request.query.get("fieldSelector", ""))
    except SelectorError as exc:
        raise ApiError(400, "BadRequest", f"unable to parse selector: {exc}") from None
    return WatchFilter(target.resource, target.namespace or None, labels, fields)


async def _json_body(request: web.Request) -> Any:
    try:
        return json.loads(await request.read() or b"null")
    except ValueError:
        raise ApiError(400, "BadRequest", "the request body is not valid JSON") from None


def _method_not_allowed(method: str) -> ApiError:
    return ApiError(
        405, "MethodNotAllowed", f"the server does not allow this method on the requested resource: {method}"
    )


def _not_found_path(path: str) -> ApiError:
    return ApiError(404, "NotFound", f"the server could not find the requested resource ({path})")


def _parse_path(path: str) -> _Target:
    """Split /api/v1/... or /apis/{group}/{version}/... into resource, namespace, name, subresource."""
    parts = [p for p in path.split("/") if p]
    if len(parts) >= 2 and parts[0] == "api" and parts[1] == "v1":
        group, version, rest = "", "v1", parts[2:]
    elif len(parts) >= 3 and parts[0] == "apis":
        group, version, rest = parts[1], parts[2], parts[3:]
    else:
        raise _not_found_path(path)
    namespace = ""
    # namespaces/{ns}/{plural}...: but namespaces/{name}[/status] is the Namespace itself.
    if len(rest) >= 3 and rest[0] == "namespaces":
        scoped = res.by_path(group, version, rest[2])
        if scoped is not None and scoped.namespaced:
            namespace, rest = rest[1], rest[2:]
    if not rest or len(rest) > 3:
        raise _not_found_path(path)
    resource = res.by_path(group, version, rest[0])
    if resource is None or (namespace and not resource.namespaced):
        raise _not_found_path(path)
    name = rest[1] if len(rest) > 1 else ""
    subresource = rest[2] if len(rest) > 2 else ""
    if name and resource.namespaced and not namespace:
        raise _not_found_path(path)
    if subresource and (subresource != "status" or not resource.status_subresource):
        raise _not_found_path(path)
    return _Target(resource, namespace, name, subresource)


def _to_call(request: web.Request, target: _Target) -> ApiCall:
    method = request.method
    watching = request.query.get("watch", "").lower() in ("true", "1")
    if method == "GET":
        verb = ("watch" if watching else "list") if not target.name else "get"
    elif method == "POST":
        verb = "create"
    elif method == "PUT":
        verb = "update"
    elif method == "PATCH":
        verb = "patch"
    elif method == "DELETE":
        verb = "delete" if target.name else "deletecollection"
    else:
        raise _method_not_allowed(method)
    if target.name and verb in ("create", "deletecollection"):
        raise _method_not_allowed(method)
    if not target.name and verb in ("update", "patch", "deletecollection"):
        raise _method_not_allowed(method)
    namespace = target.namespace
    if target.resource.kind == "Namespace" and target.name:
        namespace = target.name  # RBAC sees a request on a namespace as in that namespace
    return ApiCall(verb, target.resource.group, target.resource.plural, target.subresource, namespace)


def _discovery(path: str) -> Obj | None:
    """The discovery documents (/version, /api, /apis, /api/v1, /apis/{g}/{v}), or None."""
    path = path.rstrip("/")
    if path == "/version":
        return {"major": "1", "minor": "30", "gitVersion": "v1.30.0-fakekube", "platform": "linux/amd64"}
    if path == "/api":
        return {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []}
    groups: dict[str, list[str]] = {}
    for r in RESOURCES:
        if r.group and r.version not in groups.setdefault(r.group, []):
            groups[r.group].append(r.version)
    if path == "/apis":
        return {
            "kind": "APIGroupList",
            "apiVersion": "v1",
            "groups": [
                {
                    "name": group,
                    "versions": [{"groupVersion": f"{group}/{v}", "version": v} for v in versions],
                    "preferredVersion": {"groupVersion": f"{group}/{versions[0]}", "version": versions[0]},
                }
                for group, versions in groups.items()
            ],
        }
    for group_version in ["v1", *(f"{g}/{v}" for g, vs in groups.items() for v in vs)]:
        prefix = "/api/v1" if group_version == "v1" else f"/apis/{group_version}"
        if path == prefix:
            listed: list[Obj] = []
            for r in RESOURCES:
                if r.api_version != group_version:
                    continue
                verbs = ["create", "delete", "get", "list", "patch", "update", "watch"]
                listed.append(
                    {
                        "name": r.plural,
                        "singularName": r.kind.lower(),
                        "namespaced": r.namespaced,
                        "kind": r.kind,
                        "verbs": verbs,
                    }
                )
                if r.status_subresource:
                    listed.append(
                        {
                            "name": f"{r.plural}/status",
                            "singularName": "",
                            "namespaced": r.namespaced,
                            "kind": r.kind,
                            "verbs": ["get", "patch", "update"],
                        }
                    )
            return {
                "kind": "APIResourceList",
                "apiVersion": "v1",
                "groupVersion": group_version,
                "resources": listed,
            }
    return None
