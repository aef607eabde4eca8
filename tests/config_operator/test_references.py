"""Which PrometheusConfigs read which Secrets and ConfigMaps, and the cache-less watch of them."""

from __future__ import annotations

from config_operator.client import SECRETS, Kube
from config_operator.generate import Reference
from config_operator.informer import Change
from config_operator.references import FirstItemList, ReferenceIndex, Unkept
from config_operator.resources import ObjectKey
from tests.fakekube import FakeKube

A, B = ObjectKey("monitoring", "a"), ObjectKey("monitoring", "b")
AUTH = Reference("Secret", "shop", "auth")
CA = Reference("ConfigMap", "shop", "ca")


def test_reference_index_both_ways() -> None:
    index = ReferenceIndex()
    index.set(A, [AUTH, CA])
    index.set(B, [AUTH])
    assert index.users("Secret", "shop", "auth") == [A, B]
    assert index.users("ConfigMap", "shop", "ca") == [A]
    assert index.users("Secret", "shop", "ca") == []  # the kind counts
    index.set(A, [CA])  # A no longer reads the Secret
    assert index.users("Secret", "shop", "auth") == [B]
    index.forget(B)
    assert index.users("Secret", "shop", "auth") == [] and index.configs() == [A]
    assert len(index) == 1
    index.set(A, [])
    assert index.configs() == [] and len(index) == 0


def test_unkept_store_hands_every_change_on_and_keeps_nothing() -> None:
    store = Unkept()
    secret = {"metadata": {"namespace": "shop", "name": "auth", "resourceVersion": "1"}}
    assert store.upsert(secret) == Change("MODIFIED", None, secret)
    assert store.upsert(secret) is not None  # the same object again still reaches the handlers
    assert store.delete(secret) == Change("DELETED", secret, None)
    assert store.replace([secret]) == [] and len(store) == 0 and store.get(ObjectKey("shop", "auth")) is None


async def test_first_item_list_gives_only_the_resource_version_and_reports_relists() -> None:
    relists: list[int] = []
    async with FakeKube.running() as kube:
        for i in range(5):
            kube.create(
                {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": f"s{i}", "namespace": "shop"}}
            )
        async with Kube.connect(host=kube.url) as client:
            lister = FirstItemList(client, lambda: relists.append(1))
            first = await lister.list(SECRETS, None)
            assert first.items == [] and first.resource_version == str(kube.resource_version)
            assert relists == []
            await lister.list(SECRETS, "shop")
            assert relists == [1]
