"""A fake Kubernetes API server for the operator's tests, in-process on aiohttp.

There is no real kube-apiserver on the test machines, so this one is faithful where the operator
depends on the semantics. kubernetes_asyncio talks to it with an ordinary ``Configuration(host=kube.url)``.

In a test::

    from tests.fakekube import FakeKube

    async with FakeKube.running(bookmark_interval_s=0.2) as kube:
        config = kubernetes_asyncio.client.Configuration(host=kube.url)
        kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "default"}})
        ...

Standalone, from the repo root (plain http, no auth)::

    python -m tests.fakekube --port 8001 --write-kubeconfig /tmp/fakekube.yaml
    config-operator run --kubeconfig /tmp/fakekube.yaml

``FakeKube`` (tests/fakekube/server.py):

- ``FakeKube.running(*, host="127.0.0.1", port=0, bookmark_interval_s=1.0, history_limit=10_000)``:
  async context manager; serves until the block exits, then closes every watch. Or ``start()``/``stop()``.
- ``kube.url``; ``kube.kubeconfig(namespace="default") -> str``; ``kube.write_kubeconfig(path) -> Path``.
- ``kube.bookmark_interval_s``: seconds between BOOKMARKs (settable at any time).
- Objects from Python, with the same semantics and watch events as the HTTP API (not in the call log).
  Resources are named kubectl-style: "namespaces", "secrets", "configmaps", "events", "services",
  "endpoints", "pods", "events.events.k8s.io", "leases.coordination.k8s.io",
  "prometheusconfigs.reloader.dev", "servicemonitors.monitoring.coreos.com",
  "podmonitors.monitoring.coreos.com".

  - ``create(obj) -> dict``: apiVersion + kind pick the resource, metadata.namespace the namespace.
  - ``get(ref, namespace, name) -> dict`` (ApiError 404); ``find(...) -> dict | None``.
  - ``list(ref, namespace=None, *, label_selector="") -> list[dict]``: sorted by namespace and name
    (whole objects, with kind and apiVersion; over HTTP, built-in list items have neither, as on a
    real server).
  - ``update(obj)``: PUT semantics (409 if metadata.resourceVersion is set and stale; .status kept for
    resources with the status subresource); ``update_status(obj)``: only .status.
  - ``apply(obj)``: create, or replace unconditionally (and set .status if given): a test convenience.
  - ``patch(ref, namespace, name, patch, *, patch_type="merge" | "strategic" | "json")``.
  - ``delete(ref, namespace, name)``: also deletes objects whose ownerReferences all point at it
    (as the garbage collector would), and a Namespace's contents. An object written (either way) with
    ownerReferences none of which exists any more is deleted at once, as the garbage collector would
    a moment later.
  - ``resource_version -> int``: the latest resourceVersion handed out.
  - ``install_crd(crd)``: later writes of that resource are pruned (and defaulted) against the CRD's
    openAPIV3Schema, as a real API server does (tests/fakekube/pruning.py).
  Namespace ("" for cluster-scoped resources) is always positional. Objects are returned as copies.
- Faults:
  - ``fail_next(count=1, *, verb=None, resource=None, path=None, code=500, identity=None) -> Fault``: the next
    `count` matching requests get a Status with that code and its usual reason (500 InternalError,
    409 Conflict, 503 ServiceUnavailable, ...); a watch failed with 410 gets 200 and one ERROR event,
    as from a real server. verb is RBAC's (get, list, watch, create, update, patch, delete); resource
    a plural or a ref; path a regex searched in the URL path. Faults apply in order of adding.
  - ``add_latency(delay_s, *, verb=None, resource=None, path=None, count=None, identity=None) -> Fault``.
    ``identity`` aims either at one caller (see ``identity_of`` below).
  - ``clear_faults()``.
  - ``drop_watches() -> int``: close every open watch stream (a clean end of stream).
  - ``expire_watches() -> int``: compact history, then end each open watch with an ERROR event
    holding a Status 410 Expired; re-watching from an older resourceVersion then gets 410 too.
  - ``hang_watches(*, next_watches=0) -> int``: open watches (and the next N new ones) go silent, no
    events and no bookmarks, stream kept open even past timeoutSeconds, like a dead connection: for
    an informer's inactivity timeout. Missed events
    stay in history, so re-watching from the last resourceVersion recovers them.
  - ``compact()``: forget history; a watch, an Exact list or a continue token from an older
    resourceVersion gets 410 Gone (reason Expired).
- Observation:
  - ``calls -> list[ApiCall]``; ``clear_calls()``. ``ApiCall(verb, api_group, resource, subresource,
    namespace)`` is a NamedTuple (equal to a plain 5-tuple). namespace is "" for cluster-wide and
    cluster-scoped requests, except that a request on one Namespace has its own name there (as RBAC
    sees it). Discovery requests are not logged.
  - Who called: ``identity_of(headers)`` is the bearer token, else the User-Agent, else
    ``ANONYMOUS`` (no authentication: a kubeconfig with ``token: replica-0`` names a replica).
    ``identities -> list[str]`` (in order of first call), ``calls_by(identity) -> list[ApiCall]``,
    and ``writes -> list[Write]``: every successful create/update/patch/delete over HTTP with its
    identity, ref, subresource, namespace, name, the stored object and the loop time (``at_s``), so
    a test can tell that two replicas never wrote at once. ``clear_calls()`` empties all of these.
  - ``open_watches -> int``; ``await wait_for_watches(count, *, resource=None, timeout_s=30.0)``.
- ``ApiError(code, reason, message)`` (store.py) is what the Python methods raise; ``.status()`` gives
  the Status object.
- ``kubeconfig(url, namespace="default") -> str``: the kubeconfig text for any URL.

Note for kubernetes_asyncio: CustomObjectsApi.patch_* sends a dict body as
application/json-patch+json unless told otherwise, which fails here as on a real cluster (400). Pass
``_content_type="application/merge-patch+json"``.

HTTP semantics:

- Paths as the real API: /api/v1/namespaces/{ns}/{plural}[/{name}[/status]], /api/v1/{plural}
  (all namespaces), /api/v1/namespaces[/{name}[/status]], /apis/{group}/{version}/... likewise.
  Discovery: /version, /api, /apis, /api/v1, /apis/{group}/{version}.
- One monotonic resourceVersion counter over all objects (strings); uid, creationTimestamp; generation
  starts at 1 and grows only when something outside metadata and status changes. A write that
  changes nothing keeps the resourceVersion and sends no event.
- get; list with labelSelector (=, ==, !=, in, notin, key, !key), fieldSelector (metadata.name,
  metadata.namespace), limit/continue, resourceVersion + resourceVersionMatch (Exact is served from
  history, 410 when it is gone; NotOlderThan and "0" get the latest state); watch (?watch=true|1) with resourceVersion (none or "0": synthetic
  ADDED for what exists; N: replay of history after N, or 410), allowWatchBookmarks, timeoutSeconds.
  A label-selected watch sees an object that stops matching as DELETED and one that starts as ADDED.
- create (201; 409 AlreadyExists; 422 Invalid without a name; generateName), update (409 Conflict on a
  stale metadata.resourceVersion; none means unconditional), patch (merge; JSON patch; strategic
  merge served as merge on built-in resources and refused with 415 on custom resources, as the real
  server does; 415 for apply), delete (Status Success; DELETED event with a new
  resourceVersion; preconditions; owned objects and a Namespace's contents go with it, at once). No
  finalizers, no deletecollection, no server-side apply. Objects may be created in a namespace that
  does not exist (as if it did); Namespaces are still real objects with labels.
- Status subresource (namespaces, services, pods, prometheusconfigs): .status is dropped on create,
  ignored by the main endpoint, and the only thing /status changes; neither bumps generation.
- Errors are Status objects (kind Status, apiVersion v1, status Failure, message, reason, code):
  400 BadRequest, 404 NotFound, 405 MethodNotAllowed, 409 AlreadyExists/Conflict, 410 Expired, 415
  UnsupportedMediaType, 422 Invalid, 504 Timeout (a resourceVersion from the future), and injected ones.
- A bookmark is an object with only kind, apiVersion and metadata.resourceVersion; it is sent only
  when the watch's queue is empty, so every event up to that version has gone out before it.
- Not modelled: auth, admission and schema validation (CRD openAPIV3Schema), finalizers and graceful
  deletion, server-side apply, managedFields, deletecollection, the shared storage of core and
  events.k8s.io Events, the server-side watch timeout, sendInitialEvents, protobuf, table output.
"""

from .resources import RESOURCES, ResourceType
from .selectors import SelectorError, labels_match, parse_field_selector, parse_label_selector
from .server import ANONYMOUS, ApiCall, FakeKube, Fault, Write, identity_of, kubeconfig
from .store import ApiError

__all__ = [
    "ANONYMOUS",
    "RESOURCES",
    "ApiCall",
    "ApiError",
    "FakeKube",
    "Fault",
    "ResourceType",
    "SelectorError",
    "Write",
    "identity_of",
    "kubeconfig",
    "labels_match",
    "parse_field_selector",
    "parse_label_selector",
]
