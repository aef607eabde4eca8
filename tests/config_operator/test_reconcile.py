"""Reconcile against the fake API server: the Secret bytes, no-op resyncs, conflicts, status and Events."""

from __future__ import annotations

from typing import Any

from config_operator import generate as g
from config_operator.app import Operator
from config_operator.client import Kube
from config_operator.informer import Store
from config_operator.metrics import OperatorMetrics
from config_operator.reconcile import Caches, Reconciler, desired_secret, desired_status
from config_operator.resources import ObjectKey
from tests.config_operator.conftest import (
    PCS,
    PMS,
    SMS,
    OperatorFactory,
    condition,
    events,
    metric,
    namespace,
    prometheus_config,
    service_monitor,
)
from tests.fakekube import FakeKube
from tests.support.operator_run import secret_config
from tests.support.polling import eventually


def expected(kube: FakeKube, ns: str, name: str) -> bytes:
    """What generate() gives for the objects now in the fake API (the operator must write exactly this)."""
    pc: Any = kube.get(PCS, ns, name)
    return g.generate(
        pc,
        kube.list(SMS),  # type: ignore[arg-type]
        kube.list(PMS),  # type: ignore[arg-type]
        kube.list("namespaces"),  # type: ignore[arg-type]
        [],
    ).config


async def converged(kube: FakeKube, ns: str, name: str, secret: str | None = None) -> bytes:
    """Wait until the Secret holds generate()'s output for the current objects; return it."""
    secret = secret or f"prometheus-{name}"
    config: bytes = await eventually(
        lambda: (
            (got := secret_config(kube, ns, secret)) is not None and got == expected(kube, ns, name) and got
        ),
        what=f"Secret {ns}/{secret} to match generate()",
    )
    return config


async def status_for(kube: FakeKube, ns: str, name: str, config: bytes) -> dict[str, Any]:
    """Wait until the PrometheusConfig's status reports ``config`` (by its hash); return the status."""
    status: dict[str, Any] = await eventually(
        lambda: (
            (s := kube.get(PCS, ns, name).get("status"))
            and s.get("configHash") == g.config_hash(config)
            and s
        ),
        what=f"the status of {ns}/{name} to report the config's hash",
    )
    return status


