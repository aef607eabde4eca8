"""The rule ConfigMaps in a cluster: the operator writes, updates and deletes them (against the fake API
server), posts InvalidConfiguration on a rule it cannot use, and writes nothing when nothing changed.
Plus the pure plan() behind it."""

from __future__ import annotations

from typing import Any

import yaml

from config_operator.app import Operator
from config_operator.generate.rules import RuleConfigMap, RuleFiles
from config_operator.resources import ObjectKey
from config_operator.rulefiles import Plan, desired, owned, plan
from tests.config_operator.conftest import PCS, events, metric, prometheus_config
from tests.fakekube import FakeKube
from tests.support.operator_run import secret_config
from tests.support.polling import eventually

PRS = "prometheusrules.monitoring.coreos.com"
KEY = ObjectKey("default", "main")
OWNER: Any = {
    "apiVersion": "reloader.dev/v1alpha1",
    "kind": "PrometheusConfig",
    "name": "main",
    "uid": "u-1",
    "controller": True,
    "blockOwnerDeletion": True,
}
LABELS = {"app.kubernetes.io/managed-by": "config-operator", "reloader.dev/prometheusconfig": "main"}


def prometheus_rule(name: str, ns: str = "default", expr: str = "up == 0", **labels: str) -> dict[str, Any]:
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {"name": name, "namespace": ns, "labels": labels},
        "spec": {"groups": [{"name": f"{name}.rules", "rules": [{"alert": f"{name}Alert", "expr": expr}]}]},
    }


def configmap(name: str, data: dict[str, str], **meta: Any) -> Any:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": name,
            "namespace": "default",
            "labels": dict(LABELS),
            "ownerReferences": [OWNER],
            **meta,
        },
        "data": data,
    }


def rules(*cms: tuple[str, dict[str, str]]) -> RuleFiles:
    return RuleFiles(files={}, config_maps=tuple(RuleConfigMap(n, d) for n, d in cms), rejected=())


# --- plan(), pure ---------------------------------------------------------------------------------


def test_plan_creates_what_is_missing() -> None:
    todo = plan(KEY, OWNER, rules(("prometheus-main-rulefiles-0", {"a.yaml": "x"})), [])
    (created,) = todo.create
    assert created == configmap("prometheus-main-rulefiles-0", {"a.yaml": "x"})
    assert (todo.replace, todo.delete) == ((), ())


def test_plan_is_empty_when_everything_is_as_wanted() -> None:
    current = [configmap("prometheus-main-rulefiles-0", {"a.yaml": "x"}, resourceVersion="7")]
    assert not plan(KEY, OWNER, rules(("prometheus-main-rulefiles-0", {"a.yaml": "x"})), current)


def test_plan_replaces_changed_data_keeping_foreign_metadata_and_the_resource_version() -> None:
    other_owner = {"apiVersion": "v1", "kind": "Thing", "name": "t", "uid": "t-1"}
    current = configmap(
        "prometheus-main-rulefiles-0",
        {"a.yaml": "old", "gone.yaml": "z"},
        resourceVersion="7",
        annotations={"note": "kept"},
        ownerReferences=[other_owner],
    )
    current["metadata"]["labels"]["team"] = "ops"
    (replaced,) = plan(
        KEY, OWNER, rules(("prometheus-main-rulefiles-0", {"a.yaml": "new"})), [current]
    ).replace
    assert replaced["data"] == {"a.yaml": "new"}
    meta = replaced["metadata"]
    assert meta["resourceVersion"] == "7"
    assert meta["annotations"] == {"note": "kept"}
    assert meta["labels"] == {**LABELS, "team": "ops"}
    assert meta["ownerReferences"] == [other_owner, OWNER]


def test_plan_deletes_the_stale_and_everything_without_a_rule_selector() -> None:
    current = [configmap(f"prometheus-main-rulefiles-{i}", {f"{i}.yaml": "x"}) for i in range(3)]
    todo = plan(KEY, OWNER, rules(("prometheus-main-rulefiles-0", {"0.yaml": "x"})), current)
    assert todo == Plan(delete=("prometheus-main-rulefiles-1", "prometheus-main-rulefiles-2"))
    assert plan(KEY, OWNER, None, current).delete == tuple(f"prometheus-main-rulefiles-{i}" for i in range(3))


