"""Run the operator's generated config through Debian's Prometheus, which has no Kubernetes discovery.

Two halves:
- ``to_file_sd(config_yaml, targets_dir)`` swaps each scrape job's ``kubernetes_sd_configs`` block for
  a ``file_sd_configs`` block pointing at ``targets_dir/<job>.json`` (and each alertmanager's for
  ``targets_dir/alertmanager-<i>.json``), at the text level, so every other byte stays the operator's
  (the chain test depends on that). It checks its own work by parsing both.
- A tiny model of a cluster (Services, Pods; Endpoints derived from the Services' selectors) and
  ``write_targets``, which writes for each job the target groups Kubernetes discovery would produce
  for its role, pre-filtered to its namespaces, because file discovery does not filter.

The discovery labels follow Prometheus's kubernetes_sd documentation for the ``endpoints``,
``endpointslice`` and ``pod`` roles; only the ones relabeling can reasonably depend on are produced.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

_SD_KEY = "  kubernetes_sd_configs:"
# An alertmanager's block sits one level deeper: alerting > alertmanagers > item.
_AM_SD_KEY = "    kubernetes_sd_configs:"


def target_file(targets_dir: Path | str, job_name: str) -> Path:
    """Where ``to_file_sd`` points a job: one JSON file per job, its name made path-safe."""
    return Path(targets_dir) / (re.sub(r"[^A-Za-z0-9_.-]", "_", job_name) + ".json")


def alertmanager_target_file(targets_dir: Path | str, index: int) -> Path:
    """Where ``to_file_sd`` points the ``index``-th entry of alerting.alertmanagers."""
    return Path(targets_dir) / f"alertmanager-{index}.json"


def as_in_pod(config_yaml: str, pod_name: str = "prometheus-0", shard: str = "0") -> str:
    """The config as config-reloader renders it in a pod of the only shard: ``$(POD_NAME)`` and
    ``$(SHARD)`` (the sharding keep rule) expanded."""
    return config_yaml.replace("$(POD_NAME)", pod_name).replace("$(SHARD)", shard)


def to_file_sd(config_yaml: str, targets_dir: Path | str) -> str:
    """``config_yaml`` with each scrape job's kubernetes_sd_configs replaced by file_sd_configs.

    Expects the block style the operator writes (PyYAML's: ``scrape_configs:`` at column 0, list items
    ``- `` at column 0, job keys at column 2). Raises ValueError if the result differs from the input
    in anything but the discovery blocks.
    """
    original = yaml.safe_load(config_yaml) or {}
    jobs = original.get("scrape_configs") or []
    out: list[str] = []
    lines = config_yaml.splitlines(keepends=True)
    section = subsection = None
    job_index = am_index = -1
    i = 0
    while i < len(lines):
        line = lines[i]
        if line[:1] not in ("", " ", "-", "\n", "#"):
            section, subsection = line.split(":", 1)[0], None
        elif section == "scrape_configs" and line.startswith("- "):
            job_index += 1
        elif section == "alerting" and line[:2] == "  " and line[2:3] not in ("", " ", "-", "\n"):
            # alerting's own keys: alert_relabel_configs' items must not count as alertmanagers.
            subsection = line.strip().split(":", 1)[0]
        elif section == "alerting" and subsection == "alertmanagers" and line.startswith("  - "):
            am_index += 1
        if section == "scrape_configs" and line.rstrip("\n") == _SD_KEY:
            path = target_file(targets_dir, jobs[job_index]["job_name"])
            out.append(f"  file_sd_configs:\n  - files:\n    - {path}\n")
            i += 1
            # The block's lines: its list items at column 2 and anything indented deeper.
            while i < len(lines) and (lines[i].startswith("  - ") or lines[i].startswith("    ")):
                i += 1
            continue
        # The block may open the entry ("  - kubernetes_sd_configs:") when it is its first key.
        if (
            section == "alerting"
            and subsection == "alertmanagers"
            and line.rstrip("\n") in (_AM_SD_KEY, "  - " + _AM_SD_KEY.lstrip())
        ):
            path = alertmanager_target_file(targets_dir, am_index)
            out.append(f"{line[:4]}file_sd_configs:\n    - files:\n      - {path}\n")
            i += 1
            while i < len(lines) and (lines[i].startswith("    - ") or lines[i].startswith("      ")):
                i += 1
            continue
        out.append(line)
        i += 1
    result = "".join(out)
    expected = _swapped(original, targets_dir)
    if yaml.safe_load(result) != expected:
        raise ValueError("to_file_sd changed more than the discovery blocks (unexpected YAML layout)")
    return result


def _swapped(config: dict[str, Any], targets_dir: Path | str) -> dict[str, Any]:
    jobs = []
    for job in config.get("scrape_configs") or []:
        if "kubernetes_sd_configs" in job:
            job = {
                (k if k != "kubernetes_sd_configs" else "file_sd_configs"): (
                    v
                    if k != "kubernetes_sd_configs"
                    else [{"files": [str(target_file(targets_dir, job["job_name"]))]}]
                )
                for k, v in job.items()
            }
        jobs.append(job)
    out = {**config, "scrape_configs": jobs} if "scrape_configs" in config else dict(config)
    alerting = config.get("alerting") or {}
    if alerting.get("alertmanagers"):
        managers = [
            {
                (k if k != "kubernetes_sd_configs" else "file_sd_configs"): (
                    v
                    if k != "kubernetes_sd_configs"
                    else [{"files": [str(alertmanager_target_file(targets_dir, i))]}]
                )
                for k, v in am.items()
            }
            for i, am in enumerate(alerting["alertmanagers"])
        ]
        out["alerting"] = {**alerting, "alertmanagers": managers}
    return out


# --- a small cluster ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ContainerPort:
    """A named container port; ``number`` is also the port the target address uses."""

    name: str
    number: int


@dataclass(frozen=True)
class Container:
    """A container with its ports."""

    name: str
    ports: tuple[ContainerPort, ...] = ()


@dataclass(frozen=True)
class Pod:
    """A pod; every pod has IP 127.0.0.1 so that targets are loopback addresses nobody serves."""

    namespace: str
    name: str
    labels: Mapping[str, str] = field(default_factory=dict)
    containers: tuple[Container, ...] = ()
    phase: str = "Running"
    ready: bool = True
    ip: str = "127.0.0.1"
    node: str = "node-1"


@dataclass(frozen=True)
class ServicePort:
    """A Service port; ``target_port`` names the container port it forwards to."""

    name: str
    target_port: str


@dataclass(frozen=True)
class Service:
    """A Service selecting pods in its namespace by labels; its Endpoints are derived from that."""

    namespace: str
    name: str
    labels: Mapping[str, str] = field(default_factory=dict)
    selector: Mapping[str, str] = field(default_factory=dict)
    ports: tuple[ServicePort, ...] = ()


@dataclass(frozen=True)
class Cluster:
    """Services and Pods; Endpoints are what the endpoints controller would build from them."""

    services: tuple[Service, ...] = ()
    pods: tuple[Pod, ...] = ()

    def backing_pods(self, service: Service) -> list[Pod]:
        """Pods in the service's namespace matching its (non-empty) selector, ready or not."""
        if not service.selector:
            return []
        return [
            p
            for p in self.pods
            if p.namespace == service.namespace
            and all(p.labels.get(k) == v for k, v in service.selector.items())
            and p.phase not in ("Failed", "Succeeded")
        ]


