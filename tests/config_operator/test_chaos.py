"""Operator chaos: 1,000 random changes while the fake API server drops, hangs and expires watches and
answers 500, 503, 409 and 410, with latency; then the faults stop, and after the informers have caught
up and one resync has run, every Secret is exactly what ``generate`` gives for the final state, the
work queue is empty, and no task is left (the autouse fixture). With two replicas and leader election,
the leader is killed half-way; the other one takes over, ends in the same exact state, and the fake
server's write log shows that no replica ever wrote while the other held the Lease.

CHAOS_OPS and CHAOS_SEED (environment) change the run: ``make chaos-long`` runs a longer one.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from config_operator.app import Operator, Settings
from config_operator.client import Kube
from config_operator.informer import InformerSettings
from config_operator.leader import LeaderSettings
from config_operator.metrics import OperatorMetrics
from config_operator.queue import Backoff
from config_operator.resources import ObjectKey
from tests.fakekube import FakeKube
from tests.support.chaos import LEASES, PCS, PMS, SMS, Chaos, mismatches, overlapping_writers
from tests.support.polling import eventually
from tests.support.rbac import denied_anywhere

OPS = int(os.environ.get("CHAOS_OPS", "1000"))
SEED = int(os.environ.get("CHAOS_SEED", "0")) or random.randrange(1, 2**31)
WAIT_S = 90.0  # generous: a shared 2-core machine

SETTINGS = Settings(
    workers=3,
    # The test runs the one resync itself, once the caches have caught up: see _converge.
    resync_interval_s=0,
    informer=InformerSettings(watch_timeout_s=8, inactivity_timeout_s=1.5, backoff=Backoff(0.02, 0.3)),
    backoff=Backoff(0.02, 0.3),
)
LEADER = LeaderSettings(
    lease_name="config-operator",
    lease_namespace="default",
    # The library's floor: retry >= 1 s, renew > 1.2 * retry, lease > renew.
    lease_duration_s=3.0,
    renew_deadline_s=2.0,
    retry_period_s=1.0,
)


@contextlib.asynccontextmanager
async def replica(kube: FakeKube, tmp_path: Path, identity: str, *, leader: bool) -> AsyncIterator[Operator]:
    """One operator replica; its requests carry its identity as their bearer token."""
    doc = yaml.safe_load(kube.kubeconfig())
    doc["users"][0]["user"] = {"token": identity}
    path = tmp_path / f"{identity}.kubeconfig"
    path.write_text(yaml.safe_dump(doc))
    settings = replace(
        SETTINGS, identity=identity, leader=replace(LEADER, identity=identity) if leader else None
    )
    async with Kube.connect(kubeconfig=str(path)) as client:
        operator = Operator(client, settings, OperatorMetrics.create(process_metrics=False))
        async with asyncio.TaskGroup() as tg:
            task = tg.create_task(operator.run())
            try:
                yield operator
            finally:
                task.cancel()


def _versions(kube: FakeKube, ref: str) -> dict[ObjectKey, str]:
    return {ObjectKey.of(o): o["metadata"]["resourceVersion"] for o in kube.list(ref)}


def _cached(store: object) -> dict[ObjectKey, str]:
    return {ObjectKey.of(o): o["metadata"]["resourceVersion"] for o in store.objects()}  # type: ignore[attr-defined]


def cache_differences(op: Operator, kube: FakeKube) -> str:
    """What the caches get wrong, and where each informer stands: for a failure message."""
    lines = []
    caches = op.caches
    for ref, store in (
        (PCS, caches.prometheus_configs),
        (SMS, caches.service_monitors),
        (PMS, caches.pod_monitors),
        ("namespaces", caches.namespaces),
    ):
        ours, theirs = _cached(store), _versions(kube, ref)
        for key in sorted(set(ours) | set(theirs)):
            if ours.get(key) != theirs.get(key):
                lines.append(f"{ref} {key}: cached at {ours.get(key)}, server at {theirs.get(key)}")
    for informer in op.informers:
        lines.append(
            f"informer {informer}: rv {informer.resource_version!r}, synced {informer.synced.is_set()}"
        )
    lines.append(f"server rv {kube.resource_version}, earliest {kube.store.earliest_resource_version}")
    lines.append(f"open watches {kube.open_watches}")
    return "\n".join(lines)


def caches_current(op: Operator, kube: FakeKube) -> bool:
    """Every cache of ``op`` holds exactly the server's objects, at their resourceVersions."""
    caches = op.caches
    return (
        _cached(caches.prometheus_configs) == _versions(kube, PCS)
        and _cached(caches.service_monitors) == _versions(kube, SMS)
        and _cached(caches.pod_monitors) == _versions(kube, PMS)
        and _cached(caches.namespaces) == _versions(kube, "namespaces")
    )


