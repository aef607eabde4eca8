"""Leader election on a Lease: two instances, one writer; a lost Lease stops the workers; failover."""

from __future__ import annotations

import contextlib

from config_operator.app import Operator
from config_operator.leader import LeaderSettings
from tests.config_operator.conftest import OperatorFactory, events, metric, prometheus_config, service_monitor
from tests.fakekube import FakeKube
from tests.support.operator_run import secret_config
from tests.support.polling import eventually

LEASES = "leases.coordination.k8s.io"


def leader_settings(identity: str) -> LeaderSettings:
    # The library's floor: retry >= 1 s, renew > 1.2 * retry, lease > renew.
    return LeaderSettings(
        lease_name="config-operator",
        lease_namespace="default",
        identity=identity,
        lease_duration_s=3.0,
        renew_deadline_s=2.0,
        retry_period_s=1.0,
    )


def holder(kube: FakeKube) -> str | None:
    lease = kube.find(LEASES, "default", "config-operator")
    return lease["spec"].get("holderIdentity") if lease else None


def writers(kube: FakeKube) -> set[str]:
    """The instances that posted Events (every write of a reconcile comes with one, on a change)."""
    return {e["reportingInstance"] for e in events(kube)}


async def test_only_the_lease_holder_writes_and_the_other_takes_over(
    kube: FakeKube, operator_factory: OperatorFactory
) -> None:
    kube.create(service_monitor("api"))
    kube.create(prometheus_config("one"))
    stacks = {name: contextlib.AsyncExitStack() for name in ("op-a", "op-b")}
    async with stacks["op-a"], stacks["op-b"]:
        ops: dict[str, Operator] = {
            name: await stack.enter_async_context(
                operator_factory(identity=name, leader=leader_settings(name))
            )
            for name, stack in stacks.items()
        }
        await eventually(lambda: secret_config(kube, "default", "prometheus-one"), what="the first Secret")
        first = holder(kube)
        assert first in ops
        second = "op-b" if first == "op-a" else "op-a"
        leader, follower = ops[first], ops[second]

        # More work while both run: still only the holder reconciles and writes.
        kube.create(prometheus_config("two"))
        await eventually(lambda: secret_config(kube, "default", "prometheus-two"), what="the second Secret")
        await eventually(follower.ready, what="the follower's caches")
        assert writers(kube) == {first}
        assert metric(leader, "config_operator_leader") == 1
        assert metric(follower, "config_operator_leader") == 0
        assert metric(follower, "config_operator_reconciles_total") == 0
        assert metric(follower, "config_operator_secret_writes_total", {"operation": "create"}) == 0
        assert metric(leader, "config_operator_secret_writes_total", {"operation": "create"}) == 2

        # The holder goes away without releasing the Lease: the other takes over once it expires.
        await stacks[first].aclose()
        await eventually(lambda: holder(kube) == second, timeout_s=60, what=f"{second} to take the Lease")
        kube.create(prometheus_config("three"))
        await eventually(
            lambda: secret_config(kube, "default", "prometheus-three"), what="a Secret by the new leader"
        )
        # The Event follows the Secret write: wait for it rather than race it.
        await eventually(lambda: writers(kube) == {first, second}, what="the new leader's Event")
        assert metric(follower, "config_operator_leader") == 1
        assert metric(follower, "config_operator_secret_writes_total", {"operation": "create"}) == 1


async def test_losing_the_lease_stops_the_workers(kube: FakeKube, operator_factory: OperatorFactory) -> None:
    async with operator_factory(identity="solo", leader=leader_settings("solo")) as op:
        kube.create(prometheus_config("one"))
        await eventually(lambda: secret_config(kube, "default", "prometheus-one"), what="the Secret")
        assert op.leading
        # Renewals fail from now on: past the renew deadline the instance must stop reconciling.
        kube.fail_next(10_000, verb="update", resource="leases")
        await eventually(lambda: not op.leading, timeout_s=60, what="the gate to close")
        # The workers unwind their cancellation a few loop turns after the gate closes: the gauge
        # drops when they have stopped, and not before.
        await eventually(
            lambda: metric(op, "config_operator_leader") == 0, timeout_s=10, what="the workers to stop"
        )
        kube.create(prometheus_config("while-not-leading"))
        await eventually(lambda: len(op.caches.prometheus_configs) == 2, what="the cache to see it")
        reconciles = metric(op, "config_operator_reconciles_total")
        assert kube.find("secrets", "default", "prometheus-while-not-leading") is None
        # The API recovers: the Lease comes back, and so do the workers.
        kube.clear_faults()
        await eventually(
            lambda: secret_config(kube, "default", "prometheus-while-not-leading"),
            timeout_s=60,
            what="the workers again",
        )
        assert op.leading
        assert metric(op, "config_operator_reconciles_total") > reconciles
