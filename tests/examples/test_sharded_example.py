"""The sharded sidecar example (examples/kubernetes/sidecar/sharded/): one StatefulSet per shard, named
as prometheus-operator names them, identical but for the shard, each with SHARD set in its reloader
containers, all mounting the one Secret that config-operator writes for the PrometheusConfig.

tests/e2e/test_sharding.py runs these containers' arguments and SHARD values against three real
Prometheus servers; this file checks the manifests themselves."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from config_operator.generate import generate, secret_name
from tests.examples import manifests as m

SHARDED = m.EXAMPLES / "kubernetes" / "sidecar" / "sharded"
SIDECAR = SHARDED.parent


def _docs(folder: Path, kind: str) -> list[dict[str, Any]]:
    return [dict(d.body) for d in m.manifests() if d.path.parent == folder and d.kind == kind]


def _pc() -> dict[str, Any]:
    (pc,) = _docs(SHARDED, "PrometheusConfig")
    return pc


def _statefulsets() -> dict[int, dict[str, Any]]:
    """By the SHARD their reloader containers get."""
    out = {}
    for sts in _docs(SHARDED, "StatefulSet"):
        pod = sts["spec"]["template"]["spec"]
        values = {
            e["value"]
            for c in [*pod["initContainers"], *pod["containers"]]
            if c["name"] in ("init-config-reloader", "config-reloader")
            for e in c["env"]
            if e["name"] == "SHARD"
        }
        (value,) = values  # both reloader containers, the same shard
        out[int(value)] = sts
    return out


def test_one_statefulset_per_shard_named_as_prometheus_operator_names_them() -> None:
    shards = _pc()["spec"]["shards"]
    statefulsets = _statefulsets()
    assert sorted(statefulsets) == list(range(shards))
    name = _pc()["metadata"]["name"]
    for shard, sts in statefulsets.items():
        expected = f"prometheus-{name}" if shard == 0 else f"prometheus-{name}-shard-{shard}"
        assert sts["metadata"]["name"] == expected
        assert sts["metadata"]["namespace"] == _pc()["metadata"]["namespace"]
        assert (SHARDED / f"statefulset-shard-{shard}.yaml").read_text().count(expected) >= 1


def _normalized(sts: dict[str, Any], shard: int) -> dict[str, Any]:
    """The StatefulSet with its shard number, name and shard labels taken out."""
    out = json.loads(json.dumps(sts))  # unshare what YAML anchors share
    out["metadata"].pop("name")
    for labels in (
        out["metadata"]["labels"],
        out["spec"]["selector"]["matchLabels"],
        out["spec"]["template"]["metadata"]["labels"],
    ):
        assert labels.pop("operator.prometheus.io/shard") == str(shard)
    pod = out["spec"]["template"]["spec"]
    for c in [*pod["initContainers"], *pod["containers"]]:
        for e in c.get("env", []):
            if e["name"] == "SHARD":
                assert e.pop("value") == str(shard)
    return out


def test_the_shards_differ_only_in_their_number() -> None:
    statefulsets = _statefulsets()
    first = _normalized(statefulsets[0], 0)
    for shard, sts in statefulsets.items():
        assert _normalized(sts, shard) == first, f"statefulset-shard-{shard}.yaml drifted from shard 0"


def test_each_shard_selects_only_its_own_pods() -> None:
    selectors = [sts["spec"]["selector"]["matchLabels"] for sts in _statefulsets().values()]
    for sts in _statefulsets().values():
        labels = sts["spec"]["template"]["metadata"]["labels"]
        assert sum(all(labels.get(k) == v for k, v in sel.items()) for sel in selectors) == 1


def test_every_shard_mounts_the_secret_config_operator_writes() -> None:
    expected = secret_name(_pc())  # type: ignore[arg-type]
    for sts in _statefulsets().values():
        volumes = {v["name"]: v for v in sts["spec"]["template"]["spec"]["volumes"]}
        assert volumes["config"]["secret"]["secretName"] == expected


def test_the_reloaders_run_with_the_unsharded_examples_arguments() -> None:
    """The sidecar example's arguments, without its rule directory (this example has no rules)."""
    (plain,) = _docs(SIDECAR, "StatefulSet")

    def args(sts: dict[str, Any]) -> dict[str, list[str]]:
        pod = sts["spec"]["template"]["spec"]
        return {
            c["name"]: c["args"]
            for c in [*pod["initContainers"], *pod["containers"]]
            if "reloader" in c["name"]
        }

    without_rules = {
        name: [a for a in argv if not a.startswith("--watched-dir=")] for name, argv in args(plain).items()
    }
    for sts in _statefulsets().values():
        assert args(sts) == without_rules


def test_the_governing_service_and_the_service_account_exist() -> None:
    (service,) = _docs(SHARDED, "Service")
    (account,) = _docs(SHARDED, "ServiceAccount")
    (binding,) = _docs(SHARDED, "ClusterRoleBinding")
    (role,) = _docs(SHARDED, "ClusterRole")
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": account["metadata"]["name"], "namespace": "monitoring"}
    ]
    # Kubernetes discovery (the generated jobs' role endpoints and pod) reads these, nothing more.
    granted = {(g, r) for rule in role["rules"] for g in rule["apiGroups"] for r in rule["resources"]}
    assert granted == {
        ("", "services"),
        ("", "endpoints"),
        ("", "pods"),
        ("discovery.k8s.io", "endpointslices"),
    }
    assert all(set(rule["verbs"]) == {"get", "list", "watch"} for rule in role["rules"])
    for sts in _statefulsets().values():
        assert sts["spec"]["serviceName"] == service["metadata"]["name"]
        assert sts["spec"]["template"]["spec"]["serviceAccountName"] == account["metadata"]["name"]
        labels = sts["spec"]["template"]["metadata"]["labels"]
        assert all(labels.get(k) == v for k, v in service["spec"]["selector"].items())


@pytest.mark.parametrize("shard", [0, 1, 2])
def test_every_container_is_locked_down(shard: int) -> None:
    pod = _statefulsets()[shard]["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    for c in [*pod["initContainers"], *pod["containers"]]:
        sc = c["securityContext"]
        assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False, c["name"]
        assert sc["capabilities"] == {"drop": ["ALL"]}, c["name"]
        assert c["resources"]["limits"]["memory"], c["name"]


def test_the_prometheusconfig_generates_sharded_jobs() -> None:
    """Its own render command's inputs: the operator samples' ServiceMonitor and namespace."""
    samples = m.EXAMPLES / "kubernetes" / "operator" / "samples"
    header = (SHARDED / "prometheusconfig.yaml").read_text()
    assert "servicemonitor.yaml" in header and "namespace.yaml" in header
    sm = yaml.safe_load((samples / "servicemonitor.yaml").read_text())
    namespaces = [d for d in yaml.safe_load_all((samples / "namespace.yaml").read_text()) if d]
    generated = generate(_pc(), [sm], [], namespaces, [])  # type: ignore[arg-type]
    assert generated.rejected == ()
    (job,) = yaml.safe_load(generated.config)["scrape_configs"]
    hashmod, keep = job["relabel_configs"][-2:]
    assert hashmod["modulus"] == _pc()["spec"]["shards"]
    assert keep["regex"] == "$(SHARD);|.+;.+"
