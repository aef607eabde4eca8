"""A config too large for a Secret: Reconciled=False and one Warning, the last Secret kept, no retry loop."""

from __future__ import annotations

import asyncio
import base64
import random
import string

from config_operator.app import Operator
from config_operator.generate import SECRET_KEY
from config_operator.reconcile import MAX_SECRET_BYTES
from tests.config_operator.conftest import (
    PCS,
    SMS,
    condition,
    events,
    metric,
    prometheus_config,
    service_monitor,
)
from tests.fakekube import FakeKube
from tests.support.operator_run import secret_config
from tests.support.polling import eventually


def _gzipped_size(kube: FakeKube) -> int:
    secret = kube.get("secrets", "default", "prometheus-main")
    return len(base64.b64decode(secret["data"][SECRET_KEY]))


async def settled_with_api(kube: FakeKube) -> bytes:
    """The Secret with the api monitor's job, once the status counts it: a Secret of the
    PrometheusConfig alone may come first, before the operator has seen the monitor."""
    config: bytes = await eventually(
        lambda: (
            (c := secret_config(kube, "default", "prometheus-main"))
            and b"serviceMonitor/default/api/0" in c
            and (kube.get(PCS, "default", "main").get("status") or {}).get("serviceMonitors") == 1
            and c
        ),
        what="a Secret with the api monitor's job, counted in the status",
    )
    return config


async def test_a_config_over_the_secret_limit_is_a_false_condition(
    kube: FakeKube, operator: Operator
) -> None:
    assert operator.reconciler.max_secret_bytes == MAX_SECRET_BYTES == 1024 * 1024
    kube.create(service_monitor("api"))
    kube.create(prometheus_config("main"))
    fitting = await settled_with_api(kube)
    # The limit is the real one scaled down: the config that is there now fits exactly, one more
    # monitor does not.
    operator.reconciler.max_secret_bytes = _gzipped_size(kube)
    secret_rv = kube.get("secrets", "default", "prometheus-main")["metadata"]["resourceVersion"]
    kube.create(service_monitor("web"))

    cond = await eventually(
        lambda: (c := condition(kube, "default", "main")) and c["status"] == "False" and c,
        what="Reconciled=False",
    )
    assert cond["reason"] == "ConfigTooLarge"
    assert f"over the Secret limit of {operator.reconciler.max_secret_bytes} bytes" in cond["message"]
    warnings = [e for e in events(kube, type_="Warning") if e["reason"] == "ConfigTooLarge"]
    assert len(warnings) == 1
    # Nothing written, nothing retried: the reconciles stop, and the Secret is as it was.
    assert metric(operator, "config_operator_reconcile_errors_total", {"reason": "too_large"}) >= 1
    settled = metric(operator, "config_operator_reconciles_total")
    await asyncio.sleep(1.0)
    assert metric(operator, "config_operator_reconciles_total") == settled
    assert metric(operator, "config_operator_reconcile_errors_total", {"reason": "api"}) == 0
    assert kube.get("secrets", "default", "prometheus-main")["metadata"]["resourceVersion"] == secret_rv
    assert secret_config(kube, "default", "prometheus-main") == fitting
    status = kube.get(PCS, "default", "main")["status"]
    assert status["serviceMonitors"] == 1  # the last good counts

    # Room again: the new config is written and the condition turns True.
    operator.reconciler.max_secret_bytes = MAX_SECRET_BYTES
    kube.patch(SMS, "default", "web", {"metadata": {"labels": {"nudge": "1"}}})  # any change queues it
    await eventually(
        lambda: (c := condition(kube, "default", "main")) and c["status"] == "True",
        what="Reconciled=True again",
    )
    config = secret_config(kube, "default", "prometheus-main")
    assert config is not None and b"serviceMonitor/default/web/0" in config


async def test_at_the_real_limit_a_huge_monitor_is_refused_and_the_rest_kept(
    kube: FakeKube, operator: Operator
) -> None:
    kube.create(service_monitor("api"))
    kube.create(prometheus_config("main"))
    fitting = await settled_with_api(kube)
    # 1.5 MB of random letters gzip to more than 1 MiB: no config holding them fits in a Secret.
    rng = random.Random(0)
    noise = "".join(rng.choice(string.ascii_letters + string.digits) for _ in range(1_500_000))
    huge = service_monitor("huge")
    huge["spec"]["endpoints"][0]["relabelings"] = [
        {"sourceLabels": ["__address__"], "regex": noise, "targetLabel": "noise"}
    ]
    kube.create(huge)
    cond = await eventually(
        lambda: (c := condition(kube, "default", "main")) and c["reason"] == "ConfigTooLarge" and c,
        what="Reconciled=False, ConfigTooLarge",
    )
    assert cond["status"] == "False"
    size = int(cond["message"].split(" is ", 1)[1].split(" bytes", 1)[0])
    assert size > MAX_SECRET_BYTES
    assert secret_config(kube, "default", "prometheus-main") == fitting
    kube.delete(SMS, "default", "huge")
    await eventually(
        lambda: (c := condition(kube, "default", "main")) and c["status"] == "True",
        what="Reconciled=True once the huge monitor is gone",
    )
