"""Fuzzing the generated relabeling: random monitors over a random cluster, judged two ways.

A reference model of Prometheus's relabeling and target building (tests/support/relabel_model.py)
predicts, for every generated job, which discovered targets are kept and with what labels and URL.
The model is checked against the hand-written expectations of test_relabel.py, and then, on a
sample of random cases (hypothesis), against Debian's real Prometheus through file_sd
(tests/support/filesd.py): the two must agree on every job, kept and dropped.

RELABEL_FUZZ_EXAMPLES (environment) sets how many random cases go through Prometheus (default 3;
``make chaos-long`` runs more).
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from config_operator import generate as g
from config_operator.render import render_files
from reloader.render import Expansion, render
from tests.e2e import test_relabel as hand_written
from tests.support import relabel_model as model
from tests.support.filesd import (
    Cluster,
    Container,
    ContainerPort,
    Pod,
    Service,
    ServicePort,
    target_file,
    to_file_sd,
    write_targets,
)
from tests.support.procs import Target, http_post, wait_for

EXAMPLES = int(os.environ.get("RELABEL_FUZZ_EXAMPLES", "3"))
NAMESPACES = ("shop", "billing")


# As config-reloader renders the config in the pod of the one shard there is.
POD_ENV = {"POD_NAME": "prometheus-main-0", "SHARD": "0"}


def expanded(config_yaml: str) -> str:
    """``config_yaml`` with its $(VAR) placeholders expanded by the reloader's own renderer."""
    chunks = render([g.compress(config_yaml.encode())], POD_ENV, Expansion(), source="fuzz", strict=True)
    return b"".join(chunks).decode()


def predicted(config_yaml: str, targets_dir: Path) -> dict[str, model.Outcome]:
    """The model's outcome for each job, from the target files ``write_targets`` wrote."""
    config = yaml.safe_load(config_yaml)
    out = {}
    for job in config.get("scrape_configs") or []:
        path = target_file(targets_dir, job["job_name"])
        if path.exists():
            groups = json.loads(path.read_text())
            out[job["job_name"]] = model.outcome(groups, job, config.get("global") or {}, str(path))
    return out


# --- the model against known answers -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("$1", "web"),
        ("${1}", "web"),
        ("${1}x", "webx"),
        ("$1x", ""),  # Go reads the group name "1x": no such group
        ("$2-$1", "1-web"),
        ("${name}", "web"),
        ("$name.", "web."),
        ("$$1", "$1"),
        ("$", "$"),
        ("${1", "${1"),
        ("$9", ""),
        ("a$-b", "a$-b"),
    ],
)
def test_expand_follows_go_templates(template: str, expected: str) -> None:
    import re

    match = re.compile(r"^(?:(?P<name>[a-z]+)-([0-9]+))$").match("web-1")
    assert match is not None
    assert model.expand(template, match) == expected


def test_hashmod_matches_prometheus() -> None:
    # Prometheus's own rows (model/relabel/relabel_test.go): "baz" and "foo\nbar" modulo 1000.
    for value, expected in (("baz", "976"), ("foo\nbar", "734")):
        rule = {"action": "hashmod", "source_labels": ["c"], "target_label": "d", "modulus": 1000}
        assert model.relabel({"c": value}, [rule]) == {"c": value, "d": expected}


@pytest.mark.parametrize("case", sorted(hand_written.CASES))
def test_model_agrees_with_the_hand_written_expectations(case: str, tmp_path: Path) -> None:
    expected = hand_written.CASES[case]
    config = render_files([str(hand_written.GOLDEN / case / "input.yaml")]).text
    write_targets(config, hand_written.CLUSTER, tmp_path)
    outcomes = predicted(expanded(config), tmp_path)
    assert set(outcomes) == set(expected.kept)
    for job, kept in expected.kept.items():
        got = sorted((t.label_dict for t in outcomes[job].active), key=lambda d: sorted(d.items()))
        assert got == sorted(kept, key=lambda d: sorted(d.items())), job


