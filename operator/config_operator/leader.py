"""Leader election: only the holder of the Lease runs the reconcile workers.

kubernetes_asyncio's ``LeaderElection`` (through ``client.Kube.elector``) does the campaigning: it
acquires the Lease, renews it, and returns once a renewal fails. Its ``onstarted_leading`` runs as a
task of its own, which the library cancels on loss but not when the campaign itself is cancelled, so
here that callback only flips a gate, and the task is tracked and cancelled on the way out. The workers
themselves run under ``lead()``'s TaskGroup:

- the gate opens: start ``work()``;
- the gate closes (the Lease is lost): cancel ``work()`` at once, then campaign again; the informers keep
  running, so the caches are warm if the Lease comes back;
- no renewal sent within ``renew_deadline_s`` has succeeded (the library would wait on a hanging one):
  the gate closes too, and the campaign is cancelled and started afresh;
- ``work()`` returning or raising is a bug: it propagates and stops the operator loudly.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Protocol

log = logging.getLogger(__name__)

Work = Callable[[], Coroutine[Any, Any, None]]


@dataclass(frozen=True)
class LeaderSettings:
    """The Lease and its timing (the defaults are client-go's)."""

    lease_name: str = "config-operator"
    """Name of the Lease object."""
    lease_namespace: str = "default"
    """Namespace of the Lease object."""
    identity: str = "config-operator"
    """This candidate's name in the Lease (the pod name, in a cluster)."""
    lease_duration_s: float = 15.0
    """How long a Lease holds without renewal; a follower takes over after this."""
    renew_deadline_s: float = 10.0
    """The leader gives up if it cannot renew within this."""
    retry_period_s: float = 2.0
    """Between attempts to acquire or renew."""


class Elector(Protocol):
    """``client.Kube`` has it: one campaign of leader election."""

    def elector(
        self,
        *,
        lease_name: str,
        lease_namespace: str,
        identity: str,
        lease_duration_s: float,
        renew_deadline_s: float,
        retry_period_s: float,
        on_started: Callable[[], Coroutine[Any, Any, None]],
        on_stopped: Callable[[], Coroutine[Any, Any, None]],
        on_renewed: Callable[[float], None] = ...,
    ) -> Callable[[], Coroutine[Any, Any, None]]: ...


class _Gate:
    """Open while this instance holds the Lease."""

    def __init__(self, on_change: Callable[[bool], None]) -> None:
        self.leading = asyncio.Event()
        self.lost = asyncio.Event()
        self._on_change = on_change

    def open(self) -> None:
        self.lost.clear()
        self.leading.set()
        self._on_change(True)

    def close(self) -> None:
        if self.leading.is_set():
            self.leading.clear()
            self.lost.set()
            self._on_change(False)


async def lead(
    kube: Elector,
    settings: LeaderSettings,
    work: Work,
    *,
    on_change: Callable[[bool], None] = lambda leading: None,
) -> None:
    """Run ``work()`` only while holding the Lease, forever (until cancelled)."""
    gate = _Gate(on_change)
    async with asyncio.TaskGroup() as tg:
        tg.create_task(_campaign(kube, settings, gate))
        tg.create_task(_gated(gate, work))


async def _gated(gate: _Gate, work: Work) -> None:
    while True:
        await gate.leading.wait()
        async with asyncio.TaskGroup() as tg:
            task = tg.create_task(work())
            lost = tg.create_task(gate.lost.wait())
            done, _ = await asyncio.wait({task, lost}, return_when=asyncio.FIRST_COMPLETED)
            if task in done:
                # Only a bug gets here: the TaskGroup re-raises the error, or this names the return.
                lost.cancel()
                if task.exception() is None:
                    raise RuntimeError("the reconcile workers returned while leading")
            else:
                task.cancel()


async def _campaign(kube: Elector, settings: LeaderSettings, gate: _Gate) -> None:
    holders: list[asyncio.Task[Any]] = []
    loop = asyncio.get_running_loop()
    renewed_at = loop.time()
    overdue = asyncio.Event()

    def renewed(sent_at: float) -> None:
        nonlocal renewed_at
        renewed_at = max(renewed_at, sent_at)

    async def started() -> None:
        # Runs as the library's own task: remember it so a shutdown can cancel it.
        task = asyncio.current_task()
        if task is not None:
            holders.append(task)
        log.info("acquired the lease, starting the workers", extra={"identity": settings.identity})
        gate.open()
        try:
            # The library would go on leading while a renewal hangs, past the Lease's expiry, when the
            # other replica takes over: stop once no renewal sent within the renew deadline has
            # succeeded. Counted from when the renewal was sent, so this instance always stops before
            # the Lease it wrote expires for the others.
            await _past(lambda: renewed_at + settings.renew_deadline_s)
            log.warning(
                "lease not renewed within the renew deadline, stopping the workers",
                extra={"identity": settings.identity, "renew_deadline_s": settings.renew_deadline_s},
            )
            overdue.set()
            gate.close()
            await asyncio.Event().wait()
        finally:
            gate.close()

    async def stopped() -> None:
        log.warning("lost the lease, stopping the workers", extra={"identity": settings.identity})
        gate.close()

    while True:
        overdue.clear()
        run = kube.elector(
            lease_name=settings.lease_name,
            lease_namespace=settings.lease_namespace,
            identity=settings.identity,
            lease_duration_s=settings.lease_duration_s,
            renew_deadline_s=settings.renew_deadline_s,
            retry_period_s=settings.retry_period_s,
            on_started=started,
            on_stopped=stopped,
            on_renewed=renewed,
        )
        try:
            await _until_overdue(run, overdue)
        except Exception as exc:
            # The library lets connection errors out of its loop; campaign again after a pause.
            log.warning("leader election failed", extra={"identity": settings.identity, "err": str(exc)})
        finally:
            gate.close()
            for task in holders:
                task.cancel()
            if holders:
                # wait() does not re-raise the tasks' CancelledError, and lets our own through.
                await asyncio.wait(holders)
            holders.clear()
        await asyncio.sleep(settings.retry_period_s)


async def _until_overdue(run: Callable[[], Coroutine[Any, Any, None]], overdue: asyncio.Event) -> None:
    """Run one campaign until it returns, or until the renewal is overdue (then it is cancelled, with its
    hanging request: the next campaign starts from a fresh read of the Lease)."""
    try:
        async with asyncio.TaskGroup() as tg:
            campaign = tg.create_task(run())
            watchdog = tg.create_task(overdue.wait())
            await asyncio.wait({campaign, watchdog}, return_when=asyncio.FIRST_COMPLETED)
            campaign.cancel()
            watchdog.cancel()
    except ExceptionGroup as group:
        raise group.exceptions[0] from None  # only the campaign can fail: its error, as it was


async def _past(deadline: Callable[[], float]) -> None:
    """Return once the loop's clock is past ``deadline()``, which may move on meanwhile."""
    loop = asyncio.get_running_loop()
    while True:
        left_s = deadline() - loop.time()
        if left_s < 0:
            return
        await asyncio.sleep(left_s + 0.01)