def _sanitize(name: str) -> str:
    return re.sub(r"[^a-zA-Z0-9_]", "_", name)


def _object_labels(prefix: str, labels: Mapping[str, str]) -> dict[str, str]:
    out = {}
    for k, v in labels.items():
        out[f"{prefix}_label_{_sanitize(k)}"] = v
        out[f"{prefix}_labelpresent_{_sanitize(k)}"] = "true"
    return out


def _pod_labels(pod: Pod) -> dict[str, str]:
    return {
        "__meta_kubernetes_pod_name": pod.name,
        "__meta_kubernetes_pod_ip": pod.ip,
        "__meta_kubernetes_pod_ready": str(pod.ready).lower(),
        "__meta_kubernetes_pod_phase": pod.phase,
        "__meta_kubernetes_pod_node_name": pod.node,
        "__meta_kubernetes_pod_host_ip": "10.0.0.1",
        **_object_labels("__meta_kubernetes_pod", pod.labels),
    }


def _container_labels(container: Container, port: ContainerPort | None) -> dict[str, str]:
    out = {
        "__meta_kubernetes_pod_container_name": container.name,
        "__meta_kubernetes_pod_container_init": "false",
    }
    if port is not None:
        out |= {
            "__meta_kubernetes_pod_container_port_name": port.name,
            "__meta_kubernetes_pod_container_port_number": str(port.number),
            "__meta_kubernetes_pod_container_port_protocol": "TCP",
        }
    return out


def pod_role_targets(cluster: Cluster, namespaces: Iterable[str] | None) -> list[dict[str, Any]]:
    """role: pod target groups: one per container port (one per portless container)."""
    groups = []
    for pod in cluster.pods:
        if namespaces is not None and pod.namespace not in namespaces:
            continue
        base = {"__meta_kubernetes_namespace": pod.namespace, **_pod_labels(pod)}
        for c in pod.containers:
            for port in c.ports or (None,):
                address = pod.ip if port is None else f"{pod.ip}:{port.number}"
                groups.append({"targets": [address], "labels": {**base, **_container_labels(c, port)}})
    return groups