def test_only_this_prometheus_configs_configmaps_are_its() -> None:
    mine = configmap("prometheus-main-rulefiles-0", {})
    other_name = configmap("prometheus-other-rulefiles-0", {})
    other_name["metadata"]["labels"]["reloader.dev/prometheusconfig"] = "other"
    other_ns = configmap("prometheus-main-rulefiles-0", {})
    other_ns["metadata"]["namespace"] = "elsewhere"
    assert owned(KEY, [other_ns, other_name, mine]) == [mine]


def test_a_binary_data_key_is_not_ours_and_goes() -> None:
    current = configmap("prometheus-main-rulefiles-0", {"a.yaml": "x"}, resourceVersion="1")
    current["binaryData"] = {"b": "eA=="}
    body = desired(KEY, OWNER, RuleConfigMap("prometheus-main-rulefiles-0", {"a.yaml": "x"}), current)
    assert body is not None and "binaryData" not in body


# --- the operator against the fake API server -----------------------------------------------------


def rule_configmaps(kube: FakeKube, ns: str = "default") -> dict[str, dict[str, str]]:
    return {cm["metadata"]["name"]: cm.get("data") or {} for cm in kube.list("configmaps", ns)}


def config_of(kube: FakeKube) -> dict[str, Any]:
    return yaml.safe_load(secret_config(kube, "default", "prometheus-main") or b"") or {}


async def test_prometheus_rules_become_a_configmap_that_follows_them(
    kube: FakeKube, operator: Operator
) -> None:
    pr = kube.create(prometheus_rule("api", role="alerts"))
    kube.create(prometheus_rule("ignored", role="other"))
    pc = kube.create(prometheus_config("main", ruleSelector={"matchLabels": {"role": "alerts"}}))
    file_name = f"default-api-{pr['metadata']['uid']}.yaml"
    await eventually(
        lambda: file_name in rule_configmaps(kube).get("prometheus-main-rulefiles-0", {}),
        what="the rule ConfigMap",
    )
    cm = kube.get("configmaps", "default", "prometheus-main-rulefiles-0")
    assert list(cm["data"]) == [file_name]
    assert yaml.safe_load(cm["data"][file_name]) == {"groups": pr["spec"]["groups"]}
    assert cm["metadata"]["labels"] == LABELS
    assert [(o["kind"], o["uid"], o["controller"]) for o in cm["metadata"]["ownerReferences"]] == [
        ("PrometheusConfig", pc["metadata"]["uid"], True)
    ]
    await eventually(lambda: config_of(kube).get("rule_files"), what="rule_files in the Secret")
    assert config_of(kube)["rule_files"] == ["/etc/prometheus/rules/prometheus-main-rulefiles-0/*.yaml"]

    # A change to the rule: the same ConfigMap, new data.
    pr = kube.get(PRS, "default", "api")
    pr["spec"]["groups"][0]["rules"][0]["expr"] = "up == 2"
    kube.update(pr)
    await eventually(
        lambda: "up == 2" in rule_configmaps(kube)["prometheus-main-rulefiles-0"].get(file_name, ""),
        what="the changed rule in the ConfigMap",
    )

    # Nothing changed: a resync writes nothing.
    rv = kube.get("configmaps", "default", "prometheus-main-rulefiles-0")["metadata"]["resourceVersion"]
    reconciles = metric(operator, "config_operator_reconciles_total")
    operator.queue.add(ObjectKey("default", "main"))
    await eventually(
        lambda: metric(operator, "config_operator_reconciles_total") > reconciles, what="a reconcile"
    )
    await eventually(lambda: operator.queue.depth == 0, what="queue drained")
    assert (
        kube.get("configmaps", "default", "prometheus-main-rulefiles-0")["metadata"]["resourceVersion"] == rv
    )

    # Someone deletes our ConfigMap: it is written again.
    kube.delete("configmaps", "default", "prometheus-main-rulefiles-0")
    await eventually(
        lambda: file_name in rule_configmaps(kube).get("prometheus-main-rulefiles-0", {}), what="rewritten"
    )

    # The rule goes: its file goes, the (now empty) ConfigMap stays, as prometheus-operator's does.
    kube.delete(PRS, "default", "api")
    await eventually(
        lambda: rule_configmaps(kube).get("prometheus-main-rulefiles-0") == {}, what="the file gone"
    )

    # No ruleSelector any more: no rule ConfigMaps, no rule_files.
    pc = kube.get(PCS, "default", "main")
    del pc["spec"]["ruleSelector"]
    kube.update(pc)
    await eventually(lambda: rule_configmaps(kube) == {}, what="the rule ConfigMaps deleted")
    await eventually(lambda: "rule_files" not in config_of(kube), what="rule_files gone from the Secret")


