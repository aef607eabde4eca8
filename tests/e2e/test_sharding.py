"""Sharding with real processes: one generated Secret, three shards, every target on exactly one.

The sharded sidecar example (examples/kubernetes/sidecar/sharded/) as far as this machine can run it:
- its PrometheusConfig (``shards: 3``), plus a ServiceMonitor and an additionalScrapeConfigs job, goes
  through ``generate()`` into the bytes config-operator would put in the Secret ``prometheus-main``;
- that Secret is projected once into a Secret-style volume, discovery swapped for file_sd
  (tests/support/filesd.py: Debian's Prometheus has no Kubernetes discovery), and shared by the three
  "pods", as the kubelet would mount the one Secret into each;
- in each pod, a real config-reloader runs with the example's config-reloader arguments and its
  StatefulSet's ``SHARD``, rendering ``$(SHARD)`` into the keep rule and reloading its own real
  Prometheus.

Then each server's /api/v1/targets is read: the union of the active targets is every address, the
intersection is empty, and each target is on the shard that Prometheus's hashmod (the last 8 bytes of
the address's MD5, as a big-endian integer, modulo 3) gives, computed here independently. One more
target, whose monitor sets ``__tmp_disable_sharding``, is on all three.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from config_operator.generate import SECRET_KEY, compress, generate
from tests.support.filesd import (
    Cluster,
    Container,
    ContainerPort,
    Pod,
    Service,
    ServicePort,
    to_file_sd,
    write_targets,
)
from tests.support.procs import Target, require_binary, wait_for
from tests.support.reloader_proc import K8sVolume, Reloader, reloader_factory

pytestmark = pytest.mark.e2e

__all__ = ["reloader_factory"]

SHARDED = Path(__file__).resolve().parents[2] / "examples" / "kubernetes" / "sidecar" / "sharded"
FLEET = 63  # pods behind one Service: ServiceMonitor targets
STATIC = 12  # additionalScrapeConfigs targets
BASE_PORT = 41000  # loopback ports nobody is expected to serve: only target selection is under test
SINGLETON_PORT = 40999  # a target that sets __tmp_disable_sharding: on every shard
SINGLETON = f"127.0.0.1:{SINGLETON_PORT}"


def _statefulsets() -> list[dict[str, Any]]:
    docs = [yaml.safe_load(p.read_text()) for p in sorted(SHARDED.glob("statefulset-shard-*.yaml"))]
    return [d for d in docs if d["kind"] == "StatefulSet"]


def _reloader(sts: dict[str, Any]) -> tuple[list[str], dict[str, str]]:
    """The sidecar container's arguments and the plain values of its environment."""
    (container,) = [
        c for c in sts["spec"]["template"]["spec"]["containers"] if c["name"] == "config-reloader"
    ]
    env = {e["name"]: e["value"] for e in container["env"] if "value" in e}
    return list(container["args"]), env


def expected_shard(address: str, shards: int) -> int:
    """Prometheus's hashmod: MD5 of the value, its last 8 bytes as a big-endian integer, modulo."""
    return int.from_bytes(hashlib.md5(address.encode()).digest()[8:], "big") % shards


def _inputs() -> tuple[dict[str, Any], list[dict[str, Any]], list[dict[str, Any]], Cluster, list[str]]:
    pc = yaml.safe_load((SHARDED / "prometheusconfig.yaml").read_text())
    pc["spec"]["additionalScrapeConfigs"] = {"name": "extra-scrape-configs", "key": "jobs.yaml"}
    sm = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "ServiceMonitor",
        "metadata": {"name": "fleet", "namespace": "fleet", "labels": {"team": "platform"}},
        "spec": {
            "selector": {"matchLabels": {"app": "fleet"}},
            "endpoints": [{"port": "metrics", "interval": "1m"}],
        },
    }
    singleton = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "ServiceMonitor",
        "metadata": {"name": "singleton", "namespace": "fleet", "labels": {"team": "platform"}},
        "spec": {
            "selector": {"matchLabels": {"app": "singleton"}},
            "endpoints": [
                {
                    "port": "metrics",
                    "interval": "1m",
                    "relabelings": [{"targetLabel": "__tmp_disable_sharding", "replacement": "true"}],
                }
            ],
        },
    }

    def pod(name: str, app: str, port: int) -> Pod:
        return Pod("fleet", name, {"app": app}, (Container("app", (ContainerPort("metrics", port),)),))

    pods = [pod(f"fleet-{i}", "fleet", BASE_PORT + i) for i in range(FLEET)]
    pods.append(pod("singleton-0", "singleton", SINGLETON_PORT))
    metrics = (ServicePort("metrics", "metrics"),)
    cluster = Cluster(
        services=(
            Service("fleet", "fleet", {"app": "fleet"}, {"app": "fleet"}, metrics),
            Service("fleet", "singleton", {"app": "singleton"}, {"app": "singleton"}, metrics),
        ),
        pods=tuple(pods),
    )
    static = [f"127.0.0.1:{BASE_PORT + FLEET + i}" for i in range(STATIC)]
    jobs = [{"job_name": "static-fleet", "scrape_interval": "1m", "static_configs": [{"targets": static}]}]
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "extra-scrape-configs", "namespace": pc["metadata"]["namespace"]},
        "data": {"jobs.yaml": base64.b64encode(yaml.safe_dump(jobs).encode()).decode()},
    }
    addresses = [f"127.0.0.1:{BASE_PORT + i}" for i in range(FLEET)] + static
    return pc, [sm, singleton], [secret], cluster, addresses