# --- random cases ----------------------------------------------------------------------------------


LABEL_KEYS = ("app", "tier", "env", "app.kubernetes.io/name", "team")
LABEL_VALUES = ("web", "api", "db", "prod", "dev", "v1.2.3", "Front-End", "a_b")
PORT_NAMES = ("metrics", "http", "web")
META = (
    "__meta_kubernetes_namespace",
    "__meta_kubernetes_pod_name",
    "__meta_kubernetes_pod_label_app",
    "__meta_kubernetes_pod_label_tier",
    "__meta_kubernetes_service_label_env",
    "__meta_kubernetes_pod_container_name",
    "__meta_kubernetes_pod_phase",
    "__address__",
    "job",
    "instance",
)
# Regexes on which Python's re and Go's RE2 agree (no backreferences, lookarounds or possessives).
REGEXES = (
    "(.*)",
    "(.+)",
    "web|api",
    "([a-z]+)-([0-9]+)",
    "(?P<head>[a-z]+).*",
    ".*o.*",
    "v([0-9]+)\\..*",
    "(.*);(.*)",
    "",
)
REPLACEMENTS = ("$1", "${1}", "${1}_x", "$1x", "$2", "fixed", "${head}", "$$", "")
TARGETS = ("team", "role", "x", "instance", "pod", "zone", "${1}")


@st.composite
def relabelings(draw: st.DrawFn) -> dict[str, Any]:
    action = draw(
        st.sampled_from(
            [
                "replace",
                "replace",
                "replace",
                "labelmap",
                "keep",
                "drop",
                "labelmap",
                "labeldrop",
                "lowercase",
                "uppercase",
                "hashmod",
                "keepequal",
                "dropequal",
            ]
        )
    )
    rc: dict[str, Any] = {"action": action}
    if action in ("replace", "keep", "drop", "lowercase", "uppercase", "hashmod", "keepequal", "dropequal"):
        rc["sourceLabels"] = draw(st.lists(st.sampled_from(META), min_size=1, max_size=2, unique=True))
        if draw(st.booleans()):
            rc["separator"] = draw(st.sampled_from([";", "-", ""]))
    if action in ("replace", "keep", "drop", "labelmap", "labeldrop") and draw(st.booleans()):
        rc["regex"] = draw(st.sampled_from(REGEXES))
    if action == "labelmap":
        rc["regex"] = draw(
            st.sampled_from(["__meta_kubernetes_pod_label_(.+)", "__meta_kubernetes_service_label_(.+)"])
        )
        rc["replacement"] = draw(st.sampled_from(["k_$1", "${1}", "$1"]))
    if action == "labeldrop":
        rc["regex"] = draw(st.sampled_from(["k_.*", "pod|container", "team"]))
    if action == "replace":
        rc["targetLabel"] = draw(st.sampled_from(TARGETS))
        if draw(st.booleans()):
            rc["replacement"] = draw(st.sampled_from(REPLACEMENTS))
    if action in ("lowercase", "uppercase", "hashmod", "keepequal", "dropequal"):
        rc["targetLabel"] = draw(st.sampled_from(TARGETS[:-1]))
    if action == "hashmod":
        rc["modulus"] = draw(st.integers(1, 7))
    return rc


def _labels(draw: st.DrawFn) -> dict[str, str]:
    return draw(st.dictionaries(st.sampled_from(LABEL_KEYS), st.sampled_from(LABEL_VALUES), max_size=3))


def _selector(draw: st.DrawFn) -> dict[str, Any]:
    # Mostly selectors that match some of the cluster, so that kept targets are judged too.
    kind = draw(st.sampled_from(["all", "all", "app", "app", "labels", "expr"]))
    if kind == "all":
        return {}
    if kind == "app":
        return {"matchLabels": {"app": draw(st.sampled_from(["web", "api"]))}}
    if kind == "labels":
        return {
            "matchLabels": draw(
                st.dictionaries(
                    st.sampled_from(LABEL_KEYS), st.sampled_from(LABEL_VALUES), min_size=1, max_size=2
                )
            )
        }
    op = draw(st.sampled_from(["In", "NotIn", "Exists", "DoesNotExist"]))
    req: dict[str, Any] = {"key": draw(st.sampled_from(LABEL_KEYS)), "operator": op}
    if op in ("In", "NotIn"):
        req["values"] = draw(st.lists(st.sampled_from(LABEL_VALUES), min_size=1, max_size=3, unique=True))
    return {"matchExpressions": [req]}


