"""Config generation: golden files, promtool, determinism, validation, and the small public helpers.

Golden cases live in golden/<case>/: input.yaml (multi-document manifests), expected.yaml (the exact
prometheus.yaml) and, when monitors are skipped, warnings.txt. ``UPDATE_GOLDEN=1 pytest ...``
rewrites them; review the diff before committing.
"""

from __future__ import annotations

import base64
import copy
import gzip
import json
import os
import random
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

import config_operator.generate.common as generate_common
from config_operator.generate import (
    SECRET_KEY,
    Generated,
    InvalidConfig,
    Rejected,
    compress,
    config_hash,
    dump_yaml,
    generate,
    may_select,
    parse_duration_ms,
    relabel_config,
    sanitize_label_name,
    secret_name,
)
from config_operator.render import render_files
from reloader.render import Expansion, render
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
from tests.support.procs import PROMTOOL, require_binary

GOLDEN = Path(__file__).parent / "golden"
CASES = sorted(p.name for p in GOLDEN.iterdir() if (p / "input.yaml").is_file())
UPDATE = os.environ.get("UPDATE_GOLDEN") == "1"


def test_there_are_enough_golden_cases() -> None:
    assert len(CASES) >= 12, CASES


@pytest.mark.parametrize("case", CASES)
def test_golden(case: str) -> None:
    rendered = render_files([str(GOLDEN / case / "input.yaml")])
    expected_path = GOLDEN / case / "expected.yaml"
    warnings_path = GOLDEN / case / "warnings.txt"
    warnings = "".join(w + "\n" for w in rendered.warnings)
    if UPDATE:
        expected_path.write_text(rendered.text)
        if warnings:
            warnings_path.write_text(warnings)
        else:
            warnings_path.unlink(missing_ok=True)
    assert rendered.text == expected_path.read_text()
    assert warnings == (warnings_path.read_text() if warnings_path.exists() else "")


class _PurePythonDumper(yaml.SafeDumper):
    def ignore_aliases(self, data: Any) -> bool:
        return True