def _active(prometheus: Target) -> list[str] | None:
    """Active target addresses once discovery has settled (every target seen, kept or dropped)."""
    data = prometheus.get_json("/api/v1/targets?state=any")["data"]
    seen = len(data["activeTargets"]) + len(data["droppedTargets"])
    if seen != 2 * (FLEET + 1) + STATIC:
        return None
    return [t["discoveredLabels"]["__address__"] for t in data["activeTargets"]]


@pytest.mark.timeout(240)
def test_every_target_lands_on_exactly_one_shard(
    tmp_path: Path, prometheus_factory: Callable[..., Target], reloader_factory: Callable[..., Reloader]
) -> None:
    require_binary("prometheus")
    statefulsets = _statefulsets()
    pc, monitors, secrets, cluster, addresses = _inputs()
    shards = pc["spec"]["shards"]
    assert len(statefulsets) == shards == 3

    generated = generate(pc, monitors, [], [], secrets)
    assert generated.rejected == ()
    secret_bytes = compress(generated.config)  # what config-operator writes under SECRET_KEY

    # The kubelet's part: project the one Secret into a volume every "pod" mounts.
    targets_dir = tmp_path / "targets"
    targets_dir.mkdir()
    operator_yaml = gzip.decompress(secret_bytes).decode()
    # Each job discovers every endpoint of the namespace; its keep rules pick its Service's.
    assert write_targets(operator_yaml, cluster, targets_dir) == {
        "serviceMonitor/fleet/fleet/0": FLEET + 1,
        "serviceMonitor/fleet/singleton/0": FLEET + 1,
    }
    projected = to_file_sd(operator_yaml, targets_dir)
    volume = K8sVolume(tmp_path / "config")
    volume.update({SECRET_KEY: gzip.compress(projected.encode(), mtime=0)})

    servers: dict[int, Target] = {}
    for sts in statefulsets:
        args, env = _reloader(sts)
        shard = int(env["SHARD"])
        out = tmp_path / f"out-{shard}" / "prometheus.env.yaml"
        out.parent.mkdir()
        out.write_text("global:\n  scrape_interval: 1m\n")  # a bootstrap config, replaced by the first apply
        prometheus = prometheus_factory(out)
        replacements = {
            "/etc/prometheus/config/": f"{volume.root}/",
            "/etc/prometheus/config_out/prometheus.env.yaml": str(out),
            "http://127.0.0.1:9090": prometheus.url,
        }
        pod_args = [a for a in args if not a.startswith("--listen-address=")]
        for old, new in replacements.items():
            pod_args = [a.replace(old, new) for a in pod_args]
        reloader_factory(*pod_args, env={**env, "POD_NAME": f"{sts['metadata']['name']}-0"})
        assert f"regex: {shard};|.+;.+" in out.read_text()
        servers[shard] = prometheus

    active = {
        shard: wait_for(lambda p=p: _active(p), timeout_s=60, what=f"shard {shard}'s targets")  # type: ignore[misc]
        for shard, p in servers.items()
    }
    for shard, shard_active in active.items():
        assert SINGLETON in shard_active, f"__tmp_disable_sharding: shard {shard} must keep it too"
        shard_active.remove(SINGLETON)
    everywhere = [a for shard_active in active.values() for a in shard_active]
    assert sorted(everywhere) == sorted(addresses), "the union must be every target, each once"
    for shard, shard_active in active.items():
        assert shard_active, f"shard {shard} kept nothing"
        assert {expected_shard(a, shards) for a in shard_active} == {shard}