def restarts(op: Operator) -> dict[str, float]:
    """Watch restarts by reason, over every resource."""
    out: dict[str, float] = {}
    for family in op.metrics.registry.collect():
        for sample in family.samples:
            if sample.name == "config_operator_watch_restarts_total":
                reason = sample.labels["reason"]
                out[reason] = out.get(reason, 0.0) + sample.value
    return out


def idle(op: Operator) -> bool:
    return op.queue.depth == 0 and op.queue.delayed == 0 and op.queue.processing == 0


async def _run_chaos(chaos: Chaos, ops: int, *, halfway: Callable[[], Awaitable[None]] | None = None) -> None:
    for i in range(ops):
        chaos.step()
        if i == ops // 2 and halfway is not None:
            await halfway()
        # Mostly back to back; now and then long enough for the operator to finish some work.
        await asyncio.sleep(chaos.rng.choice([0, 0, 0, 0.001, 0.005, 0.02]))


async def _converge(op: Operator, kube: FakeKube, chaos: Chaos) -> None:
    """Faults off; the caches catch up; one resync; the queue drains; then the state must be exact."""
    chaos.faults = False
    kube.clear_faults()
    detail = lambda: f"seed {SEED}; last steps: {chaos.log[-15:]}\n{cache_differences(op, kube)}"  # noqa: E731
    await eventually(
        lambda: op.ready() and caches_current(op, kube), "the caches to catch up", WAIT_S, detail=detail
    )
    # One resync, as the periodic one does it: every PrometheusConfig once.
    op.queue.add_all(op.caches.prometheus_configs.keys())
    await eventually(lambda: idle(op), "the work queue to drain", WAIT_S, detail=detail)
    problems = mismatches(kube)
    assert problems == [], f"seed {SEED}: after one resync: {problems}\nlast steps: {chaos.log[-15:]}"
    # Its own status patches come back through the watches, and queue nothing.
    await eventually(
        lambda: caches_current(op, kube), "the status patches to reach the cache", WAIT_S, detail=detail
    )
    assert idle(op)
    assert mismatches(kube) == []


