"""The garbage collector's other half: a dependent written after its owner is gone does not stay."""

from __future__ import annotations

from typing import Any

from tests.fakekube import FakeKube


def _secret(name: str, *owner_uids: str) -> dict[str, Any]:
    refs = [{"apiVersion": "v1", "kind": "ConfigMap", "name": f"o-{u}", "uid": u} for u in owner_uids]
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": "default", "ownerReferences": refs},
    }


def test_a_dependent_of_a_deleted_owner_is_collected() -> None:
    kube = FakeKube()
    owner = kube.create(
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "o", "namespace": "default"}}
    )
    uid = owner["metadata"]["uid"]
    kube.create(_secret("kept", uid))
    kube.create(_secret("no-owners"))
    kube.create(_secret("one-left", uid, "gone-already"))
    assert kube.find("secrets", "default", "kept") is not None
    assert kube.find("secrets", "default", "one-left") is not None  # one owner still exists

    kube.delete("configmaps", "default", "o")
    assert kube.find("secrets", "default", "kept") is None
    # Written after the owner went (a client acting on a stale cache): collected too.
    kube.create(_secret("late", uid))
    assert kube.find("secrets", "default", "late") is None
    assert kube.find("secrets", "default", "no-owners") is not None
    assert [e.type for e in kube.store._history if e.new["metadata"]["name"] == "late"] == [
        "ADDED",
        "DELETED",
    ]
