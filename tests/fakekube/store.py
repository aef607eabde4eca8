"""The object store behind the fake API server: objects, resourceVersions, history and watchers.

Synchronous and in memory; the HTTP layer (server.py) and the Python API both call it, so a change
made either way reaches every watcher. Errors are ApiError, which carries the Status the real API
server would send.
"""

from __future__ import annotations

import asyncio
import builtins
import copy
import re
import secrets
import uuid
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from .patch import PatchError, json_patch, merge_patch
from .pruning import prune
from .resources import ResourceType
from .selectors import FieldRequirement, Requirement, fields_match, labels_match

Obj = dict[str, Any]
ChangeType = Literal["ADDED", "MODIFIED", "DELETED"]
PatchType = Literal["merge", "strategic", "json"]
Control = Literal["close", "expire", "hang"]

# Fields the server owns: a client's values for them are ignored on create and update.
_SERVER_META = ("uid", "resourceVersion", "creationTimestamp", "generation", "managedFields", "selfLink")
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")


class ApiError(Exception):
    """An API failure, as the Status object the real API server sends."""

    def __init__(self, code: int, reason: str, message: str, details: Obj | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details

    def status(self) -> Obj:
        """The Status object for the response body (or a watch ERROR event)."""
        body: Obj = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if self.details is not None:
            body["details"] = self.details
        return body


def expired(resource_version: int, earliest: int) -> ApiError:
    """410 Gone for a resourceVersion older than the kept history."""
    return ApiError(410, "Expired", f"too old resource version: {resource_version} ({earliest})")


def _details(resource: ResourceType, name: str) -> Obj:
    details: Obj = {"name": name, "kind": resource.plural}
    if resource.group:
        details["group"] = resource.group
    return details


def not_found(resource: ResourceType, name: str) -> ApiError:
    """404 NotFound, worded as the real API server words it."""
    return ApiError(
        404,
        "NotFound",
        f'{resource.plural}{"." + resource.group if resource.group else ""} "{name}" not found',
        _details(resource, name),
    )


def _conflict(resource: ResourceType, name: str) -> ApiError:
    return ApiError(
        409,
        "Conflict",
        f'Operation cannot be fulfilled on {resource.ref} "{name}": the object has been modified; '
        "please apply your changes to the latest version and try again",
        _details(resource, name),
    )


def _invalid(resource: ResourceType, name: str, cause: str) -> ApiError:
    return ApiError(422, "Invalid", f'{resource.kind} "{name}" is invalid: {cause}', _details(resource, name))


def _bad_request(message: str) -> ApiError:
    return ApiError(400, "BadRequest", message)


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _spec_part(obj: Obj) -> Obj:
    """Everything that counts as spec for generation: all but metadata and status."""
    return {k: v for k, v in obj.items() if k not in ("metadata", "status")}


@dataclass(frozen=True)
class Change:
    """One write, as kept in the history and fanned out to watchers."""

    resource_version: int
    type: ChangeType
    resource: ResourceType
    namespace: str
    old: Obj | None
    """The object before the write; None for ADDED."""
    new: Obj
    """The object after the write; for DELETED, the last state with the deletion's resourceVersion."""


@dataclass(frozen=True)
class WatchFilter:
    """What one watch (or list) selects."""

    resource: ResourceType
    namespace: str | None
    """None: all namespaces (and cluster-scoped resources)."""
    labels: tuple[Requirement, ...] = ()
    fields: tuple[FieldRequirement, ...] = ()

    def selects(self, obj: Obj) -> bool:
        """Whether this object is in the selection (the resource and namespace are checked apart)."""
        return labels_match(self.labels, obj.get("metadata", {}).get("labels")) and fields_match(
            self.fields, obj
        )

    def event_for(self, change: Change) -> Obj | None:
        """The watch event this change gives, or None; an object leaving the selection is DELETED."""
        if change.resource != self.resource or (
            self.namespace is not None and change.namespace != self.namespace
        ):
            return None
        now_in = self.selects(change.new)
        was_in = change.old is not None and self.selects(change.old)
        if change.type == "DELETED":
            kind: ChangeType | None = "DELETED" if was_in else None
        elif now_in:
            kind = "MODIFIED" if was_in else "ADDED"
        else:
            kind = "DELETED" if was_in else None
        return None if kind is None else {"type": kind, "object": copy.deepcopy(change.new)}


@dataclass(eq=False)
class Watcher:
    """One open watch: the server's handler drains its queue."""

    filter: WatchFilter
    after: int
    """Only changes with a higher resourceVersion are delivered."""
    queue: asyncio.Queue[Obj | Control] = field(default_factory=asyncio.Queue)

    def offer(self, change: Change) -> None:
        """Queue the event for this change, if the watch selects it."""
        if change.resource_version <= self.after:
            return
        event = self.filter.event_for(change)
        if event is not None:
            self.queue.put_nowait(event)


class Store:
    """All objects, a single resourceVersion counter, a bounded history and the open watchers."""

    def __init__(self, *, history_limit: int = 10_000) -> None:
        self._objects: dict[tuple[ResourceType, str, str], Obj] = {}
        self._resource_version = 0
        self._history: deque[Change] = deque()
        self._history_limit = history_limit
        self._earliest = 0  # resourceVersions below this are expired (410)
        self._watchers: set[Watcher] = set()
        self.schemas: dict[ResourceType, Obj] = {}
        """openAPIV3Schema per custom resource (FakeKube.install_crd): writes are pruned against it."""

    @property
    def resource_version(self) -> int:
        """The latest resourceVersion handed out."""
        return self._resource_version

    @property
    def earliest_resource_version(self) -> int:
        """The oldest resourceVersion a watch or an exact list can still start from."""
        return self._earliest

    @property
    def watchers(self) -> frozenset[Watcher]:
        """The watches open now."""
        return frozenset(self._watchers)

    # -- reads ------------------------------------------------------------------------------------------

    def get(self, resource: ResourceType, namespace: str, name: str) -> Obj:
        """A copy of one object; 404 when missing."""
        obj = self._objects.get((resource, self._ns(resource, namespace), name))
        if obj is None:
            raise not_found(resource, name)
        return copy.deepcopy(obj)

    def list(
        self,
        selection: WatchFilter,
        *,
        resource_version: str | None = None,
        resource_version_match: str | None = None,
    ) -> tuple[list[Obj], int]:
        """Selected objects sorted by namespace and name, and the list's resourceVersion.

        Exact (also used for continue tokens) is served from history, 410 Expired when that is gone.
        Otherwise the latest state, which satisfies NotOlderThan, "0" and no resourceVersion alike:
        an old resourceVersion is not an error there, as on the real server. A resourceVersion from
        the future is 504.
        """
        at = self._resource_version
        if resource_version_match not in (None, "", "Exact", "NotOlderThan"):
            raise _bad_request(f"unsupported resourceVersionMatch {resource_version_match!r}")
        if resource_version in (None, ""):
            if resource_version_match:
                raise _bad_request("resourceVersionMatch is forbidden unless resourceVersion is provided")
        else:
            requested = self._parse_rv(resource_version)
            if requested > self._resource_version:
                raise ApiError(504, "Timeout", f"Too large resource version: {requested}")
            if resource_version_match == "Exact":
                if requested < self._earliest:
                    raise expired(requested, self._earliest)
                at = requested
        objects = self._state_at(selection.resource, at)
        items = [
            copy.deepcopy(obj)
            for (ns, _name), obj in sorted(objects.items())
            if (selection.namespace is None or ns == selection.namespace) and selection.selects(obj)
        ]
        return items, at

    def _state_at(self, resource: ResourceType, resource_version: int) -> dict[tuple[str, str], Obj]:
        state = {(ns, name): obj for (r, ns, name), obj in self._objects.items() if r == resource}
        # Undo the newer changes, newest first.
        for change in reversed(self._history):
            if change.resource_version <= resource_version:
                break
            if change.resource != resource:
                continue
            key = (change.namespace, change.new["metadata"]["name"])
            if change.old is None:
                state.pop(key, None)
            else:
                state[key] = change.old
        return state

    # -- writes -----------------------------------------------------------------------------------------

    def create(self, resource: ResourceType, namespace: str, body: Any) -> Obj:
        """Store a new object; 409 AlreadyExists, 422 Invalid without a name."""
        obj = self._check_body(resource, body)
        meta = obj.setdefault("metadata", {})
        namespace = self._ns(resource, namespace or meta.get("namespace") or "")
        if resource.namespaced and not namespace:
            raise _bad_request("the namespace of the object is required")
        if meta.get("namespace") not in (None, "", namespace):
            raise _bad_request(
                "the namespace of the provided object does not match the namespace sent on the request"
            )
        if not meta.get("name"):
            if not meta.get("generateName"):
                raise _invalid(
                    resource, "", "metadata.name: Required value: name or generateName is required"
                )
            meta["name"] = meta["generateName"] + secrets.token_hex(3)[:5]
        name = meta["name"]
        if not isinstance(name, str) or not _NAME.match(name):
            raise _invalid(
                resource, str(name), "metadata.name: Invalid value: a lowercase RFC 1123 subdomain"
            )
        if (resource, namespace, name) in self._objects:
            raise ApiError(
                409, "AlreadyExists", f'{resource.ref} "{name}" already exists', _details(resource, name)
            )
        for key in _SERVER_META:
            meta.pop(key, None)
        if resource.namespaced:
            meta["namespace"] = namespace
        else:
            meta.pop("namespace", None)
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = _now()
        meta["generation"] = 1
        if resource.status_subresource:
            obj.pop("status", None)
        if resource.kind == "Namespace":
            obj["status"] = {"phase": "Active"}
        return self._commit("ADDED", resource, namespace, None, obj)

    def update(
        self, resource: ResourceType, namespace: str, name: str, body: Any, *, subresource: str = ""
    ) -> Obj:
        """Replace an object (PUT); 409 Conflict when body.metadata.resourceVersion is stale.

        With the status subresource, the main endpoint keeps the old .status and "status" keeps
        everything but .status. Without metadata.resourceVersion the update is unconditional.
        """
        current = self.get(resource, namespace, name)
        obj = self._check_body(resource, body)
        meta = obj.setdefault("metadata", {})
        if meta.get("name") not in (None, name):
            raise _bad_request(
                f"the name of the object ({meta.get('name')}) does not match the name on the URL ({name})"
            )
        if resource.namespaced and meta.get("namespace") not in (None, "", current["metadata"]["namespace"]):
            raise _bad_request(
                "the namespace of the provided object does not match the namespace sent on the request"
            )
        wanted_rv = meta.get("resourceVersion")
        if wanted_rv not in (None, "") and str(wanted_rv) != current["metadata"]["resourceVersion"]:
            raise _conflict(resource, name)
        return self._replace(resource, current, obj, subresource)

    def patch(
        self,
        resource: ResourceType,
        namespace: str,
        name: str,
        patch_type: PatchType,
        patch: Any,
        *,
        subresource: str = "",
    ) -> Obj:
        """Patch an object: merge, JSON patch, or strategic merge (as merge; 415 on custom resources).

        A resourceVersion set by the patch is a precondition, as in the real API server.
        """
        if patch_type == "strategic" and resource.custom:
            raise ApiError(
                415,
                "UnsupportedMediaType",
                "the body of the request was in an unknown format - accepted media types include: "
                "application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml",
            )
        current = self.get(resource, namespace, name)
        if patch_type == "json" and not isinstance(patch, list):
            raise _bad_request("a JSON patch must be a list of operations")
        if patch_type != "json" and not isinstance(patch, dict):
            raise _bad_request("a merge patch must be a JSON object")
        try:
            candidate = json_patch(current, patch) if patch_type == "json" else merge_patch(current, patch)
        except PatchError as exc:
            raise ApiError(422, "Invalid", f"the patch could not be applied: {exc}") from exc
        if not isinstance(candidate, dict):
            raise ApiError(422, "Invalid", "the patch did not leave an object")
        meta = candidate.get("metadata")
        if not isinstance(meta, dict) or meta.get("name") != name:
            raise _bad_request("a patch cannot change metadata.name")
        if str(meta.get("resourceVersion")) != current["metadata"]["resourceVersion"]:
            raise _conflict(resource, name)
        return self._replace(resource, current, self._check_body(resource, candidate), subresource)

    def delete(
        self, resource: ResourceType, namespace: str, name: str, *, preconditions: Obj | None = None
    ) -> Obj:
        """Delete an object at once (no finalizers), then its dependents (ownerReferences).

        Deleting a Namespace deletes everything in it, at once rather than through a Terminating phase.
        """
        current = self.get(resource, namespace, name)
        preconditions = preconditions or {}
        if preconditions.get("uid") not in (None, current["metadata"]["uid"]):
            raise _conflict(resource, name)
        if preconditions.get("resourceVersion") not in (None, current["metadata"]["resourceVersion"]):
            raise _conflict(resource, name)
        gone = copy.deepcopy(current)
        deleted = self._commit("DELETED", resource, self._ns(resource, namespace), current, gone)
        if resource.kind == "Namespace":
            for r, ns, obj_name in sorted(self._objects, key=lambda k: (k[0].ref, k[1], k[2])):
                if ns == name and (r, ns, obj_name) in self._objects:
                    self.delete(r, ns, obj_name)
        self._collect_garbage(current["metadata"]["uid"])
        return deleted

    def compact(self) -> None:
        """Forget the whole history: any older resourceVersion now gives 410 Gone."""
        self._history.clear()
        self._earliest = self._resource_version

    # -- watches ----------------------------------------------------------------------------------------

    def watch(
        self, selection: WatchFilter, resource_version: str | None
    ) -> tuple[Watcher, builtins.list[Obj]]:
        """Open a watch: the events it starts with, then its queue gets every later change.

        No resourceVersion (or "0") starts with a synthetic ADDED per existing object; a number
        replays the kept history after it, or raises 410 when that history is gone.
        """
        if resource_version in (None, "", "0"):
            items, at = self.list(selection)
            initial = [{"type": "ADDED", "object": item} for item in items]
        else:
            at = self._parse_rv(resource_version)
            if at < self._earliest:
                raise expired(at, self._earliest)
            initial = []
            for change in self._history:
                if change.resource_version > at and (event := selection.event_for(change)) is not None:
                    initial.append(event)
            at = max(at, self._resource_version)
        watcher = Watcher(selection, at)
        self._watchers.add(watcher)
        return watcher, initial

    def unwatch(self, watcher: Watcher) -> None:
        """Forget a watch whose stream has ended."""
        self._watchers.discard(watcher)

    def signal_watchers(self, control: Control, *, only: Iterable[Watcher] | None = None) -> int:
        """Send a control message to open watches; returns how many got it."""
        targets = list(self._watchers if only is None else only)
        for watcher in targets:
            watcher.queue.put_nowait(control)
        return len(targets)

    # -- helpers ----------------------------------------------------------------------------------------

    @staticmethod
    def _ns(resource: ResourceType, namespace: str) -> str:
        return namespace if resource.namespaced else ""

    @staticmethod
    def _parse_rv(resource_version: str) -> int:
        try:
            value = int(resource_version)
        except ValueError:
            raise _bad_request(f"invalid resource version {resource_version!r}") from None
        if value < 0:
            raise _bad_request(f"invalid resource version {resource_version!r}")
        return value

    def _check_body(self, resource: ResourceType, body: Any) -> Obj:
        if not isinstance(body, dict):
            raise _bad_request(f"the body of a {resource.kind} must be a JSON object")
        obj = copy.deepcopy(body)
        if obj.get("apiVersion") not in (None, resource.api_version) or obj.get("kind") not in (
            None,
            resource.kind,
        ):
            raise _bad_request(
                f"the API version/kind in the body ({obj.get('apiVersion')}/{obj.get('kind')}) "
                f"does not match {resource.api_version}/{resource.kind}"
            )
        if not isinstance(obj.get("metadata", {}), dict):
            raise _bad_request("metadata must be an object")
        obj["apiVersion"] = resource.api_version
        obj["kind"] = resource.kind
        schema = self.schemas.get(resource)
        return obj if schema is None else prune(obj, schema).obj  # type: ignore[no-any-return]

    def _replace(self, resource: ResourceType, current: Obj, obj: Obj, subresource: str) -> Obj:
        if subresource not in ("", "status") or (subresource == "status" and not resource.status_subresource):
            raise not_found(resource, current["metadata"]["name"])
        if subresource == "status":
            result = copy.deepcopy(current)
            if "status" in obj:
                result["status"] = obj["status"]
            else:
                result.pop("status", None)
        else:
            result = obj
            meta = result["metadata"]
            for key in (*_SERVER_META, "namespace", "name"):
                meta.pop(key, None)
            for key in ("uid", "creationTimestamp", "generation", "resourceVersion", "namespace", "name"):
                if key in current["metadata"]:
                    meta[key] = current["metadata"][key]
            if resource.status_subresource:
                result.pop("status", None)
                if "status" in current:
                    result["status"] = current["status"]
            if _spec_part(result) != _spec_part(current):
                meta["generation"] = current["metadata"]["generation"] + 1
        # A write that changes nothing keeps its resourceVersion and sends no event, as the real server.
        if result == current:
            return current
        namespace = current["metadata"].get("namespace", "")
        return self._commit("MODIFIED", resource, namespace, current, result)

    def _commit(
        self, kind: ChangeType, resource: ResourceType, namespace: str, old: Obj | None, new: Obj
    ) -> Obj:
        self._resource_version += 1
        new["metadata"]["resourceVersion"] = str(self._resource_version)
        key = (resource, namespace, new["metadata"]["name"])
        if kind == "DELETED":
            del self._objects[key]
        else:
            self._objects[key] = new
        change = Change(self._resource_version, kind, resource, namespace, old, new)
        self._history.append(change)
        while len(self._history) > self._history_limit:
            self._earliest = self._history.popleft().resource_version
        for watcher in self._watchers:
            watcher.offer(change)
        result = copy.deepcopy(new)
        if kind != "DELETED":
            self._collect_if_orphaned(resource, namespace, new)
        return result

    def _collect_if_orphaned(self, resource: ResourceType, namespace: str, obj: Obj) -> None:
        """An object written with owners that are all gone is deleted, as the garbage collector does
        (there, a moment later): a client that writes a dependent of an owner deleted meanwhile must
        not leave an orphan behind here either."""
        owners = {ref.get("uid") for ref in obj["metadata"].get("ownerReferences") or []}
        if not owners:
            return
        live_uids = {o["metadata"]["uid"] for o in self._objects.values()}
        if not owners & live_uids:
            self.delete(resource, namespace, obj["metadata"]["name"])

    def _collect_garbage(self, owner_uid: str) -> None:
        live_uids = {obj["metadata"]["uid"] for obj in self._objects.values()}
        for (resource, namespace, name), obj in list(self._objects.items()):
            owners = {ref.get("uid") for ref in obj["metadata"].get("ownerReferences") or []}
            if (
                owner_uid in owners
                and not (owners & live_uids)
                and (resource, namespace, name) in self._objects
            ):
                self.delete(resource, namespace, name)