@pytest.mark.parametrize("case", CASES)
def test_golden_without_libyaml(case: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # Generation uses libyaml's emitter when PyYAML has it; an operator image without it must still
    # write the same bytes, or two replicas would keep rewriting the Secret.
    monkeypatch.setattr(generate_common, "_Dumper", _PurePythonDumper)
    rendered = render_files([str(GOLDEN / case / "input.yaml")])
    assert rendered.text == (GOLDEN / case / "expected.yaml").read_text()


@pytest.mark.e2e
@pytest.mark.parametrize("case", CASES)
def test_promtool_accepts_golden(case: str, tmp_path: Path) -> None:
    promtool = require_binary(PROMTOOL)
    text = (GOLDEN / case / "expected.yaml").read_text()
    swapped = to_file_sd(text, tmp_path)
    for job in yaml.safe_load(swapped)["scrape_configs"]:
        if "file_sd_configs" in job:
            target_file(tmp_path, job["job_name"]).write_text("[]")
    # Expand $(VAR) as the reloader would in a pod, through its own pipeline and from the gzip the
    # operator writes; strict, so a forgotten variable fails here rather than reaching Prometheus.
    expansion = Expansion()
    env = {"POD_NAME": "prometheus-main-0", "SHARD": "0"}
    rendered = b"".join(render([compress(swapped.encode())], env, expansion, source=case, strict=True))
    config = tmp_path / "prometheus.yaml"
    config.write_bytes(rendered)
    proc = subprocess.run(
        [promtool, "check", "config", "--syntax-only", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS" in proc.stdout + proc.stderr


def test_pod_name_placeholder_is_left_for_the_reloader() -> None:
    text = (GOLDEN / "external_labels_pod_name" / "expected.yaml").read_text()
    assert yaml.safe_load(text)["global"]["external_labels"] == {
        "cluster": "eu-1",
        "prometheus": "monitoring/main",
        "prometheus_replica": "$(POD_NAME)",
        "replica": "$(POD_NAME)",
    }


# --- determinism ------------------------------------------------------------------------------------


def _load_case(case: str) -> dict[str, list[Any]]:
    by_kind: dict[str, list[Any]] = {}
    for doc in yaml.safe_load_all((GOLDEN / case / "input.yaml").read_text()):
        if doc:
            by_kind.setdefault(doc["kind"], []).append(doc)
    return by_kind


def _generate(objs: dict[str, list[Any]]) -> Generated:
    return generate(
        objs["PrometheusConfig"][0],
        objs.get("ServiceMonitor", []),
        objs.get("PodMonitor", []),
        objs.get("Namespace", []),
        objs.get("Secret", []),
    )


def _shuffled(value: Any, rng: random.Random) -> Any:
    """The same objects with every mapping's keys in a random order (lists keep theirs)."""
    if isinstance(value, dict):
        keys = list(value)
        rng.shuffle(keys)
        return {k: _shuffled(value[k], rng) for k in keys}
    if isinstance(value, list):
        return [_shuffled(v, rng) for v in value]
    return value


@pytest.mark.parametrize("case", ["full_spec", "rejected_monitor", "pod_monitor", "job_label_target_labels"])
def test_same_inputs_same_bytes_whatever_the_order(case: str) -> None:
    objs = _load_case(case)
    first = _generate(objs)
    rng = random.Random(case)
    for _ in range(20):
        shuffled = {kind: _shuffled(items, rng) for kind, items in objs.items()}
        for items in shuffled.values():
            rng.shuffle(items)
        again = _generate(shuffled)
        assert again == first
        assert compress(again.config) == compress(first.config)


def test_compress_is_deterministic_gzip_with_mtime_zero() -> None:
    data = (GOLDEN / "full_spec" / "expected.yaml").read_bytes()
    blob = compress(data)
    assert blob == compress(data)
    assert blob[:3] == b"\x1f\x8b\x08"
    assert blob[4:8] == b"\x00\x00\x00\x00"  # mtime
    assert gzip.decompress(blob) == data


def test_config_hash_is_sha256_of_the_plain_config() -> None:
    assert config_hash(b"") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert config_hash(b"a") != config_hash(b"b")


def test_generate_does_not_mutate_its_inputs() -> None:
    objs = _load_case("full_spec")
    before = copy.deepcopy(objs)
    _generate(objs)
    assert objs == before


# --- selection and counts ---------------------------------------------------------------------------


def _pc(spec: dict[str, Any], name: str = "main", namespace: str = "monitoring") -> Any:
    return {"kind": "PrometheusConfig", "metadata": {"name": name, "namespace": namespace}, "spec": spec}


def _sm(name: str, namespace: str, labels: dict[str, str] | None = None, **spec: Any) -> Any:
    body: dict[str, Any] = {"selector": {}, "endpoints": [{"port": "metrics"}], **spec}
    return {
        "kind": "ServiceMonitor",
        "metadata": {"name": name, "namespace": namespace, "labels": labels or {}},
        "spec": body,
    }


def _pm(name: str, namespace: str, labels: dict[str, str] | None = None, **spec: Any) -> Any:
    body: dict[str, Any] = {"selector": {}, "podMetricsEndpoints": [{"port": "metrics"}], **spec}
    return {
        "kind": "PodMonitor",
        "metadata": {"name": name, "namespace": namespace, "labels": labels or {}},
        "spec": body,
    }


def _ns(name: str, **labels: str) -> Any:
    return {"kind": "Namespace", "metadata": {"name": name, "labels": labels}}


def _jobs(generated: Generated) -> list[str]:
    return [j["job_name"] for j in yaml.safe_load(generated.config)["scrape_configs"]]


def test_counts_and_job_names_follow_selection() -> None:
    pc = _pc(
        {
            "serviceMonitorSelector": {"matchLabels": {"team": "a"}},
            "serviceMonitorNamespaceSelector": {"matchExpressions": [{"key": "env", "operator": "Exists"}]},
            "podMonitorSelector": {},
        }
    )
    sms = [
        _sm("one", "prod", {"team": "a"}),
        _sm("two", "prod", {"team": "b"}),  # labels do not match
        _sm("three", "scratch", {"team": "a"}),  # namespace has no env label
        _sm("bad", "prod", {"team": "a"}, endpoints=[{"port": "m", "scheme": "ftp"}]),
    ]
    pms = [_pm("own", "monitoring"), _pm("other", "prod")]  # nil ns selector: own namespace only
    out = generate(pc, sms, pms, [_ns("prod", env="p"), _ns("scratch")], [])
    assert _jobs(out) == ["serviceMonitor/prod/one/0", "podMonitor/monitoring/own/0"]
    assert (out.service_monitors, out.pod_monitors) == (1, 1)
    assert out.rejected == (Rejected("ServiceMonitor", "prod", "bad", out.rejected[0].reason),)
    assert "ftp" in out.rejected[0].reason


def test_nil_monitor_selector_selects_nothing_and_empty_selects_all() -> None:
    sms = [_sm("a", "monitoring"), _sm("b", "monitoring", {"x": "y"})]
    none = generate(_pc({}), sms, [], [], [])
    assert _jobs(none) == [] and none.service_monitors == 0
    every = generate(_pc({"serviceMonitorSelector": {}}), sms, [], [], [])
    assert _jobs(every) == ["serviceMonitor/monitoring/a/0", "serviceMonitor/monitoring/b/0"]


def test_unselected_malformed_monitor_is_not_rejected() -> None:
    bad = _sm("bad", "elsewhere", endpoints="nope")
    out = generate(_pc({"serviceMonitorSelector": {}}), [bad], [], [], [])
    assert out.rejected == ()


# --- monitor validation (rejections) ----------------------------------------------------------------

REJECTIONS: list[tuple[dict[str, Any], str]] = [
    (
        {"endpoints": [{"port": "m", "interval": "10s", "scrapeTimeout": "11s"}]},
        "greater than the scrape interval",
    ),
    # No endpoint interval: compared against the global one (30s by default).
    ({"endpoints": [{"port": "m", "scrapeTimeout": "1m"}]}, "greater than the scrape interval '30s'"),
    ({"endpoints": [{"port": "m", "interval": "soon"}]}, "interval: not a valid duration"),
    ({"endpoints": [{"port": "m", "scheme": "gopher"}]}, "unknown scheme 'gopher'"),
    (
        {"endpoints": [{"port": "m", "relabelings": [{"action": "explode"}]}]},
        "unknown relabel action 'explode'",
    ),
    ({"endpoints": [{"port": "m", "relabelings": [{"regex": "(", "targetLabel": "x"}]}]}, "invalid regex"),
    ({"endpoints": [{"port": "m", "metricRelabelings": [{"regex": "(?!x)", "action": "drop"}]}]}, "RE2"),
    ({"endpoints": [{"port": "m", "relabelings": [{"sourceLabels": ["a"]}]}]}, "needs a targetLabel"),
    ({"endpoints": [{"port": "m", "relabelings": [{"action": "hashmod", "targetLabel": "h"}]}]}, "modulus"),
    (
        {
            "endpoints": [
                {"port": "m", "relabelings": [{"action": "labeldrop", "regex": "a", "targetLabel": "b"}]}
            ]
        },
        "takes no",
    ),
    (
        {"endpoints": [{"port": "m", "relabelings": [{"sourceLabels": ["bad-name"], "targetLabel": "x"}]}]},
        "sourceLabels",
    ),
    ({"endpoints": [{"port": "m", "relabelings": [{"targetLab": "x"}]}]}, "unknown field(s): targetLab"),
    ({"endpoints": [{"port": "m", "path": "metrics"}]}, "must start with '/'"),
    ({"endpoints": [{"port": "m", "params": {"a": "b"}}]}, "params"),
    ({"endpoints": [{"port": "m", "honorLabels": "yes"}]}, "honorLabels"),
    ({"endpoints": [{"port": "m", "sigv4": {}}]}, "unsupported field(s): sigv4"),
    ({"endpoints": []}, "non-empty list"),
    ({"selector": {"matchExpressions": [{"key": "a", "operator": "Near"}]}}, "unknown operator 'Near'"),
    ({"selector": {"matchExpressions": [{"key": "a", "operator": "In"}]}}, "at least one value"),
    ({"namespaceSelector": {"matchLabels": {"a": "b"}}}, "namespaceSelector may hold only"),
    ({"sampleLimit": -1}, "spec.sampleLimit must be a non-negative integer"),
    ({"bodySizeLimit": "10 megs"}, "spec.bodySizeLimit: not a byte size"),
    ({"sampleLimits": 10}, "unsupported field(s) in spec: sampleLimits"),
    ({"targetLabels": "team"}, "targetLabels"),
]


@pytest.mark.parametrize(("spec", "reason"), REJECTIONS)
def test_malformed_service_monitor_is_rejected_with_reason(spec: dict[str, Any], reason: str) -> None:
    good = _sm("good", "monitoring")
    bad = _sm("bad", "monitoring", **spec)
    out = generate(_pc({"serviceMonitorSelector": {}}), [bad, good], [], [], [])
    assert _jobs(out) == ["serviceMonitor/monitoring/good/0"]
    assert len(out.rejected) == 1
    rejected = out.rejected[0]
    assert (rejected.kind, rejected.namespace, rejected.name) == ("ServiceMonitor", "monitoring", "bad")
    assert reason in rejected.reason
    assert "\n" not in rejected.reason


def test_malformed_pod_monitor_is_rejected() -> None:
    bad = _pm(
        "bad", "monitoring", podMetricsEndpoints=[{"port": "m", "interval": "5s", "scrapeTimeout": "6s"}]
    )
    out = generate(_pc({"podMonitorSelector": {}}), [], [bad, _pm("ok", "monitoring")], [], [])
    assert _jobs(out) == ["podMonitor/monitoring/ok/0"]
    assert [(r.kind, r.name) for r in out.rejected] == [("PodMonitor", "bad")]
    assert out.pod_monitors == 1


def test_endpoint_timeout_checked_against_global_interval_from_spec() -> None:
    sm = _sm("m", "monitoring", endpoints=[{"port": "m", "scrapeTimeout": "20s"}])
    pc = _pc({"serviceMonitorSelector": {}, "scrapeInterval": "15s"})
    assert len(generate(pc, [sm], [], [], []).rejected) == 1
    pc = _pc({"serviceMonitorSelector": {}, "scrapeInterval": "1m"})
    assert generate(pc, [sm], [], [], []).rejected == ()


def test_scheme_is_written_in_lower_case() -> None:
    sm = _sm("m", "monitoring", endpoints=[{"port": "m", "scheme": "HTTPS"}])
    out = generate(_pc({"serviceMonitorSelector": {}}), [sm], [], [], [])
    assert yaml.safe_load(out.config)["scrape_configs"][0]["scheme"] == "https"


# --- PrometheusConfig validation --------------------------------------------------------------------

INVALID_SPECS: list[tuple[Any, str]] = [
    ({"scrapeInterval": "often"}, "spec.scrapeInterval: not a valid duration"),
    ({"scrapeInterval": "10s", "scrapeTimeout": "20s"}, "greater than spec.scrapeInterval"),
    ({"evaluationInterval": "1x"}, "spec.evaluationInterval"),
    ({"externalLabels": {"bad-name": "x"}}, "not a valid label name"),
    ({"externalLabels": ["a"]}, "spec.externalLabels must be a mapping"),
    (
        {"serviceMonitorSelector": {"matchExpressions": [{"key": "a", "operator": "Is"}]}},
        "spec.serviceMonitorSelector",
    ),
    (
        {"podMonitorNamespaceSelector": {"matchLabel": {}}},
        "spec.podMonitorNamespaceSelector: label selector has unknown",
    ),
    ({"ruleFiles": "/etc/rules"}, "spec.ruleFiles"),
    ({"alerting": {"alertmanagers": [{"static": "am:9093"}]}}, "static must be a list"),
    ({"alerting": {"alertmanagers": [{"static": ["am:9093"], "scheme": "ftp"}]}}, "unknown scheme"),
    ({"additionalScrapeConfigs": {"name": "missing", "key": "k"}}, "Secret monitoring/missing not found"),
    ({"additionalScrapeConfigs": {"name": "extra", "key": "nope"}}, "has no key 'nope'"),
    ({"additionalScrapeConfigs": {"name": "extra", "key": "notyaml"}}, "not valid YAML"),
    ({"additionalScrapeConfigs": {"name": "extra", "key": "notalist"}}, "must be a list of scrape configs"),
    (
        {"additionalScrapeConfigs": {"name": "extra", "key": "dup"}},
        "duplicate job_name 'serviceMonitor/monitoring/m/0'",
    ),
    ({"secretName": "Not_A_Name"}, "spec.secretName"),
    ({"paused": "yes"}, "spec.paused"),
    ({"replicas": 2}, "spec has unknown field(s): replicas"),
    ("not a mapping", "spec must be a mapping"),
]


@pytest.mark.parametrize(("spec", "message"), INVALID_SPECS)
def test_malformed_prometheus_config_raises_invalid_config(spec: Any, message: str) -> None:
    secret: Any = {
        "metadata": {"name": "extra", "namespace": "monitoring"},
        "stringData": {
            "notyaml": "- job_name: [unclosed",
            "notalist": "job_name: x",
            "dup": "- job_name: serviceMonitor/monitoring/m/0\n  static_configs: []",
        },
    }
    pc = _pc(spec) if not isinstance(spec, dict) else _pc({"serviceMonitorSelector": {}, **spec})
    with pytest.raises(InvalidConfig) as info:
        generate(pc, [_sm("m", "monitoring")], [], [], [secret])
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_prometheus_config_without_name_is_invalid() -> None:
    with pytest.raises(InvalidConfig, match=r"metadata\.name"):
        generate({"metadata": {"namespace": "x"}, "spec": {}}, [], [], [], [])


def test_additional_scrape_configs_from_base64_data() -> None:
    jobs = b"- job_name: extra\n  static_configs:\n  - targets: [a:1]\n"
    secret: Any = {
        "metadata": {"name": "s", "namespace": "monitoring"},
        "data": {"k": base64.b64encode(jobs).decode()},
    }
    out = generate(_pc({"additionalScrapeConfigs": {"name": "s", "key": "k"}}), [], [], [], [secret])
    assert yaml.safe_load(out.config)["scrape_configs"] == [
        {"job_name": "extra", "static_configs": [{"targets": ["a:1"]}]}
    ]


# --- helpers ----------------------------------------------------------------------------------------


def test_secret_name_default_and_override() -> None:
    assert secret_name(_pc({}, name="main")) == "prometheus-main"
    assert secret_name(_pc({"secretName": "custom"})) == "custom"
    assert SECRET_KEY == "prometheus.yaml.gz"


@pytest.mark.parametrize(
    ("text", "ms"),
    [
        ("30s", 30_000),
        ("1m30s", 90_000),
        ("500ms", 500),
        ("1h", 3_600_000),
        ("1d", 86_400_000),
        ("0s", 0),
        ("0", 0),
    ],
)
def test_parse_duration_ms(text: str, ms: int) -> None:
    assert parse_duration_ms(text) == ms


@pytest.mark.parametrize("text", ["", "30", "1.5s", "s", "30S", "1s1m", " 1s"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="not a valid duration"):
        parse_duration_ms(text)


def _general_duration_ms(text: str) -> int:
    # parse_duration_ms without its one-number-one-unit shortcut: the general pattern alone.
    if text == "0":
        return 0
    match = generate_common._DURATION.match(text)
    if not text or match is None or not any(match.groups()):
        raise ValueError(f"not a valid duration: {text!r}")
    units = generate_common._DURATION_UNITS_MS
    return sum(int(g) * unit for g, unit in zip(match.groups(), units, strict=True) if g)


def test_parse_duration_shortcut_agrees_with_the_general_pattern() -> None:
    units = ["ms", "s", "m", "h", "d", "w", "y", "S", "M", "", "sm", "mss", "us"]
    # The last are Arabic-Indic digits, which \d matches too.
    numbers = ["0", "1", "15", "007", "1.5", "", "-1", "\u0661\u0665"]
    texts = [f"{n}{u}{tail}" for n in numbers for u in units for tail in ("", "\n", " ", "30s")]
    for text in texts:
        try:
            want: int | str = _general_duration_ms(text)
        except ValueError as exc:
            want = str(exc)
        try:
            got: int | str = parse_duration_ms(text)
        except ValueError as exc:
            got = str(exc)
        assert got == want, text


def test_sanitize_label_name() -> None:
    assert sanitize_label_name("app.kubernetes.io/name") == "app_kubernetes_io_name"
    assert sanitize_label_name("cost-center") == "cost_center"


def test_relabel_config_renders_snake_case_and_lower_case_action() -> None:
    assert relabel_config(
        {
            "sourceLabels": ["a", "b"],
            "separator": "-",
            "regex": "(.*)",
            "targetLabel": "c",
            "replacement": "$1",
            "action": "Replace",
        }
    ) == {
        "source_labels": ["a", "b"],
        "separator": "-",
        "target_label": "c",
        "regex": "(.*)",
        "replacement": "$1",
        "action": "replace",
    }
    assert relabel_config({"action": "hashmod", "sourceLabels": ["x"], "targetLabel": "h", "modulus": 4}) == {
        "source_labels": ["x"],
        "target_label": "h",
        "modulus": 4,
        "action": "hashmod",
    }
    # ${1}-style target labels are allowed for replace, as Prometheus allows them.
    assert relabel_config({"targetLabel": "${1}_x", "regex": "(a)"})["target_label"] == "${1}_x"


# --- may_select -------------------------------------------------------------------------------------


def test_may_select_monitors() -> None:
    pc = _pc(
        {
            "serviceMonitorSelector": {"matchLabels": {"r": "1"}},
            "serviceMonitorNamespaceSelector": {"matchLabels": {"watched": "yes"}},
        }
    )
    namespaces = [_ns("a", watched="yes"), _ns("b")]
    assert may_select(pc, _sm("x", "a", {"r": "1"}), namespaces)
    assert not may_select(pc, _sm("x", "b", {"r": "1"}), namespaces)
    assert not may_select(pc, _sm("x", "a", {"r": "2"}), namespaces)
    # No podMonitorSelector: no PodMonitor can be selected.
    assert not may_select(pc, _pm("x", "a", {"r": "1"}), namespaces)


def test_may_select_without_kind_guesses_from_spec() -> None:
    pc = _pc({"podMonitorSelector": {}})
    listed = _pm("x", "monitoring")
    del listed["kind"]  # list items come without kind
    assert may_select(pc, listed, [])
    assert not may_select(pc, listed, [], kind="ServiceMonitor")


def test_may_select_namespaces() -> None:
    ns = _ns("anything")
    assert not may_select(_pc({"serviceMonitorSelector": {}}), ns, [])
    assert may_select(_pc({"podMonitorNamespaceSelector": {}}), ns, [])


def test_may_select_is_true_for_a_malformed_config() -> None:
    pc = _pc({"serviceMonitorSelector": {"matchExpressions": [{"key": "k", "operator": "??"}]}})
    assert may_select(pc, _sm("x", "monitoring"), [])


# --- the file_sd substitution the promtool and relabeling tests rely on ------------------------------


def test_to_file_sd_changes_only_the_discovery_blocks(tmp_path: Path) -> None:
    text = (GOLDEN / "full_spec" / "expected.yaml").read_text()
    swapped = to_file_sd(text, tmp_path)
    assert "kubernetes_sd_configs" not in swapped

    # Remove both discovery blocks and what is left must be byte for byte the same.
    def without_discovery(config: str, key: str) -> list[str]:
        out, indent = [], None
        for line in config.splitlines():
            if line.strip() == f"{key}:":  # a job's (column 2) or an alertmanager's (column 4)
                indent = " " * (len(line) - len(line.lstrip()))
                continue
            if indent is not None and line.startswith((f"{indent}- ", f"{indent}  ")):
                continue
            indent = None
            out.append(line)
        return out

    assert without_discovery(swapped, "file_sd_configs") == without_discovery(text, "kubernetes_sd_configs")
    jobs = yaml.safe_load(swapped)["scrape_configs"]
    assert jobs[0]["file_sd_configs"] == [{"files": [str(target_file(tmp_path, jobs[0]["job_name"]))]}]
    assert len({str(target_file(tmp_path, j["job_name"])) for j in jobs}) == len(jobs)


def test_to_file_sd_leaves_static_jobs_alone(tmp_path: Path) -> None:
    text = (GOLDEN / "additional_scrape_configs" / "expected.yaml").read_text()
    assert to_file_sd(text, tmp_path) == text


def test_write_targets_filters_by_role_and_namespace(tmp_path: Path) -> None:

    cluster = Cluster(
        services=(
            Service("a", "svc", {"app": "x"}, {"app": "x"}, (ServicePort("metrics", "metrics"),)),
            Service("b", "svc", {"app": "x"}, {"app": "x"}, (ServicePort("metrics", "metrics"),)),
        ),
        pods=(
            Pod(
                "a",
                "p1",
                {"app": "x"},
                (Container("c", (ContainerPort("metrics", 1), ContainerPort("other", 2))),),
            ),
            Pod("b", "p2", {"app": "x"}, (Container("c", (ContainerPort("metrics", 3),)),)),
            Pod("b", "p3", {"app": "x"}, (Container("c", (ContainerPort("metrics", 4),)),), phase="Failed"),
        ),
    )
    config = dump_yaml(
        {
            "scrape_configs": [
                {
                    "job_name": "ep-a",
                    "kubernetes_sd_configs": [{"role": "endpoints", "namespaces": {"names": ["a"]}}],
                },
                {"job_name": "pods-all", "kubernetes_sd_configs": [{"role": "pod"}]},
            ]
        }
    ).decode()
    counts = write_targets(config, cluster, tmp_path)
    # Endpoints in a: p1's metrics port through the service, plus its uncovered "other" port.
    assert counts == {"ep-a": 2, "pods-all": 4}
    groups = json.loads(target_file(tmp_path, "ep-a").read_text())
    assert [g["labels"].get("__meta_kubernetes_endpoint_port_name") for g in groups] == ["metrics", None]
    assert {g["labels"]["__meta_kubernetes_namespace"] for g in groups} == {"a"}
    pods = json.loads(target_file(tmp_path, "pods-all").read_text())
    # The pod role lists terminated pods too (the running filter in the rules drops them).
    assert sorted(g["targets"][0] for g in pods) == [
        "127.0.0.1:1",
        "127.0.0.1:2",
        "127.0.0.1:3",
        "127.0.0.1:4",
    ]
