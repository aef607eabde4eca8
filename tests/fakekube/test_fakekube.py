"""The fake API server's semantics, proved over plain HTTP (kubernetes_asyncio's view is in test_client.py)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from tests.fakekube import ApiCall, FakeKube
from tests.fakekube.conftest import BOOKMARK_INTERVAL_S
from tests.support.polling import eventually

Obj = dict[str, Any]
SECRETS = "/api/v1/namespaces/ns1/secrets"
PCS = "/apis/reloader.dev/v1alpha1/namespaces/ns1/prometheusconfigs"
MERGE = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
STRATEGIC = "application/strategic-merge-patch+json"


def secret(name: str, *, labels: dict[str, str] | None = None, data: dict[str, str] | None = None) -> Obj:
    meta: Obj = {"name": name}
    if labels is not None:
        meta["labels"] = labels
    return {"apiVersion": "v1", "kind": "Secret", "metadata": meta, "data": data or {}}


def prometheus_config(name: str, spec: Obj | None = None, status: Obj | None = None) -> Obj:
    obj: Obj = {
        "apiVersion": "reloader.dev/v1alpha1",
        "kind": "PrometheusConfig",
        "metadata": {"name": name},
        "spec": spec or {"scrapeInterval": "30s"},
    }
    if status is not None:
        obj["status"] = status
    return obj


async def call(
    http: aiohttp.ClientSession,
    method: str,
    path: str,
    body: Any = None,
    *,
    content_type: str = "application/json",
    params: dict[str, str] | None = None,
) -> tuple[int, Obj]:
    """One request; returns the status and the decoded JSON body."""
    data = None if body is None else json.dumps(body)
    headers = {"Content-Type": content_type} if data is not None else {}
    async with http.request(method, path, data=data, headers=headers, params=params) as resp:
        return resp.status, await resp.json(content_type=None)


async def ok(http: aiohttp.ClientSession, method: str, path: str, body: Any = None, **kwargs: Any) -> Obj:
    """A request that must succeed (2xx)."""
    status, doc = await call(http, method, path, body, **kwargs)
    assert 200 <= status < 300, (status, doc)
    return doc


def assert_status(status: int, doc: Obj, code: int, reason: str) -> None:
    """The body is a real Status object with this code and reason."""
    assert status == code, doc
    assert doc["kind"] == "Status"
    assert doc["apiVersion"] == "v1"
    assert doc["status"] == "Failure"
    assert doc["code"] == code
    assert doc["reason"] == reason
    assert doc["message"]


@contextlib.asynccontextmanager
async def watching(
    http: aiohttp.ClientSession, path: str, **params: str
) -> AsyncIterator[aiohttp.ClientResponse]:
    """An open watch stream on path."""
    async with http.get(path, params={"watch": "true", **params}) as resp:
        assert resp.status == 200
        yield resp


async def next_event(resp: aiohttp.ClientResponse, *, skip_bookmarks: bool = True) -> Obj | None:
    """The next watch event, or None at the end of the stream."""
    async with asyncio.timeout(30):
        while True:
            line = await resp.content.readline()
            if not line:
                return None
            event: Obj = json.loads(line)
            if not (skip_bookmarks and event["type"] == "BOOKMARK"):
                return event


async def rest_of_stream(resp: aiohttp.ClientResponse) -> list[Obj]:
    """Every event until the server ends the stream (bookmarks included)."""
    events = []
    while (event := await next_event(resp, skip_bookmarks=False)) is not None:
        events.append(event)
    return events


def summary(events: list[Obj]) -> list[tuple[str, str]]:
    return [(e["type"], e["object"]["metadata"].get("name", "")) for e in events if e["type"] != "BOOKMARK"]


@pytest.fixture(autouse=True)
def namespace(kube: FakeKube) -> None:
    kube.create(
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "ns1", "labels": {"team": "a"}}}
    )


# -- metadata, resourceVersion, generation -----------------------------------------------------------------


async def test_create_fills_server_metadata(http: aiohttp.ClientSession) -> None:
    status, created = await call(http, "POST", SECRETS, secret("s1", data={"k": "dg=="}))
    assert status == 201
    meta = created["metadata"]
    assert meta["namespace"] == "ns1"
    assert meta["generation"] == 1
    assert isinstance(meta["resourceVersion"], str) and int(meta["resourceVersion"]) > 0
    assert len(meta["uid"]) == 36
    assert meta["creationTimestamp"].endswith("Z")
    assert created["kind"] == "Secret" and created["apiVersion"] == "v1"
    assert await ok(http, "GET", f"{SECRETS}/s1") == created


async def test_client_values_for_server_fields_are_ignored(http: aiohttp.ClientSession) -> None:
    body = secret("s1")
    body["metadata"].update({"uid": "mine", "resourceVersion": "999", "generation": 7})
    meta = (await ok(http, "POST", SECRETS, body))["metadata"]
    assert meta["uid"] != "mine"
    assert meta["resourceVersion"] != "999"
    assert meta["generation"] == 1


async def test_resource_version_is_one_counter_across_all_objects(http: aiohttp.ClientSession) -> None:
    versions = [
        (await ok(http, "POST", SECRETS, secret("a")))["metadata"]["resourceVersion"],
        (await ok(http, "POST", PCS, prometheus_config("p")))["metadata"]["resourceVersion"],
        (await ok(http, "POST", "/api/v1/namespaces", {"metadata": {"name": "ns2"}}))["metadata"][
            "resourceVersion"
        ],
        (await ok(http, "PATCH", f"{SECRETS}/a", {"data": {"x": "eA=="}}, content_type=MERGE))["metadata"][
            "resourceVersion"
        ],
    ]
    numbers = [int(v) for v in versions]
    assert numbers == sorted(numbers) and len(set(numbers)) == len(numbers)


async def test_generation_moves_only_on_spec_changes(http: aiohttp.ClientSession) -> None:
    await ok(http, "POST", PCS, prometheus_config("p", {"scrapeInterval": "30s"}))
    labelled = await ok(http, "PATCH", f"{PCS}/p", {"metadata": {"labels": {"a": "b"}}}, content_type=MERGE)
    assert labelled["metadata"]["generation"] == 1
    status_set = await ok(http, "PATCH", f"{PCS}/p/status", {"status": {"hash": "x"}}, content_type=MERGE)
    assert status_set["metadata"]["generation"] == 1
    spec_changed = await ok(http, "PATCH", f"{PCS}/p", {"spec": {"scrapeInterval": "1m"}}, content_type=MERGE)
    assert spec_changed["metadata"]["generation"] == 2
    replaced = await ok(http, "PUT", f"{PCS}/p", {**spec_changed, "spec": {"scrapeInterval": "2m"}})
    assert replaced["metadata"]["generation"] == 3


async def test_write_that_changes_nothing_keeps_the_resource_version(http: aiohttp.ClientSession) -> None:
    created = await ok(http, "POST", SECRETS, secret("s1", data={"k": "dg=="}))
    same = await ok(http, "PUT", f"{SECRETS}/s1", created)
    assert same["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]
    patched = await ok(http, "PATCH", f"{SECRETS}/s1", {"data": {"k": "dg=="}}, content_type=MERGE)
    assert patched["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]


# -- create, get, errors ------------------------------------------------------------------------------------


async def test_create_twice_is_409_already_exists(http: aiohttp.ClientSession) -> None:
    await ok(http, "POST", SECRETS, secret("s1"))
    status, doc = await call(http, "POST", SECRETS, secret("s1"))
    assert_status(status, doc, 409, "AlreadyExists")
    assert doc["details"]["name"] == "s1"


async def test_create_without_a_name_is_422_invalid(http: aiohttp.ClientSession) -> None:
    status, doc = await call(http, "POST", SECRETS, {"apiVersion": "v1", "kind": "Secret", "metadata": {}})
    assert_status(status, doc, 422, "Invalid")
    assert "metadata.name" in doc["message"]


async def test_a_name_that_is_not_a_dns_subdomain_is_422_invalid(http: aiohttp.ClientSession) -> None:
    status, doc = await call(http, "POST", SECRETS, secret("Not_Valid"))
    assert_status(status, doc, 422, "Invalid")
    assert "Not_Valid" in doc["message"]


async def test_generate_name_gives_a_unique_name(http: aiohttp.ClientSession) -> None:
    first = await ok(http, "POST", SECRETS, {"metadata": {"generateName": "gen-"}})
    second = await ok(http, "POST", SECRETS, {"metadata": {"generateName": "gen-"}})
    assert first["metadata"]["name"].startswith("gen-")
    assert first["metadata"]["name"] != second["metadata"]["name"]


async def test_wrong_kind_in_body_is_400(http: aiohttp.ClientSession) -> None:
    status, doc = await call(
        http, "POST", SECRETS, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}}
    )
    assert_status(status, doc, 400, "BadRequest")


async def test_get_missing_is_404_not_found(http: aiohttp.ClientSession) -> None:
    status, doc = await call(http, "GET", f"{SECRETS}/nope")
    assert_status(status, doc, 404, "NotFound")
    assert '"nope"' in doc["message"]


async def test_unknown_paths_and_methods(http: aiohttp.ClientSession) -> None:
    status, doc = await call(http, "GET", "/api/v1/namespaces/ns1/widgets")
    assert_status(status, doc, 404, "NotFound")
    status, doc = await call(
        http, "GET", "/apis/reloader.dev/v1alpha1/namespaces/ns1/prometheusconfigs/p/scale"
    )
    assert_status(status, doc, 404, "NotFound")
    status, doc = await call(http, "POST", f"{SECRETS}/s1", secret("s1"))
    assert_status(status, doc, 405, "MethodNotAllowed")
    status, doc = await call(http, "PUT", f"{SECRETS}/s1/status", secret("s1"))
    assert_status(status, doc, 404, "NotFound")


# -- update and optimistic concurrency ----------------------------------------------------------------------


async def test_update_with_a_stale_resource_version_is_409_conflict(http: aiohttp.ClientSession) -> None:
    created = await ok(http, "POST", SECRETS, secret("s1"))
    first = await ok(http, "PUT", f"{SECRETS}/s1", {**created, "data": {"k": "MQ=="}})
    assert int(first["metadata"]["resourceVersion"]) > int(created["metadata"]["resourceVersion"])
    status, doc = await call(http, "PUT", f"{SECRETS}/s1", {**created, "data": {"k": "Mg=="}})
    assert_status(status, doc, 409, "Conflict")
    assert (await ok(http, "GET", f"{SECRETS}/s1"))["data"] == {"k": "MQ=="}


async def test_update_without_a_resource_version_is_unconditional(http: aiohttp.ClientSession) -> None:
    await ok(http, "POST", SECRETS, secret("s1"))
    await ok(http, "PATCH", f"{SECRETS}/s1", {"data": {"k": "MQ=="}}, content_type=MERGE)
    replaced = await ok(http, "PUT", f"{SECRETS}/s1", secret("s1", data={"k": "Mg=="}))
    assert replaced["data"] == {"k": "Mg=="}


async def test_update_keeps_uid_and_creation_and_rejects_another_name(http: aiohttp.ClientSession) -> None:
    created = await ok(http, "POST", SECRETS, secret("s1"))
    body = secret("s1", data={"k": "MQ=="})
    body["metadata"]["uid"] = "other"
    updated = await ok(http, "PUT", f"{SECRETS}/s1", body)
    assert updated["metadata"]["uid"] == created["metadata"]["uid"]
    assert updated["metadata"]["creationTimestamp"] == created["metadata"]["creationTimestamp"]
    status, doc = await call(http, "PUT", f"{SECRETS}/s1", secret("s2"))
    assert_status(status, doc, 400, "BadRequest")


async def test_update_of_a_missing_object_is_404(http: aiohttp.ClientSession) -> None:
    status, doc = await call(http, "PUT", f"{SECRETS}/s1", secret("s1"))
    assert_status(status, doc, 404, "NotFound")


# -- patch ---------------------------------------------------------------------------------------------------


async def test_merge_patch_merges_and_null_removes(http: aiohttp.ClientSession) -> None:
    await ok(http, "POST", SECRETS, secret("s1", labels={"a": "1", "b": "2"}, data={"k": "dg=="}))
    patched = await ok(
        http, "PATCH", f"{SECRETS}/s1", {"metadata": {"labels": {"a": None, "c": "3"}}}, content_type=MERGE
    )
    assert patched["metadata"]["labels"] == {"b": "2", "c": "3"}
    assert patched["data"] == {"k": "dg=="}


async def test_strategic_merge_patch_is_a_merge_on_built_in_resources(http: aiohttp.ClientSession) -> None:
    await ok(http, "POST", SECRETS, secret("s1", labels={"a": "1"}))
    patched = await ok(
        http, "PATCH", f"{SECRETS}/s1", {"metadata": {"labels": {"b": "2"}}}, content_type=STRATEGIC
    )
    assert patched["metadata"]["labels"] == {"a": "1", "b": "2"}


async def test_strategic_merge_patch_is_refused_on_custom_resources(http: aiohttp.ClientSession) -> None:
    await ok(http, "POST", PCS, prometheus_config("p"))
    status, doc = await call(http, "PATCH", f"{PCS}/p", {"spec": {}}, content_type=STRATEGIC)
    assert_status(status, doc, 415, "UnsupportedMediaType")


async def test_json_patch(http: aiohttp.ClientSession) -> None:
    await ok(http, "POST", SECRETS, secret("s1", labels={"a": "1"}, data={"k": "dg=="}))
    ops = [
        {"op": "test", "path": "/metadata/labels/a", "value": "1"},
        {"op": "add", "path": "/metadata/labels/b~1c", "value": "2"},
        {"op": "remove", "path": "/metadata/labels/a"},
        {"op": "replace", "path": "/data/k", "value": "dw=="},
        {"op": "copy", "from": "/data/k", "path": "/data/k2"},
    ]
    patched = await ok(http, "PATCH", f"{SECRETS}/s1", ops, content_type=JSON_PATCH)
    assert patched["metadata"]["labels"] == {"b/c": "2"}
    assert patched["data"] == {"k": "dw==", "k2": "dw=="}


async def test_failed_json_patch_test_changes_nothing(http: aiohttp.ClientSession) -> None:
    created = await ok(http, "POST", SECRETS, secret("s1", labels={"a": "1"}))
    ops = [
        {"op": "replace", "path": "/metadata/labels/a", "value": "2"},
        {"op": "test", "path": "/data", "value": 1},
    ]
    status, doc = await call(http, "PATCH", f"{SECRETS}/s1", ops, content_type=JSON_PATCH)
    assert_status(status, doc, 422, "Invalid")
    assert await ok(http, "GET", f"{SECRETS}/s1") == created


async def test_patch_bodies_of_the_wrong_shape_are_400(http: aiohttp.ClientSession) -> None:
    await ok(http, "POST", SECRETS, secret("s1"))
    status, doc = await call(http, "PATCH", f"{SECRETS}/s1", {"data": {}}, content_type=JSON_PATCH)
    assert_status(status, doc, 400, "BadRequest")
    status, doc = await call(http, "PATCH", f"{SECRETS}/s1", [], content_type=MERGE)
    assert_status(status, doc, 400, "BadRequest")


async def test_apply_patch_is_unsupported(http: aiohttp.ClientSession) -> None:
    await ok(http, "POST", SECRETS, secret("s1"))
    status, doc = await call(http, "PATCH", f"{SECRETS}/s1", {}, content_type="application/apply-patch+yaml")
    assert_status(status, doc, 415, "UnsupportedMediaType")


async def test_patch_with_a_stale_resource_version_is_409(http: aiohttp.ClientSession) -> None:
    created = await ok(http, "POST", SECRETS, secret("s1"))
    await ok(http, "PATCH", f"{SECRETS}/s1", {"data": {"a": "MQ=="}}, content_type=MERGE)
    stale = {"metadata": {"resourceVersion": created["metadata"]["resourceVersion"]}, "data": {"b": "MQ=="}}
    status, doc = await call(http, "PATCH", f"{SECRETS}/s1", stale, content_type=MERGE)
    assert_status(status, doc, 409, "Conflict")


# -- the status subresource ----------------------------------------------------------------------------------


async def test_create_drops_status_of_a_resource_with_the_subresource(http: aiohttp.ClientSession) -> None:
    created = await ok(http, "POST", PCS, prometheus_config("p", status={"configHash": "forged"}))
    assert "status" not in created


async def test_main_endpoint_ignores_status(http: aiohttp.ClientSession) -> None:
    await ok(http, "POST", PCS, prometheus_config("p"))
    await ok(http, "PUT", f"{PCS}/p/status", prometheus_config("p", status={"configHash": "a"}))
    body = prometheus_config("p", {"scrapeInterval": "1m"}, status={"configHash": "b"})
    updated = await ok(http, "PUT", f"{PCS}/p", body)
    assert updated["status"] == {"configHash": "a"}
    assert updated["spec"] == {"scrapeInterval": "1m"}
    patched = await ok(http, "PATCH", f"{PCS}/p", {"status": {"configHash": "c"}}, content_type=MERGE)
    assert patched["status"] == {"configHash": "a"}
    assert patched["metadata"]["resourceVersion"] == updated["metadata"]["resourceVersion"]


async def test_status_endpoint_changes_only_status(http: aiohttp.ClientSession) -> None:
    created = await ok(http, "POST", PCS, prometheus_config("p", {"scrapeInterval": "30s"}))
    body = prometheus_config("p", {"scrapeInterval": "5m"}, status={"observedGeneration": 1})
    body["metadata"]["labels"] = {"sneaky": "yes"}
    updated = await ok(http, "PUT", f"{PCS}/p/status", body)
    assert updated["status"] == {"observedGeneration": 1}
    assert updated["spec"] == {"scrapeInterval": "30s"}
    assert "labels" not in updated["metadata"]
    assert updated["metadata"]["generation"] == created["metadata"]["generation"]
    assert int(updated["metadata"]["resourceVersion"]) > int(created["metadata"]["resourceVersion"])
    patched = await ok(http, "PATCH", f"{PCS}/p/status", {"status": {"configHash": "h"}}, content_type=MERGE)
    assert patched["status"] == {"observedGeneration": 1, "configHash": "h"}
    assert (await ok(http, "GET", f"{PCS}/p/status"))["status"] == patched["status"]


async def test_status_update_with_a_stale_resource_version_is_409(http: aiohttp.ClientSession) -> None:
    created = await ok(http, "POST", PCS, prometheus_config("p"))
    await ok(http, "PATCH", f"{PCS}/p", {"spec": {"paused": True}}, content_type=MERGE)
    status, doc = await call(http, "PUT", f"{PCS}/p/status", {**created, "status": {"configHash": "h"}})
    assert_status(status, doc, 409, "Conflict")


# -- delete -------------------------------------------------------------------------------------------------


async def test_delete_returns_success_and_the_object_is_gone(http: aiohttp.ClientSession) -> None:
    created = await ok(http, "POST", SECRETS, secret("s1"))
    doc = await ok(http, "DELETE", f"{SECRETS}/s1")
    assert doc["kind"] == "Status" and doc["status"] == "Success"
    assert doc["details"]["uid"] == created["metadata"]["uid"]
    status, doc = await call(http, "GET", f"{SECRETS}/s1")
    assert_status(status, doc, 404, "NotFound")
    status, doc = await call(http, "DELETE", f"{SECRETS}/s1")
    assert_status(status, doc, 404, "NotFound")


async def test_delete_preconditions(http: aiohttp.ClientSession) -> None:
    await ok(http, "POST", SECRETS, secret("s1"))
    status, doc = await call(http, "DELETE", f"{SECRETS}/s1", {"preconditions": {"uid": "someone-else"}})
    assert_status(status, doc, 409, "Conflict")
    await ok(http, "GET", f"{SECRETS}/s1")


async def test_deleting_an_owner_deletes_what_it_owns(http: aiohttp.ClientSession) -> None:
    owner = await ok(http, "POST", PCS, prometheus_config("p"))
    ref = {
        "apiVersion": "reloader.dev/v1alpha1",
        "kind": "PrometheusConfig",
        "name": "p",
        "uid": owner["metadata"]["uid"],
        "controller": True,
    }
    owned = secret("prometheus-p")
    owned["metadata"]["ownerReferences"] = [ref]
    await ok(http, "POST", SECRETS, owned)
    await ok(http, "POST", SECRETS, secret("unrelated"))
    await ok(http, "DELETE", f"{PCS}/p")
    names = [i["metadata"]["name"] for i in (await ok(http, "GET", SECRETS))["items"]]
    assert names == ["unrelated"]


async def test_deleting_a_namespace_deletes_its_contents(kube: FakeKube, http: aiohttp.ClientSession) -> None:
    kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "ns2"}})
    await ok(http, "POST", SECRETS, secret("kept"))
    await ok(http, "POST", SECRETS.replace("ns1", "ns2"), secret("gone"))
    await ok(http, "POST", PCS.replace("ns1", "ns2"), prometheus_config("gone"))
    await ok(http, "DELETE", "/api/v1/namespaces/ns2")
    assert [s["metadata"]["name"] for s in (await ok(http, "GET", "/api/v1/secrets"))["items"]] == ["kept"]
    assert (await ok(http, "GET", "/apis/reloader.dev/v1alpha1/prometheusconfigs"))["items"] == []


# -- list -----------------------------------------------------------------------------------------------------


async def test_list_is_sorted_and_carries_the_current_resource_version(
    kube: FakeKube, http: aiohttp.ClientSession
) -> None:
    for name in ("b", "a", "c"):
        await ok(http, "POST", SECRETS, secret(name))
    listed = await ok(http, "GET", SECRETS)
    assert listed["kind"] == "SecretList" and listed["apiVersion"] == "v1"
    assert [i["metadata"]["name"] for i in listed["items"]] == ["a", "b", "c"]
    assert listed["metadata"]["resourceVersion"] == str(kube.resource_version)
    # As the real server: built-in list items carry no kind/apiVersion, custom resources' do.
    assert "kind" not in listed["items"][0] and "apiVersion" not in listed["items"][0]
    await ok(http, "POST", PCS, prometheus_config("p"))
    custom = (await ok(http, "GET", PCS))["items"][0]
    assert (custom["kind"], custom["apiVersion"]) == ("PrometheusConfig", "reloader.dev/v1alpha1")


async def test_list_across_namespaces_and_cluster_scoped(kube: FakeKube, http: aiohttp.ClientSession) -> None:
    kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "ns2"}})
    await ok(http, "POST", PCS, prometheus_config("p1"))
    await ok(http, "POST", PCS.replace("ns1", "ns2"), prometheus_config("p2"))
    everywhere = await ok(http, "GET", "/apis/reloader.dev/v1alpha1/prometheusconfigs")
    assert [(i["metadata"]["namespace"], i["metadata"]["name"]) for i in everywhere["items"]] == [
        ("ns1", "p1"),
        ("ns2", "p2"),
    ]
    only_ns2 = await ok(http, "GET", PCS.replace("ns1", "ns2"))
    assert [i["metadata"]["name"] for i in only_ns2["items"]] == ["p2"]
    namespaces = await ok(http, "GET", "/api/v1/namespaces")
    assert [i["metadata"]["name"] for i in namespaces["items"]] == ["ns1", "ns2"]
    assert namespaces["items"][0]["metadata"]["labels"] == {"team": "a"}
    assert "namespace" not in namespaces["items"][0]["metadata"]


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ("", ["both", "env-only", "none", "tier-only"]),
        ("env=prod", ["both", "env-only"]),
        ("env==prod", ["both", "env-only"]),
        ("env!=prod", ["none", "tier-only"]),
        ("env in (prod, dev)", ["both", "env-only"]),
        ("env notin (prod)", ["none", "tier-only"]),
        ("tier", ["both", "tier-only"]),
        ("!tier", ["env-only", "none"]),
        ("env=prod,tier=web", ["both"]),
        ("env,!tier", ["env-only"]),
        ("tier in (web),env notin (dev)", ["both", "tier-only"]),
    ],
)
async def test_label_selectors(http: aiohttp.ClientSession, selector: str, expected: list[str]) -> None:
    labels = {
        "both": {"env": "prod", "tier": "web"},
        "env-only": {"env": "prod"},
        "tier-only": {"tier": "web"},
    }
    for name in ("both", "env-only", "tier-only", "none"):
        await ok(http, "POST", SECRETS, secret(name, labels=labels.get(name)))
    listed = await ok(http, "GET", SECRETS, params={"labelSelector": selector})
    assert [i["metadata"]["name"] for i in listed["items"]] == expected


async def test_namespaces_can_be_selected_by_label(kube: FakeKube, http: aiohttp.ClientSession) -> None:
    kube.create(
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "ns2", "labels": {"team": "b"}}}
    )
    listed = await ok(http, "GET", "/api/v1/namespaces", params={"labelSelector": "team in (b)"})
    assert [i["metadata"]["name"] for i in listed["items"]] == ["ns2"]


async def test_bad_selectors_are_400(http: aiohttp.ClientSession) -> None:
    for params in (
        {"labelSelector": "env in prod"},
        {"labelSelector": "a=b,,"},
        {"fieldSelector": "spec.x=1"},
    ):
        status, doc = await call(http, "GET", SECRETS, params=params)
        assert_status(status, doc, 400, "BadRequest")


async def test_field_selectors(http: aiohttp.ClientSession) -> None:
    for name in ("a", "b"):
        await ok(http, "POST", SECRETS, secret(name))
    by_name = await ok(http, "GET", SECRETS, params={"fieldSelector": "metadata.name=b"})
    assert [i["metadata"]["name"] for i in by_name["items"]] == ["b"]
    others = await ok(http, "GET", "/api/v1/secrets", params={"fieldSelector": "metadata.namespace!=ns1"})
    assert others["items"] == []


async def test_list_pages_with_limit_and_continue(http: aiohttp.ClientSession) -> None:
    for name in ("a", "b", "c", "d", "e"):
        await ok(http, "POST", SECRETS, secret(name))
    first = await ok(http, "GET", SECRETS, params={"limit": "2"})
    assert [i["metadata"]["name"] for i in first["items"]] == ["a", "b"]
    assert first["metadata"]["remainingItemCount"] == 3
    # A change between pages does not show: every page is served at the first page's resourceVersion.
    await ok(http, "POST", SECRETS, secret("bb"))
    second = await ok(http, "GET", SECRETS, params={"limit": "2", "continue": first["metadata"]["continue"]})
    assert [i["metadata"]["name"] for i in second["items"]] == ["c", "d"]
    third = await ok(http, "GET", SECRETS, params={"limit": "2", "continue": second["metadata"]["continue"]})
    assert [i["metadata"]["name"] for i in third["items"]] == ["e"]
    assert "continue" not in third["metadata"]


async def test_exact_list_at_an_old_resource_version(kube: FakeKube, http: aiohttp.ClientSession) -> None:
    await ok(http, "POST", SECRETS, secret("a", data={"v": "MQ=="}))
    then = (await ok(http, "GET", SECRETS))["metadata"]["resourceVersion"]
    await ok(http, "PATCH", f"{SECRETS}/a", {"data": {"v": "Mg=="}}, content_type=MERGE)
    await ok(http, "POST", SECRETS, secret("b"))
    old = await ok(http, "GET", SECRETS, params={"resourceVersion": then, "resourceVersionMatch": "Exact"})
    assert old["metadata"]["resourceVersion"] == then
    assert [(i["metadata"]["name"], i["data"]) for i in old["items"]] == [("a", {"v": "MQ=="})]
    kube.compact()
    status, doc = await call(
        http, "GET", SECRETS, params={"resourceVersion": then, "resourceVersionMatch": "Exact"}
    )
    assert_status(status, doc, 410, "Expired")
    # Anything at least as new will do, so the latest state does, however old the version asked for.
    for params in (
        {"resourceVersion": then, "resourceVersionMatch": "NotOlderThan"},
        {"resourceVersion": "0"},
    ):
        current = await ok(http, "GET", SECRETS, params=params)
        assert [i["metadata"]["name"] for i in current["items"]] == ["a", "b"]
        assert current["metadata"]["resourceVersion"] == str(kube.resource_version)


async def test_list_from_the_future_is_504(kube: FakeKube, http: aiohttp.ClientSession) -> None:
    future = str(kube.resource_version + 10)
    status, doc = await call(
        http, "GET", SECRETS, params={"resourceVersion": future, "resourceVersionMatch": "Exact"}
    )
    assert_status(status, doc, 504, "Timeout")
    status, doc = await call(http, "GET", SECRETS, params={"resourceVersionMatch": "Exact"})
    assert_status(status, doc, 400, "BadRequest")


async def test_continue_token_expires_with_history(kube: FakeKube, http: aiohttp.ClientSession) -> None:
    for name in ("a", "b", "c"):
        await ok(http, "POST", SECRETS, secret(name))
    first = await ok(http, "GET", SECRETS, params={"limit": "1"})
    await ok(http, "POST", SECRETS, secret("d"))
    kube.compact()
    status, doc = await call(
        http, "GET", SECRETS, params={"limit": "1", "continue": first["metadata"]["continue"]}
    )
    assert_status(status, doc, 410, "Expired")


# -- watch ------------------------------------------------------------------------------------------------------


async def test_watch_from_a_resource_version_sees_every_later_change_in_order(
    http: aiohttp.ClientSession,
) -> None:
    await ok(http, "POST", SECRETS, secret("before"))
    start = (await ok(http, "GET", SECRETS))["metadata"]["resourceVersion"]
    # Made before the watch opens: replayed from history.
    await ok(http, "POST", SECRETS, secret("s1"))
    async with watching(http, SECRETS, resourceVersion=start) as stream:
        await ok(http, "PATCH", f"{SECRETS}/s1", {"data": {"k": "dg=="}}, content_type=MERGE)
        await ok(http, "DELETE", f"{SECRETS}/s1")
        events = [await next_event(stream) for _ in range(3)]
    assert summary([e for e in events if e]) == [("ADDED", "s1"), ("MODIFIED", "s1"), ("DELETED", "s1")]
    versions = [int(e["object"]["metadata"]["resourceVersion"]) for e in events if e]
    assert versions == sorted(versions) and versions[0] > int(start)
    assert events[1] is not None and events[1]["object"]["data"] == {"k": "dg=="}


async def test_watch_without_a_resource_version_starts_with_what_exists(http: aiohttp.ClientSession) -> None:
    await ok(http, "POST", SECRETS, secret("a"))
    await ok(http, "POST", SECRETS, secret("b"))
    async with watching(http, SECRETS) as stream:
        first = [await next_event(stream) for _ in range(2)]
        await ok(http, "POST", SECRETS, secret("c"))
        third = await next_event(stream)
    assert summary([e for e in [*first, third] if e]) == [("ADDED", "a"), ("ADDED", "b"), ("ADDED", "c")]


async def test_watch_only_sees_its_namespace_and_resource(
    kube: FakeKube, http: aiohttp.ClientSession
) -> None:
    kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "ns2"}})
    start = str(kube.resource_version)
    async with watching(http, SECRETS, resourceVersion=start) as stream:
        await ok(http, "POST", SECRETS.replace("ns1", "ns2"), secret("elsewhere"))
        await ok(http, "POST", "/api/v1/namespaces/ns1/configmaps", {"metadata": {"name": "cm"}})
        await ok(http, "POST", SECRETS, secret("here"))
        event = await next_event(stream)
    assert event is not None and summary([event]) == [("ADDED", "here")]


async def test_label_selected_watch_sees_objects_enter_and_leave(
    kube: FakeKube, http: aiohttp.ClientSession
) -> None:
    start = str(kube.resource_version)
    async with watching(http, SECRETS, resourceVersion=start, labelSelector="app=x") as stream:
        await ok(http, "POST", SECRETS, secret("s1", labels={"app": "y"}))
        await ok(http, "PATCH", f"{SECRETS}/s1", {"metadata": {"labels": {"app": "x"}}}, content_type=MERGE)
        await ok(http, "PATCH", f"{SECRETS}/s1", {"data": {"k": "dg=="}}, content_type=MERGE)
        await ok(http, "PATCH", f"{SECRETS}/s1", {"metadata": {"labels": {"app": "z"}}}, content_type=MERGE)
        await ok(http, "DELETE", f"{SECRETS}/s1")
        await ok(http, "POST", SECRETS, secret("end", labels={"app": "x"}))
        events: list[Obj] = []
        while len(events) < 4 and (event := await next_event(stream)) is not None:
            events.append(event)
    assert summary(events) == [("ADDED", "s1"), ("MODIFIED", "s1"), ("DELETED", "s1"), ("ADDED", "end")]
    assert events[2]["object"]["metadata"]["labels"] == {"app": "z"}


async def test_deleted_event_carries_a_new_resource_version(
    kube: FakeKube, http: aiohttp.ClientSession
) -> None:
    created = await ok(http, "POST", SECRETS, secret("s1"))
    async with watching(http, SECRETS, resourceVersion=created["metadata"]["resourceVersion"]) as stream:
        await ok(http, "DELETE", f"{SECRETS}/s1")
        event = await next_event(stream)
    assert event is not None and event["type"] == "DELETED"
    assert int(event["object"]["metadata"]["resourceVersion"]) > int(created["metadata"]["resourceVersion"])
    assert event["object"]["metadata"]["resourceVersion"] == str(kube.resource_version)


async def test_watch_across_namespaces_on_a_custom_resource(
    kube: FakeKube, http: aiohttp.ClientSession
) -> None:
    kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "ns2"}})
    start = str(kube.resource_version)
    async with watching(
        http, "/apis/monitoring.coreos.com/v1/servicemonitors", watch="1", resourceVersion=start
    ) as stream:
        for ns in ("ns1", "ns2"):
            body = {
                "apiVersion": "monitoring.coreos.com/v1",
                "kind": "ServiceMonitor",
                "metadata": {"name": f"sm-{ns}"},
            }
            await ok(http, "POST", f"/apis/monitoring.coreos.com/v1/namespaces/{ns}/servicemonitors", body)
        events = [await next_event(stream) for _ in range(2)]
    assert summary([e for e in events if e]) == [("ADDED", "sm-ns1"), ("ADDED", "sm-ns2")]


async def test_watch_ends_after_timeout_seconds(http: aiohttp.ClientSession) -> None:
    async with watching(http, SECRETS, timeoutSeconds="1") as stream:
        events = await rest_of_stream(stream)
    assert events == []


async def test_watch_from_an_expired_resource_version_gets_410(
    kube: FakeKube, http: aiohttp.ClientSession
) -> None:
    start = str(kube.resource_version)
    await ok(http, "POST", SECRETS, secret("s1"))
    kube.compact()
    async with watching(http, SECRETS, resourceVersion=start) as stream:
        events = await rest_of_stream(stream)
    assert len(events) == 1 and events[0]["type"] == "ERROR"
    status = events[0]["object"]
    assert (status["kind"], status["code"], status["reason"], status["status"]) == (
        "Status",
        410,
        "Expired",
        "Failure",
    )


async def test_bounded_history_expires_old_resource_versions() -> None:
    async with FakeKube.running(history_limit=3) as small:
        small.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "ns1"}})
        start = str(small.resource_version)
        for name in ("a", "b", "c"):
            small.create({**secret(name), "metadata": {"name": name, "namespace": "ns1"}})
        async with aiohttp.ClientSession(base_url=small.url) as session:
            # All three changes after start are still kept...
            async with watching(session, SECRETS, resourceVersion=start, timeoutSeconds="1") as stream:
                kept = await rest_of_stream(stream)
            small.create({**secret("d"), "metadata": {"name": "d", "namespace": "ns1"}})
            # ...until a fourth pushes the oldest out.
            async with watching(session, SECRETS, resourceVersion=start) as stream:
                gone = await rest_of_stream(stream)
    assert summary(kept) == [("ADDED", "a"), ("ADDED", "b"), ("ADDED", "c")]
    assert [e["type"] for e in gone] == ["ERROR"] and gone[0]["object"]["code"] == 410


async def test_bookmarks_only_when_allowed(kube: FakeKube, http: aiohttp.ClientSession) -> None:
    start = str(kube.resource_version)
    async with watching(http, SECRETS, resourceVersion=start, allowWatchBookmarks="true") as stream:
        bookmark = await next_event(stream, skip_bookmarks=False)
        await ok(http, "POST", SECRETS, secret("s1"))
        after = await next_event(stream, skip_bookmarks=True)
        later = await next_event(stream, skip_bookmarks=False)
    assert bookmark == {
        "type": "BOOKMARK",
        "object": {"kind": "Secret", "apiVersion": "v1", "metadata": {"resourceVersion": start}},
    }
    assert after is not None and after["type"] == "ADDED"
    assert later is not None and later["type"] == "BOOKMARK"
    assert later["object"]["metadata"]["resourceVersion"] == str(kube.resource_version)

    async with watching(http, SECRETS, resourceVersion=str(kube.resource_version)) as stream:
        await asyncio.sleep(BOOKMARK_INTERVAL_S * 3)  # several bookmark periods, in which none may come
        await ok(http, "POST", SECRETS, secret("s2"))
        first = await next_event(stream, skip_bookmarks=False)
    assert first is not None and summary([first]) == [("ADDED", "s2")]


# -- faults ---------------------------------------------------------------------------------------------------


async def test_fail_next_fails_only_matching_requests(kube: FakeKube, http: aiohttp.ClientSession) -> None:
    kube.fail_next(2, verb="list", resource="secrets")
    for _ in range(2):
        status, doc = await call(http, "GET", SECRETS)
        assert_status(status, doc, 500, "InternalError")
    await ok(http, "GET", "/api/v1/namespaces/ns1/configmaps")
    await ok(http, "POST", SECRETS, secret("s1"))
    await ok(http, "GET", SECRETS)


async def test_fail_next_by_path_and_code(kube: FakeKube, http: aiohttp.ClientSession) -> None:
    await ok(http, "POST", PCS, prometheus_config("p"))
    kube.fail_next(path=r"/prometheusconfigs/p/status$", code=503)
    status, doc = await call(http, "PATCH", f"{PCS}/p/status", {"status": {"a": 1}}, content_type=MERGE)
    assert_status(status, doc, 503, "ServiceUnavailable")
    await ok(http, "PATCH", f"{PCS}/p/status", {"status": {"a": 1}}, content_type=MERGE)


async def test_faults_apply_to_watches(kube: FakeKube, http: aiohttp.ClientSession) -> None:
    kube.fail_next(verb="watch")
    status, doc = await call(http, "GET", SECRETS, params={"watch": "true"})
    assert_status(status, doc, 500, "InternalError")


async def test_injected_conflict_and_expired_watch(kube: FakeKube, http: aiohttp.ClientSession) -> None:
    created = await ok(http, "POST", SECRETS, secret("s1"))
    kube.fail_next(verb="update", code=409)
    status, doc = await call(http, "PUT", f"{SECRETS}/s1", {**created, "data": {"k": "MQ=="}})
    assert_status(status, doc, 409, "Conflict")
    await ok(http, "PUT", f"{SECRETS}/s1", {**created, "data": {"k": "MQ=="}})
    kube.fail_next(verb="watch", code=410)
    async with watching(http, SECRETS, resourceVersion=str(kube.resource_version)) as stream:
        events = await rest_of_stream(stream)
    assert [(e["type"], e["object"]["code"], e["object"]["reason"]) for e in events] == [
        ("ERROR", 410, "Expired")
    ]


async def test_latency_delays_matching_requests_only(kube: FakeKube, http: aiohttp.ClientSession) -> None:
    await ok(http, "POST", SECRETS, secret("s1"))
    kube.clear_calls()
    kube.add_latency(3.0, verb="get", count=1)
    async with asyncio.TaskGroup() as tg:
        delayed = tg.create_task(ok(http, "GET", f"{SECRETS}/s1"))
        await eventually(lambda: kube.calls, what="the server to have the request (now in its delay)")
        # A request the fault does not match is served meanwhile; the delayed one is still waiting.
        listed = await ok(http, "GET", SECRETS)
        assert not delayed.done()
    assert [i["metadata"]["name"] for i in listed["items"]] == ["s1"]
    assert delayed.result()["metadata"]["name"] == "s1"
    assert kube.calls == [("get", "", "secrets", "", "ns1"), ("list", "", "secrets", "", "ns1")]


async def test_drop_watches_ends_streams_and_a_rewatch_misses_nothing(
    kube: FakeKube, http: aiohttp.ClientSession
) -> None:
    start = str(kube.resource_version)
    async with watching(http, SECRETS, resourceVersion=start) as stream:
        await ok(http, "POST", SECRETS, secret("a"))
        seen = await next_event(stream)
        await kube.wait_for_watches(1)
        assert kube.drop_watches() == 1
        assert await rest_of_stream(stream) == []
    assert seen is not None
    await ok(http, "POST", SECRETS, secret("b"))  # made while nobody watches
    last = seen["object"]["metadata"]["resourceVersion"]
    async with watching(http, SECRETS, resourceVersion=last) as stream:
        resumed = await next_event(stream)
    assert resumed is not None and summary([resumed]) == [("ADDED", "b")]


async def test_expire_watches_sends_410_and_older_versions_stay_expired(
    kube: FakeKube, http: aiohttp.ClientSession
) -> None:
    start = str(kube.resource_version)
    async with watching(http, SECRETS, resourceVersion=start) as stream:
        await kube.wait_for_watches(1)
        await ok(http, "POST", SECRETS, secret("a"))
        assert kube.expire_watches() == 1
        events = await rest_of_stream(stream)
    assert [e["type"] for e in events] == ["ADDED", "ERROR"]
    assert (events[1]["object"]["code"], events[1]["object"]["reason"]) == (410, "Expired")
    async with watching(http, SECRETS, resourceVersion=start) as stream:
        again = await rest_of_stream(stream)
    assert [e["type"] for e in again] == ["ERROR"]


async def test_hung_watch_stays_open_and_silent(kube: FakeKube, http: aiohttp.ClientSession) -> None:
    start = str(kube.resource_version)
    async with watching(http, SECRETS, resourceVersion=start, allowWatchBookmarks="true") as stream:
        await kube.wait_for_watches(1)
        assert kube.hang_watches() == 1
        await ok(http, "POST", SECRETS, secret("missed"))
        await asyncio.sleep(BOOKMARK_INTERVAL_S * 3)  # bookmark periods pass in silence
        assert kube.open_watches == 1
        # The close is queued after the event: a live watch would have sent the event first.
        kube.drop_watches()
        leftovers = await rest_of_stream(stream)
    assert summary(leftovers) == []
    async with watching(http, SECRETS, resourceVersion=start) as stream:
        recovered = await next_event(stream)
    assert recovered is not None and summary([recovered]) == [("ADDED", "missed")]


async def test_hung_watch_outlives_its_timeout_seconds(kube: FakeKube, http: aiohttp.ClientSession) -> None:
    async with watching(http, SECRETS, timeoutSeconds="1") as stream:
        await kube.wait_for_watches(1)
        kube.hang_watches()
        await asyncio.sleep(2)  # past timeoutSeconds, which a dead connection does not honour
        assert kube.open_watches == 1
        kube.drop_watches()
        assert await rest_of_stream(stream) == []


async def test_hang_next_watches_silences_new_ones_from_the_start(
    kube: FakeKube, http: aiohttp.ClientSession
) -> None:
    await ok(http, "POST", SECRETS, secret("exists"))
    kube.hang_watches(next_watches=1)
    async with watching(http, SECRETS) as stream:
        await kube.wait_for_watches(1)
        kube.drop_watches()
        assert await rest_of_stream(stream) == []
    async with watching(http, SECRETS) as stream:
        event = await next_event(stream)
    assert event is not None and summary([event]) == [("ADDED", "exists")]


async def test_stop_closes_open_watches() -> None:
    async with (
        FakeKube.running() as other,
        aiohttp.ClientSession(base_url=other.url) as session,
        watching(session, "/api/v1/namespaces") as stream,
    ):
        await other.wait_for_watches(1)
        await other.stop()
        assert await rest_of_stream(stream) == []


# -- the call log, discovery ----------------------------------------------------------------------------------


async def test_call_log_in_rbac_terms(kube: FakeKube, http: aiohttp.ClientSession) -> None:
    kube.clear_calls()
    await ok(http, "POST", PCS, prometheus_config("p"))
    await ok(http, "GET", f"{PCS}/p")
    await ok(http, "GET", "/apis/reloader.dev/v1alpha1/prometheusconfigs")
    await ok(http, "PUT", f"{PCS}/p/status", prometheus_config("p", status={"a": 1}))
    await ok(http, "PATCH", f"{PCS}/p/status", {"status": {"a": 2}}, content_type=MERGE)
    await ok(http, "GET", "/api/v1/namespaces/ns1")
    await ok(http, "GET", "/api/v1/namespaces")
    await call(http, "GET", f"{SECRETS}/missing")
    await ok(http, "DELETE", f"{PCS}/p")
    async with watching(
        http, "/apis/coordination.k8s.io/v1/namespaces/ns1/leases", timeoutSeconds="1"
    ) as stream:
        await rest_of_stream(stream)
    await ok(http, "GET", "/version")
    await ok(http, "GET", "/apis")
    group = "reloader.dev"
    assert kube.calls == [
        ("create", group, "prometheusconfigs", "", "ns1"),
        ("get", group, "prometheusconfigs", "", "ns1"),
        ("list", group, "prometheusconfigs", "", ""),
        ("update", group, "prometheusconfigs", "status", "ns1"),
        ("patch", group, "prometheusconfigs", "status", "ns1"),
        ("get", "", "namespaces", "", "ns1"),
        ("list", "", "namespaces", "", ""),
        ("get", "", "secrets", "", "ns1"),
        ("delete", group, "prometheusconfigs", "", "ns1"),
        ("watch", "coordination.k8s.io", "leases", "", "ns1"),
    ]
    assert kube.calls[0] == ApiCall("create", group, "prometheusconfigs", "", "ns1")


async def test_discovery(http: aiohttp.ClientSession) -> None:
    assert (await ok(http, "GET", "/version"))["major"] == "1"
    assert (await ok(http, "GET", "/api"))["versions"] == ["v1"]
    groups = {g["name"] for g in (await ok(http, "GET", "/apis"))["groups"]}
    assert {"reloader.dev", "monitoring.coreos.com", "coordination.k8s.io", "events.k8s.io"} <= groups
    resources = await ok(http, "GET", "/apis/reloader.dev/v1alpha1")
    names = {r["name"]: r["namespaced"] for r in resources["resources"]}
    assert names == {"prometheusconfigs": True, "prometheusconfigs/status": True}
    core = {r["name"] for r in (await ok(http, "GET", "/api/v1"))["resources"]}
    assert {"namespaces", "secrets", "configmaps", "events", "services", "endpoints", "pods"} <= core


async def test_python_api_changes_reach_http_watchers(kube: FakeKube, http: aiohttp.ClientSession) -> None:
    start = str(kube.resource_version)
    async with watching(http, PCS, resourceVersion=start) as stream:
        obj = {**prometheus_config("p"), "metadata": {"name": "p", "namespace": "ns1"}}
        kube.create(obj)
        kube.apply({**obj, "spec": {"scrapeInterval": "1m"}, "status": {"configHash": "h"}})
        kube.patch(
            "prometheusconfigs.reloader.dev",
            "ns1",
            "p",
            [{"op": "add", "path": "/spec/paused", "value": True}],
            patch_type="json",
        )
        kube.delete("prometheusconfigs.reloader.dev", "ns1", "p")
        events = [await next_event(stream) for _ in range(5)]
    assert summary([e for e in events if e]) == [
        ("ADDED", "p"),
        ("MODIFIED", "p"),
        ("MODIFIED", "p"),
        ("MODIFIED", "p"),
        ("DELETED", "p"),
    ]
    assert events[2] is not None and events[2]["object"]["status"] == {"configHash": "h"}
    assert kube.find("prometheusconfigs.reloader.dev", "ns1", "p") is None