async def test_create_update_delete_converge_to_the_generated_bytes(
    kube: FakeKube, operator: Operator
) -> None:
    kube.create(service_monitor("api"))
    pc = kube.create(prometheus_config("main"))
    config = await converged(kube, "default", "main")
    assert b"serviceMonitor/default/api/0" in config

    secret = kube.get("secrets", "default", "prometheus-main")
    assert secret["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "config-operator"
    [owner] = secret["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["name"], owner["uid"], owner["controller"]) == (
        "PrometheusConfig",
        "main",
        pc["metadata"]["uid"],
        True,
    )

    # A second monitor, then a change to the first: each converges to the new bytes.
    kube.create(service_monitor("db", port="metrics"))
    config = await converged(kube, "default", "main")
    assert b"serviceMonitor/default/db/0" in config
    sm = kube.get(SMS, "default", "api")
    sm["spec"]["endpoints"][0]["path"] = "/custom-metrics"
    kube.update(sm)
    config = await converged(kube, "default", "main")
    assert b"/custom-metrics" in config

    kube.delete(SMS, "default", "db")
    config = await converged(kube, "default", "main")
    assert b"serviceMonitor/default/db/0" not in config

    # A spec change of the PrometheusConfig itself.
    pc = kube.get(PCS, "default", "main")
    pc["spec"]["externalLabels"] = {"cluster": "eu-1", "replica": "$(POD_NAME)"}
    kube.update(pc)
    config = await converged(kube, "default", "main")
    assert b"cluster: eu-1" in config

    # Deleting the PrometheusConfig: its Secret goes by garbage collection, and the operator is fine.
    errors_before = metric(operator, "config_operator_reconcile_errors_total", {"reason": "api"})
    kube.delete(PCS, "default", "main")
    await eventually(lambda: kube.find("secrets", "default", "prometheus-main") is None, what="Secret gone")
    await eventually(lambda: operator.queue.depth == 0, what="queue drained")
    assert metric(operator, "config_operator_reconcile_errors_total", {"reason": "api"}) == errors_before


async def test_spec_secret_name_and_namespace_selectors(kube: FakeKube, operator: Operator) -> None:
    kube.create(namespace("team-a", team="a"))
    kube.create(namespace("team-b", team="b"))
    kube.create(service_monitor("a-app", "team-a"))
    kube.create(service_monitor("b-app", "team-b"))
    kube.create(
        prometheus_config(
            "sel",
            secretName="custom-secret",
            serviceMonitorNamespaceSelector={"matchLabels": {"team": "a"}},
        )
    )
    config = await converged(kube, "default", "sel", "custom-secret")
    assert b"serviceMonitor/team-a/a-app/0" in config
    assert b"team-b" not in config
    # Relabelling a namespace moves its monitors in: the namespace event queues the PrometheusConfig.
    ns_b = kube.get("namespaces", "", "team-b")
    ns_b["metadata"]["labels"] = {"team": "a"}
    kube.update(ns_b)
    config = await converged(kube, "default", "sel", "custom-secret")
    assert b"serviceMonitor/team-b/b-app/0" in config


async def test_a_resync_with_no_change_writes_nothing(
    kube: FakeKube, operator_factory: OperatorFactory
) -> None:
    kube.create(service_monitor("api"))
    kube.create(prometheus_config("main"))
    async with operator_factory(resync_interval_s=0.1) as op:
        await converged(kube, "default", "main")
        await eventually(lambda: condition(kube, "default", "main"), what="status written")
        secret_rv = kube.get("secrets", "default", "prometheus-main")["metadata"]["resourceVersion"]
        pc_rv = kube.get(PCS, "default", "main")["metadata"]["resourceVersion"]
        kube.clear_calls()
        reconciles = metric(op, "config_operator_reconciles_total")
        await eventually(
            lambda: metric(op, "config_operator_reconciles_total") >= reconciles + 5, what="five resyncs"
        )
        writes = [c for c in kube.calls if c.verb in ("create", "update", "patch", "delete")]
        assert writes == []
        assert kube.get("secrets", "default", "prometheus-main")["metadata"]["resourceVersion"] == secret_rv
        assert kube.get(PCS, "default", "main")["metadata"]["resourceVersion"] == pc_rv

        # Somebody edits the Secret by hand: the next resync puts the generated bytes back.
        secret = kube.get("secrets", "default", "prometheus-main")
        secret["data"]["prometheus.yaml.gz"] = "dGFtcGVyZWQ="
        kube.update(secret)
        await converged(kube, "default", "main")


async def test_server_errors_back_off_then_succeed(kube: FakeKube, operator: Operator) -> None:
    kube.fail_next(3, verb="create", resource="secrets")
    kube.create(prometheus_config("main"))
    await converged(kube, "default", "main")
    creates = [c for c in kube.calls if (c.verb, c.resource) == ("create", "secrets")]
    assert len(creates) == 5  # three 500s, then the two that worked: the tls-assets shard, the config
    assert metric(operator, "config_operator_reconcile_errors_total", {"reason": "api"}) == 3
    cond = await eventually(lambda: condition(kube, "default", "main"), what="status")
    assert cond["status"] == "True"
    # The success reset the key's backoff.
    key = operator.caches.prometheus_configs.keys()[0]
    await eventually(lambda: operator.queue.failures(key) == 0, what="the failure count reset")


async def test_a_failing_key_waits_out_a_growing_backoff(kube: FakeKube, operator: Operator) -> None:
    kube.fail_next(10_000, verb="create", resource="secrets")
    kube.create(prometheus_config("main"))
    key = ObjectKey("default", "main")
    # Each 500 adds to the key's failures and parks it among the delayed keys, not back in the queue.
    await eventually(
        lambda: (
            operator.queue.failures(key) >= 3 and operator.queue.delayed == 1 and operator.queue.depth == 0
        ),
        what="the key to sit out its backoff after a few failures",
    )
    kube.clear_faults()
    await converged(kube, "default", "main")
    await eventually(lambda: operator.queue.failures(key) == 0, what="the success to reset the backoff")


async def test_a_conflict_is_retried_after_a_fresh_read(kube: FakeKube, operator: Operator) -> None:
    kube.create(service_monitor("api"))
    kube.create(prometheus_config("main"))
    await converged(kube, "default", "main")
    kube.clear_calls()
    kube.fail_next(1, verb="update", resource="secrets", code=409)
    sm = kube.get(SMS, "default", "api")
    sm["spec"]["endpoints"][0]["interval"] = "15s"
    kube.update(sm)
    config = await converged(kube, "default", "main")
    assert b"scrape_interval: 15s" in config
    secret_calls = [c.verb for c in kube.calls if c.resource == "secrets"]
    # The tls-assets shard 0 (unchanged) and 1 (none) are read first; then the config Secret: get,
    # update (409), get again, update: inside one reconcile, not through the queue's backoff.
    assert secret_calls[:6] == ["get", "get", "get", "update", "get", "update"]
    assert metric(operator, "config_operator_reconcile_errors_total", {"reason": "api"}) == 0


async def test_status_reports_counts_and_keeps_transition_time_while_unchanged(
    kube: FakeKube, operator: Operator
) -> None:
    kube.create(service_monitor("api"))
    kube.create(prometheus_config("main"))
    config = await converged(kube, "default", "main")
    status = await status_for(kube, "default", "main", config)
    pc = kube.get(PCS, "default", "main")
    assert status["observedGeneration"] == pc["metadata"]["generation"]
    assert (status["serviceMonitors"], status["podMonitors"]) == (1, 0)
    [cond] = status["conditions"]
    assert (cond["type"], cond["status"], cond["reason"]) == ("Reconciled", "True", "Reconciled")
    first_transition = cond["lastTransitionTime"]

    def config_updated() -> list[dict[str, Any]]:
        return sorted(
            (e for e in events(kube, type_="Normal") if e["reason"] == "ConfigUpdated"),
            key=lambda e: int(e["metadata"]["resourceVersion"]),
        )

    # The PrometheusConfig's event may beat the ServiceMonitor's to the operator: then there is one
    # more update on the way to this state, which is fine. From here on, one change is one Event.
    before = len(config_updated())
    assert "created" in config_updated()[0]["message"]

    kube.create(service_monitor("db"))
    config = await converged(kube, "default", "main")
    status = await status_for(kube, "default", "main", config)
    assert status["serviceMonitors"] == 2
    assert status["conditions"][0]["lastTransitionTime"] == first_transition

    normal = config_updated()
    assert len(normal) == before + 1
    assert "updated" in normal[-1]["message"]
    assert all(e["involvedObject"]["name"] == "main" for e in normal)
    assert all(e["reportingInstance"] == "test-operator" for e in normal)


async def test_a_rejected_monitor_gets_a_warning_and_the_rest_is_generated(
    kube: FakeKube, operator_factory: OperatorFactory
) -> None:
    bad = service_monitor("broken")
    bad["spec"]["endpoints"][0].update({"interval": "10s", "scrapeTimeout": "30s"})
    kube.create(bad)
    kube.create(service_monitor("good"))
    kube.create(prometheus_config("main"))
    async with operator_factory(resync_interval_s=0.1) as op:
        config = await converged(kube, "default", "main")
        assert b"serviceMonitor/default/good/0" in config
        assert b"broken" not in config
        [warning] = await eventually(
            lambda: [e for e in events(kube, type_="Warning") if e["reason"] == "MonitorRejected"],
            what="a MonitorRejected Warning",
        )
        assert "ServiceMonitor default/broken" in warning["message"]
        assert "scrapeTimeout" in warning["message"]
        status = await eventually(
            lambda: (s := kube.get(PCS, "default", "main").get("status")) and s.get("rejectedMonitors") and s,
            what="status counting the rejected monitor",
        )
        assert (status["serviceMonitors"], status["rejectedMonitors"]) == (1, 1)
        # Resyncs do not post the same Warning again.
        reconciles = metric(op, "config_operator_reconciles_total")
        await eventually(
            lambda: metric(op, "config_operator_reconciles_total") >= reconciles + 3, what="resyncs"
        )
        assert len([e for e in events(kube, type_="Warning") if e["reason"] == "MonitorRejected"]) == 1


async def test_a_malformed_prometheus_config_keeps_its_last_good_secret(
    kube: FakeKube, operator: Operator
) -> None:
    kube.create(service_monitor("api"))
    kube.create(prometheus_config("main"))
    good = await converged(kube, "default", "main")
    secret_rv = kube.get("secrets", "default", "prometheus-main")["metadata"]["resourceVersion"]
    # The status of the good config first: the first reconcile may have run before the monitor was in
    # the cache, and a failure keeps the hash of the status it finds.
    await status_for(kube, "default", "main", good)
    ok = await eventually(lambda: condition(kube, "default", "main"), what="Reconciled=True")
    assert ok["status"] == "True"

    pc = kube.get(PCS, "default", "main")
    pc["spec"]["scrapeInterval"] = "every now and then"
    kube.update(pc)
    cond = await eventually(
        lambda: (c := condition(kube, "default", "main")) and c["status"] == "False" and c,
        what="Reconciled=False",
    )
    assert cond["reason"] == "InvalidConfig"
    assert "scrapeInterval" in cond["message"]
    assert cond["lastTransitionTime"] >= ok["lastTransitionTime"]
    [warning] = await eventually(
        lambda: [e for e in events(kube, type_="Warning") if e["reason"] == "InvalidConfig"], what="a Warning"
    )
    assert "scrapeInterval" in warning["message"]
    status = kube.get(PCS, "default", "main")["status"]
    assert status["observedGeneration"] == kube.get(PCS, "default", "main")["metadata"]["generation"]
    assert status["configHash"] == g.config_hash(good)  # still the last good one

    # The operator goes on: another PrometheusConfig is reconciled, and the bad one's Secret is intact.
    kube.create(prometheus_config("other"))
    await converged(kube, "default", "other")
    assert secret_config(kube, "default", "prometheus-main") == good
    assert kube.get("secrets", "default", "prometheus-main")["metadata"]["resourceVersion"] == secret_rv
    assert metric(operator, "config_operator_reconcile_errors_total", {"reason": "invalid"}) >= 1

    # Fixed again: True, and the config follows.
    pc = kube.get(PCS, "default", "main")
    pc["spec"]["scrapeInterval"] = "45s"
    kube.update(pc)
    config = await converged(kube, "default", "main")
    assert b"scrape_interval: 45s" in config
    await eventually(
        lambda: (c := condition(kube, "default", "main")) and c["status"] == "True",
        what="Reconciled=True again",
    )


async def test_a_paused_prometheus_config_is_left_alone(kube: FakeKube, operator: Operator) -> None:
    # One watch delivers events in order: once "active" is worked on, "paused" has been queued too.
    kube.create(prometheus_config("paused", paused=True))
    kube.create(prometheus_config("active"))
    await converged(kube, "default", "active")

    def idle() -> bool:
        """Nothing queued or delayed, and every reconcile started has finished."""
        finished = metric(operator, "config_operator_reconcile_duration_seconds_count")
        started = metric(operator, "config_operator_reconciles_total")
        return operator.queue.depth == 0 and operator.queue.delayed == 0 and finished == started

    await eventually(idle, what="the operator to be idle")
    assert kube.find("secrets", "default", "prometheus-paused") is None
    assert not kube.get(PCS, "default", "paused").get("status")

    # Unpaused, it is reconciled like any other.
    pc = kube.get(PCS, "default", "paused")
    pc["spec"]["paused"] = False
    kube.update(pc)
    await converged(kube, "default", "paused")


async def test_pod_monitors_are_selected_by_their_own_selector(kube: FakeKube, operator: Operator) -> None:
    pod_monitor = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PodMonitor",
        "metadata": {"name": "workers", "namespace": "default", "labels": {"scrape": "yes"}},
        "spec": {
            "selector": {"matchLabels": {"app": "worker"}},
            "podMetricsEndpoints": [{"port": "metrics"}],
        },
    }
    kube.create(pod_monitor)
    kube.create(prometheus_config("main", podMonitorSelector={"matchLabels": {"scrape": "yes"}}))
    config = await converged(kube, "default", "main")
    assert b"podMonitor/default/workers/0" in config
    # Its label no longer matches: the change to the monitor queues the config, and the job goes.
    changed = kube.get(PMS, "default", "workers")
    changed["metadata"]["labels"] = {"scrape": "no"}
    kube.update(changed)
    config = await converged(kube, "default", "main")
    assert b"podMonitor/" not in config
    status = await status_for(kube, "default", "main", config)
    assert status["podMonitors"] == 0


