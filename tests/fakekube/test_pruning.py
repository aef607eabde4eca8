"""Structural pruning as an API server applies it, and the shipped monitor CRDs keeping every real-world field."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.fakekube import FakeKube
from tests.fakekube.pruning import crd_schemas, prune

ROOT = Path(__file__).resolve().parents[2]
CRDS = ROOT / "examples" / "kubernetes" / "operator"
REALWORLD = ROOT / "tests" / "config_operator" / "realworld" / "monitors"

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "spec": {
            "type": "object",
            "properties": {
                "known": {"type": "string"},
                "withDefault": {"type": "string", "default": "d"},
                "map": {
                    "type": "object",
                    "additionalProperties": {"type": "object", "properties": {"a": {"type": "string"}}},
                },
                "list": {
                    "type": "array",
                    "items": {"type": "object", "properties": {"a": {"type": "string"}}},
                },
                "open": {
                    "type": "object",
                    "x-kubernetes-preserve-unknown-fields": True,
                    "properties": {"a": {"type": "object", "properties": {}}},
                },
            },
        }
    },
}


def test_prune_drops_what_the_schema_does_not_name() -> None:
    obj = {
        "apiVersion": "x/v1",
        "kind": "X",
        "metadata": {"name": "a", "anything": 1},
        "extra": 1,
        "spec": {
            "known": "k",
            "unknown": 2,
            "map": {"k": {"a": "1", "b": "2"}},
            "list": [{"a": "1", "b": "2"}],
            "open": {"kept": 3, "a": {"dropped": 4}},
        },
    }
    result = prune(obj, SCHEMA)
    assert result.obj == {
        "apiVersion": "x/v1",
        "kind": "X",
        "metadata": {"name": "a", "anything": 1},
        "spec": {
            "known": "k",
            "withDefault": "d",
            "map": {"k": {"a": "1"}},
            "list": [{"a": "1"}],
            "open": {"kept": 3, "a": {}},
        },
    }
    assert sorted(result.dropped) == [
        ".extra",
        ".spec.list[0].b",
        ".spec.map.k.b",
        ".spec.open.a.dropped",
        ".spec.unknown",
    ]
    assert obj["spec"]["unknown"] == 2  # the input is left alone


def _crd(name: str) -> dict[str, Any]:
    return yaml.safe_load((CRDS / name).read_text())  # type: ignore[no-any-return]


def _monitors() -> list[tuple[str, dict[str, Any]]]:
    out = []
    for path in sorted(REALWORLD.rglob("*.yaml")):
        for i, doc in enumerate(yaml.safe_load_all(path.read_text())):
            if isinstance(doc, dict) and doc.get("kind") in ("ServiceMonitor", "PodMonitor"):
                out.append((f"{path.name}#{i}", doc))
    return out


@pytest.mark.parametrize(("where", "monitor"), _monitors(), ids=[m[0] for m in _monitors()])
def test_every_real_world_field_survives_the_shipped_crd(where: str, monitor: dict[str, Any]) -> None:
    crd = _crd("crd-servicemonitors.yaml" if monitor["kind"] == "ServiceMonitor" else "crd-podmonitors.yaml")
    (schema,) = crd_schemas(crd).values()
    result = prune(monitor, schema)
    assert result.dropped == []
    assert _contains(result.obj, monitor)


def _contains(stored: Any, given: Any) -> bool:
    """Every field of ``given`` is in ``stored`` with the same value (defaults may add fields)."""
    if isinstance(given, dict):
        return isinstance(stored, dict) and all(
            k in stored and _contains(stored[k], v) for k, v in given.items()
        )
    if isinstance(given, list):
        return isinstance(stored, list) and len(stored) == len(given) and all(map(_contains, stored, given))
    return bool(stored == given)


def test_an_unsupported_endpoint_field_reaches_the_operator() -> None:
    (schema,) = crd_schemas(_crd("crd-servicemonitors.yaml")).values()
    monitor = {"spec": {"selectorMechanism": "Role", "endpoints": [{"port": "m", "sigv4": {"region": "x"}}]}}
    assert prune(monitor, schema).obj["spec"] == {
        **monitor["spec"],
        "endpoints": [{"port": "m", "sigv4": {"region": "x"}}],
    }


async def test_the_fake_server_prunes_writes_once_the_crd_is_installed() -> None:
    async with FakeKube.running() as kube:
        monitor = {
            "apiVersion": "monitoring.coreos.com/v1",
            "kind": "PodMonitor",
            "metadata": {"name": "a", "namespace": "ns"},
            "spec": {"selector": {"matchLabels": {"a": "b"}, "junk": 1}, "podMetricsEndpoints": []},
        }
        assert kube.create(monitor)["spec"]["selector"]["junk"] == 1  # no schema yet: stored as given
        kube.install_crd(_crd("crd-podmonitors.yaml"))
        stored = kube.update(monitor)
        assert stored["spec"]["selector"] == {"matchLabels": {"a": "b"}}
