"""The Kubernetes examples: every manifest validates against the Kubernetes 1.30 schemas (strict: unknown
fields are errors), every custom resource against its CRD's openAPIV3Schema, and the sidecar example
matches what prometheus-operator runs."""

from __future__ import annotations

import base64
import copy
import gzip
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from config_operator.generate import (
    POD_METRICS_ENDPOINT_FIELDS,
    POD_MONITOR_FIELDS,
    SERVICE_MONITOR_ENDPOINT_FIELDS,
    SERVICE_MONITOR_FIELDS,
    SPEC_FIELDS,
)
from tests.examples import manifests as m
from tests.examples import systemd
from tests.support import filesd, procs

K8S_VERSION = "1.30"
SIDECAR = m.EXAMPLES / "kubernetes" / "sidecar"
OPERATOR = m.EXAMPLES / "kubernetes" / "operator"
BIN = Path(sys.executable).parent / "config-reloader"

BUILTIN = [d for d in m.manifests() if not m.is_custom(d.body) and d.kind != "CustomResourceDefinition"]
CRD_DOCS = [d for d in m.manifests() if d.kind == "CustomResourceDefinition"]
CUSTOM = [d for d in m.manifests() if m.is_custom(d.body) and (d.body["apiVersion"], d.kind) in m.crds()]
# prometheus-operator's own resources (a Prometheus with a containers override): no CRD here.
FOREIGN = [d for d in m.manifests() if m.is_custom(d.body) and (d.body["apiVersion"], d.kind) not in m.crds()]


def test_manifest_folders_hold_only_kubernetes_objects() -> None:
    strays = [d.where for d in m.documents() if m.in_manifest_dir(d.path) and not m.is_object(d.body)]
    assert strays == []


def test_the_examples_have_what_the_issue_asks_for() -> None:
    kinds = {(d.path.parent.name, d.kind) for d in m.manifests()}
    for expected in [
        ("sidecar", "StatefulSet"),
        ("sidecar", "Secret"),
        ("sidecar", "ConfigMap"),
        ("sidecar", "Service"),
        ("sidecar", "ServiceAccount"),
        ("operator", "CustomResourceDefinition"),
        ("operator", "ClusterRole"),
        ("operator", "ClusterRoleBinding"),
        ("operator", "Role"),
        ("operator", "RoleBinding"),
        ("operator", "ServiceAccount"),
        ("operator", "Deployment"),
        ("samples", "PrometheusConfig"),
        ("samples", "ServiceMonitor"),
        ("samples", "PodMonitor"),
    ]:
        assert expected in kinds
    assert {d.body["metadata"]["name"] for d in CRD_DOCS} >= {
        "prometheusconfigs.reloader.dev",
        "servicemonitors.monitoring.coreos.com",
        "podmonitors.monitoring.coreos.com",
        "prometheusrules.monitoring.coreos.com",
        "probes.monitoring.coreos.com",
    }


@pytest.mark.parametrize("doc", BUILTIN + CRD_DOCS, ids=lambda d: d.where)
def test_manifest_validates_against_kubernetes_schemas(doc: m.Doc) -> None:
    kubernetes_validate.validate(doc.body, K8S_VERSION, strict=True)


def test_the_kubernetes_schemas_catch_a_broken_manifest() -> None:
    """The validation above can fail: a misspelled field and a wrong type are refused."""
    (sts,) = [d.body for d in BUILTIN if d.kind == "StatefulSet" and d.path.parent == SIDECAR]
    misspelled = copy.deepcopy(sts)
    misspelled["spec"]["template"]["spec"]["containers"][0]["imagePullPolicyy"] = "Always"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(misspelled, K8S_VERSION, strict=True)
    wrong_type = copy.deepcopy(sts)
    wrong_type["spec"]["replicas"] = "two"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(wrong_type, K8S_VERSION, strict=True)


@pytest.mark.parametrize("doc", CUSTOM, ids=lambda d: d.where)
def test_custom_resource_validates_against_its_crd(doc: m.Doc) -> None:
    assert m.cr_errors(doc.body, m.crds()) == []