async def test_a_stale_cached_status_does_not_hide_our_last_patch(kube: FakeKube) -> None:
    """The caches are filled by hand to replay a race the informers can produce.

    Two reconciles patch the status (hash A, then hash B) before the watch has delivered either patch.
    The first patch's event then arrives, and the next reconcile wants hash A again: the cache shows A,
    but the server holds B, and a status-only event queues nothing, so skipping would leave B for good.
    """
    pc = kube.create(prometheus_config("main", podMonitorSelector={}))
    monitor = kube.create(
        {
            "apiVersion": "monitoring.coreos.com/v1",
            "kind": "PodMonitor",
            "metadata": {"name": "workers", "namespace": "default"},
            "spec": {"selector": {}, "podMetricsEndpoints": [{"port": "metrics"}]},
        }
    )
    caches = Caches(Store(), Store(), Store(), Store())
    caches.prometheus_configs.upsert(pc)
    async with Kube.connect(host=kube.url) as client:
        reconciler = Reconciler(client, caches, OperatorMetrics.create(process_metrics=False))
        key = ObjectKey.of(pc)
        await reconciler.reconcile(key)  # no monitor cached yet: hash A
        status_a = kube.get(PCS, "default", "main")["status"]
        caches.pod_monitors.upsert(monitor)
        await reconciler.reconcile(key)  # the monitor arrived: hash B
        assert kube.get(PCS, "default", "main")["status"]["configHash"] != status_a["configHash"]

        # The cache now catches up with the first patch only, and the monitor goes away again.
        caches.prometheus_configs.upsert({**pc, "status": status_a})
        caches.pod_monitors.delete(monitor)
        await reconciler.reconcile(key)
    assert kube.get(PCS, "default", "main")["status"]["configHash"] == status_a["configHash"]


