"""Running config-operator in-process against the fake API server, and watching what it does there.

Shared by the operator's own tests (tests/config_operator/), the chain test (tests/e2e/) and the RBAC
test (tests/examples/): the operator as an async context manager, and the config in the Secret it
writes.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import gzip
from collections.abc import AsyncIterator

from config_operator.app import Operator, Settings
from config_operator.client import Kube
from config_operator.generate import SECRET_KEY
from config_operator.metrics import OperatorMetrics
from tests.fakekube import FakeKube


def secret_config(kube: FakeKube, namespace: str, name: str) -> bytes | None:
    """The uncompressed prometheus.yaml in the operator's Secret, or None when there is none (yet)."""
    secret = kube.find("secrets", namespace, name)
    if secret is None:
        return None
    try:
        return gzip.decompress(base64.b64decode(secret["data"][SECRET_KEY]))
    except (KeyError, gzip.BadGzipFile):
        return None  # not (or no longer) the operator's


@contextlib.asynccontextmanager
async def running_operator(kube: FakeKube, settings: Settings) -> AsyncIterator[Operator]:
    """An Operator running against ``kube`` until the block exits; its metrics in a registry of its own."""
    async with Kube.connect(host=kube.url, user_agent=f"test/{settings.identity}") as client:
        operator = Operator(client, settings, OperatorMetrics.create(process_metrics=False))
        async with asyncio.TaskGroup() as tg:
            task = tg.create_task(operator.run())
            try:
                yield operator
            finally:
                task.cancel()