@st.composite
def cases(
    draw: st.DrawFn, port_base: int = 41000
) -> tuple[Cluster, list[dict[str, Any]], list[dict[str, Any]]]:
    """A small cluster, its Namespaces, and 1-4 random ServiceMonitors and PodMonitors."""
    ports = iter(range(port_base, port_base + 500))
    pods = []
    for i in range(draw(st.integers(1, 5))):
        containers = []
        names = draw(st.lists(st.sampled_from(PORT_NAMES), min_size=1, max_size=3, unique=True))
        split = draw(st.integers(0, len(names)))
        for c, chunk in enumerate((names[:split], names[split:])):
            if chunk or c == 0:
                containers.append(Container(f"c{c}", tuple(ContainerPort(n, next(ports)) for n in chunk)))
        labels = _labels(draw)
        labels["app"] = draw(st.sampled_from(["web", "api"]))
        pods.append(
            Pod(
                namespace=draw(st.sampled_from(NAMESPACES)),
                name=f"pod-{i}",
                labels=labels,
                containers=tuple(containers),
                phase=draw(st.sampled_from(["Running", "Running", "Running", "Pending", "Succeeded"])),
                ready=draw(st.booleans()),
            )
        )
    services = []
    for i in range(draw(st.integers(1, 3))):
        names = draw(st.lists(st.sampled_from(PORT_NAMES), min_size=1, max_size=2, unique=True))
        app = draw(st.sampled_from(["web", "api"]))
        services.append(
            Service(
                namespace=draw(st.sampled_from(NAMESPACES)),
                name=f"svc-{i}",
                labels={**_labels(draw), "app": app},
                selector={"app": app},
                ports=tuple(ServicePort(n, n) for n in names),
            )
        )
    monitors = []
    for i in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["ServiceMonitor", "PodMonitor"]))
        endpoints = []
        for _ in range(draw(st.integers(1, 2))):
            ep: dict[str, Any] = {"port": draw(st.sampled_from(PORT_NAMES))}
            if draw(st.booleans()):
                ep["relabelings"] = draw(st.lists(relabelings(), min_size=1, max_size=3))
            if draw(st.integers(0, 3)) == 0:
                ep["path"] = "/x/metrics"
            if draw(st.integers(0, 3)) == 0:
                ep["params"] = {"module": [draw(st.sampled_from(["http_2xx", "a b"]))]}
            endpoints.append(ep)
        spec: dict[str, Any] = {"selector": _selector(draw)}
        spec["endpoints" if kind == "ServiceMonitor" else "podMetricsEndpoints"] = endpoints
        if draw(st.booleans()):
            spec["namespaceSelector"] = draw(
                st.sampled_from([{"any": True}, {"matchNames": list(NAMESPACES)}])
            )
        if draw(st.booleans()):
            spec["jobLabel"] = draw(st.sampled_from(LABEL_KEYS))
        if kind == "ServiceMonitor" and draw(st.booleans()):
            spec["targetLabels"] = draw(
                st.lists(st.sampled_from(LABEL_KEYS), min_size=1, max_size=2, unique=True)
            )
        if draw(st.booleans()):
            spec["podTargetLabels"] = draw(
                st.lists(st.sampled_from(LABEL_KEYS), min_size=1, max_size=2, unique=True)
            )
        monitors.append(
            {
                "apiVersion": "monitoring.coreos.com/v1",
                "kind": kind,
                "metadata": {"name": f"m{i}", "namespace": draw(st.sampled_from(NAMESPACES)), "labels": {}},
                "spec": spec,
            }
        )
    namespaces = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": n, "labels": {}}} for n in NAMESPACES
    ]
    return Cluster(services=tuple(services), pods=tuple(pods)), monitors, namespaces