@pytest.mark.timeout(max(300, OPS // 10))
async def test_one_operator_converges_after_chaos(kube: FakeKube, tmp_path: Path) -> None:
    chaos = Chaos(kube, random.Random(SEED))
    async with replica(kube, tmp_path, "op-0", leader=False) as op:
        await eventually(op.ready, "informers synced")
        await _run_chaos(chaos, OPS)
        await _converge(op, kube, chaos)
        assert op.healthy()
        # The faults reached the informers: watches were expired and failed, and each time resumed.
        seen = restarts(op)
        assert seen.get("expired", 0) > 0 and seen.get("error", 0) > 0, seen
    # Enough happened for the result to mean something.
    assert sum(line.startswith("apply PrometheusConfig") for line in chaos.log) > OPS // 20
    assert any(w.resource == "secrets" and w.verb == "update" for w in kube.writes)
    assert any(w.resource == "secrets" and w.verb == "create" for w in kube.writes)


@pytest.mark.timeout(max(300, OPS // 10))
async def test_two_replicas_with_the_leader_killed(kube: FakeKube, tmp_path: Path) -> None:
    chaos = Chaos(kube, random.Random(SEED + 1), lease_faults=True)
    names = ("op-0", "op-1")
    async with contextlib.AsyncExitStack() as stacks:
        replicas: dict[str, Operator] = {}
        exits: dict[str, contextlib.AsyncExitStack] = {}
        for name in names:
            stack = contextlib.AsyncExitStack()
            replicas[name] = await stack.enter_async_context(replica(kube, tmp_path, name, leader=True))
            exits[name] = stack
            stacks.push_async_callback(stack.aclose)

        def leader() -> str | None:
            lease = kube.find("leases.coordination.k8s.io", "default", "config-operator")
            return None if lease is None else lease["spec"].get("holderIdentity")

        first = await eventually(leader, "a leader", WAIT_S)
        killed: list[str] = []

        async def kill_the_leader() -> None:
            name = leader()
            assert name in replicas
            killed.append(name)
            await exits[name].aclose()

        await _run_chaos(chaos, OPS, halfway=kill_the_leader)
        (survivor,) = [n for n in names if n not in killed]
        await eventually(lambda: leader() == survivor, "the survivor to take the Lease", WAIT_S)
        await eventually(lambda: replicas[survivor].leading, "the survivor to lead", WAIT_S)
        await _converge(replicas[survivor], kube, chaos)

    assert first in names and killed
    assert overlapping_writers(kube.writes, set(names)) == []
    holders = {
        (w.object.get("spec") or {}).get("holderIdentity") for w in kube.writes if w.resource == LEASES
    }
    assert holders == set(names), f"both replicas should have led, got {holders}"
    assert any(w.identity == survivor and w.resource == "secrets" for w in kube.writes)
    for name in names:
        denied = denied_anywhere(kube.calls_by(name))
        assert denied == set(), f"{name}: calls the RBAC would deny: {sorted(denied)}"


def test_overlapping_writers_catches_a_write_by_the_follower() -> None:
    from tests.fakekube import Write

    def lease(holder: str) -> Write:
        obj = {"spec": {"holderIdentity": holder}}
        return Write(holder, "update", "leases.coordination.k8s.io", "", "default", "l", obj, 0.0)

    def secret(who: str) -> Write:
        return Write(who, "update", "secrets", "", "ns", "s", {}, 0.0)

    ok = [lease("a"), secret("a"), lease("b"), secret("b"), secret("someone-else")]
    assert overlapping_writers(ok, {"a", "b"}) == []
    bad = [lease("a"), secret("a"), lease("b"), secret("a")]
    assert overlapping_writers(bad, {"a", "b"}) == ["a wrote update secrets ns/s while b led"]


@pytest.mark.timeout(300)
async def test_a_leader_whose_renewal_hangs_never_writes_beside_the_new_one(
    kube: FakeKube, tmp_path: Path
) -> None:
    """The leader's renewal hangs past the Lease's duration (a slow API server, a stalled connection);
    the other replica takes the Lease meanwhile. The old leader must have stopped writing by then."""
    chaos = Chaos(kube, random.Random(SEED + 2), faults=False)
    names = ("op-0", "op-1")
    async with contextlib.AsyncExitStack() as stack:
        replicas = {
            n: await stack.enter_async_context(replica(kube, tmp_path, n, leader=True)) for n in names
        }

        def leader() -> str | None:
            lease = kube.find("leases.coordination.k8s.io", "default", "config-operator")
            return None if lease is None else lease["spec"].get("holderIdentity")

        first = await eventually(leader, "a leader", WAIT_S)
        await _run_chaos(chaos, 100)
        # The leader's renewals take longer than the Lease lasts, for a while: the other replica takes
        # the Lease meanwhile. Changes go on, so whoever leads has Secrets to write.
        slow = kube.add_latency(
            LEADER.lease_duration_s + 2.0, verb="update", resource="leases", identity=first
        )
        loop = asyncio.get_running_loop()
        give_up = loop.time() + WAIT_S
        while leader() == first:
            assert loop.time() < give_up, "the Lease never changed hands"
            chaos.step()
            await asyncio.sleep(0.02)
        for _ in range(100):  # both alive, the new one leading: the old one must not write
            chaos.step()
            await asyncio.sleep(0.02)
        slow.remaining = 0
        (other,) = [n for n in names if n != first]
        await eventually(lambda: replicas[other].leading, "the other replica to lead", WAIT_S)
        await _converge(replicas[other], kube, chaos)
    assert overlapping_writers(kube.writes, set(names)) == []
    assert {w.identity for w in kube.writes if w.resource == "secrets"} == set(names)
