"""PrometheusRules -> rule files -> ConfigMaps: kube-prometheus' rules as golden files, promtool, the
split, the selection and the rejections.

The golden case golden_rules/kube_prometheus/ holds, for all of ../shared/realworld/rules/ selected by
one PrometheusConfig, the config's rule_files (rule_files.yaml) and every ConfigMap's files
(<configmap>/<file>). ``UPDATE_GOLDEN=1 pytest ...`` rewrites them; review the diff before committing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from config_operator.cli import cli
from config_operator.generate import InvalidConfig, generate
from config_operator.generate.rules import (
    MAX_CONFIGMAP_DATA_BYTES,
    RuleConfigMap,
    configmap_name,
    file_name,
    rule_file,
    split,
)
from tests.support.procs import PROMTOOL, require_binary

# A copy of ../shared/realworld/rules/ (with its SOURCES.txt), so that a fresh clone has it too.
REALWORLD = Path(__file__).parent / "golden_rules" / "realworld"
GOLDEN = Path(__file__).parent / "golden_rules" / "kube_prometheus"
UPDATE = os.environ.get("UPDATE_GOLDEN") == "1"


def pc(spec: dict[str, Any] | None = None, namespace: str = "monitoring") -> dict[str, Any]:
    return {
        "apiVersion": "reloader.dev/v1alpha1",
        "kind": "PrometheusConfig",
        "metadata": {"name": "k8s", "namespace": namespace, "uid": "pc-uid"},
        "spec": {"ruleSelector": {}, "ruleNamespaceSelector": {}} if spec is None else spec,
    }


def realworld_rules() -> list[dict[str, Any]]:
    """kube-prometheus' PrometheusRules, each with the UID an API server would have given it."""
    rules = []
    for path in sorted(REALWORLD.glob("*.yaml")):
        obj = yaml.safe_load(path.read_text())
        if obj["kind"] != "PrometheusRule":
            continue
        meta = obj["metadata"]
        meta["uid"] = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{meta['namespace']}/{meta['name']}"))
        rules.append(obj)
    return rules


def rule(
    name: str, groups: Any, *, namespace: str = "monitoring", labels: dict[str, str] | None = None
) -> dict[str, Any]:
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {"name": name, "namespace": namespace, "uid": f"uid-{name}", "labels": labels or {}},
        "spec": {"groups": groups},
    }


ALERT = {"alert": "Down", "expr": "up == 0", "for": "5m", "labels": {"severity": "page"}}
RECORD = {"record": "job:up:sum", "expr": "sum by (job) (up)"}


def gen(
    config: dict[str, Any], rules: list[dict[str, Any]], namespaces: list[dict[str, Any]] | None = None
) -> Any:
    return generate(config, [], [], namespaces or [], [], prometheus_rules=rules)  # type: ignore[arg-type]


# --- kube-prometheus, golden ----------------------------------------------------------------------


def test_the_realworld_rules_are_there() -> None:
    rules = [p for p in REALWORLD.glob("*.yaml") if yaml.safe_load(p.read_text())["kind"] == "PrometheusRule"]
    assert len(rules) == 8
    shared = Path(__file__).resolve().parents[3] / "shared" / "realworld" / "rules"
    for path in rules if shared.is_dir() else ():
        assert path.read_bytes() == (shared / path.name).read_bytes(), f"{path.name} differs from {shared}"


def test_kube_prometheus_rules_golden() -> None:
    generated = gen(pc(), realworld_rules())
    assert generated.rules is not None
    assert generated.rules.rejected == ()
    rule_files = yaml.safe_load(generated.config)["rule_files"]
    actual = {
        f"{cm.name}/{name}": content
        for cm in generated.rules.config_maps
        for name, content in cm.data.items()
    }
    if UPDATE:
        shutil.rmtree(GOLDEN, ignore_errors=True)
        GOLDEN.mkdir(parents=True)
        (GOLDEN / "rule_files.yaml").write_text(yaml.safe_dump(rule_files))
        for rel, content in actual.items():
            (GOLDEN / rel).parent.mkdir(exist_ok=True)
            (GOLDEN / rel).write_text(content)
    expected = {str(p.relative_to(GOLDEN)): p.read_text() for p in sorted(GOLDEN.glob("*/*.yaml"))}
    assert actual == expected
    assert rule_files == yaml.safe_load((GOLDEN / "rule_files.yaml").read_text())
    # 150 kB of rules: one ConfigMap, every file under prometheus-operator's name.
    assert rule_files == ["/etc/prometheus/rules/prometheus-k8s-rulefiles-0/*.yaml"]
    assert sorted(actual) == sorted(
        f"prometheus-k8s-rulefiles-0/monitoring-{r['metadata']['name']}-{r['metadata']['uid']}.yaml"
        for r in realworld_rules()
    )