def endpoints_role_targets(cluster: Cluster, namespaces: Iterable[str] | None) -> list[dict[str, Any]]:
    """role: endpoints target groups: one per endpoint address and port, plus, as Prometheus does, one
    per container port of a backing pod that no endpoint port covers (those carry no endpoint labels)."""
    groups = []
    for svc in cluster.services:
        if namespaces is not None and svc.namespace not in namespaces:
            continue
        svc_labels = {
            "__meta_kubernetes_namespace": svc.namespace,
            "__meta_kubernetes_endpoints_name": svc.name,
            "__meta_kubernetes_service_name": svc.name,
            **_object_labels("__meta_kubernetes_service", svc.labels),
            **_object_labels("__meta_kubernetes_endpoints", svc.labels),
        }
        for pod in cluster.backing_pods(svc):
            covered: set[tuple[str, str]] = set()
            for sp in svc.ports:
                for c in pod.containers:
                    for port in c.ports:
                        if port.name != sp.target_port:
                            continue
                        covered.add((c.name, port.name))
                        labels = {
                            **svc_labels,
                            "__meta_kubernetes_endpoint_port_name": sp.name,
                            "__meta_kubernetes_endpoint_port_protocol": "TCP",
                            "__meta_kubernetes_endpoint_ready": str(pod.ready).lower(),
                            "__meta_kubernetes_endpoint_node_name": pod.node,
                            "__meta_kubernetes_endpoint_address_target_kind": "Pod",
                            "__meta_kubernetes_endpoint_address_target_name": pod.name,
                            **_pod_labels(pod),
                            **_container_labels(c, port),
                        }
                        groups.append({"targets": [f"{pod.ip}:{port.number}"], "labels": labels})
            for c in pod.containers:
                for port in c.ports:
                    if (c.name, port.name) in covered:
                        continue
                    labels = {**svc_labels, **_pod_labels(pod), **_container_labels(c, port)}
                    groups.append({"targets": [f"{pod.ip}:{port.number}"], "labels": labels})
    return groups


# Prometheus's endpointslice role names the same facts differently.
_SLICE_RENAMES = {
    "__meta_kubernetes_endpoints_name": "__meta_kubernetes_endpointslice_name",
    "__meta_kubernetes_endpoint_port_name": "__meta_kubernetes_endpointslice_port_name",
    "__meta_kubernetes_endpoint_port_protocol": "__meta_kubernetes_endpointslice_port_protocol",
    "__meta_kubernetes_endpoint_ready": "__meta_kubernetes_endpointslice_endpoint_conditions_ready",
    "__meta_kubernetes_endpoint_node_name": "__meta_kubernetes_endpointslice_endpoint_topology_kubernetes_io_hostname",
    "__meta_kubernetes_endpoint_address_target_kind": "__meta_kubernetes_endpointslice_address_target_kind",
    "__meta_kubernetes_endpoint_address_target_name": "__meta_kubernetes_endpointslice_address_target_name",
}


def as_endpointslice(groups: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Endpoints-role target groups as the endpointslice role gives them (slices named after the
    Service, as the EndpointSlice controller's first slice is, bar its suffix)."""
    out = []
    for group in groups:
        labels = {}
        for k, v in group["labels"].items():
            if k.startswith("__meta_kubernetes_endpoints_label"):
                continue  # a slice carries its own labels, not the Endpoints object's
            labels[_SLICE_RENAMES.get(k, k)] = v
        labels["__meta_kubernetes_endpointslice_address_type"] = "IPv4"
        out.append({**group, "labels": labels})
    return out


def write_targets(config_yaml: str, cluster: Cluster, targets_dir: Path | str) -> dict[str, int]:
    """Write each Kubernetes-discovered job's target file (see ``target_file``); returns job -> count.

    Each job gets the groups of its role, in its ``namespaces.names`` (all namespaces without them).
    """
    config = yaml.safe_load(config_yaml) or {}
    counts = {}
    for job in config.get("scrape_configs") or []:
        sds = job.get("kubernetes_sd_configs")
        if not sds:
            continue
        groups: list[dict[str, Any]] = []
        for sd in sds:
            names = (sd.get("namespaces") or {}).get("names")
            namespaces = set(names) if names else None
            if sd["role"] == "endpoints":
                groups += endpoints_role_targets(cluster, namespaces)
            elif sd["role"] == "endpointslice":
                groups += as_endpointslice(endpoints_role_targets(cluster, namespaces))
            elif sd["role"] == "pod":
                groups += pod_role_targets(cluster, namespaces)
            else:
                raise ValueError(f"role {sd['role']!r} is not modelled")
        path = target_file(targets_dir, job["job_name"])
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(groups, indent=1, sort_keys=True))
        tmp.replace(path)  # file_sd watches the file; never let it read half of one
        counts[job["job_name"]] = len(groups)
    return counts