PC = {
    "apiVersion": "reloader.dev/v1alpha1",
    "kind": "PrometheusConfig",
    "metadata": {"name": "fuzz", "namespace": "monitoring", "uid": "u"},
    "spec": {
        "scrapeInterval": "30s",
        "serviceMonitorSelector": {},
        "serviceMonitorNamespaceSelector": {},
        "podMonitorSelector": {},
        "podMonitorNamespaceSelector": {},
    },
}


def generated(monitors: list[dict[str, Any]], namespaces: list[dict[str, Any]]) -> str:
    sms = [m for m in monitors if m["kind"] == "ServiceMonitor"]
    pms = [m for m in monitors if m["kind"] == "PodMonitor"]
    return g.generate(PC, sms, pms, namespaces, []).config.decode()  # type: ignore[arg-type]


def _observed(prom: Target, jobs: dict[str, Path]) -> dict[str, model.Outcome]:
    data = prom.get_json("/api/v1/targets?state=any")["data"]
    out = {}
    for job, path in jobs.items():
        active = frozenset(
            model.Target(tuple(sorted(t["labels"].items())), t["scrapeUrl"])
            for t in data["activeTargets"]
            if t["scrapePool"] == job
        )
        dropped = sum(
            t["discoveredLabels"].get("__meta_filepath") == str(path) for t in data["droppedTargets"]
        )
        out[job] = model.Outcome(active, dropped)
    return out


@pytest.fixture
def prometheus(tmp_path: Path, prometheus_factory: Any) -> Target:
    """One Prometheus for every example of the test; each example reloads it with its config."""
    config = tmp_path / "prometheus.yaml"
    config.write_text("global:\n  scrape_interval: 1h\n")
    prom: Target = prometheus_factory(config)
    return prom


@pytest.mark.e2e
@pytest.mark.timeout(120 + 60 * EXAMPLES)
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=os.environ.get("RELABEL_FUZZ_RANDOM") is None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(case=cases())
def test_model_and_prometheus_agree_on_random_monitors(
    case: tuple[Cluster, list[dict[str, Any]], list[dict[str, Any]]], prometheus: Target
) -> None:
    cluster, monitors, namespaces = case
    # A fresh directory and fresh job names per example: Prometheus keeps a job's old targets across a
    # reload until its discovery sends an update, and an empty target file sends none.
    parent = Path(prometheus.config_path).parent
    tag = f"e{len(list(parent.glob('example-*')))}"
    workdir = Path(tempfile.mkdtemp(prefix=f"example-{tag}-", dir=parent))
    monitors = [
        {**m, "metadata": {**m["metadata"], "name": f"{tag}-{m['metadata']['name']}"}} for m in monitors
    ]
    config = generated(monitors, namespaces)
    counts = write_targets(config, cluster, workdir)
    expected = predicted(expanded(config), workdir)
    assert set(expected) == set(counts)
    Path(prometheus.config_path).write_text(expanded(to_file_sd(config, workdir)))
    status, body = http_post(prometheus.reload_url)
    assert status == 200, body
    jobs = {job: target_file(workdir, job) for job in expected}
    last: dict[str, model.Outcome] = {}

    def agree() -> bool:
        nonlocal last
        last = _observed(prometheus, jobs)
        return last == expected

    # Discovery updates reach the scrape manager at most every 5 s: poll, generously.
    try:
        wait_for(agree, timeout_s=60, interval_s=0.5, what="Prometheus to show the model's targets")
    except BaseException:
        diff = {
            job: {"model": expected[job], "prometheus": last.get(job)}
            for job in expected
            if last.get(job) != expected[job]
        }
        print(json.dumps({"monitors": monitors, "diff": str(diff)}, indent=1, default=str))
        raise
