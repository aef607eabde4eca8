"""The fake API server tells callers apart (bearer token, else User-Agent) and logs who wrote what."""

from __future__ import annotations

from pathlib import Path

import yaml
from kubernetes_asyncio import client as k8s
from kubernetes_asyncio import config as k8s_config

from tests.fakekube import ANONYMOUS, ApiCall, FakeKube, identity_of


def test_identity_of_prefers_the_bearer_token() -> None:
    assert identity_of({"Authorization": "Bearer replica-0", "User-Agent": "ua"}) == "replica-0"
    assert identity_of({"Authorization": "Basic eDp5", "User-Agent": "ua/1"}) == "ua/1"
    assert identity_of({"Authorization": "Bearer  ", "User-Agent": "ua/1"}) == "ua/1"
    assert identity_of({}) == ANONYMOUS


async def _client_with_token(kube: FakeKube, tmp_path: Path, token: str) -> k8s.ApiClient:
    doc = yaml.safe_load(kube.kubeconfig())
    doc["users"][0]["user"] = {"token": token}
    path = tmp_path / f"{token}.yaml"
    path.write_text(yaml.safe_dump(doc))
    configuration = k8s.Configuration()
    await k8s_config.load_kube_config(
        config_file=str(path), client_configuration=configuration, persist_config=False
    )
    return k8s.ApiClient(configuration)


async def test_calls_and_writes_are_recorded_per_identity(tmp_path: Path) -> None:
    async with FakeKube.running() as kube:
        kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "default"}})
        one = await _client_with_token(kube, tmp_path, "replica-0")
        two = await _client_with_token(kube, tmp_path, "replica-1")
        try:
            secret = {"metadata": {"name": "s"}, "data": {}}
            await k8s.CoreV1Api(one).create_namespaced_secret("default", secret)
            await k8s.CoreV1Api(two).read_namespaced_secret("s", "default")
            await k8s.CoreV1Api(two).delete_namespaced_secret("s", "default")
        finally:
            await one.close()
            await two.close()
        assert kube.identities == ["replica-0", "replica-1"]
        assert kube.calls_by("replica-0") == [ApiCall("create", "", "secrets", "", "default")]
        assert kube.calls_by("replica-1") == [
            ("get", "", "secrets", "", "default"),
            ("delete", "", "secrets", "", "default"),
        ]
        writes = kube.writes
        assert [(w.identity, w.verb, w.resource, w.namespace, w.name) for w in writes] == [
            ("replica-0", "create", "secrets", "default", "s"),
            ("replica-1", "delete", "secrets", "default", "s"),
        ]
        assert writes[0].object["metadata"]["resourceVersion"]
        assert writes[0].at_s <= writes[1].at_s
        # Writes from Python are not requests: not logged.
        kube.create({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "t", "namespace": "default"}})
        assert len(kube.writes) == 2
        kube.clear_calls()
        assert kube.calls == [] and kube.writes == [] and kube.identities == []