def test_every_custom_kind_of_ours_has_its_crd_here() -> None:
    assert {d.kind for d in CUSTOM} == {
        "PrometheusConfig",
        "ServiceMonitor",
        "PodMonitor",
        "PrometheusRule",
        "Probe",
    }
    assert {(d.body["apiVersion"], d.kind) for d in FOREIGN} == {("monitoring.coreos.com/v1", "Prometheus")}


@pytest.mark.parametrize("doc", FOREIGN, ids=lambda d: d.where)
def test_prometheus_containers_override_is_valid(doc: m.Doc) -> None:
    """The containers a Prometheus resource overrides are real container specs with the names
    prometheus-operator gives its reloader containers."""
    spec = doc.body["spec"]
    assert [c["name"] for c in spec["containers"]] == ["config-reloader"]
    assert [c["name"] for c in spec["initContainers"]] == ["init-config-reloader"]
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "override"},
        "spec": {"containers": spec["containers"], "initContainers": spec["initContainers"]},
    }
    kubernetes_validate.validate(pod, K8S_VERSION, strict=True)
    for c in [*spec["containers"], *spec["initContainers"]]:
        assert c["resources"]["limits"]["memory"] == "50Mi"


def _sample(kind: str) -> dict[str, Any]:
    (body,) = [d.body for d in CUSTOM if d.kind == kind and d.path.parent == OPERATOR / "samples"]
    return copy.deepcopy(body)


