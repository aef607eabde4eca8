"""The fake API server as kubernetes_asyncio sees it: its typed APIs, CustomObjectsApi, Watch, leader election."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from kubernetes_asyncio import client, config, watch
from kubernetes_asyncio.client.exceptions import ApiException
from kubernetes_asyncio.leaderelection import electionconfig, leaderelection
from kubernetes_asyncio.leaderelection.resourcelock.leaselock import LeaseLock

from tests.fakekube import ApiCall, FakeKube
from tests.support.polling import eventually

GROUP, VERSION, PLURAL = "reloader.dev", "v1alpha1", "prometheusconfigs"
# kubernetes_asyncio's CustomObjectsApi sends a dict as a JSON patch unless told otherwise.
MERGE_PATCH: dict[str, Any] = {"_content_type": "application/merge-patch+json"}
NEW_YEAR = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture
async def api(kube: FakeKube) -> AsyncIterator[client.ApiClient]:
    kube.create(
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "ns1", "labels": {"team": "a"}}}
    )
    async with client.ApiClient(client.Configuration(host=kube.url)) as api_client:
        yield api_client


def v1_secret(
    name: str, labels: dict[str, str] | None = None, data: dict[str, str] | None = None
) -> client.V1Secret:
    return client.V1Secret(metadata=client.V1ObjectMeta(name=name, labels=labels), data=data)


def prometheus_config(name: str, scrape_interval: str = "30s") -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "PrometheusConfig",
        "metadata": {"name": name},
        "spec": {"scrapeInterval": scrape_interval},
    }


async def test_secrets_crud_and_errors(api: client.ApiClient) -> None:
    core = client.CoreV1Api(api)
    created = await core.create_namespaced_secret("ns1", v1_secret("s1", {"app": "x"}, {"k": "dg=="}))
    assert created.metadata.uid and created.metadata.resource_version
    with pytest.raises(ApiException) as exists:
        await core.create_namespaced_secret("ns1", v1_secret("s1"))
    assert exists.value.status == 409

    read = await core.read_namespaced_secret("s1", "ns1")
    read.data = {"k": "dzI="}
    replaced = await core.replace_namespaced_secret("s1", "ns1", read)
    assert replaced.data == {"k": "dzI="}
    with pytest.raises(ApiException) as stale:
        await core.replace_namespaced_secret("s1", "ns1", created)
    assert stale.value.status == 409

    patched = await core.patch_namespaced_secret("s1", "ns1", {"metadata": {"labels": {"extra": "1"}}})
    assert patched.metadata.labels == {"app": "x", "extra": "1"}

    listed = await core.list_namespaced_secret("ns1", label_selector="app in (x),extra")
    assert [s.metadata.name for s in listed.items] == ["s1"]
    assert listed.metadata.resource_version == patched.metadata.resource_version

    status = await core.delete_namespaced_secret("s1", "ns1")
    assert status.status == "Success"
    with pytest.raises(ApiException) as missing:
        await core.read_namespaced_secret("s1", "ns1")
    assert missing.value.status == 404


async def test_namespaces_are_cluster_scoped_objects_with_labels(api: client.ApiClient) -> None:
    core = client.CoreV1Api(api)
    await core.create_namespace(
        client.V1Namespace(metadata=client.V1ObjectMeta(name="ns2", labels={"team": "b"}))
    )
    selected = await core.list_namespace(label_selector="team!=a")
    assert [n.metadata.name for n in selected.items] == ["ns2"]
    assert (await core.read_namespace("ns1")).metadata.labels == {"team": "a"}


async def test_custom_objects(kube: FakeKube, api: client.ApiClient) -> None:
    custom = client.CustomObjectsApi(api)
    created = await custom.create_namespaced_custom_object(
        GROUP, VERSION, "ns1", PLURAL, prometheus_config("p")
    )
    assert created["metadata"]["generation"] == 1

    status = await custom.patch_namespaced_custom_object_status(
        GROUP, VERSION, "ns1", PLURAL, "p", {"status": {"observedGeneration": 1}}, **MERGE_PATCH
    )
    assert status["status"] == {"observedGeneration": 1}
    assert status["metadata"]["generation"] == 1

    current = await custom.get_namespaced_custom_object(GROUP, VERSION, "ns1", PLURAL, "p")
    current["spec"]["scrapeInterval"] = "1m"
    replaced = await custom.replace_namespaced_custom_object(GROUP, VERSION, "ns1", PLURAL, "p", current)
    assert replaced["metadata"]["generation"] == 2
    assert replaced["status"] == {"observedGeneration": 1}
    with pytest.raises(ApiException) as stale:
        await custom.replace_namespaced_custom_object_status(
            GROUP, VERSION, "ns1", PLURAL, "p", {**current, "status": {"observedGeneration": 2}}
        )
    assert stale.value.status == 409
    replaced["status"] = {"observedGeneration": 2}
    with_status = await custom.replace_namespaced_custom_object_status(
        GROUP, VERSION, "ns1", PLURAL, "p", replaced
    )
    assert with_status["status"] == {"observedGeneration": 2}

    everywhere = await custom.list_cluster_custom_object(GROUP, VERSION, PLURAL)
    assert [i["metadata"]["name"] for i in everywhere["items"]] == ["p"]

    await custom.delete_namespaced_custom_object(GROUP, VERSION, "ns1", PLURAL, "p")
    assert kube.find("prometheusconfigs.reloader.dev", "ns1", "p") is None


async def test_custom_object_patch_needs_an_explicit_merge_content_type(api: client.ApiClient) -> None:
    custom = client.CustomObjectsApi(api)
    await custom.create_namespaced_custom_object(GROUP, VERSION, "ns1", PLURAL, prometheus_config("p"))
    # kubernetes_asyncio sends a dict as a JSON patch by default, which a real server refuses too.
    with pytest.raises(ApiException) as refused:
        await custom.patch_namespaced_custom_object(
            GROUP, VERSION, "ns1", PLURAL, "p", {"spec": {"paused": True}}
        )
    assert refused.value.status == 400
    patched = await custom.patch_namespaced_custom_object(
        GROUP, VERSION, "ns1", PLURAL, "p", {"spec": {"paused": True}}, **MERGE_PATCH
    )
    assert patched["spec"] == {"scrapeInterval": "30s", "paused": True}


async def test_monitors(api: client.ApiClient) -> None:
    custom = client.CustomObjectsApi(api)
    for plural, kind in (("servicemonitors", "ServiceMonitor"), ("podmonitors", "PodMonitor")):
        body = {
            "apiVersion": "monitoring.coreos.com/v1",
            "kind": kind,
            "metadata": {"name": "m", "labels": {"team": "a"}},
            "spec": {"selector": {}},
        }
        await custom.create_namespaced_custom_object("monitoring.coreos.com", "v1", "ns1", plural, body)
        listed = await custom.list_cluster_custom_object(
            "monitoring.coreos.com", "v1", plural, label_selector="team=a"
        )
        assert [(i["kind"], i["metadata"]["name"]) for i in listed["items"]] == [(kind, "m")]


async def test_leases(api: client.ApiClient) -> None:
    coordination = client.CoordinationV1Api(api)
    spec = client.V1LeaseSpec(holder_identity="a", lease_duration_seconds=15, renew_time=NEW_YEAR)
    created = await coordination.create_namespaced_lease(
        "ns1", client.V1Lease(metadata=client.V1ObjectMeta(name="leader"), spec=spec)
    )
    read = await coordination.read_namespaced_lease("leader", "ns1")
    assert read.spec.holder_identity == "a"
    assert read.spec.renew_time.year == 2026
    read.spec.holder_identity = "b"
    await coordination.replace_namespaced_lease("leader", "ns1", read)
    created.spec.holder_identity = "c"
    with pytest.raises(ApiException) as stale:
        await coordination.replace_namespaced_lease("leader", "ns1", created)
    assert stale.value.status == 409
    assert (await coordination.read_namespaced_lease("leader", "ns1")).spec.holder_identity == "b"


async def test_events_in_both_groups(kube: FakeKube, api: client.ApiClient) -> None:
    ref = client.V1ObjectReference(kind="PrometheusConfig", namespace="ns1", name="p")
    await client.CoreV1Api(api).create_namespaced_event(
        "ns1",
        client.CoreV1Event(
            metadata=client.V1ObjectMeta(generate_name="p."),
            involved_object=ref,
            reason="Rejected",
            type="Warning",
        ),
    )
    await client.EventsV1Api(api).create_namespaced_event(
        "ns1",
        client.EventsV1Event(
            metadata=client.V1ObjectMeta(generate_name="p."),
            event_time=NEW_YEAR,
            regarding=ref,
            reason="Updated",
            type="Normal",
            action="Reconcile",
            reporting_controller="config-operator",
            reporting_instance="x",
        ),
    )
    assert [e["reason"] for e in kube.list("events", "ns1")] == ["Rejected"]
    assert [e["reason"] for e in kube.list("events.events.k8s.io", "ns1")] == ["Updated"]


async def test_watch_sees_added_modified_deleted(kube: FakeKube, api: client.ApiClient) -> None:
    core = client.CoreV1Api(api)
    start = (await core.list_namespaced_secret("ns1")).metadata.resource_version
    await core.create_namespaced_secret("ns1", v1_secret("s1"))
    await core.patch_namespaced_secret("s1", "ns1", {"data": {"k": "dg=="}})
    await core.delete_namespaced_secret("s1", "ns1")
    seen: list[tuple[str, str]] = []
    async with watch.Watch() as stream:
        async for event in stream.stream(
            core.list_namespaced_secret, "ns1", resource_version=start, timeout_seconds=30
        ):
            assert isinstance(event["object"], client.V1Secret)
            seen.append((event["type"], event["object"].metadata.name))
            if len(seen) == 3:
                break
    assert seen == [("ADDED", "s1"), ("MODIFIED", "s1"), ("DELETED", "s1")]


async def test_watch_on_custom_objects_with_bookmarks(kube: FakeKube, api: client.ApiClient) -> None:
    custom = client.CustomObjectsApi(api)
    start = str(kube.resource_version)
    types: list[str] = []
    async with watch.Watch() as stream:
        async for event in stream.stream(
            custom.list_cluster_custom_object,
            GROUP,
            VERSION,
            PLURAL,
            resource_version=start,
            allow_watch_bookmarks=True,
            timeout_seconds=30,
        ):
            types.append(event["type"])
            if types == ["BOOKMARK"]:
                await custom.create_namespaced_custom_object(
                    GROUP, VERSION, "ns1", PLURAL, prometheus_config("p")
                )
            elif event["type"] == "ADDED":
                assert event["object"]["metadata"]["name"] == "p"
            elif "ADDED" in types:
                break
        # Watch keeps the latest resourceVersion, from events and bookmarks alike.
        assert stream.resource_version == str(kube.resource_version)
    assert types == ["BOOKMARK", "ADDED", "BOOKMARK"]


async def test_watch_raises_410_for_an_expired_resource_version(
    kube: FakeKube, api: client.ApiClient
) -> None:
    core = client.CoreV1Api(api)
    start = (await core.list_namespaced_secret("ns1")).metadata.resource_version
    await core.create_namespaced_secret("ns1", v1_secret("s1"))
    kube.compact()
    async with watch.Watch() as stream:
        with pytest.raises(ApiException) as gone:
            async for _ in stream.stream(
                core.list_namespaced_secret, "ns1", resource_version=start, timeout_seconds=30
            ):
                pass
    assert gone.value.status == 410
    assert "Expired" in str(gone.value.reason)


async def test_watch_forever_resumes_after_a_dropped_stream(kube: FakeKube, api: client.ApiClient) -> None:
    """Without timeout_seconds, Watch reconnects from its last resourceVersion: nothing is missed."""
    core = client.CoreV1Api(api)
    start = (await core.list_namespaced_secret("ns1")).metadata.resource_version
    await core.create_namespaced_secret("ns1", v1_secret("before"))
    names: list[str] = []
    async with watch.Watch() as stream:
        async for event in stream.stream(core.list_namespaced_secret, "ns1", resource_version=start):
            names.append(event["object"].metadata.name)
            if len(names) == 1:
                # Queued behind the close, so only a re-watch can deliver it.
                assert kube.drop_watches() == 1
                kube.create(
                    {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "after", "namespace": "ns1"}}
                )
            else:
                break
    assert [c for c in kube.calls if c.verb == "watch"] == [("watch", "", "secrets", "", "ns1")] * 2
    assert names == ["before", "after"]


async def test_kubeconfig_written_for_the_server(kube: FakeKube, tmp_path: Path) -> None:
    kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "ns1"}})
    path = kube.write_kubeconfig(tmp_path / "kubeconfig", namespace="ns1")
    configuration = client.Configuration()
    await config.load_kube_config(config_file=str(path), client_configuration=configuration)
    assert configuration.host == kube.url
    async with client.ApiClient(configuration) as api_client:
        names = [n.metadata.name for n in (await client.CoreV1Api(api_client).list_namespace()).items]
    assert names == ["ns1"]
    assert ("list", "", "namespaces", "", "") in kube.calls


async def test_leader_election_with_a_lease(kube: FakeKube, api: client.ApiClient) -> None:
    """kubernetes_asyncio's own leader election runs against the fake: one leader, the other waits."""
    leading: dict[str, asyncio.Event] = {"a": asyncio.Event(), "b": asyncio.Event()}

    def candidate(identity: str) -> leaderelection.LeaderElection:
        async def started() -> None:
            leading[identity].set()

        async def stopped() -> None:
            leading[identity].clear()

        lock = LeaseLock("operator-leader", "ns1", identity, api)
        settings = electionconfig.Config(
            lock,
            lease_duration=3,
            renew_deadline=2,
            retry_period=1,
            onstarted_leading=started,
            onstopped_leading=stopped,
        )
        return leaderelection.LeaderElection(settings)

    def lease_reads() -> int:
        return kube.calls.count(ApiCall("get", "coordination.k8s.io", "leases", "", "ns1"))

    async with asyncio.TaskGroup() as group:
        first = group.create_task(candidate("a").run())
        async with asyncio.timeout(30):
            await leading["a"].wait()
        reads = lease_reads()
        second = group.create_task(candidate("b").run())
        await eventually(lambda: lease_reads() >= reads + 3, what="b to read the Lease more than once")
        assert not leading["b"].is_set()
        assert (
            kube.get("leases.coordination.k8s.io", "ns1", "operator-leader")["spec"]["holderIdentity"] == "a"
        )
        first.cancel()  # a dies without releasing: b takes over once the lease expires
        async with asyncio.timeout(30):
            await leading["b"].wait()
        assert (
            kube.get("leases.coordination.k8s.io", "ns1", "operator-leader")["spec"]["holderIdentity"] == "b"
        )
        second.cancel()