async def test_a_split_grows_and_shrinks(kube: FakeKube, operator: Operator) -> None:
    # Four rules of a bit over a third of a ConfigMap each: two ConfigMaps, then one when two go.
    big = "y" * (1024 * 1024 // 2 // 3)
    for i in range(4):
        pr = prometheus_rule(f"r{i}")
        pr["spec"]["groups"][0]["rules"][0]["annotations"] = {"description": big}
        kube.create(pr)
    kube.create(prometheus_config("main", ruleSelector={}))
    await eventually(
        lambda: [len(d) for d in rule_configmaps(kube).values()] == [2, 2], what="two ConfigMaps"
    )
    await eventually(lambda: len(config_of(kube).get("rule_files") or []) == 2, what="two rule_files")
    kube.delete(PRS, "default", "r0")
    kube.delete(PRS, "default", "r1")
    await eventually(
        lambda: list(rule_configmaps(kube)) == ["prometheus-main-rulefiles-0"], what="the stale one gone"
    )
    assert len(rule_configmaps(kube)["prometheus-main-rulefiles-0"]) == 2
    await eventually(lambda: len(config_of(kube).get("rule_files") or []) == 1, what="one rule_files entry")


async def test_an_invalid_rule_gets_invalid_configuration_and_the_others_go_on(
    kube: FakeKube, operator: Operator
) -> None:
    kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}})
    good = kube.create(prometheus_rule("good"))
    bad = prometheus_rule("bad", ns="shop")
    bad["spec"]["groups"][0]["rules"][0] = {"record": "not a metric name", "expr": "up"}
    bad = kube.create(bad)
    kube.create(prometheus_config("main", ruleSelector={}, ruleNamespaceSelector={}))
    await eventually(
        lambda: (
            list(rule_configmaps(kube).get("prometheus-main-rulefiles-0", {}))
            == [f"default-good-{good['metadata']['uid']}.yaml"]
        ),
        what="the good rule's file, alone",
    )

    def warning() -> dict[str, Any] | None:
        return next((e for e in events(kube, "shop", type_="Warning")), None)

    event = await eventually(warning, what="a Warning Event in the rule's namespace")
    assert event["reason"] == "InvalidConfiguration"
    assert event["involvedObject"] == {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "name": "bad",
        "namespace": "shop",
        "uid": bad["metadata"]["uid"],
    }
    assert "invalid recording rule name" in event["message"]
    # Reported once, not on every resync.
    operator.queue.add(ObjectKey("default", "main"))
    await eventually(lambda: operator.queue.depth == 0, what="queue drained")
    assert len(events(kube, "shop", type_="Warning")) == 1
    status = await eventually(
        lambda: (
            "1 rejected" in ((c := (kube.get(PCS, "default", "main").get("status") or {})) and str(c)) and c
        ),
        what="the status to count the rejected rule",
    )
    assert "1 PrometheusRules in 1 ConfigMaps, 1 rejected" in status["conditions"][0]["message"]


async def test_a_configmap_of_that_name_made_by_hand_is_taken_over(
    kube: FakeKube, operator: Operator
) -> None:
    kube.create(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "prometheus-main-rulefiles-0", "namespace": "default"},
            "data": {"hand-made.yaml": "groups: []\n"},
        }
    )
    pr = kube.create(prometheus_rule("api"))
    kube.create(prometheus_config("main", ruleSelector={}))
    file_name = f"default-api-{pr['metadata']['uid']}.yaml"
    await eventually(
        lambda: list(rule_configmaps(kube).get("prometheus-main-rulefiles-0", {})) == [file_name],
        what="the hand-made ConfigMap to hold the rule",
    )
    cm = kube.get("configmaps", "default", "prometheus-main-rulefiles-0")
    assert cm["metadata"]["labels"] == LABELS
    assert [o["kind"] for o in cm["metadata"]["ownerReferences"]] == ["PrometheusConfig"]