def _set(body: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """Set a dotted path (list indexes as numbers); value None deletes it."""
    *parents, last = [int(p) if p.isdigit() else p for p in path.split(".")]
    node: Any = body
    for p in parents:
        node = node[p]
    if value is None:
        del node[last]
    else:
        node[last] = value
    return body


BAD = [
    ("PrometheusConfig", "spec.scrapeInterval", "30 seconds", "spec.scrapeInterval"),
    (
        "PrometheusConfig",
        "spec.serviceMonitorSelector.matchExpressions",
        [{"key": "a", "operator": "Matches"}],
        "Matches",
    ),
    ("PrometheusConfig", "spec.externalLabels", {"replica": 1}, "spec.externalLabels.replica"),
    ("PrometheusConfig", "spec.additionalScrapeConfigs", {"name": "extra"}, "'key' is a required property"),
    ("PrometheusConfig", "spec.secretName", "Prometheus_Main", "spec.secretName"),
    ("PrometheusConfig", "spec.paused", "yes", "spec.paused"),
    ("PrometheusConfig", "spec", None, "'spec' is a required property"),
    ("ServiceMonitor", "spec.endpoints", {"port": "metrics"}, "spec.endpoints"),
    ("ServiceMonitor", "spec.endpoints.0.scheme", "ftp", "ftp"),
    ("ServiceMonitor", "spec.endpoints.0.interval", "fast", "spec.endpoints.0.interval"),
    ("ServiceMonitor", "spec.namespaceSelector", {"any": "true"}, "spec.namespaceSelector.any"),
    ("ServiceMonitor", "spec.selector", None, "'selector' is a required property"),
    ("ServiceMonitor", "spec.endpoints.0.metricRelabelings.0.action", "explode", "explode"),
    ("PodMonitor", "spec.podMetricsEndpoints.0.honorLabels", "no", "honorLabels"),
    ("PodMonitor", "spec.podMetricsEndpoints.0.relabelings.0.sourceLabels", ["bad-label"], "sourceLabels"),
    ("PodMonitor", "apiVersion", "monitoring.coreos.com/v2", "no CRD serves"),
    ("PrometheusRule", "spec.groups.0.name", None, "'name' is a required property"),
    ("PrometheusRule", "spec.groups.0.rules.0.for", "5 minutes", "spec.groups.0.rules.0.for"),
    ("PrometheusRule", "spec.groups.0.rules.1.expr", None, "'expr' is a required property"),
    ("Probe", "spec.prober.url", None, "'url' is a required property"),
    ("Probe", "spec.prober.scheme", "ftp", "ftp"),
    (
        "Probe",
        "spec.targets.staticConfig.static",
        "https://one.example.com",
        "spec.targets.staticConfig.static",
    ),
    ("PrometheusConfig", "spec.serviceDiscoveryRole", "Pods", "Pods"),
    ("PrometheusConfig", "spec.alerting.alertmanagers.0.timeout", "soon", "timeout"),
]


@pytest.mark.parametrize(
    ("kind", "path", "value", "expected"), BAD, ids=[f"{b[0]}:{b[1]}={b[2]!r}" for b in BAD]
)
def test_a_bad_custom_resource_is_rejected(kind: str, path: str, value: Any, expected: str) -> None:
    errors = m.cr_errors(_set(_sample(kind), path, value), m.crds())
    assert any(expected in e for e in errors), errors


@pytest.mark.parametrize("doc", CRD_DOCS, ids=lambda d: d.where)
def test_crd_schema_is_structural(doc: m.Doc) -> None:
    for version in doc.body["spec"]["versions"]:
        assert m.structural_errors(version["schema"]["openAPIV3Schema"]) == []


def test_prometheusconfig_crd() -> None:
    (crd,) = [d.body for d in CRD_DOCS if d.body["metadata"]["name"] == "prometheusconfigs.reloader.dev"]
    spec = crd["spec"]
    assert (spec["group"], spec["scope"], spec["names"]["kind"], spec["names"]["plural"]) == (
        "reloader.dev",
        "Namespaced",
        "PrometheusConfig",
        "prometheusconfigs",
    )
    (version,) = spec["versions"]
    assert version["name"] == "v1alpha1" and version["served"] and version["storage"]
    assert version["subresources"] == {"status": {}}
    assert {c["name"] for c in version["additionalPrinterColumns"]} >= {"Reconciled", "Age"}
    fields = version["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
    # The CRD must admit exactly the spec fields that generation understands.
    assert set(fields) == SPEC_FIELDS


@pytest.mark.parametrize(
    ("name", "endpoints", "fields", "endpoint_fields"),
    [
        (
            "servicemonitors.monitoring.coreos.com",
            "endpoints",
            SERVICE_MONITOR_FIELDS,
            SERVICE_MONITOR_ENDPOINT_FIELDS,
        ),
        (
            "podmonitors.monitoring.coreos.com",
            "podMetricsEndpoints",
            POD_MONITOR_FIELDS,
            POD_METRICS_ENDPOINT_FIELDS,
        ),
    ],
)
def test_monitor_crd_covers_the_subset_the_operator_reads(
    name: str, endpoints: str, fields: frozenset[str], endpoint_fields: frozenset[str]
) -> None:
    # Exactly what generation accepts: a field the CRD admits but generation rejects (or the reverse)
    # would surprise users of clusters without prometheus-operator.
    (crd,) = [d.body for d in CRD_DOCS if d.body["metadata"]["name"] == name]
    (version,) = crd["spec"]["versions"]
    assert version["name"] == "v1"
    spec = version["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
    assert set(spec) == fields
    assert set(spec["namespaceSelector"]["properties"]) == {"any", "matchNames"}
    assert set(spec[endpoints]["items"]["properties"]) == endpoint_fields
    # What the operator does not support reaches it (and is rejected with an Event) instead of being pruned.
    assert version["schema"]["openAPIV3Schema"]["properties"]["spec"]["x-kubernetes-preserve-unknown-fields"]
    assert spec[endpoints]["items"]["x-kubernetes-preserve-unknown-fields"]


def test_probe_and_prometheusrule_crds_cover_what_the_operator_reads() -> None:
    from config_operator.generate.probes import PROBE_FIELDS, PROBER_FIELDS
    from config_operator.generate.rules import GROUP_FIELDS, RULE_FIELDS

    def spec_of(name: str) -> dict[str, Any]:
        (crd,) = [d.body for d in CRD_DOCS if d.body["metadata"]["name"] == name]
        (version,) = crd["spec"]["versions"]
        return dict(version["schema"]["openAPIV3Schema"]["properties"]["spec"])

    probe = spec_of("probes.monitoring.coreos.com")
    assert set(probe["properties"]) == PROBE_FIELDS
    assert set(probe["properties"]["prober"]["properties"]) == PROBER_FIELDS
    assert probe["properties"]["prober"]["properties"]["path"]["default"] == "/probe"
    group = spec_of("prometheusrules.monitoring.coreos.com")["properties"]["groups"]["items"]
    assert set(group["properties"]) == GROUP_FIELDS
    assert set(group["properties"]["rules"]["items"]["properties"]) == RULE_FIELDS


# --- the sidecar example ---------------------------------------------------------------------------

# What prometheus-operator passes to prometheus-config-reloader (the rule dir name aside).
OPERATOR_SIDECAR_ARGS = [
    "--listen-address=:8080",
    "--reload-url=http://127.0.0.1:9090/-/reload",
    "--config-file=/etc/prometheus/config/prometheus.yaml.gz",
    "--config-envsubst-file=/etc/prometheus/config_out/prometheus.env.yaml",
    "--watched-dir=/etc/prometheus/rules/prometheus-rulefiles-0",
    "--log-format=logfmt",
    "--log-level=info",
]
OPERATOR_INIT_ARGS = [
    "--watch-interval=0",
    "--listen-address=:8081",
    "--config-file=/etc/prometheus/config/prometheus.yaml.gz",
    "--config-envsubst-file=/etc/prometheus/config_out/prometheus.env.yaml",
    "--watched-dir=/etc/prometheus/rules/prometheus-rulefiles-0",
]


def _one(folder: Path, kind: str) -> dict[str, Any]:
    (body,) = [d.body for d in m.manifests() if d.path.parent == folder and d.kind == kind]
    return dict(body)


def _containers(pod_spec: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in [*pod_spec.get("initContainers", []), *pod_spec["containers"]]}


def test_sidecar_statefulset_runs_config_reloader_like_prometheus_operator() -> None:
    pod = _one(SIDECAR, "StatefulSet")["spec"]["template"]["spec"]
    containers = _containers(pod)
    assert containers["init-config-reloader"]["args"] == OPERATOR_INIT_ARGS
    assert containers["config-reloader"]["args"] == OPERATOR_SIDECAR_ARGS
    prometheus_args = containers["prometheus"]["args"]
    assert "--config.file=/etc/prometheus/config_out/prometheus.env.yaml" in prometheus_args
    assert "--web.enable-lifecycle" in prometheus_args  # /-/reload needs it

    for name in ("init-config-reloader", "config-reloader"):
        c = containers[name]
        assert {e["name"]: e.get("valueFrom") for e in c["env"]}["POD_NAME"] == {
            "fieldRef": {"fieldPath": "metadata.name"}
        }
        assert c["resources"]["limits"]["memory"] == "50Mi"
        assert c["resources"]["requests"]["memory"] == "50Mi"
    sidecar = containers["config-reloader"]
    assert sidecar["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "reloader-web"}
    assert sidecar["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "reloader-web"}

    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["config"]["secret"]["secretName"] == _one(SIDECAR, "Secret")["metadata"]["name"]
    assert (
        volumes["prometheus-rulefiles-0"]["configMap"]["name"]
        == _one(SIDECAR, "ConfigMap")["metadata"]["name"]
    )
    mounts = {v["name"]: v["mountPath"] for v in sidecar["volumeMounts"]}
    assert mounts["prometheus-rulefiles-0"] == "/etc/prometheus/rules/prometheus-rulefiles-0"


@pytest.mark.parametrize(
    ("folder", "kind"),
    [(SIDECAR, "StatefulSet"), (OPERATOR, "Deployment"), (OPERATOR / "prometheus", "StatefulSet")],
)
def test_every_container_is_locked_down(folder: Path, kind: str) -> None:
    pod = _one(folder, kind)["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 65534
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    for name, c in _containers(pod).items():
        sc = c["securityContext"]
        assert sc["runAsNonRoot"] is True and sc["runAsUser"] == 65534, name
        assert sc["readOnlyRootFilesystem"] is True, name
        assert sc["allowPrivilegeEscalation"] is False, name
        assert sc["capabilities"] == {"drop": ["ALL"]}, name
        assert sc["seccompProfile"] == {"type": "RuntimeDefault"}, name
        assert c["resources"]["limits"]["memory"], name


def test_operator_deployment_runs_two_leader_elected_replicas() -> None:
    deployment = _one(OPERATOR, "Deployment")
    assert deployment["spec"]["replicas"] == 2
    (c,) = deployment["spec"]["template"]["spec"]["containers"]
    assert c["args"][0] == "run" and "--leader-elect" in c["args"]
    assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
    rbac = [d.body for d in m.manifests() if d.path.parent == OPERATOR and d.kind == "ServiceAccount"]
    assert deployment["spec"]["template"]["spec"]["serviceAccountName"] in {
        s["metadata"]["name"] for s in rbac
    }


def test_sidecar_secret_holds_the_gzipped_template() -> None:
    gz = base64.b64decode(_one(SIDECAR, "Secret")["data"]["prometheus.yaml.gz"], validate=True)
    assert gz[:3] == b"\x1f\x8b\x08"
    template = (SIDECAR / "prometheus.yaml.tmpl").read_bytes()
    assert gzip.decompress(gz) == template, "secret-config.yaml is stale: regenerate it (see its header)"
    assert yaml.safe_load(template)["global"]["external_labels"]["replica"] == "$(POD_NAME)"


def _rewrite_all(argv: list[str], replacements: dict[str, str]) -> list[str]:
    return [systemd.rewrite(a, replacements) for a in argv]


@pytest.mark.e2e
@pytest.mark.timeout(240)
def test_sidecar_example_runs_against_prometheus(tmp_path: Path, prometheus_factory: Any) -> None:
    """The StatefulSet's two config-reloader containers, their args as written (paths moved into
    tmp_path), on the example's own Secret and ConfigMap: the init container renders the template with
    POD_NAME, Prometheus starts on it, the sidecar reloads it and its probes answer 200."""
    pod = _one(SIDECAR, "StatefulSet")["spec"]["template"]["spec"]
    containers = _containers(pod)
    etc = tmp_path / "etc" / "prometheus"
    config_dir, out_dir, rules_dir = (
        etc / "config",
        etc / "config_out",
        etc / "rules" / "prometheus-rulefiles-0",
    )
    for d in (config_dir, out_dir, rules_dir):
        d.mkdir(parents=True)
    # What the kubelet projects from the Secret and the ConfigMap.
    secret = _one(SIDECAR, "Secret")
    (config_dir / "prometheus.yaml.gz").write_bytes(base64.b64decode(secret["data"]["prometheus.yaml.gz"]))
    for name, text in _one(SIDECAR, "ConfigMap")["data"].items():
        (rules_dir / name).write_text(text)
    promtool = procs.require_binary(procs.PROMTOOL)
    checked = subprocess.run(
        [promtool, "check", "rules", *sorted(map(str, rules_dir.iterdir()))], capture_output=True
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr

    env = {k: v for k, v in os.environ.items() if not k.startswith("VIRTUAL_ENV")}
    env.update({"POD_NAME": "prometheus-1", "SHARD": "0"})
    paths = {"/etc/prometheus": str(etc)}
    init = containers["init-config-reloader"]
    done = subprocess.run(
        [str(BIN), *_rewrite_all(init["args"], paths)], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    rendered = out_dir / "prometheus.env.yaml"
    assert yaml.safe_load(rendered.read_text())["global"]["external_labels"]["replica"] == "prometheus-1"
    assert '"prometheus-1:${1}"' in rendered.read_text()

    target = prometheus_factory(rendered)
    port = procs.free_port()
    sidecar_args = _rewrite_all(
        containers["config-reloader"]["args"],
        {
            **paths,
            "127.0.0.1:9090": target.url.removeprefix("http://"),
            "--listen-address=:8080": f"--listen-address=127.0.0.1:{port}",
        },
    )
    log_path = tmp_path / "sidecar.log"
    with log_path.open("wb") as logf:
        proc = subprocess.Popen([str(BIN), *sidecar_args], env=env, stdout=logf, stderr=subprocess.STDOUT)
    try:
        probes = {
            p["httpGet"]["path"]
            for p in (
                containers["config-reloader"]["livenessProbe"],
                containers["config-reloader"]["readinessProbe"],
            )
        }

        def probes_pass() -> bool:
            assert proc.poll() is None, log_path.read_text()
            return all(
                procs.http_get(f"http://127.0.0.1:{port}{path}", timeout_s=2.0)[0] == 200 for path in probes
            )

        procs.wait_for(probes_pass, timeout_s=60, what="the sidecar's /healthz and /readyz")
        assert target.metric("prometheus_config_last_reload_successful") == 1.0
        assert "replica: prometheus-1" in target.config_yaml()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0, log_path.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.e2e
def test_operator_samples_render_to_a_config_promtool_accepts(tmp_path: Path) -> None:
    """The command in samples/prometheusconfig.yaml's header: every sample monitor is selected and
    accepted, and the result passes promtool (after the file_sd swap: Debian's build has no Kubernetes
    discovery)."""
    samples = OPERATOR / "samples"
    files = [
        "prometheusconfig.yaml",
        "servicemonitor.yaml",
        "podmonitor.yaml",
        "namespace.yaml",
        "prometheusrule.yaml",
        "probe.yaml",
    ]
    header = (samples / "prometheusconfig.yaml").read_text()
    assert all(f"-f {name}" in header for name in files)
    assert "--rules-dir rules" in header
    rules_dir = tmp_path / "rules"
    done = subprocess.run(
        [
            str(BIN.parent / "config-operator"),
            "render",
            *(a for name in files for a in ("-f", name)),
            f"--rules-dir={rules_dir}",
        ],
        cwd=samples,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == "", "a sample was skipped or ignored"
    config = yaml.safe_load(done.stdout)
    assert [job["job_name"] for job in config["scrape_configs"]] == [
        "serviceMonitor/shop/checkout/0",
        "podMonitor/monitoring/batch-workers/0",
        "probe/monitoring/websites",
    ]
    assert config["rule_files"] == ["/etc/prometheus/rules/prometheus-main-rulefiles-0/*.yaml"]
    (rule_file,) = (rules_dir / "prometheus-main-rulefiles-0").iterdir()
    assert rule_file.name.startswith("monitoring-checkout-rules-")
    swapped = tmp_path / "prometheus.yaml"
    # The rule files where --rules-dir put them, so that promtool checks them too.
    text = done.stdout.replace("/etc/prometheus/rules/", f"{rules_dir}/")
    swapped.write_text(filesd.to_file_sd(text, tmp_path / "targets"))
    promtool = procs.require_binary(procs.PROMTOOL)
    checked = subprocess.run([promtool, "check", "config", str(swapped)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 2 rules found" in checked.stdout + checked.stderr


def test_operator_prometheus_mounts_and_watches_the_rule_configmaps() -> None:
    """The example Prometheus mounts each rule ConfigMap the sample PrometheusConfig gets where its
    rule_files look, and its config-reloader watches each of those directories."""
    from config_operator.render import render_files

    samples = OPERATOR / "samples"
    rendered = render_files(
        [str(samples / f) for f in ("prometheusconfig.yaml", "namespace.yaml", "prometheusrule.yaml")]
    )
    assert rendered.rules is not None
    pod = _one(OPERATOR / "prometheus", "StatefulSet")["spec"]["template"]["spec"]
    containers = _containers(pod)
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["config"]["secret"]["secretName"] == "prometheus-main"
    mounted = {
        v["configMap"]["name"]: v["name"]
        for v in pod["volumes"]
        if "configMap" in v and v["configMap"]["optional"]
    }
    wanted = [cm.name for cm in rendered.rules.config_maps]
    # Every ConfigMap the operator writes now, and room for the rules to grow.
    assert set(wanted) < set(mounted)
    for entry in yaml.safe_load(rendered.text)["rule_files"]:
        directory = entry.removesuffix("/*.yaml")
        cm = directory.rsplit("/", 1)[1]
        for name in ("prometheus", "config-reloader", "init-config-reloader"):
            mounts = {m["name"]: m["mountPath"] for m in containers[name]["volumeMounts"]}
            assert mounts[mounted[cm]] == directory, name
    for cm in mounted:
        for name in ("config-reloader", "init-config-reloader"):
            assert f"--watched-dir=/etc/prometheus/rules/{cm}" in containers[name]["args"], name


@pytest.mark.e2e
@pytest.mark.timeout(240)
def test_operator_prometheus_example_loads_the_rules_from_prometheusrules(
    tmp_path: Path, prometheus_factory: Any
) -> None:
    """The example Prometheus of the operator example, its reloader args as written (paths moved into
    tmp_path), on what config-operator makes of the samples: the Secret's config and the rule
    ConfigMaps (from ``render --rules-dir``), each laid out where the StatefulSet mounts it (an optional
    ConfigMap that does not exist is an empty directory). Prometheus evaluates the sample's rules."""
    samples = OPERATOR / "samples"
    out_rules = tmp_path / "rendered-rules"
    files = [
        "prometheusconfig.yaml",
        "servicemonitor.yaml",
        "podmonitor.yaml",
        "namespace.yaml",
        "prometheusrule.yaml",
    ]
    done = subprocess.run(
        [
            str(BIN.parent / "config-operator"),
            "render",
            *(a for f in files for a in ("-f", f)),
            f"--rules-dir={out_rules}",
        ],
        cwd=samples,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    etc = tmp_path / "etc" / "prometheus"
    pod = _one(OPERATOR / "prometheus", "StatefulSet")["spec"]["template"]["spec"]
    containers = _containers(pod)
    volumes = {v["name"]: v for v in pod["volumes"]}
    # The kubelet's part: each volume where the reloader containers mount it.
    for mount in containers["config-reloader"]["volumeMounts"]:
        path = Path(mount["mountPath"].replace("/etc/prometheus", str(etc)))
        path.mkdir(parents=True, exist_ok=True)
        cm = volumes[mount["name"]].get("configMap")
        if cm is not None and (out_rules / cm["name"]).is_dir():
            for rule_file in (out_rules / cm["name"]).iterdir():
                (path / rule_file.name).write_bytes(rule_file.read_bytes())
    targets = tmp_path / "targets"
    config_text = filesd.to_file_sd(done.stdout, targets).replace("/etc/prometheus", str(etc))
    for job in yaml.safe_load(config_text)["scrape_configs"]:
        if "file_sd_configs" in job:
            targets.mkdir(exist_ok=True)
            filesd.target_file(targets, job["job_name"]).write_text("[]")
    secret_mount = next(m for m in containers["config-reloader"]["volumeMounts"] if m["name"] == "config")
    (Path(secret_mount["mountPath"].replace("/etc/prometheus", str(etc))) / "prometheus.yaml.gz").write_bytes(
        gzip.compress(config_text.encode(), mtime=0)
    )

    env = {k: v for k, v in os.environ.items() if not k.startswith("VIRTUAL_ENV")}
    env.update({"POD_NAME": "prometheus-0", "SHARD": "0"})
    paths = {"/etc/prometheus": str(etc)}
    init = subprocess.run(
        [str(BIN), *_rewrite_all(containers["init-config-reloader"]["args"], paths)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert init.returncode == 0, init.stdout + init.stderr
    target = prometheus_factory(etc / "config_out" / "prometheus.env.yaml")
    port = procs.free_port()
    sidecar_args = _rewrite_all(
        containers["config-reloader"]["args"],
        {
            **paths,
            "127.0.0.1:9090": target.url.removeprefix("http://"),
            "--listen-address=:8080": f"--listen-address=127.0.0.1:{port}",
        },
    )
    log_path = tmp_path / "sidecar.log"
    with log_path.open("wb") as logf:
        proc = subprocess.Popen([str(BIN), *sidecar_args], env=env, stdout=logf, stderr=subprocess.STDOUT)
    try:

        def groups() -> dict[str, list[str]]:
            assert proc.poll() is None, log_path.read_text()
            data = target.get_json("/api/v1/rules")["data"]["groups"]
            return {g["name"]: [r["name"] for r in g["rules"]] for g in data}

        loaded = procs.wait_for(
            lambda: groups().get("checkout"), timeout_s=60, what="the sample's rule group"
        )
        assert loaded == ["job:http_requests:rate5m", "CheckoutDown"]
        procs.wait_for(
            lambda: procs.http_get(f"http://127.0.0.1:{port}/readyz", timeout_s=2.0)[0] == 200,
            timeout_s=60,
            what="the sidecar ready",
        )
        assert target.metric("prometheus_config_last_reload_successful") == 1.0
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0, log_path.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