def test_kube_prometheus_rule_files_hold_exactly_the_groups() -> None:
    for obj in realworld_rules():
        assert yaml.safe_load(rule_file(obj)) == {"groups": obj["spec"]["groups"]}, obj["metadata"]["name"]


@pytest.mark.e2e
def test_promtool_accepts_every_generated_rule_file(tmp_path: Path) -> None:
    promtool = require_binary(PROMTOOL)
    generated = gen(pc(), realworld_rules())
    assert generated.rules is not None
    paths = []
    for cm in generated.rules.config_maps:
        for name, content in cm.data.items():
            (tmp_path / name).write_text(content)
            paths.append(str(tmp_path / name))
    assert len(paths) == 8
    # --lint=none: kube-prometheus' own rules hold one duplicate recording rule, which promtool's lint
    # reports (exit 0 still) instead of the SUCCESS line this counts.
    done = subprocess.run(
        [promtool, "check", "rules", "--lint=none", *paths], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count("SUCCESS") == 8, done.stdout


@pytest.mark.e2e
def test_promtool_refuses_what_the_python_checks_refuse(tmp_path: Path) -> None:
    """The structural checks are promtool's own: the same broken file fails both."""
    promtool = require_binary(PROMTOOL)
    for i, groups in enumerate(
        [
            [{"name": "g", "rules": [{"record": "bad name", "expr": "up"}]}],
            [{"name": "g", "rules": [{"alert": "A", "record": "b", "expr": "up"}]}],
            [{"name": "g", "rules": [{"alert": "A", "expr": "up", "labels": {"bad-label": "x"}}]}],
            [{"name": "g", "rules": [ALERT]}, {"name": "g", "rules": [ALERT]}],
            [{"name": "g", "rules": [{**ALERT, "expr": "sum(rate(x[5m])"}]}],
            [{"name": "g", "rules": [{**ALERT, "expr": 'up{job="a}'}]}],
            [{"name": "g", "rules": [{**ALERT, "annotations": {"summary": "{{ $labels.job }"}}]}],
        ]
    ):
        with pytest.raises(ValueError):
            rule_file(rule("bad", groups))
        path = tmp_path / f"bad-{i}.yaml"
        path.write_text(yaml.safe_dump({"groups": groups}))
        done = subprocess.run(
            [promtool, "check", "rules", str(path)], capture_output=True, text=True, timeout=60
        )
        assert done.returncode != 0, groups


# --- names and the split --------------------------------------------------------------------------


def test_names_are_prometheus_operators() -> None:
    assert configmap_name("main", 3) == "prometheus-main-rulefiles-3"
    assert file_name(rule("api", [], namespace="shop")) == "shop-api-uid-api.yaml"


def _files(*sizes: int) -> dict[str, str]:
    return {f"f{i:02d}.yaml": "x" * size for i, size in enumerate(sizes)}


HALF = MAX_CONFIGMAP_DATA_BYTES
SPLITS = [
    ("nothing: one empty ConfigMap", (), [[]]),
    ("all fit", (10, 20, 30), [["f00.yaml", "f01.yaml", "f02.yaml"]]),
    ("exactly full", (HALF - 10, 10), [["f00.yaml", "f01.yaml"]]),
    ("one byte over moves on", (HALF - 10, 11), [["f00.yaml"], ["f01.yaml"]]),
    ("a full one alone", (HALF, 1), [["f00.yaml"], ["f01.yaml"]]),
    # First fit in name order, moving on: a small file after a big one does not go back.
    ("no going back", (HALF - 5, 10, 3), [["f00.yaml"], ["f01.yaml", "f02.yaml"]]),
    ("three", (HALF, HALF, HALF), [["f00.yaml"], ["f01.yaml"], ["f02.yaml"]]),
]


@pytest.mark.parametrize(("what", "sizes", "expected"), SPLITS, ids=[s[0] for s in SPLITS])
def test_split(what: str, sizes: tuple[int, ...], expected: list[list[str]]) -> None:
    files = _files(*sizes)
    cms = split("main", files)
    assert [sorted(cm.data) for cm in cms] == expected
    assert [cm.name for cm in cms] == [f"prometheus-main-rulefiles-{i}" for i in range(len(expected))]
    assert all(sum(len(v) for v in cm.data.values()) <= MAX_CONFIGMAP_DATA_BYTES for cm in cms)


def test_split_counts_bytes_not_characters() -> None:
    files = {"a.yaml": "é" * (HALF // 2), "b.yaml": "x"}  # two bytes each: exactly full, then one more
    assert [sorted(cm.data) for cm in split("m", files)] == [["a.yaml"], ["b.yaml"]]


def test_split_is_in_name_order_whatever_the_input_order() -> None:
    files = dict(reversed(list(_files(HALF - 1, 2, 3).items())))
    assert split("m", files) == (
        RuleConfigMap("prometheus-m-rulefiles-0", {"f00.yaml": "x" * (HALF - 1)}),
        RuleConfigMap("prometheus-m-rulefiles-1", {"f01.yaml": "xx", "f02.yaml": "xxx"}),
    )


def test_a_rule_above_the_limit_is_rejected_and_the_others_go_on() -> None:
    big = [{"name": "big", "rules": [{"alert": "A", "expr": "up", "annotations": {"d": "y" * HALF}}]}]
    generated = gen(pc(), [rule("big", big), rule("small", [{"name": "g", "rules": [ALERT]}])])
    assert generated.rules is not None
    (rejected,) = generated.rules.rejected
    assert (rejected.kind, rejected.namespace, rejected.name) == ("PrometheusRule", "monitoring", "big")
    assert "above the limit of 524288 bytes" in rejected.reason
    assert list(generated.rules.files) == ["monitoring-small-uid-small.yaml"]


def test_many_rules_split_over_configmaps_and_rule_files_follow() -> None:
    # Each rule file is a bit over a third of a ConfigMap: two per ConfigMap.
    annotation = "z" * (HALF // 3)
    rules = [
        rule(
            f"r{i}",
            [{"name": "g", "rules": [{"alert": "A", "expr": "up", "annotations": {"d": annotation}}]}],
        )
        for i in range(5)
    ]
    generated = gen(pc(), rules)
    assert generated.rules is not None
    assert [len(cm.data) for cm in generated.rules.config_maps] == [2, 2, 1]
    assert yaml.safe_load(generated.config)["rule_files"] == [
        f"/etc/prometheus/rules/prometheus-k8s-rulefiles-{i}/*.yaml" for i in range(3)
    ]


# --- selection ------------------------------------------------------------------------------------

NAMESPACES = [
    {"metadata": {"name": "monitoring", "labels": {"team": "ops"}}},
    {"metadata": {"name": "shop", "labels": {"team": "shop"}}},
]
GROUP = [{"name": "g", "rules": [ALERT]}]
RULES = [
    rule("ops", GROUP, labels={"role": "alert-rules"}),
    rule("other", GROUP, labels={"role": "other"}),
    rule("shop", GROUP, namespace="shop", labels={"role": "alert-rules"}),
]
SELECTIONS = [
    ("nil ruleSelector: none, no rule_files", {}, None),
    ("{} in own namespace", {"ruleSelector": {}}, ["monitoring-ops", "monitoring-other"]),
    (
        "{} everywhere",
        {"ruleSelector": {}, "ruleNamespaceSelector": {}},
        ["monitoring-ops", "monitoring-other", "shop-shop"],
    ),
    (
        "labels everywhere",
        {"ruleSelector": {"matchLabels": {"role": "alert-rules"}}, "ruleNamespaceSelector": {}},
        ["monitoring-ops", "shop-shop"],
    ),
    (
        "namespace labels",
        {"ruleSelector": {}, "ruleNamespaceSelector": {"matchLabels": {"team": "shop"}}},
        ["shop-shop"],
    ),
    ("selects nothing: still one ConfigMap", {"ruleSelector": {"matchLabels": {"role": "none"}}}, []),
]


@pytest.mark.parametrize(("what", "spec", "expected"), SELECTIONS, ids=[s[0] for s in SELECTIONS])
def test_selection(what: str, spec: dict[str, Any], expected: list[str] | None) -> None:
    generated = gen(pc(spec), RULES, NAMESPACES)
    config = yaml.safe_load(generated.config)
    if expected is None:
        assert generated.rules is None
        assert "rule_files" not in config
        return
    assert generated.rules is not None
    assert [n.rsplit("-uid-", 1)[0] for n in generated.rules.files] == expected
    assert config["rule_files"] == ["/etc/prometheus/rules/prometheus-k8s-rulefiles-0/*.yaml"]


def test_spec_rule_files_come_first() -> None:
    generated = gen(pc({"ruleSelector": {}, "ruleFiles": ["/etc/extra/*.rules"]}), RULES)
    assert yaml.safe_load(generated.config)["rule_files"] == [
        "/etc/extra/*.rules",
        "/etc/prometheus/rules/prometheus-k8s-rulefiles-0/*.yaml",
    ]


def test_a_bad_rule_selector_is_an_invalid_config() -> None:
    with pytest.raises(InvalidConfig, match=r"spec\.ruleSelector"):
        gen(pc({"ruleSelector": {"matchExpressions": [{"key": "a", "operator": "Matches"}]}}), RULES)


# --- validation -----------------------------------------------------------------------------------

BAD = [
    ("spec a list", None, "spec must be a mapping"),
    ("unknown spec field", {"groups": [], "extra": 1}, "unsupported field(s) in spec: extra"),
    ("groups not a list", {"groups": {"name": "g"}}, "spec.groups must be a list"),
    ("group without name", {"groups": [{"rules": [ALERT]}]}, "spec.groups[0].name"),
    (
        "repeated group",
        {"groups": [{"name": "g", "rules": [ALERT]}, {"name": "g"}]},
        "repeated in the same file",
    ),
    ("unknown group field", {"groups": [{"name": "g", "rulez": []}]}, "unknown field(s): rulez"),
    (
        "bad interval",
        {"groups": [{"name": "g", "interval": "5 min"}]},
        "spec.groups[0].interval: not a valid duration",
    ),
    ("negative limit", {"groups": [{"name": "g", "limit": -1}]}, "limit must be a non-negative integer"),
    (
        "query_offset on 2.42",
        {"groups": [{"name": "g", "query_offset": "1m"}]},
        "query_offset needs Prometheus >= 2.53",
    ),
    (
        "group labels on 2.42",
        {"groups": [{"name": "g", "labels": {"a": "b"}}]},
        "labels needs Prometheus >= 3.0",
    ),
    ("bad strategy", {"groups": [{"name": "g", "partial_response_strategy": "retry"}]}, "abort or warn"),
    ("neither alert nor record", {"groups": [{"name": "g", "rules": [{"expr": "up"}]}]}, "exactly one of"),
    (
        "both",
        {"groups": [{"name": "g", "rules": [{"alert": "A", "record": "b", "expr": "up"}]}]},
        "exactly one of",
    ),
    ("no expr", {"groups": [{"name": "g", "rules": [{"alert": "A"}]}]}, "field 'expr' must be set"),
    (
        "empty expr",
        {"groups": [{"name": "g", "rules": [{"alert": "A", "expr": " "}]}]},
        "field 'expr' must be set",
    ),
    (
        "bad record name",
        {"groups": [{"name": "g", "rules": [{"record": "a-b", "expr": "up"}]}]},
        "invalid recording rule name",
    ),
    (
        "annotations on a recording rule",
        {"groups": [{"name": "g", "rules": [{**RECORD, "annotations": {"a": "b"}}]}]},
        "invalid field 'annotations' in recording rule",
    ),
    (
        "for on a recording rule",
        {"groups": [{"name": "g", "rules": [{**RECORD, "for": "1m"}]}]},
        "invalid field 'for'",
    ),
    (
        "bad for",
        {"groups": [{"name": "g", "rules": [{**ALERT, "for": "soon"}]}]},
        "rules[0].for: not a valid duration",
    ),
    (
        "bad label name",
        {"groups": [{"name": "g", "rules": [{**ALERT, "labels": {"a-b": "c"}}]}]},
        "invalid label name: a-b",
    ),
    (
        "__name__ label",
        {"groups": [{"name": "g", "rules": [{**ALERT, "labels": {"__name__": "c"}}]}]},
        "__name__",
    ),
    (
        "label value not a string",
        {"groups": [{"name": "g", "rules": [{**ALERT, "labels": {"a": 1}}]}]},
        "labels[a] must be a string",
    ),
    (
        "bad annotation name",
        {"groups": [{"name": "g", "rules": [{**ALERT, "annotations": {"1x": "c"}}]}]},
        "invalid annotation name",
    ),
    (
        "unclosed paren",
        {"groups": [{"name": "g", "rules": [{**ALERT, "expr": "sum(rate(x[5m])"}]}]},
        "expr: unclosed '('",
    ),
    ("stray bracket", {"groups": [{"name": "g", "rules": [{**ALERT, "expr": "up]"}]}]}, "unexpected ']'"),
    (
        "unterminated string",
        {"groups": [{"name": "g", "rules": [{**ALERT, "expr": 'up{job="a}'}]}]},
        "unterminated string",
    ),
    (
        "broken template",
        {"groups": [{"name": "g", "rules": [{**ALERT, "annotations": {"summary": "{{ $labels.job }"}}]}]},
        "annotations[summary]: unbalanced",
    ),
    (
        "unknown rule field",
        {"groups": [{"name": "g", "rules": [{**ALERT, "severity": "x"}]}]},
        "unknown field(s): severity",
    ),
]


@pytest.mark.parametrize(("what", "spec", "reason"), BAD, ids=[b[0] for b in BAD])
def test_a_malformed_rule_is_rejected_with_a_reason_and_the_others_go_on(
    what: str, spec: Any, reason: str
) -> None:
    bad = rule("bad", [])
    bad["spec"] = spec if spec is not None else ["not", "a", "mapping"]
    good = rule("good", GROUP)
    generated = gen(pc(), [bad, good])
    assert generated.rules is not None
    (rejected,) = generated.rules.rejected
    assert rejected.name == "bad"
    assert reason in rejected.reason
    assert list(generated.rules.files) == ["monitoring-good-uid-good.yaml"]


def test_what_prometheus_does_not_read_is_left_out_and_empty_durations_dropped() -> None:
    text = rule_file(
        rule(
            "r",
            [
                {
                    "name": "g",
                    "interval": "",
                    "partial_response_strategy": "warn",
                    "limit": 10,
                    "rules": [{**ALERT, "for": "", "keep_firing_for": "2m"}, {**RECORD, "expr": 1}],
                }
            ],
        )
    )
    assert yaml.safe_load(text) == {
        "groups": [
            {
                "limit": 10,
                "name": "g",
                "rules": [
                    {
                        "alert": "Down",
                        "expr": "up == 0",
                        "keep_firing_for": "2m",
                        "labels": {"severity": "page"},
                    },
                    {"expr": 1, "record": "job:up:sum"},
                ],
            }
        ]
    }


def test_the_lexical_check_lets_real_promql_through() -> None:
    for expr in [
        'sum by (job) (rate(http_requests_total{code=~"5..", path!="/a(b"}[5m])) > 0',
        "label_replace(up, 'dst', '$1', 'src', '(.*)]')",
        "up # a comment with an unbalanced ( bracket\n  > 0",
        'count(x{a="say \\"hi\\" ("})',
        "`raw ( string`",
        1,
    ]:
        rule_file(rule("ok", [{"name": "g", "rules": [{**ALERT, "expr": expr}]}]))


def test_rule_files_are_deterministic_and_read_like_the_rule() -> None:
    multi = {"alert": "A", "expr": "sum(up)\n  > 0\n", "annotations": {"description": "two\nlines"}}
    text = rule_file(rule("r", [{"name": "g", "rules": [multi]}]))
    assert text == rule_file(rule("r", [{"name": "g", "rules": [dict(reversed(list(multi.items())))]}]))
    assert "    expr: |\n      sum(up)\n        > 0\n" in text
    assert "description: |-\n        two\n        lines\n" in text


# --- render --rules-dir ---------------------------------------------------------------------------


def test_render_writes_the_rule_files_where_rule_files_points(tmp_path: Path) -> None:
    manifests = tmp_path / "in.yaml"
    manifests.write_text(
        yaml.safe_dump_all([pc({"ruleSelector": {}}), rule("api", GROUP), rule("bad", [{"rules": [ALERT]}])])
    )
    out = tmp_path / "rules"
    result = CliRunner().invoke(cli, ["render", "-f", str(manifests), "--rules-dir", str(out)])
    assert result.exit_code == 0, result.output
    config = yaml.safe_load(result.stdout)
    (entry,) = config["rule_files"]
    # The glob, with --rules-dir in place of the directory a pod mounts them under, finds the files.
    found = sorted(out.glob(entry.removeprefix("/etc/prometheus/rules/")))
    assert [p.name for p in found] == ["monitoring-api-uid-api.yaml"]
    assert yaml.safe_load(found[0].read_text()) == {"groups": GROUP}
    assert "skipped PrometheusRule monitoring/bad: spec.groups[0].name" in result.stderr


def test_render_says_when_the_rules_dir_cannot_be_written(tmp_path: Path) -> None:
    manifests = tmp_path / "in.yaml"
    manifests.write_text(yaml.safe_dump_all([pc({"ruleSelector": {}}), rule("api", GROUP)]))
    blocker = tmp_path / "file"
    blocker.write_text("")
    result = CliRunner().invoke(cli, ["render", "-f", str(manifests), "--rules-dir", str(blocker / "sub")])
    assert result.exit_code == 1
    assert result.stderr.startswith(f"config-operator render: --rules-dir {blocker / 'sub'}:")