# --- the pure parts ------------------------------------------------------------------------------------


def _pc(**status: Any) -> Any:
    pc: Any = prometheus_config("main")
    pc["metadata"].update({"uid": "uid-1", "generation": 4, "resourceVersion": "10"})
    if status:
        pc["status"] = status
    return pc


def test_desired_secret_keeps_foreign_metadata_and_takes_control() -> None:
    pc = _pc()
    gz = g.compress(b"scrape_configs: []\n")
    current: Any = {
        "metadata": {
            "name": "prometheus-main",
            "namespace": "default",
            "resourceVersion": "7",
            "labels": {"team": "x"},
            "annotations": {"note": "kept"},
            "ownerReferences": [
                {"kind": "Other", "name": "o", "uid": "u-other", "controller": True},
                {"kind": "Plain", "name": "p", "uid": "u-plain"},
            ],
        },
        "data": {"old": "AA=="},
    }
    body: Any = desired_secret(pc, gz, current)
    assert body["metadata"]["resourceVersion"] == "7"  # a concurrent write then fails with 409
    assert body["metadata"]["labels"] == {"team": "x", "app.kubernetes.io/managed-by": "config-operator"}
    assert body["metadata"]["annotations"] == {"note": "kept"}
    assert [o["uid"] for o in body["metadata"]["ownerReferences"]] == ["u-plain", "uid-1"]
    assert list(body["data"]) == ["prometheus.yaml.gz"]
    assert current["data"] == {"old": "AA=="}  # the input is not modified
    # Written once, it is what we want: nothing more to write.
    assert desired_secret(pc, gz, body) is None
    assert desired_secret(pc, g.compress(b"other"), body) is not None


def test_desired_status_moves_the_transition_time_only_on_a_flip() -> None:
    generated = g.Generated(config=b"x", service_monitors=2, pod_monitors=1, rejected=())
    ok = desired_status(_pc(), ok=True, reason="Reconciled", message="m", now="T1", generated=generated)
    assert ok["conditions"][0]["lastTransitionTime"] == "T1"
    assert (ok["observedGeneration"], ok["serviceMonitors"], ok["podMonitors"]) == (4, 2, 1)
    again = desired_status(
        _pc(**ok), ok=True, reason="Reconciled", message="m2", now="T2", generated=generated
    )
    assert again["conditions"][0]["lastTransitionTime"] == "T1"
    failed = desired_status(_pc(**again), ok=False, reason="InvalidConfig", message="bad", now="T3")
    assert failed["conditions"][0]["lastTransitionTime"] == "T3"
    assert failed["conditions"][0]["status"] == "False"
    assert failed["configHash"] == ok["configHash"]  # the last good config's, still in the Secret
